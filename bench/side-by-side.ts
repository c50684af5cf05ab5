/**
 * `npm run bench -- --vagrant [--runs N] [--scenarios two,ten] [--tools lago,vagrant]`
 *
 * lago beside Vagrant 2.3 + vagrant-libvirt 0.11 on the same machine, the same
 * guest (the tiny test template; a Vagrant box made from it by
 * bench/vagrant/box.sh) and the same libvirtd (the test bed's, in its network
 * namespace): N rounds, each running every scenario once per tool, the tool
 * order alternating between rounds. Each (scenario, tool) run is its own
 * process (bench/vm-scenario.ts) under the machine's VM lock, so the lock is
 * held for one scenario at a time and other work can take turns. Figures are
 * medians over the rounds, printed next to issue 7's targets as ratios.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { buildCli } from "./cli.ts";
import { REPO_ROOT } from "./fixture.ts";
import { median, seconds } from "./proc.ts";
import { machineLines, type Figure, type Section } from "./report.ts";
import { BENCH_STATE, VAGRANT_DIR, type BootTimes, type ScenarioName, type ScenarioResult, type Tool } from "./vm-scenario.ts";

export interface SideBySideOptions {
  /** Called with the section so far after every scenario run (e.g. to write it as results come in). */
  onProgress?: ((section: Section) => void) | undefined;
  build: boolean;
  runs: number;
  scenarios: ScenarioName[];
  tools: Tool[];
}

const LOCK = process.env.LAGO_VM_LOCK ?? "/tmp/lago-vm.lock";
const TEMPLATE_DIR = path.join(REPO_ROOT, "build", "test-template");
const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);

async function has(cmd: string, args: string[]): Promise<boolean> {
  const r = await execa(cmd, args, { reject: false, env: { VAGRANT_CHECKPOINT_DISABLE: "1" } });
  return r.exitCode === 0 && !r.failed;
}

/** Which of Vagrant's prerequisites are missing, as the commands that install them. */
async function vagrantMissing(): Promise<string[]> {
  if (!(await has("vagrant", ["--version"]))) return ["vagrant and vagrant-libvirt are not installed: apt-get install -y vagrant vagrant-libvirt"];
  const plugins = await execa("vagrant", ["plugin", "list"], { reject: false, env: { VAGRANT_CHECKPOINT_DISABLE: "1" } });
  if (!/^vagrant-libvirt /m.test(String(plugins.stdout))) return ["the vagrant-libvirt plugin is missing: apt-get install -y vagrant-libvirt"];
  return [];
}

/** `flock LOCK CMD…`: the machine's one-VM-job-at-a-time rule. */
async function locked(cmd: string, args: string[]): Promise<number> {
  const r = await execa("flock", ["-o", "-w", "7200", LOCK, cmd, ...args], { cwd: REPO_ROOT, stdio: "inherit", reject: false });
  return r.exitCode ?? 1;
}

async function prepare(tools: Tool[], build: boolean): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the side-by-side bench needs root (network namespace, libvirtd, qemu:///system), like the e2e suite");
  if (build) await buildCli();
  // Both builds boot a libguestfs appliance, so they take the VM lock, but only when there is something to build.
  const script = path.join(REPO_ROOT, "scripts", "build-test-template.sh");
  const stamp = path.join(TEMPLATE_DIR, ".stamp");
  const scriptSha = createHash("sha256").update(readFileSync(script)).digest("hex");
  if (!existsSync(stamp) || readFileSync(stamp, "utf8").trim() !== scriptSha) {
    log("test template (scripts/build-test-template.sh)…");
    if ((await locked("bash", [script, TEMPLATE_DIR])) !== 0) throw new Error("building the test template failed");
  }
  if (tools.includes("vagrant")) {
    const box = [path.join(REPO_ROOT, "bench", "vagrant", "box.sh"), path.join(TEMPLATE_DIR, "lago-tiny-v3.qcow2"), VAGRANT_DIR];
    const check = await execa("bash", box, { reject: false, env: { LAGO_BENCH_CHECK_ONLY: "1" } });
    if (check.exitCode !== 0) {
      log("Vagrant box (bench/vagrant/box.sh; cached in build/vagrant)…");
      if ((await locked("bash", box)) !== 0) throw new Error("building the Vagrant box failed");
    }
  }
}

async function runScenario(scenario: ScenarioName, tool: Tool, round: number): Promise<ScenarioResult> {
  const out = path.join(BENCH_STATE, `result-${tool}-${scenario}-${round}.json`);
  rmSync(out, { force: true });
  log(`round ${round}: ${scenario} with ${tool} (waiting for ${LOCK})…`);
  await locked("bash", [path.join(REPO_ROOT, "scripts", "testbed.sh"), "run", process.execPath, "--import", "tsx", path.join(REPO_ROOT, "bench", "vm-scenario.ts"), scenario, tool, out]);
  if (!existsSync(out)) {
    return { scenario, tool, ok: false, error: "the scenario wrote no result (the test bed failed to come up?)", startedAt: new Date().toISOString(), loadBefore: [], loadAfter: [], steps: {}, noopAll: [], guestfs: {}, notes: [] };
  }
  return JSON.parse(readFileSync(out, "utf8")) as ScenarioResult;
}

// ---------------------------------------------------------------- aggregation

interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
  cpu: number;
}

function stat(results: ScenarioResult[], scenario: ScenarioName, tool: Tool, step: string): Stat | undefined {
  const xs = results.filter((r) => r.scenario === scenario && r.tool === tool && r.steps[step]).map((r) => r.steps[step] as { wallMs: number; cpuMs: number });
  if (xs.length === 0) return undefined;
  const w = xs.map((x) => x.wallMs);
  return { median: median(w), min: Math.min(...w), max: Math.max(...w), n: w.length, cpu: median(xs.map((x) => x.cpuMs)) };
}

/** The guest's own boot-to-SSH (slowest VM) of the lago runs: after the re-apply (`reapply`), or a floor (vm-scenario.ts). */
function bootStat(results: ScenarioResult[], scenario: ScenarioName = "two", floor?: string): Stat | undefined {
  const xs = results
    .filter((r) => r.tool === "lago" && r.scenario === scenario)
    .map((r) => (floor ? r.floors?.[floor] : r.bootToSsh)?.maxMs)
    .filter((x): x is number => x !== undefined);
  if (xs.length === 0) return undefined;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length, cpu: Number.NaN };
}

/**
 * What the guest alone takes for the same boots (`virsh start` → SSH banner), next to a
 * comparison: the ratio no tool can beat, and what each tool adds to the guest's own time.
 */
function floorNote(lago: Stat | undefined, ref: Stat | undefined, floor: Stat | undefined, refName: string): string | undefined {
  if (!floor || !ref) return undefined;
  const f = floor.median;
  const over = (tool: string, ms: number): string => (ms >= 0 ? `${tool} adds ${seconds(ms)} s to it` : `${tool} takes ${seconds(-ms)} s less`);
  const adds = [lago ? over("lago", lago.median - f) : undefined, over(refName, ref.median - f)].filter(Boolean).join(", ");
  return `the guest alone takes ${seconds(f)} s (${(f / ref.median).toFixed(2)}× ${refName}, the ratio at zero overhead); ${adds}`;
}

const s = (ms: number | undefined): number | null => (ms === undefined || !Number.isFinite(ms) ? null : ms / 1000);

function comparison(goal: string, what: string, lago: Stat | undefined, ref: Stat | undefined, limit: number | undefined, refName: string, note?: string, floor?: Stat): Figure {
  const ratio = lago && ref ? lago.median / ref.median : null;
  const floored = floorNote(lago, ref, floor, refName);
  if (floored) note = note ? `${note}; ${floored}` : floored;
  return {
    goal,
    what,
    value: s(lago?.median),
    unit: "s",
    target: limit === undefined ? `– (${refName}: ${ref ? `${seconds(ref.median)} s` : "n/a"})` : `≤ ${limit}× ${refName} (${ref ? `${seconds(ref.median)} s` : "n/a"})`,
    ratio,
    met: limit === undefined || ratio === null ? null : ratio <= limit,
    note,
  };
}

/** Largest count over the rounds (lago's own count when it reports one, else the wrappers'). */
function launches(results: ScenarioResult[], scenario: ScenarioName, steps: string[]): { value: number | null; source: string } {
  let value: number | null = null;
  let fromLago = false;
  for (const r of results.filter((x) => x.scenario === scenario && x.tool === "lago")) {
    let total = 0;
    let seen = false;
    for (const step of steps) {
      const c = r.guestfs[step];
      if (!c) continue;
      seen = true;
      if (c.lago !== undefined) fromLago = true;
      total += c.lago ?? c.launches;
    }
    if (seen) value = Math.max(value ?? 0, total);
  }
  return { value, source: fromLago ? "lago's own counter" : "LIBGUESTFS_HV wrapper" };
}

function launchFigure(results: ScenarioResult[], scenario: ScenarioName, steps: string[], what: string, limit: number, target: string): Figure {
  const c = launches(results, scenario, steps);
  return { goal: "1", what, value: c.value, unit: "launches", target, met: c.value === null ? null : c.value <= limit, note: c.value === null ? "not measured" : `max over rounds; ${c.source}` };
}

function figures(results: ScenarioResult[]): Figure[] {
  const L = (sc: ScenarioName, step: string): Stat | undefined => stat(results, sc, "lago", step);
  const V = (sc: ScenarioName, step: string): Stat | undefined => stat(results, sc, "vagrant", step);
  const boot = bootStat(results);
  const snap = L("two", "snapshot");
  const revert = L("two", "revert");
  const snapNote = snap ? "`lago snapshot NAME` on the running 2-VM example" : "n/a: the lago measured has no `snapshot`/`revert` verbs (or they failed: see notes)";
  return [
    comparison(
      "1",
      "bring up examples/two-vms (`lago apply` vs `vagrant up`)",
      L("two", "up"),
      V("two", "up"),
      0.5,
      "vagrant up",
      "template in the store, nothing built yet; vm02's build steps run in the guest at first boot (lago-tiny has cloud-init; `[lago] build = offline` would make a layer with one libguestfs launch)",
      boot,
    ),
    comparison("1", "add a third VM to the running environment", L("two", "add"), V("two", "add"), 0.5, "vagrant up vm03", undefined, bootStat(results, "two", "add")),
    comparison("1", "10 VMs from one template", L("ten", "up"), V("ten", "up"), 0.7, "vagrant up", undefined, bootStat(results, "ten", "up")),
    reapplyFigure(L("two", "reapply"), bootStat(results, "two", "reapplyFirstBoot"), boot),
    comparison("1", "no-op: `lago plan` (refresh) vs `vagrant status`, 2 VMs", L("two", "noop"), V("two", "noop"), undefined, "vagrant status"),
    comparison("1", "raise vm01's memory and restart (`apply` + `apply --restart` vs `vagrant reload vm01`)", L("two", "memory"), V("two", "memory"), undefined, "vagrant reload"),
    comparison("1", "destroy the 3-VM environment", L("two", "destroy"), V("two", "destroy"), undefined, "vagrant destroy -f"),
    launchFigure(results, "two", ["up"], "libguestfs launches: bring-up of examples/two-vms, nothing built yet", 1, "≤ 1 (one distinct template + build steps)"),
    launchFigure(results, "two", ["add"], "libguestfs launches: adding vm03 (no build steps)", 0, "0"),
    launchFigure(results, "two", ["memory", "restart"], "libguestfs launches: memory change + restart", 0, "0"),
    launchFigure(results, "two", ["reapply"], "libguestfs launches: re-apply, warm store", 0, "0"),
    launchFigure(results, "ten", ["up"], "libguestfs launches: 10 VMs without build steps", 0, "0"),
    {
      goal: "3",
      what: "no-op `lago plan` with refresh, 10 running VMs, whole process",
      value: s(L("ten", "noop")?.median),
      unit: "s",
      target: `≤ 0.3 s (vagrant status, 2 VMs: ${V("two", "noop") ? `${seconds(V("two", "noop")?.median ?? Number.NaN)} s` : "n/a"}; 10 VMs: ${V("ten", "noop") ? `${seconds(V("ten", "noop")?.median ?? Number.NaN)} s` : "n/a"})`,
      met: L("ten", "noop") ? (L("ten", "noop")?.median ?? Infinity) <= 300 : null,
    },
    { goal: "8", what: "`lago snapshot` of the 2 running VMs", value: s(snap?.median), unit: "s", target: "–", met: null, note: snapNote },
    { goal: "8", what: "`lago revert` of the 2 VMs", value: s(revert?.median), unit: "s", target: "– (issue 8: running VMs resume in seconds)", met: null, note: revert ? "" : snapNote },
  ];
}

const STEP_LABELS: Array<[ScenarioName, string, string, string]> = [
  ["two", "up", "bring up examples/two-vms", "`lago apply` / `vagrant up`"],
  ["two", "noop", "no-op, 2 VMs (median of 5 per round)", "`lago plan` / `vagrant status`"],
  ["two", "snapshot", "snapshot, 2 VMs", "`lago snapshot bench`"],
  ["two", "revert", "revert, 2 VMs", "`lago revert bench`"],
  ["two", "add", "add vm03", "`lago apply` / `vagrant up vm03`"],
  ["two", "memory", "vm01 memory 256 → 512 MiB and restart", "`lago apply` + `lago apply --restart` / `vagrant reload vm01`"],
  ["two", "destroy", "destroy 3 VMs", "`lago destroy` / `vagrant destroy -f`"],
  ["two", "reapply", "re-apply examples/two-vms, warm store", "`lago apply`"],
  ["ten", "up", "bring up 10 VMs", "`lago apply` / `vagrant up`"],
  ["ten", "noop", "no-op, 10 VMs (median of 5 per round)", "`lago plan` / `vagrant status`"],
  ["ten", "destroy", "destroy 10 VMs", "`lago destroy` / `vagrant destroy -f`"],
];

function cell(x: Stat | undefined): string {
  return x ? `${seconds(x.median)} (${seconds(x.min)}–${seconds(x.max)}, n=${x.n})` : "–";
}

/**
 * Re-apply after destroy against the guest's own boot: a first boot (fresh disks: host keys, the seed's
 * first-boot work), which is what a re-apply waits for; the second boot's ratio is given beside it.
 */
function reapplyFigure(reapply: Stat | undefined, firstBoot: Stat | undefined, secondBoot: Stat | undefined): Figure {
  const ref = firstBoot ?? secondBoot;
  const second = reapply && secondBoot ? `; against a second boot (${seconds(secondBoot.median)} s, no first-boot work): ${(reapply.median / secondBoot.median).toFixed(2)}×` : "";
  return comparison(
    "1",
    "re-apply examples/two-vms after destroy, warm store",
    reapply,
    ref,
    1.3,
    firstBoot ? "slowest VM's first boot-to-SSH" : "slowest VM's boot-to-SSH",
    `boot-to-SSH: \`virsh start\` of both VMs at once → SSH banner${firstBoot ? ", their disks emptied again (a first boot, as in the re-apply)" : ""}${second}`,
  );
}

function detailTable(results: ScenarioResult[]): string {
  const line = (c: string[]): string => `| ${c.join(" | ")} |`;
  const rows = [line(["step", "commands", "lago wall s: median (min–max, n)", "Vagrant wall s", "lago ÷ Vagrant", "lago CPU s", "Vagrant CPU s"]), line(["---", "---", "---:", "---:", "---:", "---:", "---:"])];
  for (const [sc, step, label, cmds] of STEP_LABELS) {
    const l = stat(results, sc, "lago", step);
    const v = stat(results, sc, "vagrant", step);
    if (!l && !v) continue;
    rows.push(line([label, cmds, cell(l), cell(v), l && v ? `${(l.median / v.median).toFixed(2)}×` : "–", l ? seconds(l.cpu) : "–", v ? seconds(v.cpu) : "–"]));
  }
  const guest: Array<[string, Stat | undefined]> = [
    ["the guest alone: slowest VM's boot-to-SSH (2 VMs started together, after the re-apply)", bootStat(results)],
    ["the guest alone: the same, first boot again (their disks emptied)", bootStat(results, "two", "reapplyFirstBoot")],
    ["the guest alone: vm03's boot-to-SSH (beside the 2 running VMs)", bootStat(results, "two", "add")],
    ["the guest alone: slowest VM's boot-to-SSH (10 VMs started together)", bootStat(results, "ten", "up")],
  ];
  for (const [label, b] of guest) if (b) rows.push(line([label, "`virsh start` → SSH banner", cell(b), "–", "–", "–", "–"]));
  return rows.join("\n");
}

function launchTable(results: ScenarioResult[]): string {
  const rows: string[] = [];
  for (const r of results.filter((x) => x.tool === "lago")) {
    for (const [step, c] of Object.entries(r.guestfs)) {
      const tools = Object.entries(c.tools).map(([t, n]) => `${t} ×${n}`).join(", ") || "none";
      rows.push(`| ${r.scenario} | ${r.startedAt.slice(11, 19)} | ${step} | ${c.launches} | ${tools} | ${c.lago ?? "not reported"} |`);
    }
  }
  if (!rows.length) return "";
  return ["| scenario | run started (UTC) | apply | appliance launches (LIBGUESTFS_HV wrapper) | tool runs (PATH wrappers) | lago's own count |", "|---|---|---|---:|---|---:|", ...rows].join("\n");
}

function runsList(results: ScenarioResult[]): string {
  return results
    .map((r) => {
      const load = (xs: number[]): string => (xs.length ? xs.map((x) => x.toFixed(1)).join("/") : "?");
      const times = (b: BootTimes): string => Object.entries(b.perVmMs).map(([vm, ms]) => `${vm} ${seconds(ms)} s`).join(", ");
      const boots = [...(r.bootToSsh ? [times(r.bootToSsh)] : []), ...Object.entries(r.floors ?? {}).map(([step, b]) => `${step}: ${times(b)}`)];
      const boot = boots.length ? `; boot-to-SSH ${boots.join("; ")}` : "";
      const status = r.ok ? "ok" : `**failed**: ${(r.error ?? "").split("\n")[0]}`;
      return `- ${r.startedAt.slice(0, 19)}Z ${r.scenario}/${r.tool}: ${status}; load ${load(r.loadBefore)} → ${load(r.loadAfter)}${boot}${r.notes.length ? `; notes: ${r.notes.join(" | ")}` : ""}`;
    })
    .join("\n");
}

function markdown(results: ScenarioResult[], opts: SideBySideOptions, vagrantVersion: string): string {
  return [
    `Same machine, same guest, same libvirtd (the test bed's, in its network namespace): domain type \`qemu\` (TCG,`,
    `no KVM), the tiny test template (busybox + dropbear, 256 MiB, 1 vCPU). ${vagrantVersion || "Vagrant"} with vagrant-libvirt's box made`,
    "from that template by bench/vagrant/box.sh (insecure key baked in, a `shutdown` shim) and bench/vagrant/Vagrantfile",
    "(root over SSH with `ssh.shell \"sh\"`, `sudo_command \"%c\"`, `auto_config: false`, no synced folders, a provisioner that",
    "runs lago's bootstrap (hostname) and build steps as commands over SSH; machines run in parallel, Vagrant's default).",
    `${opts.runs} round(s) planned, ${results.length} scenario run(s) done; each round runs every scenario once per tool, the order alternating between rounds; each`,
    "scenario is a fresh process under the VM lock (`flock /tmp/lago-vm.lock`), inside `scripts/testbed.sh run`. Times",
    "are whole processes (`lago …` is `node bin/lago.js`, the built CLI); CPU is the process's and the children's it",
    "waited for (not qemu's: VMs are libvirtd's children). lago's template store is fresh per scenario with the template",
    "fetched beforehand (untimed), so bring-up pays for any build work and the re-apply after destroy finds it warm;",
    "Vagrant's box is already in its storage pool. libguestfs launches: appliance launches counted by a qemu wrapper",
    "given to libguestfs (LIBGUESTFS_HV), cross-checked by wrappers of the libguestfs tools on PATH; lago's own count",
    "is preferred when its `apply --json` events carry one. \"The guest alone\": in the lago runs, the VMs that a step",
    "booted are stopped hard and started again by `virsh start` alone, all at once, and timed to their SSH banner: what",
    "the guest itself takes for that boot, which no tool can go below (the bring-up's is measured after the re-apply, on",
    "a second boot; a first boot also runs the seed's first-boot work, so it is an underestimate). The re-apply is",
    "compared with a first boot: then the same VMs are stopped again, their disks emptied in place (`qemu-img create`",
    "over each, same backing file and size), and started again by `virsh start` alone. The no-ops",
    "(`lago plan` / `vagrant status`) are timed once the host has settled after the bring-up (under 25% CPU busy over",
    "a second, at most 60 s of waiting, the same for both tools): before that they measure the guests' boot tail.",
    "The tiny template's kernel is built for it (LZ4, no modules, no initramfs; scripts/README.md): both tools boot",
    "the same image.",
    "",
    detailTable(results),
    "",
    launchTable(results),
    "",
    "Runs (load average 1/5/15 min before → after):",
    "",
    runsList(results),
  ].join("\n");
}

/** Runs the rounds; the section for bench/results.md. */
export async function runSideBySide(opts: SideBySideOptions): Promise<Section> {
  let tools = opts.tools;
  const extra: string[] = [];
  if (tools.includes("vagrant")) {
    const missing = await vagrantMissing();
    if (missing.length) {
      for (const m of missing) log(`Vagrant side skipped: ${m}`);
      extra.push(`- Vagrant side not measured: ${missing.join("; ")}`);
      tools = tools.filter((t) => t !== "vagrant");
    }
  }
  if (!tools.length) throw new Error("nothing to measure");
  mkdirSync(BENCH_STATE, { recursive: true });
  await prepare(tools, opts.build);
  const vagrantVersion = tools.includes("vagrant") ? String((await execa("vagrant", ["--version"], { reject: false, env: { VAGRANT_CHECKPOINT_DISABLE: "1" } })).stdout).trim() : "";
  const results: ScenarioResult[] = [];
  const section = (): Section => ({ id: "side-by-side", title: "lago beside Vagrant (real VMs)", measuredAt: new Date().toISOString(), machine: machineLines(extra), markdown: markdown(results, opts, vagrantVersion), figures: figures(results) });
  for (let round = 1; round <= opts.runs; round++) {
    const order = round % 2 === 1 ? tools : [...tools].reverse();
    for (const scenario of opts.scenarios) {
      for (const tool of order) {
        const r = await runScenario(scenario, tool, round);
        results.push(r);
        if (!r.ok) log(`${scenario}/${tool} failed: ${r.error ?? "?"}`);
        opts.onProgress?.(section());
      }
    }
  }
  return section();
}
