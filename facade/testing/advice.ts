import type { StepContext, StepDefinition } from '../../src/core/index.ts';
import type { RouteDefinition, RouteSource } from '../../src/dsl/route-definition.ts';

/** Where an intercepted URI goes instead: a URI (each `*` filled with what the pattern's `*` matched, in order), or computed from the URI. */
export type InterceptTarget = string | ((uri: string) => string);

interface Intercept {
  readonly pattern: RegExp;
  /** Whether the pattern names no query: it then matches a URI whatever its query. */
  readonly ignoresQuery: boolean;
  readonly target: InterceptTarget;
}

/**
 * A route changed for a test without touching its file (Camel's AdviceWith): another source, and
 * sends to some endpoints redirected — typically a route written against `amqp:`/`mqtt:` run on
 * `memory:` endpoints, under virtual time, with no broker and no broker module bound. Immutable:
 * each call returns a new advice. It is a `RouteSource`: hand it to `createIntegration` /
 * `startTestIntegration` in place of the route.
 *
 * What is redirected: every URI a step sends to — `to` (static or `{header}` templates, resolved
 * first), `wireTap`, `recipientList`, in branches too — when the step publishes, and the static
 * URIs steps declare (`sendsTo`), so build-time validation sees the replacements; and the route's
 * dead-letter channel. The route keeps its id, step ids and everything else.
 */
export class RouteAdvice implements RouteSource {
  /** @internal use `advice()` */
  constructor(
    private readonly route: RouteSource,
    private readonly source: string | undefined,
    private readonly intercepts: readonly Intercept[],
  ) {}

  /** Consumes `uri` instead of the route's own source (the route id stays what it was). */
  replaceFrom(uri: string): RouteAdvice {
    return new RouteAdvice(this.route, uri, this.intercepts);
  }

  /**
   * Sends to `target` instead of any endpoint matching `pattern` (the original is not sent to).
   * Patterns match whole URIs: `*` matches anything, `{name}` one template value (so the route's
   * own template can be given as it is written); a pattern without `?` ignores the URI's query.
   * The first matching intercept wins.
   * @example advice(route).interceptSendTo('mqtt:orders/*', 'memory:orders-*') // mqtt:orders/eu → memory:orders-eu
   */
  interceptSendTo(pattern: string, target: InterceptTarget): RouteAdvice {
    return new RouteAdvice(this.route, this.source, [...this.intercepts, { pattern: compile(pattern), ignoresQuery: !pattern.includes('?'), target }]);
  }

  definition(): RouteDefinition {
    const route = this.route.definition();
    const rewrite = (uri: string): string => this.rewrite(uri);
    const advised = new WeakSet<StepDefinition>();
    const adviseContext = (context: StepContext): StepContext => ({
      ...context,
      publish: (uri, messages) => context.publish(rewrite(uri), messages),
      compile: (steps) => context.compile(steps.map(adviseStep)),
    });
    const adviseStep = (step: StepDefinition): StepDefinition => {
      if (advised.has(step)) return step;
      const changed: StepDefinition = {
        ...step,
        sendsTo: step.sendsTo.map(rewrite),
        branches: step.branches.map((branch) => branch.map(adviseStep)),
        build: (context) => step.build(adviseContext(context)),
      };
      advised.add(changed);
      return changed;
    };
    const deadLetterUri = route.errorHandler.deadLetterUri;
    return {
      ...route,
      source: this.source ?? route.source,
      steps: route.steps.map(adviseStep),
      // a handler may be a class instance: keep its prototype, change only the URI
      errorHandler:
        deadLetterUri === undefined
          ? route.errorHandler
          : (Object.create(route.errorHandler, { deadLetterUri: { value: rewrite(deadLetterUri), enumerable: true } }) as RouteDefinition['errorHandler']),
    };
  }

  private rewrite(uri: string): string {
    const base = uri.split('?', 1)[0] as string;
    for (const { pattern, ignoresQuery, target } of this.intercepts) {
      const match = pattern.exec(ignoresQuery ? base : uri);
      if (match === null) continue;
      if (typeof target === 'function') return target(uri);
      let star = 0;
      return target.replace(/\*/g, () => match.groups?.[`s${star++}`] ?? '');
    }
    return uri;
  }
}

/**
 * Advises a route for a test: `replaceFrom`, `interceptSendTo`.
 * @example
 * const route = from('amqp:queue/orders').transform(price).to('mqtt:orders/{region}');
 * const { kit } = await startTestIntegration({
 *   routes: [advice(route).replaceFrom('memory:orders').interceptSendTo('mqtt:orders/*', 'memory:orders-*')],
 * });
 * const eu = kit.mock('memory:orders-eu');
 * await kit.send('memory:orders', { region: 'eu', total: 10 });
 * await eu.expect(1);
 */
export function advice(route: RouteSource): RouteAdvice {
  return new RouteAdvice(route, undefined, []);
}

/** `*` → any text (captured in order as `s0`, `s1`…), `{name}` → one encoded template value, the rest literal. */
function compile(pattern: string): RegExp {
  let star = 0;
  const source = pattern
    .split(/(\*|\{[^}]*\})/)
    .map((part) => (part === '*' ? `(?<s${star++}>.*?)` : part.startsWith('{') && part.endsWith('}') ? '[^/?&#]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}
