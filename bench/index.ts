// `npm run bench`: each variant runs in a child process of its own (clean heap, its own peak RSS),
// best of N runs, all in one invocation so the ratios compare like with like.
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { validationCost } from './schema-validation.ts';

interface Result {
  name: string;
  messages: number;
  perSecond: number;
  out: number;
  runs: number[];
  peakRssMb: number;
}

const count = process.env.BENCH_MESSAGES ?? '1000000';
const repeat = process.env.BENCH_REPEAT ?? '3';

function run(variant: string): Result {
  const output = execFileSync(process.execPath, ['--import', 'tsx', 'bench/run-one.ts', variant, count, repeat], { encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1) ?? '{}') as Result;
}

const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(`core route benchmark: ${Number(count).toLocaleString('en')} messages, best of ${repeat}, Node ${process.version}, ${cpus().length} × ${cpu}`);
console.log('5 steps: filter → transform → choice → transform → to\n');
const results = { loop: run('for-loop'), rx: run('rxjs'), interchange: run('interchange'), withCreation: run('interchange-with-creation') };
const line = (r: Result, ratio: string): string =>
  `${r.name.padEnd(40)} ${Math.round(r.perSecond).toLocaleString('en').padStart(12)} msg/s  ${ratio.padStart(8)}  peak RSS ${String(r.peakRssMb).padStart(5)} MB  runs ${r.runs.join(', ')}`;
console.log(line(results.loop, ''));
console.log(line(results.rx, '1.00×'));
const ratio = results.interchange.perSecond / results.rx.perSecond;
console.log(line(results.interchange, `${ratio.toFixed(2)}×`));
console.log(line(results.withCreation, `${(results.withCreation.perSecond / results.rx.perSecond).toFixed(2)}×`));
console.log(`\nInterchange / plain RxJS = ${ratio.toFixed(2)} (goal ≥ 0.50): ${ratio >= 0.5 ? 'met' : 'NOT met'}`);
if (results.interchange.out !== results.rx.out) throw new Error(`outputs differ: ${results.interchange.out} vs ${results.rx.out}`);

// Issue #3: what schema validation costs, in the same run.
console.log('\nschema validation');
const cost = validationCost();
console.log(`10-field contract: ${cost.registryNs.toFixed(0)} ns/message through the registry (${cost.ajvNs.toFixed(0)} ns in ajv's function)`);
const validated = run('interchange-validate');
const keeps = validated.perSecond / results.interchange.perSecond;
console.log(line(validated, `${(validated.perSecond / results.rx.perSecond).toFixed(2)}×`));
console.log(`route with .validate / route without = ${keeps.toFixed(2)} (goal: validation costs < 15 %, i.e. ≥ 0.85): ${keeps >= 0.85 ? 'met' : 'NOT met'}`);
