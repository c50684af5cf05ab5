/**
 * One benchmark size, run in its own process so memory peaks do not mix:
 * `node --import tsx --expose-gc bench/size.ts N [REPEATS]`.
 * Prints one line `BENCH_RESULT <json>` (a SizeResult) on stdout.
 */
import { performance } from "node:perf_hooks";
import { compile } from "../src/graph/compile.ts";
import { computePlan, type Plan } from "../src/plan/plan.ts";
import { renderPlan } from "../src/plan/render.ts";
import { parseSpec } from "../src/spec/load.ts";
import { emptyState } from "../src/state/state.ts";
import { benchTemplateRepo, generateInitFile, resolveBenchTemplates } from "./generate.ts";
import { appliedState, observedAsRecorded } from "./state.ts";
import { RESULT_PREFIX, type SizeResult, type StepName } from "./result.ts";

const FILE = "/bench/LagoInitFile";
const MIB = 1024 * 1024;

function collect(): void {
  if (typeof globalThis.gc === "function") globalThis.gc();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Run `fn` `repeats` times: the median wall time and the median CPU time
 * (user + system, all threads) in ms, and the last value. No forced GC between
 * runs: V8's memory-reducing `gc()` throws away compiled code and type
 * feedback, which made a 10-domain parse 6x slower than it is.
 */
function measure<T>(repeats: number, fn: () => T): { ms: number; cpuMs: number; value: T } {
  const times: number[] = [];
  const cpu: number[] = [];
  let value: T | undefined;
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    value = fn();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  if (value === undefined) throw new Error("measure: no repetition ran");
  return { ms: median(times), cpuMs: median(cpu), value };
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench sanity check failed: ${what}`);
}

function noChanges(plan: Plan): boolean {
  return plan.resourceChanges.every((c) => c.action === "no-op") && plan.drift.length === 0;
}

/** Every step once on `count` domains; `repeats` timed runs of each. */
function run(count: number, repeats: number): SizeResult {
  const repo = benchTemplateRepo();
  const file = generateInitFile(count);
  const state0 = emptyState();

  const parse = measure(repeats, () => parseSpec(file.text, FILE, { env: {} }));
  const spec = parse.value;
  const resolve = measure(repeats, () => resolveBenchTemplates(spec, repo));
  const templates = resolve.value;
  const compiled = measure(repeats, () => compile({ spec, templates, prior: state0, domainType: "qemu" }));
  const desired = compiled.value;

  const planEmpty = measure(repeats, () => computePlan({ desired, state: state0, observed: undefined, initFileSha256: spec.sha256 }));
  check(planEmpty.value.summary.create === desired.length, `create plan creates ${planEmpty.value.summary.create} of ${desired.length}`);

  const state = appliedState(desired);
  const planState = measure(repeats, () => computePlan({ desired, state, observed: undefined, initFileSha256: spec.sha256 }));
  check(noChanges(planState.value), "plan against the applied state has changes");

  const observed = observedAsRecorded(state);
  const planRefreshed = measure(repeats, () => computePlan({ desired, state, observed, initFileSha256: spec.sha256 }));
  check(noChanges(planRefreshed.value), "plan against the applied state and refresh has changes");

  const render = measure(repeats, () => renderPlan(planEmpty.value));

  // Heap still reachable with every artifact alive (spec, graph, state, refresh, plans, rendered text).
  collect();
  const heapUsed = process.memoryUsage().heapUsed;
  const keep = [spec, templates, desired, state, observed, planState.value, planRefreshed.value, render.value];
  const measured: Record<StepName, { ms: number; cpuMs: number }> = { parse, resolve, compile: compiled, planEmpty, planState, planRefreshed, render };
  const pick = (field: "ms" | "cpuMs"): Record<StepName, number> => ({
    parse: measured.parse[field],
    resolve: measured.resolve[field],
    compile: measured.compile[field],
    planEmpty: measured.planEmpty[field],
    planState: measured.planState[field],
    planRefreshed: measured.planRefreshed[field],
    render: measured.render[field],
  });
  const steps = pick("ms");
  const cpuSteps = pick("cpuMs");
  return {
    domains: count,
    nets: file.nets,
    resources: desired.length,
    yamlKiB: Buffer.byteLength(file.text) / 1024,
    renderedKiB: Buffer.byteLength(render.value) / 1024,
    repeats,
    steps,
    cpuSteps,
    // maxRSS is in KiB: the high-water mark of this whole process.
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MIB,
    heapAfterGcMiB: typeof globalThis.gc === "function" ? heapUsed / MIB : null,
    retained: keep.length,
  };
}

const count = Number(process.argv[2]);
if (!Number.isInteger(count) || count < 1) {
  process.stderr.write("usage: node --import tsx --expose-gc bench/size.ts DOMAINS [REPEATS]\n");
  process.exit(2);
}
const repeats = Number(process.argv[3] ?? (count >= 10_000 ? 3 : 5));
// Warm up the JIT and the schema validator on a tiny file so the first timed run is not their cost.
run(10, 5);
const result = run(count, repeats);
process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
