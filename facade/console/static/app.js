/* global document, window, fetch, sessionStorage, history, location, URL, URLSearchParams, dagre, setTimeout */
/**
 * The Interchange console page: one ES module, no build step, no framework. Every second it polls the
 * console server's `GET /graph`, `GET /health/ready` and `GET /api/dead-letters`, draws the integration
 * graph with dagre (re-laid out only when the graph's structure changes; otherwise only the labels and
 * counters change), the route cards (stop/start through the control bus) and the dead-letter panel
 * (headers, body, replay of one or a selection, with an edited body or into a chosen endpoint).
 *
 * Everything shown comes from the server and may come from a device: it is written with textContent,
 * createElement(NS) and setAttribute on inert attributes only — never innerHTML.
 *
 * The token (header bar) lives in sessionStorage; `?token=` on the page's URL fills it and is then
 * removed from the address bar. It is sent as `Authorization: Bearer <token>` with every request.
 *
 * Stable `data-testid`s (ids are the server's, verbatim):
 *   header        token-input, readiness, health-problems, connection-status
 *   graph         graph (the <svg>), lane-<routeId> (one lane per route, class not-started when stopped), node-<nodeId> (an endpoint
 *                 shared by routes is drawn in each of their lanes: the first is node-<nodeId>, the others
 *                 node-again-<nodeId>), node-passed-<nodeId>, node-failed-<nodeId> (steps),
 *                 group-<parentNodeId> (the box around a choice's/multicast's branch steps),
 *                 edge-<edgeId>, edge-contract-<edgeId> (only when the edge has a contract),
 *                 edge-rate-<edgeId> (`12.3/s`), edge-failed-<edgeId> (empty when 0), edge-inflight-<edgeId>,
 *                 graph-zoom-in, graph-zoom-out, graph-zoom-fit
 *   routes        route-card-<routeId>, route-status-<routeId>, route-inflight-<routeId>,
 *                 route-rate-<routeId>, route-received-<routeId>, route-completed-<routeId>,
 *                 route-failed-<routeId>, route-dead-lettered-<routeId>, route-stop-<routeId>,
 *                 route-start-<routeId>, route-action-result-<routeId>
 *   dead letters  dead-letter-route-filter, replay-endpoint, replay-selected, replay-result,
 *                 dead-letter-table, dead-letter-select-all, dead-letter-empty,
 *                 dead-letter-row-<id>, dead-letter-select-<id>,
 *                 dead-letter-detail, dead-letter-close, dead-letter-header-<header name>,
 *                 validation-errors, body-editor, body-encoding, dead-letter-replays, replay-one, replay-edited
 */

const POLL_INTERVAL_MS = 1_000;
/** Rates are averaged over the samples of about this long. */
const RATE_WINDOW_MS = 3_000;
const TOKEN_KEY = 'interchange-console-token';
const DEAD_LETTER_LIMIT = 100;
const SVG_NS = 'http://www.w3.org/2000/svg';
const FONT_FAMILY = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const FONTS = { endpoint: `13px ${FONT_FAMILY}`, stepId: `600 13px ${FONT_FAMILY}`, small: `11px ${FONT_FAMILY}` };
const ENDPOINT_MAX_WIDTH = 340;
const OUR_HEADER = 'x-interchange-';
const KEY_HEADERS = new Set(['x-interchange-error', 'x-interchange-error-code', 'x-interchange-step', 'x-interchange-declared-at', 'x-interchange-validation-errors', 'x-interchange-reason']);

const dom = {
  token: byId('token-input'),
  readiness: byId('readiness'),
  healthProblems: byId('health-problems'),
  connection: byId('connection-status'),
  graph: byId('graph'),
  graphScroll: byId('graph-scroll'),
  graphPlaceholder: byId('graph-placeholder'),
  routes: byId('routes'),
  routeFilter: byId('dead-letter-route-filter'),
  replayEndpoint: byId('replay-endpoint'),
  replaySelected: byId('replay-selected'),
  replayResult: byId('replay-result'),
  selectAll: byId('dead-letter-select-all'),
  rows: byId('dead-letter-rows'),
  empty: byId('dead-letter-empty'),
  detail: byId('dead-letter-detail'),
};

const state = {
  token: '',
  /** The last `/graph` answer. */
  graph: null,
  /** Recent `{ at, edges: Map<id, messages>, routes: Map<id, received> }`, oldest first. */
  samples: [],
  edgeRates: new Map(),
  routeRates: new Map(),
  deadLetters: [],
  selected: new Set(),
  detailId: null,
};

/** What is drawn: the structure key it was laid out for and the live elements of each node and edge. */
const view = { key: null, width: 0, height: 0, zoom: 1, fitted: false, lanes: new Map(), nodes: new Map(), edges: new Map(), routes: new Map(), rows: new Map() };

// ---------------------------------------------------------------------------------------------- DOM

function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}

/** Sets attributes (strings), `testid`, `class`, event handlers (`onX`) and the `text` content. */
function applyProps(element, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'testid') element.setAttribute('data-testid', String(value));
    else if (key === 'text') element.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2).toLowerCase(), value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(typeof child === 'object' ? child : String(child));
  }
  return element;
}

/** An HTML element; string children become text nodes. */
function h(tag, props = {}, ...children) {
  return append(applyProps(document.createElement(tag), props), children);
}

/** An SVG element; string children become text nodes. */
function s(tag, props = {}, ...children) {
  return append(applyProps(document.createElementNS(SVG_NS, tag), props), children);
}

const measure = document.createElement('canvas').getContext('2d');

function textWidth(text, font) {
  if (measure === null) return text.length * 7.5;
  measure.font = font;
  return measure.measureText(text).width;
}

/** `text`, cut with an ellipsis to fit `max` pixels. */
function fit(text, font, max) {
  if (textWidth(text, font) <= max) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (textWidth(`${text.slice(0, middle)}…`, font) <= max) low = middle;
    else high = middle - 1;
  }
  return `${text.slice(0, low)}…`;
}

const numberFormat = new Intl.NumberFormat('en');
const compactFormat = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 1 });

function count(value) {
  return typeof value === 'number' && Number.isFinite(value) ? numberFormat.format(value) : '–';
}

/** `12.3K`: counts inside the graph, where room is short. */
function compact(value) {
  return typeof value === 'number' && Number.isFinite(value) ? compactFormat.format(value) : '–';
}

function formatRate(rate) {
  if (rate === undefined) return '…/s';
  if (rate === 0) return '0/s';
  return `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s`;
}

function formatTime(at) {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return { short: String(at ?? ''), full: String(at ?? '') };
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString('en-GB', { hour12: false });
  return { short: today ? time : `${date.toLocaleDateString('en-CA').slice(5)} ${time}`, full: date.toISOString() };
}

function headerText(value) {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

// ---------------------------------------------------------------------------------------------- API

/** A request to the console server, with the token when there is one. Never throws. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (state.token !== '') headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, cache: 'no-store', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (error) {
    return { ok: false, status: 0, data: null, error: `the console server is unreachable (${error instanceof Error ? error.message : String(error)})` };
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  const error = response.ok ? undefined : data !== null && typeof data.error === 'string' ? data.error : `HTTP ${response.status} ${response.statusText}`;
  return { ok: response.ok, status: response.status, data, error };
}

/** The message for a refused or failed write. */
function failureText(response, what) {
  if (response.status === 401 || response.status === 403) {
    return `${what} refused (${response.status}): ${response.error}. ${state.token === '' ? 'Writes need the console token: enter it in the header bar.' : 'Check the console token in the header bar.'}`;
  }
  return `${what} failed${response.status === 0 ? '' : ` (${response.status})`}: ${response.error}`;
}

// -------------------------------------------------------------------------------------------- token

function initToken() {
  let stored = '';
  try {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get('token');
    if (fromUrl !== null) {
      url.searchParams.delete('token');
      history.replaceState(history.state, '', `${url.pathname}${url.search}${url.hash}`);
      if (fromUrl !== '') sessionStorage.setItem(TOKEN_KEY, fromUrl);
    }
    stored = sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    stored = '';
  }
  state.token = stored;
  dom.token.value = stored;
  dom.token.addEventListener('input', () => {
    state.token = dom.token.value.trim();
    try {
      if (state.token === '') sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, state.token);
    } catch {
      // storage refused (private mode): the token lives in this page only
    }
  });
}

// ---------------------------------------------------------------------------------------- readiness

async function pollHealth() {
  const response = await api('health/ready');
  const health = response.data;
  const badge = dom.readiness;
  if (health === null || typeof health.status !== 'string') {
    badge.className = 'badge badge-unknown';
    badge.textContent = response.status === 0 ? 'unreachable' : 'unknown';
    dom.healthProblems.textContent = '';
    return;
  }
  badge.className = `badge badge-${health.status === 'ready' ? 'ready' : 'unready'}`;
  badge.textContent = health.status;
  const checks = health.checks ?? {};
  const problems = [
    ...(checks.routes ?? []).filter((check) => !check.ok).map((check) => `route ${check.id}: ${check.status}`),
    ...(checks.transports ?? []).filter((check) => !check.ok).map((check) => `${check.scheme}: ${check.state}${check.lastError ? ` (${check.lastError})` : ''}`),
    ...(checks.buffers ?? []).filter((check) => !check.ok).map((check) => `${check.uri}: ${check.full ? 'full' : 'not ok'} (${count(check.messages)}${check.capacityMessages ? ` / ${count(check.capacityMessages)}` : ''} messages)`),
  ];
  dom.healthProblems.textContent = problems.join(' · ');
  badge.title = problems.length === 0 ? 'every route, transport and buffer is ok' : problems.join('\n');
}

// -------------------------------------------------------------------------------------------- graph

async function pollGraph() {
  const response = await api('graph');
  if (!response.ok || response.data === null || !Array.isArray(response.data.nodes)) {
    dom.connection.textContent =
      response.status === 401 || response.status === 403 ? `The console refused to show the graph (${response.status}): enter the console token.` : `No graph: ${response.error ?? 'unexpected answer'} — retrying.`;
    return;
  }
  dom.connection.textContent = '';
  const graph = response.data;
  state.graph = graph;
  sampleRates(graph);
  const key = structureKey(graph);
  if (key !== view.key) drawGraph(graph, key);
  updateGraph(graph);
  renderRoutes(graph.routes ?? []);
  updateRouteFilter(graph.routes ?? []);
}

/** Per-edge and per-route rates over the last few seconds, from the counters' growth. */
function sampleRates(graph) {
  const at = typeof graph.generatedAt === 'number' ? graph.generatedAt : Date.now();
  const last = state.samples[state.samples.length - 1];
  if (last !== undefined && at <= last.at) return;
  const sample = {
    at,
    edges: new Map(graph.edges.map((edge) => [edge.id, edge.counters?.messages ?? 0])),
    routes: new Map((graph.routes ?? []).map((route) => [route.id, route.metrics?.received ?? 0])),
  };
  state.samples.push(sample);
  while (state.samples.length > 2 && at - state.samples[1].at >= RATE_WINDOW_MS) state.samples.shift();
  const first = state.samples[0];
  if (first === sample) return;
  const seconds = (at - first.at) / 1000;
  const rate = (now, then) => (then === undefined ? 0 : Math.max(0, now - then) / seconds);
  for (const [id, messages] of sample.edges) state.edgeRates.set(id, rate(messages, first.edges.get(id)));
  for (const [id, received] of sample.routes) state.routeRates.set(id, rate(received, first.routes.get(id)));
}

/** What a layout depends on: nodes, their boxes' text, edges and their labels. */
function structureKey(graph) {
  return JSON.stringify([
    graph.nodes.map((node) => [node.id, node.kind, node.label, node.role, node.stepKind, node.stepId, node.parent, node.branch]),
    graph.edges.map((edge) => [edge.id, edge.from, edge.to, edge.kind, edge.contract]),
  ]);
}

function nodeBox(node) {
  if (node.kind === 'endpoint') {
    const text = fit(String(node.label ?? node.uri ?? node.id), FONTS.endpoint, ENDPOINT_MAX_WIDTH - 28);
    return { text, width: Math.max(90, textWidth(text, FONTS.endpoint) + 28), height: 32 };
  }
  const kind = stepKindText(node);
  const stepId = fit(String(node.stepId ?? node.label ?? node.id), FONTS.stepId, 200);
  const width = Math.max(120, textWidth(stepId, FONTS.stepId) + 20, textWidth(kind, FONTS.small) + 20, textWidth('000.0K passed · 000 failed', FONTS.small) + 20);
  return { text: stepId, kind, width, height: 56 };
}

function stepKindText(node) {
  return node.branch === undefined || node.branch === null ? String(node.stepKind ?? 'step') : `${node.stepKind ?? 'step'} · branch ${node.branch}`;
}

/** An edge's label box: the contract (if any) over the live rate; the rate's box grows when there are failures. */
function edgeLabelBox(edge) {
  const contract = typeof edge.contract === 'string' && edge.contract !== '' ? edge.contract : null;
  const width = Math.max(textWidth('000.0/s', FONTS.small), contract === null ? 0 : textWidth(contract, FONTS.small)) + 10;
  return { contract, width, height: contract === null ? 17 : 30 };
}

const GROUP_PREFIX = '\u0000group:';
const groupId = (nodeId) => `${GROUP_PREFIX}${nodeId}`;

/**
 * The graph in lanes, one per route (in the server's order): a route's steps, the endpoints its edges
 * touch and its edges. An endpoint shared by routes (a channel, a dead-letter destination that is
 * another route's source) is drawn in each of their lanes; its first drawing carries `node-<id>`.
 */
function lanesOf(graph) {
  const byNodeId = new Map(graph.nodes.map((node) => [node.id, node]));
  const lanes = new Map((graph.routes ?? []).map((route) => [route.id, { id: route.id, nodes: new Map(), edges: [] }]));
  const laneOf = (id) => {
    const key = String(id ?? '');
    if (!lanes.has(key)) lanes.set(key, { id: key, nodes: new Map(), edges: [] });
    return lanes.get(key);
  };
  for (const node of graph.nodes) if (node.kind !== 'endpoint') laneOf(node.route).nodes.set(node.id, node);
  const placed = new Set();
  for (const edge of graph.edges) {
    if (!byNodeId.has(edge.from) || !byNodeId.has(edge.to)) continue;
    const lane = laneOf(edge.route);
    lane.edges.push(edge);
    for (const end of [edge.from, edge.to]) {
      lane.nodes.set(end, byNodeId.get(end));
      placed.add(end);
    }
  }
  for (const node of graph.nodes) {
    if (node.kind === 'endpoint' && !placed.has(node.id)) laneOf(Array.isArray(node.routes) && node.routes.length > 0 ? node.routes[0] : '').nodes.set(node.id, node);
  }
  return [...lanes.values()].filter((lane) => lane.nodes.size > 0);
}

/** dagre's layout of one lane, with the branch steps of a choice or multicast in one cluster. */
function layout(lane, boxes, labels, compound) {
  const g = new dagre.graphlib.Graph({ compound, multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 36, edgesep: 10, marginx: 16, marginy: 18 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const id of lane.nodes.keys()) g.setNode(id, { width: boxes.get(id).width, height: boxes.get(id).height });
  if (compound) {
    const ensureGroup = (parentId, seen = new Set()) => {
      if (g.hasNode(groupId(parentId))) return;
      g.setNode(groupId(parentId), {});
      const grandParent = lane.nodes.get(parentId)?.parent;
      if (grandParent !== undefined && grandParent !== null && lane.nodes.has(grandParent) && !seen.has(grandParent)) {
        seen.add(parentId);
        ensureGroup(grandParent, seen);
        g.setParent(groupId(parentId), groupId(grandParent));
      }
    };
    for (const node of lane.nodes.values()) {
      if (node.kind === 'endpoint' || node.parent === undefined || node.parent === null || !lane.nodes.has(node.parent)) continue;
      ensureGroup(node.parent);
      g.setParent(node.id, groupId(node.parent));
    }
  }
  for (const edge of lane.edges) {
    const label = labels.get(edge.id);
    g.setEdge(edge.from, edge.to, { width: label.width, height: label.height, labelpos: 'c', minlen: 1 }, edge.id);
  }
  dagre.layout(g);
  return g;
}

/** A smooth path through dagre's points (quadratic curves through the midpoints). */
function pathOf(points) {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  let d = `M${first.x.toFixed(1)},${first.y.toFixed(1)}`;
  for (let index = 0; index < rest.length - 1; index += 1) {
    const point = rest[index];
    const next = rest[index + 1];
    d += ` Q${point.x.toFixed(1)},${point.y.toFixed(1)} ${((point.x + next.x) / 2).toFixed(1)},${((point.y + next.y) / 2).toFixed(1)}`;
  }
  const last = rest[rest.length - 1];
  if (last !== undefined) d += ` L${last.x.toFixed(1)},${last.y.toFixed(1)}`;
  return d;
}

const LANE_TITLE_HEIGHT = 22;
const LANE_GAP = 8;

function drawGraph(graph, key) {
  const boxes = new Map(graph.nodes.map((node) => [node.id, nodeBox(node)]));
  const labels = new Map(graph.edges.map((edge) => [edge.id, edgeLabelBox(edge)]));
  view.lanes.clear();
  view.nodes.clear();
  view.edges.clear();
  const drawn = new Set();
  const laneElements = [];
  let top = 0;
  let width = 0;
  for (const lane of lanesOf(graph)) {
    let g;
    try {
      g = layout(lane, boxes, labels, true);
    } catch (error) {
      console.warn(`the layout of route ${lane.id} with branch groups failed; laid out without them`, error);
      g = layout(lane, boxes, labels, false);
    }
    const size = g.graph();
    const content = drawLane(lane, g, boxes, labels, drawn);
    const laneHeight = LANE_TITLE_HEIGHT + Math.ceil(size.height ?? 0);
    const background = s('rect', { class: 'lane-background', x: 0, y: 0, height: laneHeight, rx: 6 });
    const status = s('tspan', { class: 'lane-status' });
    const element = s('g', { class: 'lane', testid: `lane-${lane.id}`, transform: `translate(0,${top})` },
      background,
      s('text', { class: 'lane-title', x: 12, y: 16 }, lane.id === '' ? 'endpoints' : `route ${lane.id}`, status),
      s('g', { transform: `translate(0,${LANE_TITLE_HEIGHT})` }, content));
    laneElements.push({ background, element });
    view.lanes.set(lane.id, { element, status });
    top += laneHeight + LANE_GAP;
    width = Math.max(width, Math.ceil(size.width ?? 0));
  }
  for (const lane of laneElements) lane.background.setAttribute('width', String(width));
  view.width = width;
  view.height = Math.max(0, top - LANE_GAP);
  dom.graph.replaceChildren(markers(), ...laneElements.map((lane) => lane.element));
  dom.graph.setAttribute('viewBox', `0 0 ${view.width} ${view.height}`);
  dom.graphPlaceholder.hidden = graph.nodes.length > 0;
  dom.graphPlaceholder.textContent = 'No routes.';
  if (!view.fitted) {
    // first drawing: fit the panel, but never so small that the labels cannot be read (the panel scrolls)
    view.zoom = Math.max(0.75, Math.min(1, fitZoom()));
    view.fitted = true;
  }
  applyZoom();
  view.key = key;
}

/** One lane's groups, edges, edge labels and nodes, in the lane's coordinates. */
function drawLane(lane, g, boxes, labels, drawn) {
  const groups = s('g', { class: 'groups' });
  const edges = s('g', { class: 'edges' });
  const edgeLabels = s('g', { class: 'edge-labels' });
  const nodes = s('g', { class: 'nodes' });

  for (const id of g.nodes()) {
    if (!id.startsWith(GROUP_PREFIX)) continue;
    const box = g.node(id);
    const parentId = id.slice(GROUP_PREFIX.length);
    groups.append(
      s('g', { class: 'group', testid: `group-${parentId}` },
        s('title', { text: `the branches of ${parentId}` }),
        s('rect', { x: box.x - box.width / 2, y: box.y - box.height / 2, width: box.width, height: box.height, rx: 8 }),
        s('text', { x: box.x - box.width / 2 + 6, y: box.y - box.height / 2 - 4, text: `${lane.nodes.get(parentId)?.stepId ?? parentId} branches` })),
    );
  }

  for (const edge of lane.edges) {
    const laid = g.edge({ v: edge.from, w: edge.to, name: edge.id });
    if (laid === undefined) continue;
    const label = labels.get(edge.id);
    const arrow = edge.kind === 'dead-letter' || edge.kind === 'send' ? edge.kind : 'flow';
    const title = s('title', { text: `${edge.kind} edge of route ${edge.route}: ${edge.from} → ${edge.to}` });
    edges.append(s('g', { class: `edge edge-${arrow}`, testid: `edge-${edge.id}` }, title, s('path', { d: pathOf(laid.points), 'marker-end': `url(#arrow-${arrow})` })));
    const y = laid.y - label.height / 2;
    const rate = s('tspan', { testid: `edge-rate-${edge.id}`, class: 'rate', text: formatRate(undefined) });
    const inFlight = s('tspan', { testid: `edge-inflight-${edge.id}`, class: 'in-flight' });
    const failed = s('tspan', { testid: `edge-failed-${edge.id}`, class: 'failed' });
    const text = s('text', { x: laid.x, y: y + 12, 'text-anchor': 'middle' });
    if (label.contract !== null) text.append(s('tspan', { x: laid.x, testid: `edge-contract-${edge.id}`, class: 'contract', text: label.contract }));
    text.append(s('tspan', { x: laid.x, ...(label.contract === null ? {} : { dy: 13 }) }, rate, inFlight, failed));
    const background = s('rect', { x: laid.x - label.width / 2, y, width: label.width, height: label.height, rx: 4 });
    edgeLabels.append(s('g', { class: `edge-label edge-${arrow}` }, background, text));
    view.edges.set(edge.id, { rate, inFlight, failed, title, background, center: laid.x, label });
  }

  for (const node of lane.nodes.values()) {
    const laid = g.node(node.id);
    const box = boxes.get(node.id);
    const position = `translate(${(laid.x - box.width / 2).toFixed(1)},${(laid.y - box.height / 2).toFixed(1)})`;
    const first = !drawn.has(node.id);
    drawn.add(node.id);
    if (node.kind === 'endpoint') {
      const routes = Array.isArray(node.routes) ? node.routes.join(', ') : '';
      nodes.append(
        s('g', { class: `node endpoint role-${node.role}${first ? '' : ' again'}`, testid: first ? `node-${node.id}` : `node-again-${node.id}`, transform: position, tabindex: 0 },
          s('title', { text: `${node.role} endpoint ${node.uri ?? node.label}${routes === '' ? '' : `\nroutes: ${routes}`}` }),
          s('rect', { width: box.width, height: box.height, rx: box.height / 2 }),
          s('text', { x: box.width / 2, y: box.height / 2, 'text-anchor': 'middle', 'dominant-baseline': 'central', text: box.text })),
      );
      continue;
    }
    const passed = s('tspan', { testid: `node-passed-${node.id}`, class: 'passed' });
    const failed = s('tspan', { testid: `node-failed-${node.id}`, class: 'failed' });
    nodes.append(
      s('g', { class: `node step step-${node.stepKind}`, testid: `node-${node.id}`, transform: position, tabindex: 0 },
        s('title', { text: `${node.stepKind} step '${node.stepId}' of route ${node.route}${node.declaredAt ? `\ndeclared at ${node.declaredAt}` : ''}` }),
        s('rect', { width: box.width, height: box.height, rx: 5 }),
        s('text', { x: 10, y: 15, class: 'kind', text: box.kind }),
        s('text', { x: 10, y: 33, class: 'step-id', text: box.text }),
        s('text', { x: 10, y: 48, class: 'counters' }, passed, failed)),
    );
    view.nodes.set(node.id, { passed, failed });
  }
  return [groups, edges, edgeLabels, nodes];
}

function markers() {
  const marker = (kind) =>
    s('marker', { id: `arrow-${kind}`, class: `arrow arrow-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z' }));
  return s('defs', {}, marker('flow'), marker('send'), marker('dead-letter'));
}

function fitZoom() {
  if (view.width === 0 || view.height === 0) return 1;
  return Math.min((dom.graphScroll.clientWidth - 8) / view.width, (dom.graphScroll.clientHeight - 8) / view.height, 1.5);
}

function applyZoom() {
  dom.graph.setAttribute('width', String(Math.round(view.width * view.zoom)));
  dom.graph.setAttribute('height', String(Math.round(view.height * view.zoom)));
}

/** The live part: rates, failures and counters, every poll, without a new layout. */
function updateGraph(graph) {
  for (const route of graph.routes ?? []) {
    const lane = view.lanes.get(route.id);
    if (lane === undefined) continue;
    lane.status.textContent = route.status === 'started' ? '' : ` · ${route.status}`;
    lane.element.classList.toggle('not-started', route.status !== 'started');
  }
  for (const edge of graph.edges) {
    const edgeView = view.edges.get(edge.id);
    if (edgeView === undefined) continue;
    const counters = edge.counters ?? {};
    edgeView.rate.textContent = formatRate(state.edgeRates.get(edge.id));
    edgeView.inFlight.textContent = typeof counters.inFlight === 'number' && counters.inFlight > 0 ? ` · ${compact(counters.inFlight)} in flight` : '';
    edgeView.failed.textContent = counters.failed > 0 ? ` · ${compact(counters.failed)} failed` : '';
    edgeView.title.textContent = `${edge.kind} edge of route ${edge.route}${edge.contract ? ` (${edge.contract})` : ''}: ${count(counters.messages)} messages, ${count(counters.failed ?? 0)} failed`;
    // the label's box grows (around its centre) to hold the failures
    const line = `${edgeView.rate.textContent}${edgeView.inFlight.textContent}${edgeView.failed.textContent}`;
    const width = Math.max(edgeView.label.width, textWidth(line, FONTS.small) + 10);
    edgeView.background.setAttribute('x', (edgeView.center - width / 2).toFixed(1));
    edgeView.background.setAttribute('width', width.toFixed(1));
  }
  for (const node of graph.nodes) {
    const nodeView = view.nodes.get(node.id);
    if (nodeView === undefined) continue;
    nodeView.passed.textContent = `${compact(node.counters?.passed ?? 0)} passed`;
    nodeView.failed.textContent = node.counters?.failed > 0 ? ` · ${compact(node.counters.failed)} failed` : '';
  }
}

function initZoom() {
  const zoomBy = (factor) => {
    view.zoom = Math.min(2, Math.max(0.2, view.zoom * factor));
    applyZoom();
  };
  byId('zoom-in').addEventListener('click', () => zoomBy(1.25));
  byId('zoom-out').addEventListener('click', () => zoomBy(0.8));
  byId('zoom-fit').addEventListener('click', () => {
    view.zoom = fitZoom();
    applyZoom();
  });
}

// ------------------------------------------------------------------------------------------- routes

const ROUTE_FIELDS = [
  ['inFlight', 'In flight', 'inflight'],
  ['rate', 'Msgs/s', 'rate'],
  ['received', 'Received', 'received'],
  ['completed', 'Completed', 'completed'],
  ['filtered', 'Filtered', 'filtered'],
  ['failed', 'Failed', 'failed'],
  ['rejected', 'Rejected', 'rejected'],
  ['deadLettered', 'Dead-lettered', 'dead-lettered'],
];

function renderRoutes(routes) {
  const seen = new Set();
  for (const route of routes) {
    seen.add(route.id);
    let card = view.routes.get(route.id);
    if (card === undefined) {
      card = createRouteCard(route);
      view.routes.set(route.id, card);
    }
    dom.routes.append(card.element); // keeps the server's order
    updateRouteCard(card, route);
  }
  for (const [id, card] of view.routes) {
    if (seen.has(id)) continue;
    card.element.remove();
    view.routes.delete(id);
  }
}

function createRouteCard(route) {
  const headingId = `route-heading-${view.routes.size}`;
  const status = h('span', { class: 'badge', testid: `route-status-${route.id}` });
  const values = new Map();
  const fields = h('dl', { class: 'metrics' });
  for (const [field, label, testid] of ROUTE_FIELDS) {
    const value = h('dd', { testid: `route-${testid}-${route.id}` });
    values.set(field, value);
    fields.append(h('div', {}, h('dt', { text: label }), value));
  }
  const source = h('p', { class: 'uri' });
  const deadLetterUri = h('p', { class: 'uri dead-letter-uri' });
  const result = h('p', { class: 'action-result', testid: `route-action-result-${route.id}`, role: 'status', 'aria-live': 'polite' });
  const stop = h('button', { type: 'button', testid: `route-stop-${route.id}`, text: 'Stop', 'aria-describedby': headingId });
  const start = h('button', { type: 'button', testid: `route-start-${route.id}`, text: 'Start', 'aria-describedby': headingId });
  const card = { element: null, status, values, source, deadLetterUri, stop, start, result, pending: false, route };
  stop.addEventListener('click', () => void control(card, 'stop'));
  start.addEventListener('click', () => void control(card, 'start'));
  card.element = h('article', { class: 'route-card', testid: `route-card-${route.id}`, 'aria-labelledby': headingId },
    h('header', {}, h('h3', { id: headingId, text: route.id }), status),
    source, deadLetterUri, fields,
    h('div', { class: 'actions' }, stop, start, result));
  return card;
}

function updateRouteCard(card, route) {
  card.route = route;
  card.status.textContent = route.status;
  card.status.className = `badge status-${route.status}`;
  const metrics = route.metrics ?? {};
  for (const [field, value] of card.values) {
    value.textContent = field === 'rate' ? formatRate(state.routeRates.get(route.id)) : count(metrics[field]);
    value.classList.toggle('alert', (field === 'failed' || field === 'deadLettered' || field === 'rejected') && metrics[field] > 0);
  }
  card.source.textContent = `from ${route.source}`;
  card.source.title = `${route.source}${route.declaredAt ? `\ndeclared at ${route.declaredAt}` : ''}`;
  card.deadLetterUri.textContent = route.deadLetterUri ? `dead letters → ${route.deadLetterUri}` : '';
  card.stop.disabled = card.pending || route.status === 'stopped' || route.status === 'stopping';
  card.start.disabled = card.pending || route.status === 'started' || route.status === 'stopping';
}

/** The control bus: stop or start one route. */
async function control(card, action) {
  const id = card.route.id;
  card.pending = true;
  card.stop.disabled = true;
  card.start.disabled = true;
  card.result.className = 'action-result';
  card.result.textContent = action === 'stop' ? 'stopping…' : 'starting…';
  const response = await api(`api/routes/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
  card.pending = false;
  if (response.ok) {
    const status = response.data?.status ?? (action === 'stop' ? 'stopped' : 'started');
    card.result.textContent = `${action === 'stop' ? 'stop' : 'start'}: ${status}`;
    updateRouteCard(card, { ...card.route, status });
  } else {
    card.result.className = 'action-result error';
    card.result.textContent = failureText(response, action === 'stop' ? 'Stop' : 'Start');
    updateRouteCard(card, card.route);
  }
}

function updateRouteFilter(routes) {
  const wanted = routes.map((route) => route.id);
  const present = [...dom.routeFilter.options].slice(1).map((option) => option.value);
  if (wanted.join('\u0000') === present.join('\u0000')) return;
  const current = dom.routeFilter.value;
  dom.routeFilter.replaceChildren(h('option', { value: '', text: 'all routes' }), ...wanted.map((id) => h('option', { value: id, text: id })));
  dom.routeFilter.value = wanted.includes(current) ? current : '';
}

// ------------------------------------------------------------------------------------- dead letters

async function pollDeadLetters() {
  const route = dom.routeFilter.value;
  const query = new URLSearchParams({ limit: String(DEAD_LETTER_LIMIT), ...(route === '' ? {} : { route }) });
  const response = await api(`api/dead-letters?${query}`);
  if (!response.ok || response.data === null || !Array.isArray(response.data.deadLetters)) return;
  if (dom.routeFilter.value !== route) return; // the filter changed while this was on its way
  state.deadLetters = response.data.deadLetters;
  renderDeadLetters();
}

function rowSignature(deadLetter) {
  return JSON.stringify([deadLetter.at, deadLetter.route, deadLetter.step, deadLetter.code, deadLetter.reason, deadLetter.error, deadLetter.replays]);
}

function renderDeadLetters() {
  const ids = new Set(state.deadLetters.map((deadLetter) => deadLetter.id));
  for (const id of state.selected) if (!ids.has(id)) state.selected.delete(id);
  for (const [id, row] of view.rows) {
    if (ids.has(id)) continue;
    row.element.remove();
    view.rows.delete(id);
  }
  for (const deadLetter of state.deadLetters) {
    const signature = rowSignature(deadLetter);
    let row = view.rows.get(deadLetter.id);
    if (row === undefined || row.signature !== signature) {
      const fresh = { element: createRow(deadLetter), signature };
      if (row !== undefined) row.element.replaceWith(fresh.element);
      row = fresh;
      view.rows.set(deadLetter.id, row);
    }
    dom.rows.append(row.element); // keeps the server's order (newest first)
    row.element.classList.toggle('current', deadLetter.id === state.detailId);
    row.element.setAttribute('aria-selected', String(deadLetter.id === state.detailId));
    const checkbox = row.element.querySelector('input[type="checkbox"]');
    if (checkbox !== null) checkbox.checked = state.selected.has(deadLetter.id);
  }
  dom.empty.hidden = state.deadLetters.length > 0;
  updateSelection();
  if (state.detailId !== null) {
    const current = state.deadLetters.find((deadLetter) => deadLetter.id === state.detailId);
    if (current !== undefined) renderReplays(current.replays);
  }
}

function createRow(deadLetter) {
  const time = formatTime(deadLetter.at);
  const checkbox = h('input', { type: 'checkbox', testid: `dead-letter-select-${deadLetter.id}`, 'aria-label': `Select dead letter ${deadLetter.id}` });
  checkbox.addEventListener('change', () => {
    if (checkbox.checked) state.selected.add(deadLetter.id);
    else state.selected.delete(deadLetter.id);
    updateSelection();
  });
  const replays = Array.isArray(deadLetter.replays) ? deadLetter.replays : [];
  const lastReplay = replays[replays.length - 1];
  const row = h('tr', { testid: `dead-letter-row-${deadLetter.id}`, tabindex: 0, 'aria-label': `Dead letter ${deadLetter.id} of route ${deadLetter.route}: show its headers and body` },
    h('td', { class: 'select' }, checkbox),
    h('td', { title: time.full, text: time.short }),
    h('td', { text: deadLetter.route }),
    h('td', { title: deadLetter.declaredAt ? `declared at ${deadLetter.declaredAt}` : undefined, text: deadLetter.step ?? '' }),
    h('td', {}, h('code', { text: deadLetter.code ?? '' })),
    h('td', { class: 'reason', title: [deadLetter.reason, deadLetter.error].filter(Boolean).join('\n') },
      deadLetter.reason ? h('strong', { text: deadLetter.reason }) : null, deadLetter.reason && deadLetter.error ? ' — ' : null, deadLetter.error ?? ''),
    h('td', { text: lastReplay === undefined ? '—' : `${replays.length}× · ${lastReplay.outcome}` }),
  );
  row.addEventListener('click', (event) => {
    if (event.target instanceof window.HTMLInputElement) return;
    void openDetail(deadLetter.id);
  });
  row.addEventListener('keydown', (event) => {
    if (event.target !== row || (event.key !== 'Enter' && event.key !== ' ')) return;
    event.preventDefault();
    void openDetail(deadLetter.id);
  });
  return row;
}

function updateSelection() {
  const shown = state.deadLetters.length;
  const selected = state.selected.size;
  dom.replaySelected.disabled = selected === 0;
  dom.replaySelected.textContent = selected === 0 ? 'Replay selected' : `Replay selected (${selected})`;
  dom.selectAll.checked = shown > 0 && selected === shown;
  dom.selectAll.indeterminate = selected > 0 && selected < shown;
}

function initDeadLetters() {
  dom.selectAll.addEventListener('change', () => {
    state.selected = dom.selectAll.checked ? new Set(state.deadLetters.map((deadLetter) => deadLetter.id)) : new Set();
    renderDeadLetters();
  });
  dom.routeFilter.addEventListener('change', () => {
    state.selected.clear();
    void pollDeadLetters();
  });
  dom.replaySelected.addEventListener('click', () => void replay([...state.selected]));
}

/** The detail of one dead letter: summary, validation errors, every header, the editable body, replays. */
async function openDetail(id) {
  state.detailId = id;
  const listed = state.deadLetters.find((deadLetter) => deadLetter.id === id);
  renderDeadLetters();
  dom.detail.hidden = false;
  dom.detail.parentElement?.classList.add('with-detail');
  dom.detail.replaceChildren(h('p', { class: 'placeholder', text: 'Loading…' }));
  const response = await api(`api/dead-letters/${encodeURIComponent(id)}`);
  if (state.detailId !== id) return;
  if (!response.ok || response.data === null) {
    dom.detail.replaceChildren(detailHeading(id), h('p', { class: 'error', text: `Could not load dead letter ${id}: ${response.error ?? 'unexpected answer'}` }));
    return;
  }
  renderDetail({ ...listed, ...response.data });
}

function detailHeading(id) {
  return h('div', { class: 'detail-head' },
    h('h3', { text: `Dead letter ${id}` }),
    h('button', { type: 'button', testid: 'dead-letter-close', 'aria-label': 'Close the dead letter', text: '×', onclick: closeDetail }));
}

function closeDetail() {
  state.detailId = null;
  dom.detail.hidden = true;
  dom.detail.parentElement?.classList.remove('with-detail');
  dom.detail.replaceChildren();
  renderDeadLetters();
}

function renderDetail(deadLetter) {
  const headers = deadLetter.headers && typeof deadLetter.headers === 'object' ? deadLetter.headers : {};
  const summary = h('dl', { class: 'summary' });
  const add = (label, value, className) => {
    if (value === undefined || value === null || value === '') return;
    summary.append(h('dt', { text: label }), h('dd', { class: className, text: label === 'At' ? formatTime(value).full : headerText(value) }));
  };
  add('Route', deadLetter.route);
  add('Outcome', deadLetter.outcome);
  add('At', deadLetter.at);
  add('Step', deadLetter.step, 'key');
  add('Declared at', deadLetter.declaredAt, 'key');
  add('Code', deadLetter.code, 'key');
  add('Reason', deadLetter.reason);
  add('Error', deadLetter.error, 'key error');
  add('Sent to', deadLetter.uri);
  add('Message id', deadLetter.messageId);

  const names = Object.keys(headers).sort((a, b) => Number(b.startsWith(OUR_HEADER)) - Number(a.startsWith(OUR_HEADER)) || a.localeCompare(b));
  const headerRows = names.map((name) =>
    h('tr', { testid: `dead-letter-header-${name}`, class: `${name.startsWith(OUR_HEADER) ? 'ours' : ''} ${KEY_HEADERS.has(name) ? 'key' : ''}`.trim() },
      h('th', { scope: 'row', text: name }),
      h('td', { text: headerText(headers[name]) })),
  );

  const encoding = deadLetter.bodyEncoding ?? 'utf8';
  const editor = h('textarea', { id: 'body-editor', testid: 'body-editor', spellcheck: 'false', rows: 8, 'aria-describedby': 'body-encoding' });
  editor.value = typeof deadLetter.body === 'string' ? deadLetter.body : headerText(deadLetter.body ?? deadLetter.bodyPreview ?? '');
  const encodingNote = h('span', { id: 'body-encoding', testid: 'body-encoding', class: 'hint', text: encoding === 'base64' ? 'binary body, base64-encoded' : encoding === 'json' ? 'JSON' : 'UTF-8 text' });

  dom.detail.replaceChildren(
    detailHeading(deadLetter.id),
    summary,
    validationErrors(headers['x-interchange-validation-errors']),
    h('h4', { text: 'Headers' }),
    h('table', { class: 'headers' }, h('tbody', {}, headerRows)),
    h('div', { class: 'body-head' }, h('label', { for: 'body-editor', text: 'Body' }), encodingNote),
    editor,
    h('div', { class: 'actions' },
      h('button', { type: 'button', testid: 'replay-one', text: 'Replay', title: 'Replay this dead letter as it is', onclick: () => void replay([deadLetter.id]) }),
      h('button', { type: 'button', class: 'primary', testid: 'replay-edited', text: 'Replay (edited body)', onclick: () => void replay([deadLetter.id], editor.value) })),
    h('h4', { text: 'Replays' }),
    h('ul', { class: 'replays', testid: 'dead-letter-replays' }),
  );
  renderReplays(deadLetter.replays);
}

function validationErrors(value) {
  if (value === undefined || value === null || value === '') return null;
  let issues;
  try {
    issues = typeof value === 'string' ? JSON.parse(value) : value;
  } catch {
    issues = null;
  }
  const list = h('ul', { class: 'validation-errors', testid: 'validation-errors' });
  if (!Array.isArray(issues)) list.append(h('li', { text: headerText(value) }));
  else {
    for (const issue of issues) {
      const pointer = issue && typeof issue === 'object' ? issue.pointer ?? issue.instancePath ?? '' : '';
      list.append(h('li', {},
        h('code', { text: pointer === '' ? '(body)' : String(pointer) }), ' ',
        issue && typeof issue === 'object' ? String(issue.message ?? headerText(issue)) : headerText(issue),
        issue && typeof issue === 'object' && issue.keyword ? h('span', { class: 'hint', text: ` (${issue.keyword})` }) : null));
    }
  }
  return h('div', { class: 'validation' }, h('h4', { text: 'Validation errors' }), list);
}

function renderReplays(replays) {
  const list = dom.detail.querySelector('[data-testid="dead-letter-replays"]');
  if (list === null) return;
  const items = (Array.isArray(replays) ? replays : []).map((replayed) =>
    h('li', { class: `outcome-${replayed.outcome}` }, `${formatTime(replayed.at).full}: `, h('strong', { text: replayed.outcome }), replayed.target ? ` → ${replayed.target}` : ''));
  list.replaceChildren(...(items.length === 0 ? [h('li', { class: 'hint', text: 'not replayed yet' })] : items));
}

/** Replays dead letters into their route's source, or the endpoint in the toolbar; shows each outcome. */
async function replay(ids, body) {
  if (ids.length === 0) return;
  const endpoint = dom.replayEndpoint.value.trim();
  const request = { ids, ...(body === undefined ? {} : { body }), ...(endpoint === '' ? {} : { endpoint }) };
  dom.replayResult.className = 'replay-result pending';
  dom.replayResult.replaceChildren(`Replaying ${ids.length} dead letter${ids.length === 1 ? '' : 's'}${body === undefined ? '' : ' with the edited body'}${endpoint === '' ? '' : ` into ${endpoint}`}…`);
  const response = await api('api/dead-letters/replay', { method: 'POST', body: request });
  if (!response.ok || response.data === null || !Array.isArray(response.data.results)) {
    dom.replayResult.className = 'replay-result error';
    dom.replayResult.replaceChildren(failureText(response.ok ? { ...response, error: 'unexpected answer' } : response, 'Replay'));
    return;
  }
  const results = response.data.results;
  const good = results.filter((result) => result.outcome === 'completed' || result.outcome === 'sent').length;
  dom.replayResult.className = `replay-result ${good === results.length ? 'ok' : 'warn'}`;
  dom.replayResult.replaceChildren(
    h('span', { text: `Replayed ${results.length}: ${good} delivered, ${results.length - good} not.` }),
    h('ul', {}, results.map((result) =>
      h('li', { class: `outcome-${result.outcome}` }, h('code', { text: result.id }), ' → ', h('strong', { text: result.outcome }), result.error ? ` — ${result.error}` : ''))),
  );
  void pollDeadLetters();
}

// --------------------------------------------------------------------------------------------- poll

async function poll() {
  const started = Date.now();
  await Promise.allSettled([pollGraph(), pollHealth(), pollDeadLetters()]);
  setTimeout(() => void poll(), Math.max(100, POLL_INTERVAL_MS - (Date.now() - started)));
}

initToken();
initZoom();
initDeadLetters();
void poll();
