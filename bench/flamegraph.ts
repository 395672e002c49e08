// Issue 17: a V8 `.cpuprofile` (what `node --cpu-prof` writes) as a self-contained SVG flame graph,
// plus the top self-time functions as a markdown table on stdout. No dependencies beyond Node.
//
//   npx tsx bench/flamegraph.ts <in.cpuprofile> <out.svg> [--exclude-idle | --no-exclude-idle]
//                               [--from-function <name>] [--title <text>]
//
// Classic layout: the root at the bottom, each frame as wide as its share of the kept samples, one
// rect per merged frame with a `<title>` tooltip. Frames are merged by (function, url, line, column)
// under the same merged parent, so identical stacks become one path; a frame under 0.1 % of the
// total is folded into its parent (its time becomes the parent's self time), which keeps the SVG small.
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** The parts of V8's profile format this converter reads. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}
export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

/** What to keep of a profile. */
export interface FlameOptions {
  /** Drop the `(idle)` samples, so widths are shares of busy time (default true). */
  readonly excludeIdle?: boolean;
  /** Drop every sample before the first one whose stack contains a function of this name (start-up). */
  readonly fromFunction?: string;
  /** Heading of the SVG. */
  readonly title?: string;
  /** Frames under this share of the total are folded into their parent (default 0.001 = 0.1 %). */
  readonly minShare?: number;
}

export type Category = 'project' | 'module' | 'node' | 'vm' | 'other';

/** One merged frame of the flame graph; `total` and `self` in microseconds. */
export interface Frame {
  readonly name: string;
  readonly location: string;
  readonly category: Category;
  total: number;
  self: number;
  readonly children: Map<string, Frame>;
}

/** One row of the self-time table. */
export interface SelfTimeRow {
  readonly name: string;
  readonly location: string;
  readonly micros: number;
  readonly share: number;
}

const vmFrames = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

/** The function's display name: anonymous functions are named after their position. */
function displayName(frame: CallFrame): string {
  return frame.functionName === '' ? '(anonymous)' : frame.functionName;
}

/** `file:line` (1-based) with the path shortened to what identifies it: from `node_modules/` or the project folder. */
function displayLocation(frame: CallFrame): string {
  if (frame.url === '') return '';
  const path = frame.url.replace(/^file:\/\//, '');
  const inModules = path.lastIndexOf('/node_modules/');
  const inProject = /\/(?:dist\/)?((?:adapters|src|patterns|facade|bin)\/.*)$/.exec(path);
  const short = inModules >= 0 ? path.slice(inModules + 1) : inProject ? (inProject[1] as string) : path;
  return frame.lineNumber >= 0 ? `${short}:${frame.lineNumber + 1}` : short;
}

function categoryOf(frame: CallFrame): Category {
  if (vmFrames.has(frame.functionName) && frame.url === '') return 'vm';
  if (frame.url.startsWith('node:')) return 'node';
  if (frame.url.includes('/node_modules/')) return 'module';
  if (/\/(?:adapters|src|patterns|facade|bin)\//.test(frame.url)) return 'project';
  return 'other';
}

/** Each sample's duration in microseconds: the time until the next sample (the last one gets the mean). */
function sampleDurations(profile: CpuProfile): number[] {
  const deltas = profile.timeDeltas;
  const count = profile.samples.length;
  const mean = count > 0 ? (profile.endTime - profile.startTime) / count : 0;
  return profile.samples.map((_, index) => (index + 1 < count ? Math.max(0, deltas[index + 1] ?? 0) : mean));
}

/**
 * Folds the profile's samples into a merged frame tree rooted at `(root)`, keeping the samples the
 * options select. Also returns the self time per function (before any folding) for the table and
 * the time of the `(idle)` samples left out.
 * @throws Error when `fromFunction` names a function no sample's stack contains.
 */
export function foldProfile(profile: CpuProfile, options: FlameOptions = {}): { root: Frame; selfTimes: SelfTimeRow[]; idleMicros: number } {
  const { excludeIdle = true, fromFunction } = options;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const stackOf = (id: number): ProfileNode[] => {
    const stack: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const node = byId.get(at);
      if (node) stack.push(node);
    }
    return stack.reverse();
  };

  let first = 0;
  if (fromFunction !== undefined) {
    first = profile.samples.findIndex((id) => stackOf(id).some((node) => node.callFrame.functionName === fromFunction));
    if (first < 0) throw new Error(`no sample's stack contains a function named '${fromFunction}'`);
  }

  const durations = sampleDurations(profile);
  const root: Frame = { name: '(root)', location: '', category: 'vm', total: 0, self: 0, children: new Map() };
  const self = new Map<string, { name: string; location: string; micros: number }>();
  let idleMicros = 0;
  for (let index = first; index < profile.samples.length; index += 1) {
    const stack = stackOf(profile.samples[index] as number);
    const leaf = stack[stack.length - 1];
    const micros = durations[index] as number;
    if (!leaf || (excludeIdle && leaf.callFrame.functionName === '(idle)')) {
      idleMicros += micros;
      continue;
    }
    let frame = root;
    root.total += micros;
    for (const node of stack.slice(1)) {
      const key = `${node.callFrame.functionName}\u0000${node.callFrame.url}\u0000${node.callFrame.lineNumber}\u0000${node.callFrame.columnNumber}`;
      let child = frame.children.get(key);
      if (!child) {
        child = { name: displayName(node.callFrame), location: displayLocation(node.callFrame), category: categoryOf(node.callFrame), total: 0, self: 0, children: new Map() };
        frame.children.set(key, child);
      }
      child.total += micros;
      frame = child;
    }
    frame.self += micros;
    const name = displayName(leaf.callFrame);
    const location = displayLocation(leaf.callFrame);
    const row = self.get(`${name}\u0000${location}`) ?? { name, location, micros: 0 };
    row.micros += micros;
    self.set(`${name}\u0000${location}`, row);
  }
  const busy = root.total || 1;
  const selfTimes = [...self.values()].map((row) => ({ ...row, share: row.micros / busy })).sort((a, b) => b.micros - a.micros);
  return { root, selfTimes, idleMicros };
}

/** Folds every frame under `minMicros` into its parent (as the parent's self time), recursively. */
function prune(frame: Frame, minMicros: number): void {
  for (const [key, child] of frame.children) {
    if (child.total < minMicros) {
      frame.self += child.total;
      frame.children.delete(key);
    } else prune(child, minMicros);
  }
}

function depthOf(frame: Frame): number {
  let deepest = 0;
  for (const child of frame.children.values()) deepest = Math.max(deepest, depthOf(child));
  return deepest + 1;
}

const escapeXml = (text: string): string => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A stable pseudo-random number in [0, 1) from a name, so a function keeps its shade between graphs. */
function hashUnit(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return (hash >>> 0) / 4294967296;
}

/** Project code warm orange, node_modules blue, node: internals green, V8 pseudo-frames grey, the rest yellow. */
function colourOf(frame: Frame): string {
  const shade = hashUnit(frame.name);
  const hues: Record<Category, [number, number]> = { project: [18, 85], module: [210, 60], node: [130, 45], vm: [0, 0], other: [48, 70] };
  const [hue, saturation] = hues[frame.category];
  return `hsl(${Math.round(hue + shade * 14)},${saturation}%,${Math.round(62 + shade * 14)}%)`;
}

const legend: readonly [Category, string][] = [
  ['project', 'project (adapters/, src/, patterns/, facade/)'],
  ['module', 'node_modules'],
  ['node', 'node: internals'],
  ['vm', '(program), (garbage collector), (idle)'],
  ['other', 'other (native, builtins)'],
];

/** Renders a (pruned) frame tree as a self-contained SVG document. */
export function renderSvg(root: Frame, title: string, subtitle: string): string {
  const width = 1200;
  const rowHeight = 16;
  const top = 64;
  const depth = depthOf(root);
  const height = top + depth * rowHeight + 8;
  const scale = (width - 20) / (root.total || 1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Verdana, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fbfbf8"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<text x="${width / 2}" y="36" text-anchor="middle" fill="#555">${escapeXml(subtitle)}</text>`,
  ];
  let legendX = 10;
  for (const [category, label] of legend) {
    const swatch: Frame = { name: label, location: '', category, total: 0, self: 0, children: new Map() };
    parts.push(`<rect x="${legendX}" y="44" width="10" height="10" fill="${colourOf(swatch)}"/><text x="${legendX + 14}" y="53">${escapeXml(label)}</text>`);
    legendX += 24 + label.length * 6.2;
  }
  const draw = (frame: Frame, x: number, level: number): void => {
    const w = frame.total * scale;
    const y = height - 8 - (level + 1) * rowHeight;
    const ms = frame.total / 1000;
    const percent = (100 * frame.total) / (root.total || 1);
    const label = frame.location === '' ? frame.name : `${frame.name} (${frame.location})`;
    const tip = `${label} — ${ms.toFixed(1)} ms, ${percent.toFixed(2)} %`;
    parts.push(`<g><title>${escapeXml(tip)}</title><rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${rowHeight - 1}" fill="${colourOf(frame)}" rx="2"/>`);
    const fits = Math.floor((w - 6) / 6.6);
    if (fits >= 3) {
      const text = frame.name.length <= fits ? frame.name : `${frame.name.slice(0, fits - 2)}..`;
      parts.push(`<text x="${(x + 3).toFixed(2)}" y="${y + rowHeight - 4}">${escapeXml(text)}</text>`);
    }
    parts.push('</g>');
    let childX = x;
    const children = [...frame.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const child of children) {
      draw(child, childX, level + 1);
      childX += child.total * scale;
    }
  };
  draw(root, 10, 0);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** The top self-time functions as a markdown table. */
export function selfTimeTable(rows: readonly SelfTimeRow[], count = 15, shareLabel = '% of busy'): string {
  const lines = [`| # | function | file:line | self ms | ${shareLabel} |`, '|---:|---|---|---:|---:|'];
  rows.slice(0, count).forEach((row, index) => {
    const cell = (text: string): string => text.replace(/\|/g, '\\|');
    lines.push(`| ${index + 1} | \`${cell(row.name)}\` | ${row.location === '' ? '—' : `\`${cell(row.location)}\``} | ${(row.micros / 1000).toFixed(1)} | ${(100 * row.share).toFixed(1)} |`);
  });
  return `${lines.join('\n')}\n`;
}

/** Reads a profile, writes its flame graph and returns the self-time table. */
export function convert(input: string, output: string, options: FlameOptions = {}): string {
  const profile = JSON.parse(readFileSync(input, 'utf8')) as CpuProfile;
  const { excludeIdle = true, minShare = 0.001 } = options;
  const { root, selfTimes, idleMicros } = foldProfile(profile, options);
  prune(root, root.total * minShare);
  const kept = excludeIdle ? `busy time (${(idleMicros / 1000).toFixed(0)} ms idle excluded)` : 'all samples';
  const from = options.fromFunction === undefined ? '' : `, from the first sample in ${options.fromFunction}`;
  const subtitle = `${(root.total / 1000).toFixed(0)} ms of ${kept}${from}; frames under ${(100 * minShare).toFixed(1)} % folded into their parent`;
  writeFileSync(output, renderSvg(root, options.title ?? input.replace(/^.*\//, ''), subtitle));
  return selfTimeTable(selfTimes, 15, excludeIdle ? '% of busy' : '% of samples');
}

function main(argv: readonly string[]): void {
  const positional: string[] = [];
  let excludeIdle = true;
  let fromFunction: string | undefined;
  let title: string | undefined;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] as string;
    const value = (): string => {
      const next = argv[(i += 1)];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--exclude-idle') excludeIdle = true;
    else if (arg === '--no-exclude-idle') excludeIdle = false;
    else if (arg === '--from-function') fromFunction = value();
    else if (arg.startsWith('--from-function=')) fromFunction = arg.slice('--from-function='.length);
    else if (arg === '--title') title = value();
    else if (arg.startsWith('--title=')) title = arg.slice('--title='.length);
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else positional.push(arg);
  }
  const [input, output] = positional;
  if (input === undefined || output === undefined || positional.length > 2) {
    throw new Error('usage: flamegraph.ts <in.cpuprofile> <out.svg> [--exclude-idle | --no-exclude-idle] [--from-function <name>] [--title <text>]');
  }
  process.stdout.write(convert(input, output, { excludeIdle, ...(fromFunction === undefined ? {} : { fromFunction }), ...(title === undefined ? {} : { title }) }));
}

// Run as a script only, so the functions above can be imported (e.g. by a test) without side effects.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`flamegraph: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
