/**
 * `npm run bench -- --real [--write]`: wall time of applying examples/two-vms
 * on the real stack (per resource and in total, with --parallelism 1 and the
 * default 4), and of a no-op plan with the VMs running. Runs inside the test
 * bed (scripts/testbed.sh; needs root) under the machine's VM lock
 * (flock /tmp/lago-vm.lock); with --write, replaces the "Real apply
 * (libvirt)" section of bench/results.{json,md}.
 */
import { spawnSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machineLines, sectionText, writeSection, type Section } from "./report.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LOCK = process.env.LAGO_VM_LOCK ?? "/tmp/lago-vm.lock";

interface Timing {
  total: number;
  perResource: Map<string, number>;
}

async function applyTimed(lago: (args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>, parallelism: number): Promise<Timing> {
  const started = Date.now();
  const r = await lago(["apply", "--auto-approve", "--json", "--parallelism", String(parallelism)]);
  const total = Date.now() - started;
  if (r.code !== 0) throw new Error(`apply failed:\n${r.stdout}\n${r.stderr}`);
  const perResource = new Map<string, number>();
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as { type: string; address?: string; elapsedMs?: number };
    if (e.type === "done" && e.address && e.elapsedMs !== undefined) perResource.set(e.address, e.elapsedMs);
  }
  return { total, perResource };
}

const s = (ms: number): string => (ms / 1000).toFixed(1);

async function inTestbed(): Promise<number> {
  const { makeEnv, EXAMPLE } = await import("../test/e2e/helpers.ts");
  const env = makeEnv("bench", process.env.LAGO_TEST_TEMPLATE_REPO ?? "");
  env.init(EXAMPLE);
  const lago = (args: string[]) => env.lago(args);
  // Warm the shared template store so both runs measure the same work.
  const warm = await lago(["apply", "--auto-approve", "--target", "template.lago-test:lago-tiny:v1"]);
  if (warm.code !== 0) throw new Error(warm.stderr);
  const runs: Record<string, Timing> = {};
  let noop: number[] = [];
  for (const parallelism of [1, 4]) {
    runs[String(parallelism)] = await applyTimed(lago, parallelism);
    if (parallelism === 4) {
      noop = [];
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        const r = await lago(["plan", "--detailed-exitcode"]);
        if (r.code !== 0) throw new Error(`the plan after apply is not empty:\n${r.stdout}${r.stderr}`);
        noop.push(Date.now() - t);
      }
    }
    const d = await lago(["destroy", "--auto-approve"]);
    if (d.code !== 0) throw new Error(d.stderr);
  }
  const one = runs["1"];
  const four = runs["4"];
  if (!one || !four) throw new Error("missing runs");
  noop.sort((a, b) => a - b);
  const addresses = [...new Set([...one.perResource.keys(), ...four.perResource.keys()])].sort();
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench -- --real\` (bench/real.ts) on ${os.cpus().length} × ${cpu}, Node ${process.version},`,
    "inside the test bed: domain type `qemu` (TCG, no KVM), the tiny test template (template already in the store).",
    "Environment: examples/two-vms (2 VMs, 2 NAT nets, 2 virt-customize runs, 1 extra disk; 13 resources).",
    "",
    "| | --parallelism 1 | --parallelism 4 (default) |",
    "|---|---:|---:|",
    `| **apply, total (s)** | ${s(one.total)} | ${s(four.total)} |`,
    ...addresses.map((a) => `| ${a} | ${s(one.perResource.get(a) ?? 0)} | ${s(four.perResource.get(a) ?? 0)} |`),
    "",
    `No-op \`lago plan\` with both VMs running (refresh included, whole CLI process): median ${noop[2] ?? 0} ms (min ${noop[0] ?? 0}, max ${noop[4] ?? 0}).`,
    "",
  ];
  const section: Section = { id: "real", title: "Real apply (libvirt)", measuredAt: new Date().toISOString(), machine: machineLines(), markdown: lines.join("\n"), figures: [] };
  process.stdout.write(`${sectionText(section)}\n`);
  if (process.argv.includes("--write") || process.env.BENCH_WRITE === "1") {
    writeSection(section);
    process.stderr.write("bench: wrote the real-apply section of bench/results.md and bench/results.json\n");
  }
  return 0;
}

/** Entry point for bench/run.ts --real: re-runs itself inside the test bed when needed. */
export async function runRealBench(): Promise<number> {
  if (process.env.LAGO_TEST_TEMPLATE_REPO) return inTestbed();
  const r = spawnSync("flock", ["-o", "-w", "7200", LOCK, "bash", path.join(ROOT, "scripts", "testbed.sh"), "run", process.execPath, "--import", "tsx", path.join(ROOT, "bench", "real.ts"), ...process.argv.slice(2)], {
    stdio: "inherit",
    cwd: ROOT,
  });
  return r.status ?? 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runRealBench();
}
