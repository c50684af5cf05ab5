/**
 * `npm run bench [-- OPTIONS]`: lago's benchmarks. Measurement only: nothing
 * here asserts a timing; figures are printed next to their targets (issue 7)
 * and, with --write, kept in bench/results.json and bench/results.md.
 *
 * Parts (default: pure and cli, no hypervisor needed):
 *   pure     the pure layers in-process on 10–10,000 generated domains (bench/pure.ts)
 *   cli      whole-process figures of the built CLI: --version, plan --json of
 *            1,000/10,000 domains, apply on a zero-latency driver, disk bytes (bench/cli.ts)
 *   vagrant  lago beside Vagrant on real VMs (bench/side-by-side.ts; root, the test bed)
 *   real     lago apply per resource, --parallelism 1 vs 4, on real VMs (bench/real.ts)
 *
 * Options:
 *   --help                       print this
 *   --vagrant | --real           run that part alone (same as --parts vagrant / --parts real)
 *   --parts LIST                 comma-separated parts
 *   --no-build                   measure the dist/ that is there (default: rebuild it first)
 *   --write                      replace the measured parts' sections of bench/results.{json,md}
 *   --sizes N,N                  pure: domain counts (10,100,1000,10000)
 *   --version-runs N             cli: timed runs of `lago --version` (10)
 *   --plan-sizes N,N             cli: domain counts for `lago plan --json` (1000,10000)
 *   --engine-sizes N,N           cli: domain counts for the engine apply (1000,10000)
 *   --engine-driver SELECTOR     cli: LAGO_DRIVER for the engine apply, `{dir}` = a fresh directory
 *                                (memory: the in-memory fake world; fake:{dir}/world.json: the file-backed one)
 *   --engine-timeout SECONDS     cli: give up an engine apply after this long (120)
 *   --runs N                     vagrant: rounds (3)
 *   --scenarios two,ten          vagrant: scenarios
 *   --tools lago,vagrant         vagrant: tools
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { DEFAULT_ENGINE_DRIVER, runCliBench, type CliBenchOptions } from "./cli.ts";
import { DEFAULT_SIZES, runPureBench } from "./pure.ts";
import { sectionText, writeSection, type Section } from "./report.ts";
import type { SideBySideOptions } from "./side-by-side.ts";
import type { ScenarioName, Tool } from "./vm-scenario.ts";

const PARTS = ["pure", "cli", "vagrant", "real"] as const;
type Part = (typeof PARTS)[number];

interface Options {
  help: boolean;
  write: boolean;
  parts: Part[];
  sizes: number[];
  cli: CliBenchOptions;
  sideBySide: SideBySideOptions;
}

function counts(flag: string, list: string | undefined): number[] {
  const xs = (list ?? "").split(",").map(Number);
  if (!xs.length || xs.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${flag} takes a comma-separated list of positive integers, got ${JSON.stringify(list)}`);
  return xs;
}

function positive(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} takes a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function oneOf<T extends string>(flag: string, list: string | undefined, allowed: readonly T[]): T[] {
  const xs = (list ?? "").split(",").filter(Boolean);
  const bad = xs.filter((x) => !(allowed as readonly string[]).includes(x));
  if (!xs.length || bad.length) throw new Error(`${flag} takes a comma-separated list of ${allowed.join(", ")}; got ${JSON.stringify(list)}`);
  return xs as T[];
}

function parseArgs(argv: string[]): Options {
  const opts: Options = {
    help: false,
    write: process.env.BENCH_WRITE === "1",
    parts: ["pure", "cli"],
    sizes: DEFAULT_SIZES,
    cli: { versionRuns: 10, planSizes: [1_000, 10_000], engineSizes: [1_000, 10_000], engineDriver: DEFAULT_ENGINE_DRIVER, engineTimeoutS: 120, build: true },
    sideBySide: { build: true, runs: 3, scenarios: ["two", "ten"], tools: ["lago", "vagrant"] },
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] ?? "";
    const eq = raw.indexOf("=");
    const flag = raw.startsWith("--") && eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string | undefined => (raw.startsWith("--") && eq > 0 ? raw.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case "--help":
      case "-h":
        opts.help = true;
        break;
      case "--no-build":
        opts.cli.build = false;
        opts.sideBySide.build = false;
        break;
      case "--write":
        opts.write = true;
        break;
      case "--vagrant":
        opts.parts = ["vagrant"];
        break;
      case "--real":
        opts.parts = ["real"];
        break;
      case "--parts":
        opts.parts = oneOf(flag, value(), PARTS);
        break;
      case "--sizes":
        opts.sizes = counts(flag, value());
        break;
      case "--version-runs":
        opts.cli.versionRuns = Math.round(positive(flag, value()));
        break;
      case "--plan-sizes":
        opts.cli.planSizes = counts(flag, value());
        break;
      case "--engine-sizes":
        opts.cli.engineSizes = counts(flag, value());
        break;
      case "--engine-driver": {
        const v = value();
        if (!v) throw new Error("--engine-driver takes a LAGO_DRIVER selector, e.g. fake:{dir}/world.json");
        opts.cli.engineDriver = v;
        break;
      }
      case "--engine-timeout":
        opts.cli.engineTimeoutS = positive(flag, value());
        break;
      case "--runs":
        opts.sideBySide.runs = Math.round(positive(flag, value()));
        break;
      case "--scenarios":
        opts.sideBySide.scenarios = oneOf<ScenarioName>(flag, value(), ["two", "ten"]);
        break;
      case "--tools":
        opts.sideBySide.tools = oneOf<Tool>(flag, value(), ["lago", "vagrant"]);
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(raw)} (see the comment at the top of bench/run.ts, or README's Benchmarks section)`);
    }
  }
  return opts;
}

async function runReal(): Promise<number> {
  const real: unknown = await import(pathToFileURL(fileURLToPath(new URL("./real.ts", import.meta.url))).href);
  const run = typeof real === "object" && real !== null ? (real as { runRealBench?: unknown }).runRealBench : undefined;
  if (typeof run !== "function") {
    process.stderr.write("the real benchmark is not available: bench/real.ts does not export runRealBench()\n");
    return 1;
  }
  const outcome: unknown = await (run as () => unknown)();
  return typeof outcome === "number" ? outcome : 0;
}

async function runPart(part: Exclude<Part, "real">, opts: Options): Promise<Section> {
  switch (part) {
    case "pure":
      return runPureBench(opts.sizes);
    case "cli":
      return runCliBench(opts.cli);
    case "vagrant": {
      const { runSideBySide } = await import("./side-by-side.ts");
      // Long and interruptible: with --write, keep results.md up to date after every scenario run.
      const onProgress = opts.write ? (section: Section): void => writeSection(section) : undefined;
      return runSideBySide({ ...opts.sideBySide, onProgress });
    }
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    const source = readFileSync(fileURLToPath(import.meta.url), "utf8");
    const doc = /\/\*\*([\s\S]*?)\*\//.exec(source)?.[1] ?? "";
    process.stdout.write(`${doc.split("\n").map((l) => l.replace(/^ \* ?/, "")).join("\n").trim()}\n`);
    return 0;
  }
  let failed = false;
  for (const part of opts.parts) {
    if (part === "real") {
      if ((await runReal()) !== 0) failed = true;
      continue;
    }
    try {
      const section = await runPart(part, opts);
      process.stdout.write(`\n${sectionText(section)}\n`);
      if (opts.write) {
        writeSection(section);
        process.stderr.write(`bench: wrote the "${section.title}" section of bench/results.md and bench/results.json\n`);
      }
    } catch (err) {
      failed = true;
      process.stderr.write(`bench: ${part}: ${err instanceof Error ? err.message : String(err)}\n`);
      if (opts.write) process.stderr.write(`bench: not writing the ${part} section: it failed\n`);
    }
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
