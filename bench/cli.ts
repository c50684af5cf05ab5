/**
 * Whole-process figures of the built CLI (issue 7, goals 2–5), no hypervisor:
 * `lago --version`; `lago plan --json` of generated environments from an empty
 * state; `lago apply` of generated environments on a driver chosen by
 * selector (LAGO_DRIVER; the engine goal wants a zero-latency in-memory one);
 * and the host bytes a VM disk takes right after lago creates it (real
 * qemu-img, a qcow2 template, no VM). Each command is a fresh process, as a
 * user runs it; wall time is the median of several runs, CPU time is the
 * process's and its children's.
 */
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { generateInitFile } from "./generate.ts";
import { LAGO_BIN, REPO_ROOT, makeTemplateRepo, makeWorkspace, type TemplateRepo } from "./fixture.ts";
import { median, mustRun, seconds, timed, type Timed } from "./proc.ts";
import { machineLines, type Figure, type Section } from "./report.ts";

export interface CliBenchOptions {
  /** Timed runs of `lago --version`. */
  versionRuns: number;
  /** Domain counts for `lago plan --json` from an empty state. */
  planSizes: number[];
  /** Domain counts for the engine apply. */
  engineSizes: number[];
  /** LAGO_DRIVER for the engine apply; `{dir}` becomes a fresh directory per run. */
  engineDriver: string;
  /** Give up an engine apply after this many seconds (and skip bigger sizes). */
  engineTimeoutS: number;
  /** Rebuild dist/ first (off: measure the dist/ that is there, e.g. while another part uses it). */
  build: boolean;
}

/** The in-memory fake world: zero latency, so the figure is the engine's own cost (the stores are real files). */
export const DEFAULT_ENGINE_DRIVER = "memory";

const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
const count = (n: number): string => n.toLocaleString("en-US");

/** `npm run build`: the CLI under test is bin/lago.js → dist/. */
export async function buildCli(): Promise<void> {
  log("building dist/ (node scripts/build.mjs)…");
  await mustRun(process.execPath, [path.join(REPO_ROOT, "scripts", "build.mjs")], { cwd: REPO_ROOT });
}

function lago(args: string[], cwd: string, env: Record<string, string>, timeoutMs?: number): Promise<Timed> {
  return timed(process.execPath, [LAGO_BIN, ...args], { cwd, env, timeoutMs });
}

async function repeat(runs: number, warmups: number, fn: () => Promise<Timed>, check: (r: Timed) => void): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < warmups + runs; i++) {
    const r = await fn();
    check(r);
    if (i >= warmups) {
      wall.push(r.wallMs);
      cpu.push(r.cpuMs);
    }
  }
  return { wall, cpu };
}

function ok(what: string): (r: Timed) => void {
  return (r) => {
    if (r.code !== 0) throw new Error(`${what} ${r.timedOut ? "timed out" : `exited ${String(r.code)}`}:\n${(r.stderr || r.stdout).trim().split("\n").slice(-15).join("\n")}`);
  };
}

/** The CPU side of a wall-time figure: steadier than wall time when other work shares the 2 cores. */
function cpuNote(m: { cpu: number[] }): string {
  return `median CPU ${seconds(median(m.cpu))} s (process + children)`;
}

interface Row {
  what: string;
  runs: number;
  wall: number;
  min: number;
  max: number;
  cpu: number;
  note?: string | undefined;
}

function row(what: string, m: { wall: number[]; cpu: number[] }, note?: string): Row {
  return { what, runs: m.wall.length, wall: median(m.wall), min: Math.min(...m.wall), max: Math.max(...m.wall), cpu: median(m.cpu), note };
}

function rowsTable(rows: Row[]): string {
  const line = (c: string[]): string => `| ${c.join(" | ")} |`;
  return [
    line(["command (whole process)", "runs", "median wall (s)", "min–max (s)", "median CPU (s)", "note"]),
    line(["---", "---:", "---:", "---:", "---:", "---"]),
    ...rows.map((r) => line([r.what, String(r.runs), seconds(r.wall), `${seconds(r.min)}–${seconds(r.max)}`, seconds(r.cpu), r.note ?? ""])),
  ].join("\n");
}

interface PlanCheck {
  resources: number;
}

function checkCreatePlan(stdout: string): PlanCheck {
  const plan = JSON.parse(stdout) as { resource_changes?: { action: string }[] };
  const changes = plan.resource_changes ?? [];
  if (changes.length === 0 || changes.some((c) => c.action !== "create")) throw new Error("plan --json from an empty state is not all creates");
  return { resources: changes.length };
}

async function versionFigure(runs: number, rows: Row[]): Promise<Figure> {
  const cwd = os.tmpdir();
  const m = await repeat(runs, 1, () => lago(["--version"], cwd, { NO_COLOR: "1" }), ok("lago --version"));
  rows.push(row("`lago --version`", m));
  const v = median(m.wall) / 1000;
  return { goal: "2", what: "`lago --version`, whole process", value: v, unit: "s", target: "≤ 0.15 s", met: v <= 0.15, note: cpuNote(m) };
}

const PLAN_TARGETS: Record<number, number> = { 1000: 0.5, 10000: 4 };

async function planFigures(sizes: number[], repo: TemplateRepo, scratch: string, rows: Row[]): Promise<Figure[]> {
  const figures: Figure[] = [];
  for (const n of sizes) {
    log(`lago plan --json, ${count(n)} domains…`);
    const ws = makeWorkspace(`plan${n}`, repo.metadata, {}, scratch);
    ws.init(generateInitFile(n).text);
    let resources = 0;
    const m = await repeat(n >= 10_000 ? 3 : 5, 1, () => lago(["plan", "--json"], ws.work, ws.env), (r) => {
      ok(`lago plan --json (${count(n)} domains)`)(r);
      resources = checkCreatePlan(r.stdout).resources;
    });
    rows.push(row(`\`lago plan --json\`, ${count(n)} domains, empty state`, m, `${count(resources)} resources`));
    const limit = PLAN_TARGETS[n];
    const v = median(m.wall) / 1000;
    figures.push({
      goal: "3",
      what: `\`lago plan --json\` of ${count(n)} domains, empty state, whole process`,
      value: v,
      unit: "s",
      target: limit === undefined ? "–" : `≤ ${limit} s`,
      met: limit === undefined ? null : v <= limit,
      note: cpuNote(m),
    });
    rmSync(ws.root, { recursive: true, force: true });
  }
  return figures;
}

interface EngineRun {
  domains: number;
  resources: number;
  wall: number | null;
  cpu: number | null;
  planWall: number | null;
  runs: number;
  timedOut: boolean;
  /** The first lines of the error when an apply failed (the size is then reported, not measured). */
  failed?: string | undefined;
}

async function engineRuns(opts: CliBenchOptions, repo: TemplateRepo, scratch: string): Promise<EngineRun[]> {
  const out: EngineRun[] = [];
  let skipRest = false;
  for (const n of opts.engineSizes) {
    if (skipRest) {
      out.push({ domains: n, resources: 0, wall: null, cpu: null, planWall: null, runs: 0, timedOut: false, failed: "skipped: a smaller size did not finish" });
      continue;
    }
    const walls: number[] = [];
    const cpus: number[] = [];
    let planWall: number | null = null;
    let resources = 0;
    let timedOut = false;
    let failed: string | undefined;
    // Up to 3 runs; one when a run takes more than 20 s (the file-backed fake is slow).
    for (let i = 0; i < 3; i++) {
      const ws = makeWorkspace(`engine${n}`, repo.metadata, {}, scratch);
      // 10,000 generated domains need 240 NAT subnets: widen the lease range (a private lease directory).
      Object.assign(ws.env, { LAGO_DRIVER: opts.engineDriver.replaceAll("{dir}", ws.root), LAGO_LEASE_RANGE: "0-255" });
      ws.init(generateInitFile(n).text);
      if (i === 0) {
        const p = await lago(["plan", "--json"], ws.work, ws.env);
        ok(`lago plan --json (${count(n)} domains, driver ${opts.engineDriver})`)(p);
        resources = checkCreatePlan(p.stdout).resources;
        planWall = p.wallMs;
      }
      log(`lago apply, ${count(n)} domains on ${opts.engineDriver} (run ${i + 1}, timeout ${opts.engineTimeoutS} s)…`);
      const r = await lago(["apply", "--auto-approve"], ws.work, ws.env, opts.engineTimeoutS * 1000);
      rmSync(ws.root, { recursive: true, force: true });
      if (r.timedOut) {
        timedOut = true;
        break;
      }
      if (r.code !== 0) {
        failed = `exit ${String(r.code)} after ${seconds(r.wallMs)} s: ${(r.stderr || r.stdout).trim().split("\n").filter((l) => /error/i.test(l)).slice(0, 2).join(" ").replaceAll("|", "/") || "see stderr"}`;
        log(`lago apply (${count(n)} domains) failed: ${failed}`);
        break;
      }
      walls.push(r.wallMs);
      cpus.push(r.cpuMs);
      if (r.wallMs > 20_000) break;
    }
    const none = timedOut || walls.length === 0;
    if (none) skipRest = true;
    out.push({ domains: n, resources, wall: none ? null : median(walls), cpu: none ? null : median(cpus), planWall, runs: walls.length, timedOut, failed: walls.length === 0 ? failed : undefined });
  }
  return out;
}

function engineFigures(runs: EngineRun[], opts: CliBenchOptions): { figures: Figure[]; table: string } {
  const fileFake = opts.engineDriver.startsWith("fake:");
  const driverNote = fileFake
    ? "file-backed fake (rewrites its world JSON on every call: not zero-latency)"
    : opts.engineDriver === "memory"
      ? "the fake world in memory (zero latency; lease, template and key stores on disk)"
      : `driver \`${opts.engineDriver}\``;
  const figures: Figure[] = [];
  const base = runs.find((r) => r.domains === 1000);
  if (base) {
    const v = base.wall === null ? null : base.wall / 1000;
    figures.push({
      goal: "4",
      what: "`lago apply` of 1,000 domains on a zero-latency driver, whole process",
      value: v,
      unit: "s",
      target: "≤ 2 s",
      met: v === null ? (base.timedOut || base.failed !== undefined ? false : null) : v <= 2,
      note: `${driverNote}${base.timedOut ? `; timed out after ${opts.engineTimeoutS} s` : base.failed ? `; apply failed (${base.failed})` : `; median CPU ${seconds(base.cpu ?? Number.NaN)} s`}`,
    });
  }
  for (let i = 1; i < runs.length; i++) {
    const a = runs[i - 1];
    const b = runs[i];
    if (!a || !b || b.domains !== a.domains * 10) continue;
    const r = a.wall !== null && b.wall !== null ? b.wall / a.wall : null;
    figures.push({
      goal: "4",
      what: `apply time of ${count(b.domains)} ÷ ${count(a.domains)} domains (10× the resources)`,
      value: r,
      unit: "×",
      target: "≤ 12×",
      met: r === null ? (a.wall !== null && (b.timedOut || b.failed !== undefined) ? false : null) : r <= 12,
      note: `${driverNote}${b.timedOut ? `; ${count(b.domains)} domains not finished within ${opts.engineTimeoutS} s` : b.failed ? `; ${count(b.domains)} domains: ${b.failed}` : ""}`,
    });
  }
  const line = (c: string[]): string => `| ${c.join(" | ")} |`;
  const table = [
    line(["domains", "resources", "runs", "`lago apply` median wall (s)", "median CPU (s)", "`lago plan` of the same (s)"]),
    line(["---:", "---:", "---:", "---:", "---:", "---:"]),
    ...runs.map((r) =>
      line([count(r.domains), r.resources ? count(r.resources) : "–", String(r.runs), r.wall === null ? (r.timedOut ? `> ${opts.engineTimeoutS} (timed out)` : (r.failed ?? "skipped")) : seconds(r.wall), r.cpu === null ? "–" : seconds(r.cpu), r.planWall === null ? "–" : seconds(r.planWall)]),
    ),
  ].join("\n");
  return { figures, table: `Driver: \`LAGO_DRIVER=${opts.engineDriver}\` — ${driverNote}.\n\n${table}` };
}

async function qemuImgAvailable(): Promise<boolean> {
  const r = await execa("qemu-img", ["--version"], { reject: false });
  return r.exitCode === 0;
}

const DISK_INIT = `domains:
  vm01:
    memory: 256
    vcpu: 1
    nics:
      - net: lago
    disks:
      - template_name: disk-bench
        type: template
        name: root
        dev: vda
        format: qcow2
      - name: data
        type: empty
        size: 1G
        dev: vdb
        format: qcow2
nets:
  lago:
    type: nat
    management: true
`;

async function diskFigure(scratch: string): Promise<{ figure: Figure; text: string }> {
  const what = "host bytes allocated by a VM disk right after lago creates it";
  if (!(await qemuImgAvailable())) {
    return { figure: { goal: "5", what, value: null, unit: "KiB", target: "< 1 MiB", met: null, note: "qemu-img missing (Debian package qemu-utils)" }, text: "" };
  }
  const root = path.join(scratch, "disk");
  mkdirSync(root, { recursive: true });
  // A real (empty) 1 GiB qcow2 template, so qemu-img can make overlays on it.
  const tpl = path.join(root, "template.qcow2");
  await mustRun("qemu-img", ["create", "-q", "-f", "qcow2", tpl, "1G"]);
  const repo = makeTemplateRepo(root, ["disk-bench"], () => readFileSync(tpl));
  // The template is an empty image with no OS for virt-customize: the bootstrap goes by a cloud-init seed.
  const ws = makeWorkspace("disk", repo.metadata, { LAGO_DOMAIN_TYPE: "qemu", LAGO_BOOTSTRAP: "cloud-init" }, scratch);
  ws.init(DISK_INIT);
  const plan = await mustRun(process.execPath, [LAGO_BIN, "plan", "--json"], { cwd: ws.work, env: ws.env });
  const disks = (JSON.parse(plan.stdout) as { resource_changes: { address: string }[] }).resource_changes.map((c) => c.address).filter((a) => a.startsWith("disk."));
  await mustRun(process.execPath, [LAGO_BIN, "apply", "--auto-approve", ...disks.flatMap((d) => ["--target", d])], { cwd: ws.work, env: ws.env });
  const show = await mustRun(process.execPath, [LAGO_BIN, "show", "--json"], { cwd: ws.work, env: ws.env });
  const state = JSON.parse(show.stdout) as { resources: { address: string; kind: string; outputs: Record<string, unknown> }[] };
  const sizes: string[] = [];
  let max = 0;
  for (const r of state.resources.filter((x) => x.kind === "disk")) {
    const p = r.outputs.path;
    if (typeof p !== "string") continue;
    const st = statSync(p);
    const allocated = st.blocks * 512;
    max = Math.max(max, allocated);
    sizes.push(`${r.address}: ${(allocated / 1024).toFixed(0)} KiB allocated (${(st.size / 1024).toFixed(0)} KiB apparent)`);
  }
  rmSync(ws.root, { recursive: true, force: true });
  const kib = max / 1024;
  return {
    figure: { goal: "5", what, value: kib, unit: "KiB", target: "< 1 MiB", met: max < 1024 * 1024, note: "largest of a template overlay and a 1 GiB empty qcow2" },
    text: `Disks (\`lago apply --target disk.…\` with the real qemu-img on a 1 GiB qcow2 template; st_blocks × 512): ${sizes.join("; ")}.`,
  };
}

/** Runs every whole-process figure; the section for bench/results.md. */
export async function runCliBench(opts: CliBenchOptions): Promise<Section> {
  if (opts.build) await buildCli();
  const scratch = path.join(os.tmpdir(), `lago-bench-cli-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const repo = makeTemplateRepo(path.join(scratch, "templates"));
    const rows: Row[] = [];
    const figures: Figure[] = [];
    log("lago --version…");
    figures.push(await versionFigure(opts.versionRuns, rows));
    figures.push(...(await planFigures(opts.planSizes, repo, scratch, rows)));
    const engine = engineFigures(await engineRuns(opts, repo, scratch), opts);
    figures.push(...engine.figures);
    log("disk bytes after creation…");
    const disk = await diskFigure(scratch);
    figures.push(disk.figure);
    const markdown = [
      `Built CLI (\`bin/lago.js\` → \`dist/\`, ${opts.build ? "rebuilt first" : "as found: --no-build"}), each command a fresh process with its own HOME, config,`,
      "template store and lease store; a local template repository (file source, placeholder images). Plans run",
      "with lago's real drivers (an empty state needs no hypervisor). Wall: median (min–max) after one warm-up run;",
      "CPU: user + system of the process and the children it waited for. Generated files: bench/generate.ts.",
      "",
      rowsTable(rows),
      "",
      "Engine apply (goal 4): `lago apply --auto-approve` of a generated environment from an empty state, whole",
      "process (parse, plan and every reconciler call); a size is skipped when a smaller one timed out; 3 runs,",
      "or 1 when a run takes over 20 s.",
      "",
      engine.table,
      "",
      disk.text,
    ].join("\n");
    return { id: "cli", title: "Whole-process CLI figures (no hypervisor)", measuredAt: new Date().toISOString(), machine: machineLines(), markdown, figures };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
