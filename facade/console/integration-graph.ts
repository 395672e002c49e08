import { parseEndpoint, type StepDefinition } from '../../src/core/index.ts';
import type { RouteDefinition } from '../../src/dsl/route-definition.ts';
import type { RouteMetrics, StepMetrics } from '../../src/runtime/route-metrics.ts';
import type { RouteStatus } from '../../src/runtime/route-runtime.ts';

/** A route's counters as the graph shows them (`RouteMetrics` without the per-step and per-destination maps). */
export interface GraphRouteMetrics {
  readonly received: number;
  readonly completed: number;
  readonly filtered: number;
  readonly failed: number;
  readonly retried: number;
  readonly deadLettered: number;
  readonly discarded: number;
  readonly rejected: number;
  readonly expired: number;
  readonly inFlight: number;
  readonly handedBack: number;
}

export interface GraphRoute {
  readonly id: string;
  readonly status: RouteStatus;
  /** The source URI as declared. */
  readonly source: string;
  readonly declaredAt: string;
  /** The dead-letter destination as declared, if the route has one. */
  readonly deadLetterUri?: string;
  readonly metrics: GraphRouteMetrics;
}

/**
 * Where an endpoint stands: consumed by a route (`source`), sent to (`destination`), a route's
 * dead-letter destination (`dead-letter`), or both sent to by one route and consumed by another (`channel`).
 */
export type EndpointRole = 'source' | 'destination' | 'channel' | 'dead-letter';

export interface EndpointNode {
  /** `endpoint:<normalised uri>`: one node per endpoint, shared by every route using it. */
  readonly id: string;
  readonly kind: 'endpoint';
  readonly label: string;
  /** `scheme:path`, options dropped (`mqtt:devices/+deviceId/telemetry`). */
  readonly uri: string;
  readonly role: EndpointRole;
  /** The routes that consume, send to or dead-letter to it. */
  readonly routes: readonly string[];
}

export interface StepNode {
  /** `step:<route>/<stepId>`. */
  readonly id: string;
  readonly kind: 'step';
  readonly label: string;
  readonly route: string;
  readonly stepId: string;
  readonly stepKind: string;
  readonly declaredAt: string;
  /** The node id of the enclosing step (choice, multicast), for a step inside a branch. */
  readonly parent?: string;
  /** Its branch's index in the enclosing step (a choice's `when`s in order, then `otherwise`). */
  readonly branch?: number;
  readonly counters: StepMetrics;
}

export type GraphNode = EndpointNode | StepNode;

/**
 * `flow`: from a route's source to its first step, and between steps; `send`: from a step to an
 * endpoint it sends to; `dead-letter`: from a route's source endpoint to its dead-letter destination.
 */
export type EdgeKind = 'flow' | 'send' | 'dead-letter';

export interface GraphEdge {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly route: string;
  readonly kind: EdgeKind;
  /** The contract of the bodies on this edge (`subject@version`), where the definitions say it; else null. */
  readonly contract: string | null;
  readonly counters: { readonly messages: number; readonly failed: number };
}

/** The routes of an integration as data (Spring Integration's integration graph): what the console draws. */
export interface IntegrationGraph {
  /** Epoch ms. */
  readonly generatedAt: number;
  readonly routes: readonly GraphRoute[];
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

/** What the graph is drawn from: an `Integration` is one. */
export interface GraphSource {
  readonly routes: readonly { readonly id: string; readonly status: RouteStatus; readonly definition: RouteDefinition; readonly metrics: RouteMetrics }[];
}

/**
 * Step kinds that pass the body on as it came (or drop it), so the contract before them is the one
 * after them. Any other kind — `transform`, `enrich`, `split`, `aggregate`, `upcast`, a custom
 * `.step()` — makes a new body of unknown contract, unless it declares one (`{ contract }`).
 * A declared contract always wins.
 */
export const BODY_KEEPING_KINDS: ReadonlySet<string> = new Set([
  'filter',
  'setHeaders',
  'to',
  'wireTap',
  'recipientList',
  'validate',
  'process',
  'idempotentConsumer',
  'idempotent-consumer',
  'retry',
  'deadLetterChannel',
  'dead-letter-channel',
  'throttle',
  'delay',
  'log',
]);

const ZERO: StepMetrics = Object.freeze({ passed: 0, failed: 0 });

/** `scheme:path`, options dropped; a URI the parser refuses (a template in odd places) is cut at `?`. */
export function normaliseUri(uri: string): string {
  try {
    const endpoint = parseEndpoint(uri);
    return `${endpoint.scheme}:${endpoint.path}`;
  } catch {
    return uri.split('?')[0] ?? uri;
  }
}

/** The node id of an endpoint URI (normalised). */
export function endpointNodeId(uri: string): string {
  return `endpoint:${normaliseUri(uri)}`;
}

/** The node id of a route's step. */
export function stepNodeId(routeId: string, stepId: string): string {
  return `step:${routeId}/${stepId}`;
}

/** A node whose output goes on to the next step: with what its edge counts and the contract it passes on. */
interface Exit {
  readonly node: string;
  readonly messages: number;
  readonly contract: string | null;
}

interface EndpointUse {
  readonly routes: Set<string>;
  consumed: boolean;
  sent: boolean;
  deadLetter: boolean;
}

/** One route drawn: its step nodes, its edges, and how it uses endpoints. */
interface RouteDrawing {
  /** The contract assumed on the source edge (what other routes send to the source, where they agree). */
  readonly sourceContract: string | null;
  readonly nodes: StepNode[];
  readonly edges: GraphEdge[];
  readonly uses: { readonly uri: string; readonly use: 'consumed' | 'sent' | 'deadLetter' }[];
  /** The contract sent to each endpoint (normalised URI). */
  readonly sends: { readonly uri: string; readonly contract: string | null }[];
}

/**
 * The integration graph: one node per endpoint (shared between routes: a `buffer:` one route sends to
 * and another consumes is one `channel` node) and per step (steps inside branches too), one edge per
 * way messages take, each with the contract that flows on it and live counters. Pure: reads the
 * definitions and the counters at the time of the call.
 *
 * Contracts: a step's declared `contract` names what leaves it; a step of `BODY_KEEPING_KINDS` passes
 * on the contract it was given; any other resets it to unknown (null). A choice or multicast passes on
 * the contract its branches agree on. A route consuming a channel starts with the contract the routes
 * sending there agree on. Dead letters have none.
 *
 * Edge counters: `messages` is what the edge's tail passed on — the route's `received` from its
 * source, a step's `passed` to the next step, a branch head's `passed` into a branch (what the
 * choice sent there and the head passed on), `sent[stepId]` (else `passed`) on a send, `deadLettered`
 * on the dead-letter edge; `failed` is the failures at the edge's head (the step it leads to, plus
 * intake failures on the source's edge; the sending step for a send; 0 for a dead-letter edge). A
 * branch's last step leads on to the step after its choice or multicast — also when it is a `to`:
 * what leaves a branch continues. The dead-letter edge goes from the route's source endpoint.
 * @example integrationGraph(integration).edges.filter((edge) => edge.kind === 'send')
 */
export function integrationGraph(source: GraphSource): IntegrationGraph {
  const routes = source.routes;
  let drawings = routes.map((route) => drawRoute(route, null));
  // a channel's consumer takes what its producers send, which may come from another channel: settle it in rounds
  for (let round = 0; round <= routes.length; round += 1) {
    const sent = new Map<string, (string | null)[]>();
    for (const drawing of drawings) for (const { uri, contract } of drawing.sends) sent.set(uri, [...(sent.get(uri) ?? []), contract]);
    let changed = false;
    drawings = routes.map((route, index) => {
      const drawn = drawings[index] as RouteDrawing;
      const contract = commonContract(sent.get(normaliseUri(route.definition.source)) ?? [null]);
      if (contract === drawn.sourceContract) return drawn;
      changed = true;
      return drawRoute(route, contract);
    });
    if (!changed) break;
  }

  const endpoints = new Map<string, EndpointUse>();
  routes.forEach((route, index) => {
    for (const { uri, use } of (drawings[index] as RouteDrawing).uses) {
      const known = endpoints.get(uri) ?? { routes: new Set<string>(), consumed: false, sent: false, deadLetter: false };
      known.routes.add(route.id);
      known[use] = true;
      endpoints.set(uri, known);
    }
  });
  const endpointNodes: EndpointNode[] = [...endpoints].map(([uri, use]) => ({ id: endpointNodeId(uri), kind: 'endpoint', label: uri, uri, role: roleOf(use), routes: [...use.routes] }));
  return {
    generatedAt: Date.now(),
    routes: routes.map((route) => ({
      id: route.id,
      status: route.status,
      source: route.definition.source,
      declaredAt: route.definition.declaredAt,
      ...(route.definition.errorHandler.deadLetterUri === undefined ? {} : { deadLetterUri: route.definition.errorHandler.deadLetterUri }),
      metrics: routeMetrics(route.metrics),
    })),
    nodes: [...endpointNodes, ...drawings.flatMap((drawing) => drawing.nodes)],
    edges: drawings.flatMap((drawing) => drawing.edges),
  };
}

/** Draws one route, its source edge carrying `sourceContract`. */
function drawRoute(route: GraphSource['routes'][number], sourceContract: string | null): RouteDrawing {
  const { definition, metrics } = route;
  const routeId = route.id;
  const drawing: RouteDrawing = { sourceContract, nodes: [], edges: [], uses: [], sends: [] };
  const edgeIds = new Set<string>();
  const counters = (stepId: string): StepMetrics => metrics.steps[stepId] ?? ZERO;
  const nodeOf = (step: StepDefinition): string => stepNodeId(routeId, step.id);
  const addEdge = (edge: GraphEdge): void => {
    if (edgeIds.has(edge.id)) return; // two empty branches, two templates on one endpoint: one edge
    edgeIds.add(edge.id);
    drawing.edges.push(edge);
  };

  /** Adds the steps of one list, with their edges; `entries` lead into its first step. Returns what goes on after the list. */
  const walk = (steps: readonly StepDefinition[], entries: readonly Exit[], parent?: { node: string; branch: number }): readonly Exit[] => {
    let current = entries;
    for (const step of steps) {
      const node = nodeOf(step);
      const { passed, failed } = counters(step.id);
      drawing.nodes.push({
        id: node,
        kind: 'step',
        label: step.id,
        route: routeId,
        stepId: step.id,
        stepKind: step.kind,
        declaredAt: step.declaredAt,
        ...(parent === undefined ? {} : { parent: parent.node, branch: parent.branch }),
        counters: { passed, failed },
      });
      for (const entry of current) addEdge({ id: `flow:${entry.node}->${node}`, from: entry.node, to: node, route: routeId, kind: 'flow', contract: entry.contract, counters: { messages: entry.messages, failed } });
      const input = commonContract(current.map((entry) => entry.contract));
      const output = step.contract ?? (BODY_KEEPING_KINDS.has(step.kind) ? input : null);
      for (const destination of step.destinations ?? step.sendsTo) {
        const uri = normaliseUri(destination);
        drawing.uses.push({ uri, use: 'sent' });
        drawing.sends.push({ uri, contract: output });
        addEdge({ id: `send:${node}->${uri}`, from: node, to: endpointNodeId(uri), route: routeId, kind: 'send', contract: output, counters: { messages: metrics.sent[step.id] ?? passed, failed } });
      }
      if (step.branches.length === 0) {
        current = [{ node, messages: passed, contract: output }];
        continue;
      }
      const exits = step.branches.flatMap((branch, index) => {
        const head = branch[0];
        if (head === undefined) return [{ node, messages: passed, contract: input }];
        return walk(branch, [{ node, messages: counters(head.id).passed, contract: input }], { node, branch: index });
      });
      // a declared contract on the choice or multicast names what leaves it
      current = step.contract === undefined ? exits : exits.map((exit) => ({ ...exit, contract: step.contract ?? null }));
    }
    return current;
  };

  const sourceUri = normaliseUri(definition.source);
  const sourceNode = endpointNodeId(sourceUri);
  drawing.uses.push({ uri: sourceUri, use: 'consumed' });
  walk(definition.steps, [{ node: sourceNode, messages: metrics.received, contract: sourceContract }]);
  // failures at intake (a message its transport could not take whole) count on the source's edge
  const first = drawing.edges[0];
  if (first !== undefined && first.from === sourceNode) drawing.edges[0] = { ...first, counters: { ...first.counters, failed: first.counters.failed + counters('intake').failed } };
  const deadLetterUri = definition.errorHandler.deadLetterUri;
  if (deadLetterUri !== undefined) {
    const uri = normaliseUri(deadLetterUri);
    drawing.uses.push({ uri, use: 'deadLetter' });
    addEdge({ id: `dead-letter:${routeId}`, from: sourceNode, to: endpointNodeId(uri), route: routeId, kind: 'dead-letter', contract: null, counters: { messages: metrics.deadLettered, failed: 0 } });
  }
  return drawing;
}

function roleOf(use: EndpointUse): EndpointRole {
  if (use.consumed && (use.sent || use.deadLetter)) return 'channel';
  if (use.deadLetter) return 'dead-letter';
  return use.consumed ? 'source' : 'destination';
}

/** The one contract all these agree on, else null (also when any of them is unknown). */
function commonContract(contracts: readonly (string | null)[]): string | null {
  const first = contracts[0];
  if (first === undefined || first === null) return null;
  return contracts.every((contract) => contract === first) ? first : null;
}

function routeMetrics(metrics: RouteMetrics): GraphRouteMetrics {
  const { received, completed, filtered, failed, retried, deadLettered, discarded, rejected, expired, inFlight, handedBack } = metrics;
  return { received, completed, filtered, failed, retried, deadLettered, discarded, rejected, expired, inFlight, handedBack };
}
