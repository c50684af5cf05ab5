/**
 * `npm run bench [-- --write] [-- --sizes 10,100] [-- --real]`
 *
 * Times the pure layers (parseSpec, template resolution, compile, computePlan
 * against an empty and a fully applied state, renderPlan) on synthetic init
 * files of 10 to 10,000 domains, each size in a fresh child process
 * (bench/size.ts) so memory peaks do not mix, and prints a Markdown table.
 * Measurement only: nothing here asserts a timing.
 *
 * `--write` (or BENCH_WRITE=1) also writes the table, with the machine it ran
 * on, to bench/results.md, keeping the "Real apply (libvirt)" section as is.
 * `--real` runs bench/real.ts's `runRealBench()` instead, if that file exists.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { RESULT_PREFIX, parseResult, type SizeResult, type StepName } from "./result.ts";

const DEFAULT_SIZES = [10, 100, 1_000, 10_000];
const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const SIZE_SCRIPT = fileURLToPath(new URL("./size.ts", import.meta.url));
const REAL_SCRIPT = fileURLToPath(new URL("./real.ts", import.meta.url));
const RESULTS_FILE = fileURLToPath(new URL("./results.md", import.meta.url));
export const REAL_HEADING = "## Real apply (libvirt)";

interface Options {
  write: boolean;
  real: boolean;
  sizes: number[];
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { write: process.env.BENCH_WRITE === "1", real: false, sizes: DEFAULT_SIZES };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--write") opts.write = true;
    else if (a === "--real") opts.real = true;
    else if (a === "--sizes" || a?.startsWith("--sizes=")) {
      const list = a === "--sizes" ? argv[++i] : a.slice("--sizes=".length);
      const sizes = (list ?? "").split(",").map(Number);
      if (!sizes.length || sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes takes a comma-separated list of domain counts, got ${JSON.stringify(list)}`);
      opts.sizes = sizes;
    } else throw new Error(`unknown argument ${JSON.stringify(a)} (accepted: --write, --sizes N,N,…, --real)`);
  }
  return opts;
}

/** Runs one size in a fresh `node --expose-gc` process. */
function runSize(domains: number): SizeResult {
  const child = spawnSync(process.execPath, ["--import", "tsx", "--expose-gc", SIZE_SCRIPT, String(domains)], {
    cwd: BENCH_DIR,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (child.error) throw child.error;
  const line = child.stdout.split("\n").find((l) => l.startsWith(RESULT_PREFIX));
  if (child.status !== 0 || !line) {
    throw new Error(`bench/size.ts ${domains} failed (exit ${String(child.status ?? child.signal)})`);
  }
  return parseResult(line.slice(RESULT_PREFIX.length));
}

const ms = (v: number): string => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const mib = (v: number | null): string => (v === null ? "n/a" : v.toFixed(1));
const count = (v: number): string => v.toLocaleString("en-US");

const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;

const STEP_COLUMNS: Array<[string, (s: Record<StepName, number>) => number]> = [
  ["parseSpec", (s) => s.parse],
  ["resolve templates", (s) => s.resolve],
  ["compile", (s) => s.compile],
  ["plan: empty state", (s) => s.planEmpty],
  ["plan: applied state", (s) => s.planState],
  ["plan: applied + refresh", (s) => s.planRefreshed],
  ["renderPlan (create)", (s) => s.render],
  ["parse→plan total", (s) => s.parse + s.resolve + s.compile + s.planEmpty],
];

/** The results as a Markdown table: sizes, median wall times in ms, memory. */
export function table(results: SizeResult[]): string {
  const head = ["Domains", "Nets", "Resources", "YAML KiB", "Runs", ...STEP_COLUMNS.map(([h]) => h), "Peak RSS MiB", "Heap after GC MiB"];
  const rows = results.map((r) => [
    count(r.domains),
    count(r.nets),
    count(r.resources),
    count(Math.round(r.yamlKiB)),
    String(r.repeats),
    ...STEP_COLUMNS.map(([, f]) => ms(f(r.steps))),
    mib(r.peakRssMiB),
    mib(r.heapAfterGcMiB),
  ]);
  return [line(head), line(head.map(() => "---:")), ...rows.map(line)].join("\n");
}

/** Median CPU time (user + system, all threads, so GC helpers count) per step in ms: steadier than wall time on a busy machine. */
export function cpuTable(results: SizeResult[]): string {
  const head = ["Domains", ...STEP_COLUMNS.map(([h]) => h)];
  const rows = results.map((r) => [count(r.domains), ...STEP_COLUMNS.map(([, f]) => ms(f(r.cpuSteps)))]);
  return [line(head), line(head.map(() => "---:")), ...rows.map(line)].join("\n");
}

function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const m = /^model name\s*:\s*(.+)$/m.exec(info);
    if (m?.[1]) return m[1].trim();
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return os.cpus()[0]?.model ?? "unknown";
}

function machine(): string[] {
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Node: ${process.version} (${process.platform} ${process.arch}), ${os.type()} ${os.release()}`,
    `- CPU: ${cpuModel()}, ${os.availableParallelism()} cores available`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB total`,
    `- Load average when the run ended (1/5/15 min): ${os.loadavg().map((l) => l.toFixed(2)).join(" / ")} — other work on the machine inflates wall times`,
  ];
}

const REAL_PLACEHOLDER = [
  REAL_HEADING,
  "",
  "Filled by `npm run bench -- --real` (bench/real.ts, not written yet).",
  "",
].join("\n");

/** The previous results file's real-apply section (it is written by another run), or the placeholder. */
function realSection(): string {
  if (!existsSync(RESULTS_FILE)) return REAL_PLACEHOLDER;
  const text = readFileSync(RESULTS_FILE, "utf8");
  const at = text.indexOf(REAL_HEADING);
  return at < 0 ? REAL_PLACEHOLDER : `${text.slice(at).trimEnd()}\n`;
}

function resultsFile(results: SizeResult[]): string {
  return [
    "# lago benchmark baseline",
    "",
    "Written by `npm run bench -- --write` (bench/run.ts). Measurement only: no timing is asserted anywhere.",
    "",
    "## Pure layers (no hypervisor)",
    "",
    ...machine(),
    "",
    "Synthetic init files (bench/generate.ts): one management NAT net per 50 domains; every 5th domain also on a",
    "data NAT net shared by a group of 250 domains; each domain has a template root disk (4 templates; a",
    "virt-customize build on every 10th) and an `empty` data disk on every 3rd. Templates are resolved against an",
    "in-memory repository (no I/O). Each size runs in a fresh `node --expose-gc` process after a warm-up on 10",
    "domains. Times are medians in ms of 5 runs (3 for 10,000 domains), with no forced GC between runs, so GC work",
    "is part of the time. \"applied state\": every resource recorded as ready (the plan is all no-op); \"+ refresh\":",
    "also an observed map equal to the state. \"parse→plan total\" = parseSpec + resolve + compile + plan against an",
    "empty state. Peak RSS is the child's high-water mark; heap after GC is measured with the spec, graph, state,",
    "refresh map, plans and rendered text alive.",
    "",
    "Median wall time (ms) and memory:",
    "",
    table(results),
    "",
    "Median CPU time (ms, user + system of every thread of the process; steadier than wall time when the machine is busy):",
    "",
    cpuTable(results),
    "",
    realSection(),
  ].join("\n");
}

async function runReal(): Promise<number> {
  if (!existsSync(REAL_SCRIPT)) {
    process.stderr.write("the real benchmark is not available: bench/real.ts does not exist\n");
    return 1;
  }
  const mod: unknown = await import(pathToFileURL(REAL_SCRIPT).href);
  const run = typeof mod === "object" && mod !== null ? (mod as { runRealBench?: unknown }).runRealBench : undefined;
  if (typeof run !== "function") {
    process.stderr.write("the real benchmark is not available: bench/real.ts does not export runRealBench()\n");
    return 1;
  }
  const outcome: unknown = await (run as () => unknown)();
  return typeof outcome === "number" ? outcome : 0;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.real) return runReal();
  const results: SizeResult[] = [];
  let failed = false;
  for (const n of opts.sizes) {
    process.stderr.write(`bench: ${count(n)} domains…\n`);
    try {
      results.push(runSize(n));
    } catch (err) {
      failed = true;
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  process.stdout.write(`Median wall time (ms) and memory:\n\n${table(results)}\n\nMedian CPU time (ms):\n\n${cpuTable(results)}\n`);
  if (opts.write && !failed) {
    writeFileSync(RESULTS_FILE, resultsFile(results));
    process.stderr.write(`bench: wrote ${RESULTS_FILE}\n`);
  } else if (opts.write) {
    process.stderr.write("bench: not writing results.md: a size failed\n");
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
