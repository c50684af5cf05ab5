/**
 * `npm run bench -- --real [--write]`: wall time of applying examples/two-vms on the
 * real stack (per resource and in total) and the libguestfs launches each apply cost:
 * the first apply (template in the store, build layer not yet made), adding a VM to the
 * running environment, destroy + re-apply with a warm store (parallelism 4 and 1), and a
 * no-op plan with the VMs running; plus what a VM disk costs on the host right after
 * creation. Runs inside the test bed (scripts/testbed.sh; needs root) under the
 * machine's VM lock (flock /tmp/lago-vm.lock); with --write, replaces the "Real apply
 * (libvirt)" section of bench/results.{json,md}.
 */
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machineLines, sectionText, writeSection, type Section } from "./report.ts";
import { reportedLaunches } from "../test/helpers/launches.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const LOCK = process.env.LAGO_VM_LOCK ?? "/tmp/lago-vm.lock";

interface Timing {
  total: number;
  perResource: Map<string, number>;
  /** libguestfs launches, by resource address. */
  launches: Map<string, number>;
}

type Lago = (args: string[]) => Promise<{ code: number | null; stdout: string; stderr: string }>;

async function applyTimed(lago: Lago, parallelism: number): Promise<Timing> {
  const started = Date.now();
  const r = await lago(["apply", "--auto-approve", "--json", "--parallelism", String(parallelism)]);
  const total = Date.now() - started;
  if (r.code !== 0) throw new Error(`apply failed:\n${r.stdout}\n${r.stderr}`);
  const perResource = new Map<string, number>();
  const launches = new Map<string, number>(Object.entries(reportedLaunches(r.stdout)));
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as { type: string; address?: string; elapsedMs?: number; message?: string };
    if (e.type === "done" && e.address && e.elapsedMs !== undefined) perResource.set(e.address, e.elapsedMs);
  }
  return { total, perResource, launches };
}

const s = (ms: number): string => (ms / 1000).toFixed(1);
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

async function inTestbed(): Promise<number> {
  const { makeEnv, EXAMPLE } = await import("../test/e2e/helpers.ts");
  const env = makeEnv("bench", process.env.LAGO_TEST_TEMPLATE_REPO ?? "");
  env.init(EXAMPLE);
  const lago: Lago = (args) => env.lago(args);
  const must = async (args: string[]): Promise<void> => {
    const r = await lago(args);
    if (r.code !== 0) throw new Error(`lago ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
  };
  // The template in the store, as a Vagrant box is added before `vagrant up`.
  await must(["apply", "--auto-approve", "--target", "template.lago-test:lago-tiny:v3"]);
  // A VM disk right after creation (before its VM ever ran): allocated bytes on the host.
  await must(["apply", "--auto-approve", "--target", "disk.vm01.root"]);
  const diskBytes = statSync(String(env.state().resources["disk.vm01.root"]?.outputs.path)).blocks * 512;

  const runs: [string, Timing][] = [];
  runs.push(["first apply (template stored, layer not built), --parallelism 4", await applyTimed(lago, 4)]);
  const noop: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = Date.now();
    const r = await lago(["plan", "--detailed-exitcode"]);
    if (r.code !== 0) throw new Error(`the plan after apply is not empty:\n${r.stdout}${r.stderr}`);
    noop.push(Date.now() - t);
  }
  const vm03 = "  vm03:\n    memory: 256\n    vcpu: 1\n    nics:\n      - net: lago\n    disks:\n      - template_name: lago-tiny\n        type: template\n        name: root\n        dev: vda\n        format: qcow2\n\nnets:";
  env.init(EXAMPLE.replace("\nnets:", `\n${vm03}`));
  runs.push(["add vm03 to the running environment", await applyTimed(lago, 4)]);
  env.init(EXAMPLE);
  await must(["destroy", "--auto-approve"]);
  runs.push(["destroy + re-apply, warm store, --parallelism 4", await applyTimed(lago, 4)]);
  await must(["destroy", "--auto-approve"]);
  runs.push(["destroy + re-apply, warm store, --parallelism 1", await applyTimed(lago, 1)]);
  await must(["destroy", "--auto-approve"]);

  noop.sort((a, b) => a - b);
  const addresses = [...new Set(runs.flatMap(([, t]) => [...t.perResource.keys()]))].sort();
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench -- --real\` (bench/real.ts) on ${os.cpus().length} × ${cpu}, Node ${process.version},`,
    "inside the test bed: domain type `qemu` (TCG, no KVM), the tiny test template (already in the store; it declares a",
    "cloud-init seed for bootstrap). Environment: examples/two-vms (2 VMs, 2 NAT nets, vm02 with build steps and an extra disk).",
    "",
    `| | ${runs.map(([name]) => name).join(" | ")} |`,
    `|---|${runs.map(() => "---:").join("|")}|`,
    `| **apply, total (s)** | ${runs.map(([, t]) => s(t.total)).join(" | ")} |`,
    `| **libguestfs launches** | ${runs.map(([, t]) => String(sum(t.launches))).join(" | ")} |`,
    ...addresses.map((a) => `| ${a} | ${runs.map(([, t]) => (t.perResource.has(a) ? s(t.perResource.get(a) ?? 0) : "")).join(" | ")} |`),
    "",
    `No-op \`lago plan\` with both VMs running (refresh included, whole CLI process): median ${noop[2] ?? 0} ms (min ${noop[0] ?? 0}, max ${noop[4] ?? 0}).`,
    `A VM disk right after creation: ${diskBytes} bytes allocated on the host (${(diskBytes / 1024).toFixed(0)} KiB; a qcow2 overlay on the template).`,
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
