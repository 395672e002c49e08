import { context, createTraceState, isSpanContextValid, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { isTemplate, parseEndpoint, PartialPublishError, withHeaders, type Endpoint, type Headers, type Message, type StepDefinition } from '../../src/core/index.ts';
import type { ExecutionOutcome, ObservedRoute, PublishObservation, RouteObserver, RouteProbe } from '../../src/runtime/route-observer.ts';
import { formatTraceparent, isValidTracestate, parseTraceparent, type TraceHeaders } from './trace-context.ts';

/** The instrumentation scope's name (`tracerName`'s default). */
export const TRACER_NAME = 'interchange-eip';

export interface TracingOptions {
  /** The tracer spans are started with (default: `trace.getTracer(tracerName)` of the registered global provider). */
  readonly tracer?: Tracer;
  /** The instrumentation scope of the default tracer (default `interchange-eip`). */
  readonly tracerName?: string;
}

/**
 * Traces every route execution with `@opentelemetry/api`, following OpenTelemetry's messaging
 * semantic conventions (see docs/tracing.md for every span name and attribute):
 * - one CONSUMER span `process <source>` per delivery a route admits, child of the W3C trace context
 *   in the message's `traceparent`/`tracestate` headers when they are well-formed (a new trace
 *   otherwise); the message then carries *this* span's `traceparent`, so everything derived from it
 *   (parts of a split, the copies of a multicast) carries the trace on;
 * - one INTERNAL span `<kind> <step id>` per step the delivery passes (a branch's steps are children
 *   of their enclosing step's span), ended when it leaves the step, or with the execution;
 * - one PRODUCER span `send <destination>` per message a step publishes, child of the context the
 *   message carries, whose own context is written into the message sent (`traceparent`, `tracestate`):
 *   a consumer route on the other side of MQTT 5, AMQP or an outbox row continues the same trace.
 *
 * No SDK, no work: without a `tracer` and with no tracer provider registered globally when a route
 * starts, the observer gives that run no probe at all — the route runs as if untraced, headers
 * untouched (register the SDK before starting the integration). An execution whose span is not
 * recording (sampled out) is not followed further: no step spans, no header rewritten.
 *
 * Span names stay low-cardinality: the declared source and destination (templates unexpanded); the
 * concrete topic or routing key goes into attributes. The observer never throws into the route.
 * @example
 * const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
 * provider.register();
 * const integration = createIntegration({ routes, modules, observers: [tracingObserver()] });
 */
export function tracingObserver({ tracer, tracerName = TRACER_NAME }: TracingOptions = {}): RouteObserver {
  return {
    attach(route: ObservedRoute): RouteProbe | undefined {
      if (tracer === undefined && !providerRegistered(tracerName)) return undefined;
      return new TracingProbe(tracer ?? trace.getTracer(tracerName), route);
    },
  };
}

/**
 * The W3C trace context headers of the active span (`context.active()`), or undefined when there is
 * none or it is not valid: to stamp a message created in user code (an HTTP handler's span) so the
 * route that consumes it continues that trace — `createMessage(body, { headers: activeTraceHeaders() })`,
 * or an outbox's `traceHeaders` option.
 * @example await outbox.add(tx, createMessage(order, { headers: { ...activeTraceHeaders() } }), { destination })
 */
export function activeTraceHeaders(): TraceHeaders | undefined {
  const span = trace.getSpan(context.active());
  if (span === undefined) return undefined;
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext) ? traceHeadersOf(spanContext) : undefined;
}

/** Whether a real tracer provider is registered: the API's proxy has a delegate only once an SDK set one. */
function providerRegistered(tracerName: string): boolean {
  const provider = trace.getTracerProvider() as { getDelegateTracer?: (name: string) => Tracer | undefined };
  return typeof provider.getDelegateTracer !== 'function' || provider.getDelegateTracer(tracerName) !== undefined;
}

/** One execution's spans: the process span and the step spans still open, innermost last. */
interface Execution {
  readonly span: Span;
  /** The carried trace headers (the process span's). */
  readonly headers: Headers;
  readonly steps: Span[];
  readonly stepDefinitions: StepDefinition[];
}

/** A step's span name and attributes, computed once per route start. */
interface StepInfo {
  readonly name: string;
  readonly attributes: Attributes;
}

/** A publish destination's span name and attributes, computed once per URI (a bounded cache). */
interface PublishTarget {
  readonly name: string;
  readonly attributes: Attributes;
}

/** Resolved publish URIs remembered per route run: beyond it, targets are computed each time. */
const MAX_CACHED_TARGETS = 1_000;

class TracingProbe implements RouteProbe<Execution | undefined> {
  private readonly processName: string;
  private readonly processAttributes: Attributes;
  private readonly template: string | undefined;
  private readonly steps = new Map<StepDefinition, StepInfo>();
  private readonly targets = new Map<string, PublishTarget>();

  constructor(
    private readonly tracer: Tracer,
    private readonly route: ObservedRoute,
  ) {
    const source = safeEndpoint(route.definition.source);
    const destination = source === undefined ? route.definition.source : destinationName(source);
    this.template = source !== undefined && hasWildcards(source) ? destination : undefined;
    this.processName = `process ${destination}`;
    this.processAttributes = {
      'messaging.system': source === undefined ? 'interchange' : systemOf(source.scheme),
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': destination,
      ...(this.template === undefined ? {} : { 'messaging.destination.template': this.template }),
      'interchange.route.id': route.id,
    };
    this.describeSteps(route.definition.steps);
  }

  begin(message: Message): Execution | undefined {
    const span = this.tracer.startSpan(this.processName, { kind: SpanKind.CONSUMER, attributes: this.processAttributes }, parentContext(message.headers, true));
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    span.setAttribute('messaging.message.id', message.id);
    const topic = message.headers.mqttTopic;
    if (this.template !== undefined && typeof topic === 'string') span.setAttribute('messaging.destination.name', topic);
    return { span, headers: carriedHeaders(span.spanContext(), message.headers), steps: [], stepDefinitions: [] };
  }

  carry(state: Execution | undefined, message: Message): Message {
    return state === undefined ? message : withHeaders(message, state.headers);
  }

  enterStep(state: Execution | undefined, step: StepDefinition): void {
    if (state === undefined) return;
    const info = this.steps.get(step) ?? stepInfo(step);
    const parent = state.steps[state.steps.length - 1] ?? state.span;
    state.steps.push(this.tracer.startSpan(info.name, { kind: SpanKind.INTERNAL, attributes: info.attributes }, trace.setSpan(ROOT_CONTEXT, parent)));
    state.stepDefinitions.push(step);
  }

  leaveStep(state: Execution | undefined, step: StepDefinition): void {
    if (state === undefined) return;
    const index = state.stepDefinitions.lastIndexOf(step);
    if (index < 0) return;
    // steps entered inside it and never left (none in a well-formed run) end with it
    while (state.steps.length > index) {
      state.stepDefinitions.pop();
      state.steps.pop()?.end();
    }
  }

  end(state: Execution | undefined, outcome: ExecutionOutcome, _durationMs: number, error: Error | undefined): void {
    if (state === undefined) return;
    const failed = outcome === 'rejected' || outcome === 'dead-lettered' || outcome === 'discarded';
    // the innermost open step is where the delivery stopped: filtered there, or failed there
    for (let index = state.steps.length - 1; index >= 0; index -= 1) {
      const step = state.steps[index] as Span;
      if (failed && index === state.steps.length - 1) failSpan(step, error, outcome);
      step.end();
    }
    state.steps.length = 0;
    state.stepDefinitions.length = 0;
    const span = state.span;
    span.setAttribute('interchange.outcome', outcome);
    if (outcome === 'rejected') failSpan(span, error, outcome);
    span.end();
  }

  publish(step: StepDefinition, uri: string, messages: readonly Message[]): PublishObservation | undefined {
    let sent: Message[] | undefined;
    let spans: (Span | undefined)[] | undefined;
    let target: PublishTarget | undefined;
    for (let index = 0; index < messages.length; index += 1) {
      const message = messages[index] as Message;
      const parent = parentContext(message.headers, false);
      if (parent === ROOT_CONTEXT) continue; // not from a traced execution (an aggregate, a sampled-out one): no orphan span
      target ??= this.targetOf(step, uri);
      const span = this.tracer.startSpan(target.name, { kind: SpanKind.PRODUCER, attributes: target.attributes }, parent);
      if (!span.isRecording()) {
        span.end();
        continue;
      }
      span.setAttribute('messaging.message.id', message.id);
      if (messages.length > 1) span.setAttribute('messaging.batch.message_count', messages.length);
      sent ??= [...messages];
      spans ??= [];
      sent[index] = withHeaders(message, carriedHeaders(span.spanContext(), message.headers));
      spans[index] = span;
    }
    if (spans === undefined) return undefined;
    const started = spans;
    return {
      messages: sent,
      done(error: unknown): void {
        started.forEach((span, index) => {
          if (span === undefined) return;
          const own = error instanceof PartialPublishError ? error.failures.get(index) : error;
          if (own !== undefined) failSpan(span, own, 'not confirmed');
          span.end();
        });
      },
    };
  }

  private describeSteps(steps: readonly StepDefinition[]): void {
    for (const step of steps) {
      this.steps.set(step, stepInfo(step));
      for (const branch of step.branches) this.describeSteps(branch);
    }
  }

  /** The producer span's name and attributes for one publish: the declared destination names it, the resolved one is an attribute. */
  private targetOf(step: StepDefinition, uri: string): PublishTarget {
    const cached = this.targets.get(uri);
    if (cached !== undefined) return cached;
    const resolved = safeEndpoint(uri);
    const declared = step.destinations?.length === 1 ? step.destinations[0] : step.sendsTo.includes(uri) ? uri : undefined;
    const declaredEndpoint = declared === undefined ? undefined : safeEndpoint(declared);
    const name = declaredEndpoint === undefined ? 'send' : `send ${destinationName(declaredEndpoint)}`;
    const attributes: Attributes = {
      'messaging.system': systemOf((resolved ?? declaredEndpoint)?.scheme ?? 'interchange'),
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'send',
      'interchange.route.id': this.route.id,
      'interchange.step.id': step.id,
    };
    if (resolved !== undefined) {
      attributes['messaging.destination.name'] = destinationName(resolved);
      if (resolved.scheme === 'amqp') attributes['messaging.rabbitmq.destination.routing_key'] = routingKeyOf(resolved);
    }
    if (declared !== undefined && isTemplate(declared) && declaredEndpoint !== undefined) attributes['messaging.destination.template'] = destinationName(declaredEndpoint);
    const target = { name, attributes };
    if (this.targets.size < MAX_CACHED_TARGETS) this.targets.set(uri, target);
    return target;
  }
}

/** The parent context in a message's W3C headers, or `ROOT_CONTEXT` when there is none or it is malformed. */
function parentContext(headers: Headers, isRemote: boolean): Context {
  const parent = parseTraceparent(headers.traceparent);
  if (parent === undefined) return ROOT_CONTEXT;
  const tracestate = headers.tracestate;
  const spanContext: SpanContext = { ...parent, isRemote };
  if (isValidTracestate(tracestate) && tracestate !== '') spanContext.traceState = createTraceState(tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/** A span context as the W3C headers; `tracestate` only when the span has one. */
function traceHeadersOf(spanContext: SpanContext): TraceHeaders {
  const traceparent = formatTraceparent(spanContext);
  const tracestate = spanContext.traceState?.serialize();
  return tracestate === undefined || tracestate === '' ? { traceparent } : { traceparent, tracestate };
}

/** The headers a message carries on with a span's context: a `tracestate` it had is replaced, or removed when the span has none. */
function carriedHeaders(spanContext: SpanContext, headers: Headers): Headers {
  const carried = traceHeadersOf(spanContext);
  return carried.tracestate === undefined && headers.tracestate !== undefined ? { ...carried, tracestate: undefined } : carried;
}

function stepInfo(step: StepDefinition): StepInfo {
  const attributes: Attributes = { 'interchange.step.id': step.id, 'interchange.step.kind': step.kind, 'interchange.step.declared_at': step.declaredAt };
  const colon = step.declaredAt.lastIndexOf(':');
  const line = Number(step.declaredAt.slice(colon + 1));
  if (colon > 0 && Number.isInteger(line) && line > 0) {
    attributes['code.file.path'] = step.declaredAt.slice(0, colon);
    attributes['code.line.number'] = line;
  }
  return { name: `${step.kind} ${step.id}`, attributes };
}

/** Marks a span failed: status ERROR, `error.type`, the exception event when there is an error. */
function failSpan(span: Span, error: unknown, outcome: string): void {
  if (error instanceof Error) {
    span.recordException(error);
    const code = (error as { code?: unknown }).code;
    span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message.slice(0, 300) });
  } else {
    span.setAttribute('error.type', outcome);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error === undefined ? outcome : String(error).slice(0, 300) });
  }
}

/** `messaging.system` of a scheme: the well-known value for RabbitMQ, `mqtt`, `interchange` for the in-process ones. */
function systemOf(scheme: string): string {
  switch (scheme) {
    case 'amqp':
      return 'rabbitmq';
    case 'mqtt':
    case 'mqtts':
      return 'mqtt';
    case 'memory':
    case 'buffer':
      return 'interchange';
    default:
      return scheme;
  }
}

/** The destination an endpoint names: a queue's or an exchange's name (AMQP), a topic or filter (MQTT), a channel's name. */
function destinationName(endpoint: Endpoint): string {
  if (endpoint.scheme !== 'amqp') return endpoint.path;
  const slash = endpoint.path.indexOf('/');
  const name = slash < 0 ? endpoint.path : endpoint.path.slice(slash + 1);
  return name === '' ? 'amq.default' : name;
}

function routingKeyOf(endpoint: Endpoint): string {
  return endpoint.path.startsWith('queue/') ? endpoint.path.slice('queue/'.length) : (endpoint.options.routingKey ?? '');
}

/** Whether a source names many concrete destinations (MQTT wildcards): the concrete one is then an attribute. */
function hasWildcards(endpoint: Endpoint): boolean {
  return (endpoint.scheme === 'mqtt' || endpoint.scheme === 'mqtts') && /[+#]/.test(endpoint.path);
}

function safeEndpoint(uri: string): Endpoint | undefined {
  try {
    return parseEndpoint(uri);
  } catch {
    return undefined;
  }
}
