/**
 * One scenario of the side-by-side benchmark, for one tool, on real VMs:
 *
 *   node --import tsx bench/vm-scenario.ts two|ten lago|vagrant RESULT.json
 *
 * Runs inside the test bed (scripts/testbed.sh run …: the network namespace
 * with its libvirtd) while the caller holds the VM lock; bench/side-by-side.ts
 * starts it once per (run, scenario, tool). It creates its environment, times
 * each step as a whole process, and always destroys what it created, then
 * writes a {@link ScenarioResult} to RESULT.json (also when a step failed).
 *
 * two: bring up examples/two-vms; no-op `lago plan` (refresh) / `vagrant status`
 *      ×5; lago snapshot + revert (when lago has the verbs); add vm03; raise
 *      vm01's memory and restart it; destroy; (lago) re-apply with the warm
 *      store, then the guest's own boot-to-SSH (virsh start → SSH banner).
 * ten: bring up 10 VMs from one template; no-op plan/status ×5; destroy.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseDocument } from "yaml";
import { LAGO_BIN, REPO_ROOT, makeWorkspace, type Workspace } from "./fixture.ts";
import { guestfsCounter, type GuestfsCounter } from "./guestfs-count.ts";
import { reportedLaunches } from "../test/helpers/launches.ts";
import { median, mustRun, timed, type Timed } from "./proc.ts";
import { QemuImg } from "../src/drivers/real/qemu-img.ts";
import { openPort } from "../src/drivers/real/ssh.ts";

export type ScenarioName = "two" | "ten";
export type Tool = "lago" | "vagrant";

export interface StepTime {
  wallMs: number;
  cpuMs: number;
}

export interface GuestfsCount {
  /** Appliance launches seen by the LIBGUESTFS_HV wrapper. */
  launches: number;
  /** Runs of libguestfs tools seen by the PATH wrappers. */
  tools: Record<string, number>;
  /** What lago reported itself, if it does. */
  lago?: number | undefined;
}

export interface ScenarioResult {
  scenario: ScenarioName;
  tool: Tool;
  ok: boolean;
  error?: string | undefined;
  startedAt: string;
  loadBefore: number[];
  loadAfter: number[];
  steps: Record<string, StepTime>;
  /** Every no-op plan/status run (ms). */
  noopAll: number[];
  guestfs: Record<string, GuestfsCount>;
  /** The guest alone after the re-apply: both VMs stopped hard, then `virsh start` of both at once → SSH banner. */
  bootToSsh?: BootTimes | undefined;
  /**
   * The guest alone, for the other steps that boot VMs (the floor of what any tool can take):
   * `add`, vm03 started by virsh beside the two running VMs; `up` (scenario ten), all ten started at once.
   */
  floors?: Record<string, BootTimes> | undefined;
  notes: string[];
}

export interface BootTimes {
  perVmMs: Record<string, number>;
  maxMs: number;
}

export const BENCH_STATE = path.join(REPO_ROOT, "build", "bench");
export const VAGRANT_DIR = path.join(REPO_ROOT, "build", "vagrant");
export const VAGRANT_BOX = "lago-tiny-bench";
export const VAGRANT_POOL = "lago-bench-vagrant";
const VAGRANT_POOL_DIR = "/var/lib/libvirt/images/lago-bench-vagrant";
const VAGRANTFILE = path.join(REPO_ROOT, "bench", "vagrant", "Vagrantfile");
const EXAMPLE = readFileSync(path.join(REPO_ROOT, "examples", "two-vms", "LagoInitFile"), "utf8");
const NOOP_RUNS = 5;
const TEN = 10;
const log = (msg: string): void => void process.stderr.write(`bench[${process.argv[2] ?? "?"}/${process.argv[3] ?? "?"}]: ${msg}\n`);

/** The host's busy CPU fraction (all cores) over `ms`, from /proc/stat. */
async function busyOver(ms: number): Promise<number> {
  const sample = () => {
    const f = readFileSync("/proc/stat", "latin1").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: (f[3] ?? 0) + (f[4] ?? 0), total: f.reduce((a, b) => a + b, 0) };
  };
  const a = sample();
  await new Promise((r) => setTimeout(r, ms));
  const b = sample();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/**
 * Before the no-op runs, both tools wait (at most 60 s) for the host to go quiet: under a quarter of its CPU
 * busy over one second. Right after a bring-up the guests are still finishing their boot (TCG), and a no-op
 * timed then measures them, not the tool.
 */
async function settle(rec: Recorder): Promise<void> {
  const t0 = performance.now();
  let busy: number;
  do busy = await busyOver(1000);
  while (busy >= 0.25 && performance.now() - t0 < 60_000);
  rec.note(`no-op timed after the host settled: waited ${((performance.now() - t0) / 1000).toFixed(1)} s, CPU ${(busy * 100).toFixed(0)}% busy over the last second`);
}

// ---------------------------------------------------------------- helpers

/** Teardown of what the running scenario created, also run on SIGTERM/SIGINT (a stopped bench leaves no VMs). */
let teardown: (() => Promise<void>) | undefined;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    log(`${signal}: tearing down before exiting`);
    void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

function virsh(...args: string[]): Promise<Timed> {
  return timed("virsh", ["-c", "qemu:///system", "-q", ...args]);
}

async function maxMemoryKiB(domain: string): Promise<number | undefined> {
  const r = await virsh("dominfo", domain);
  const m = /^Max memory:\s+(\d+) KiB/m.exec(r.stdout);
  return m?.[1] ? Number(m[1]) : undefined;
}

/**
 * Resolves with the ms from `t0` at which `host:22` sends an SSH banner. The port is reached as lago's own wait
 * reaches it (`openPort`: a fresh connect every 200 ms, 50 ms after a refused one), so that the guest's time is
 * measured as closely as lago can follow it; a connection that closes, or stays 1.5 s without a banner, is
 * tried again.
 */
async function waitForBanner(host: string, t0: number, timeoutMs: number): Promise<number> {
  const target = { host, port: 22, user: "root", privateKeyPath: "", pinnedHostKey: undefined };
  for (;;) {
    const left = t0 + timeoutMs - performance.now();
    if (left <= 0) throw new Error(`no SSH banner from ${host} within ${timeoutMs / 1000} s`);
    let sock: net.Socket;
    try {
      sock = await openPort(target, left, undefined);
    } catch {
      continue;
    }
    const at = await new Promise<number | undefined>((resolve) => {
      sock.setTimeout(1500, () => resolve(undefined));
      sock.on("data", (d: Buffer) => {
        if (d.toString("latin1").startsWith("SSH-")) resolve(performance.now() - t0);
      });
      sock.on("error", () => resolve(undefined));
      sock.on("close", () => resolve(undefined));
    });
    sock.destroy();
    if (at !== undefined) return at;
  }
}

class Recorder {
  readonly result: ScenarioResult;

  constructor(scenario: ScenarioName, tool: Tool) {
    this.result = { scenario, tool, ok: false, startedAt: new Date().toISOString(), loadBefore: os.loadavg(), loadAfter: [], steps: {}, noopAll: [], guestfs: {}, notes: [] };
  }

  step(name: string, r: Timed | StepTime): void {
    this.result.steps[name] = { wallMs: r.wallMs, cpuMs: r.cpuMs };
    log(`${name}: ${(r.wallMs / 1000).toFixed(2)} s`);
  }

  note(text: string): void {
    this.result.notes.push(text);
    log(`note: ${text}`);
  }
}

const sum = (a: StepTime, b: StepTime): StepTime => ({ wallMs: a.wallMs + b.wallMs, cpuMs: a.cpuMs + b.cpuMs });

function failIfBad(what: string, r: Timed): Timed {
  if (r.code !== 0) throw new Error(`${what} ${r.timedOut ? "timed out" : `exited ${String(r.code)}`}:\n${`${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-30).join("\n")}`);
  return r;
}

// ---------------------------------------------------------------- lago

function editInit(mutate: (doc: ReturnType<typeof parseDocument>) => void): string {
  const doc = parseDocument(EXAMPLE);
  mutate(doc);
  return doc.toString();
}

const withVm03 = (doc: ReturnType<typeof parseDocument>): void => {
  const vm01 = doc.getIn(["domains", "vm01"]) as { toJSON(): unknown };
  doc.setIn(["domains", "vm03"], doc.createNode(vm01.toJSON()));
};

function tenVms(): string {
  const lines = ["domains:"];
  for (let i = 1; i <= TEN; i++) {
    lines.push(
      `  vm${String(i).padStart(2, "0")}:`,
      "    memory: 256",
      "    vcpu: 1",
      "    nics:",
      "      - net: lago",
      "    disks:",
      "      - template_name: lago-tiny",
      "        type: template",
      "        name: root",
      "        dev: vda",
      "        format: qcow2",
    );
  }
  lines.push("nets:", "  lago:", "    type: nat", "    management: true", "    dhcp:", "      start: 100", "      end: 254", "    dns_domain_name: lago.local", "");
  return lines.join("\n");
}

class LagoEnv {
  constructor(
    readonly ws: Workspace,
    readonly counter: GuestfsCounter,
    readonly rec: Recorder,
  ) {}

  run(args: string[]): Promise<Timed> {
    return timed(process.execPath, [LAGO_BIN, ...args], { cwd: this.ws.work, env: this.ws.env });
  }

  /** `lago apply --auto-approve --json ARGS`, timed, with its libguestfs launches recorded under `name`. */
  async apply(name: string, args: string[] = []): Promise<Timed> {
    this.counter.reset();
    const r = failIfBad(`lago apply ${args.join(" ")}`, await this.run(["apply", "--auto-approve", "--json", ...args]));
    const c = this.counter.read();
    this.rec.result.guestfs[name] = { launches: c.launches, tools: c.tools, lago: Object.values(reportedLaunches(r.stdout)).reduce((a, n) => a + n, 0) };
    return r;
  }

  async planIsEmpty(when: string): Promise<void> {
    const r = await this.run(["plan", "--detailed-exitcode"]);
    if (r.code === 2) this.rec.note(`plan after ${when} is not empty: ${r.stdout.split("\n").filter((l) => /^\s*[-+~]/.test(l)).slice(0, 5).join("; ")}`);
    else failIfBad(`lago plan after ${when}`, r);
  }

  async noop(): Promise<void> {
    await settle(this.rec);
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < NOOP_RUNS; i++) {
      const r = failIfBad("lago plan", await this.run(["plan"]));
      walls.push(r.wallMs);
      cpus.push(r.cpuMs);
    }
    this.rec.result.noopAll = walls;
    this.rec.step("noop", { wallMs: median(walls), cpuMs: median(cpus) });
  }

  async domains(): Promise<Array<{ vm: string; name: string; ip: string }>> {
    const show = failIfBad("lago show --json", await this.run(["show", "--json"]));
    const state = JSON.parse(show.stdout) as { resources: Array<{ address: string; kind: string; outputs: Record<string, unknown> }> };
    return state.resources
      .filter((r) => r.kind === "domain" && typeof r.outputs.libvirt_name === "string" && typeof r.outputs.ip === "string")
      .map((r) => ({ vm: r.address.replace(/^domain\./, ""), name: String(r.outputs.libvirt_name), ip: String(r.outputs.ip) }));
  }

  /** Applies the template resources alone (untimed): the store is warm for the template, cold for anything built from it. */
  async prefetchTemplates(): Promise<void> {
    const plan = failIfBad("lago plan --json", await this.run(["plan", "--json"]));
    const templates = (JSON.parse(plan.stdout) as { resource_changes: Array<{ address: string }> }).resource_changes.map((c) => c.address).filter((a) => a.startsWith("template."));
    if (templates.length) failIfBad("lago apply --target template…", await this.run(["apply", "--auto-approve", ...templates.flatMap((t) => ["--target", t])]));
  }

  async destroy(): Promise<Timed> {
    return failIfBad("lago destroy", await this.run(["destroy", "--auto-approve"]));
  }
}

/** Whether `lago --help` lists the verb (an unknown verb with --help prints the general help and exits 0). */
async function hasVerb(env: LagoEnv, verb: string): Promise<boolean> {
  const r = await env.run(["--help"]);
  return new RegExp(`^\\s+${verb}\\b`, "m").test(r.stdout);
}

/**
 * Empties a stopped domain's disks in place, as the apply that made them left them: each qcow2 again a bare
 * overlay on its backing file (or empty), same size; the same files, so their owner and ACLs stay. Its next
 * boot is a first boot again (host keys, the seed's first-boot work), the boot a re-apply waits for.
 */
async function freshDisks(domain: string): Promise<void> {
  const list = await virsh("domblklist", domain, "--details");
  const files = list.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[0] === "file" && f[1] === "disk" && f[3])
    .map((f) => f[3] as string);
  for (const file of files) {
    const info = await new QemuImg().info(file);
    if (info?.format !== "qcow2") continue;
    // Not QemuImg.createOverlay/createBlank: they build a new file and rename it, which would drop qemu's access.
    const backing = info.backingFile ? ["-b", info.backingFile, "-F", info.backingFormat ?? "qcow2"] : [];
    await mustRun("qemu-img", ["create", "-q", "-f", "qcow2", ...backing, file, String(info.virtualSize)]);
  }
}

/**
 * Stops the VMs hard, starts them all at once with virsh, and times each until its SSH banner.
 * `fresh`: their disks are emptied first (freshDisks), so that this is a first boot.
 */
async function bootToSsh(domains: Array<{ vm: string; name: string; ip: string }>, what: string, fresh = false): Promise<BootTimes> {
  for (const d of domains) await virsh("destroy", d.name);
  if (fresh) for (const d of domains) await freshDisks(d.name);
  const t0 = performance.now();
  const perVm: Record<string, number> = {};
  await Promise.all(
    domains.map(async (d) => {
      const banner = waitForBanner(d.ip, t0, 600_000);
      const start = await virsh("start", d.name);
      if (start.code !== 0) throw new Error(`virsh start ${d.name}: ${start.stderr.trim()}`);
      perVm[d.vm] = await banner;
    }),
  );
  log(`boot-to-SSH (${what}): ${Object.entries(perVm).map(([vm, ms]) => `${vm} ${(ms / 1000).toFixed(1)} s`).join(", ")}`);
  return { perVmMs: perVm, maxMs: Math.max(...Object.values(perVm)) };
}

async function lagoScenario(scenario: ScenarioName, rec: Recorder, runDir: string): Promise<void> {
  const repo = process.env.LAGO_TEST_TEMPLATE_REPO;
  if (!repo) throw new Error("LAGO_TEST_TEMPLATE_REPO is not set: run inside the test bed (scripts/testbed.sh run …)");
  const counter = guestfsCounter(path.join(BENCH_STATE, "guestfs-wrappers"), path.join(runDir, "guestfs.log"));
  mkdirSync(path.join(BENCH_STATE, "leases"), { recursive: true });
  const ws = makeWorkspace(`${scenario}-lago`, repo, {
    LAGO_DOMAIN_TYPE: "qemu",
    LAGO_BOOT_TIMEOUT: "600",
    LAGO_SHUTDOWN_TIMEOUT: "60",
    // One lease store for every bench run, as /var/lib/lago/subnets is for a user, with subnets of its own
    // (192.168.160–179.x): other environments left running in the same libvirtd use lago's default range.
    LAGO_LEASE_DIR: path.join(BENCH_STATE, "leases"),
    LAGO_LEASE_RANGE: "160-179",
    ...counter.env(process.env.PATH ?? "/usr/bin:/bin"),
  }, runDir);
  const env = new LagoEnv(ws, counter, rec);
  ws.init(scenario === "two" ? EXAMPLE : tenVms());
  teardown = async () => {
    await env.run(["destroy", "--auto-approve"]);
  };
  await env.prefetchTemplates();
  try {
    rec.step("up", await env.apply("up"));
    await env.planIsEmpty("bring-up");
    await env.noop();
    if (scenario === "ten") {
      rec.result.floors = { up: await bootToSsh(await env.domains(), "all ten at once") };
      rec.step("destroy", await env.destroy());
      return;
    }
    if ((await hasVerb(env, "snapshot")) && (await hasVerb(env, "revert"))) {
      const snap = await env.run(["snapshot", "bench"]);
      if (snap.code === 0) rec.step("snapshot", snap);
      else rec.note(`lago snapshot failed: ${snap.stderr.trim().split("\n").slice(-3).join(" ")}`);
      if (snap.code === 0) {
        const rev = await env.run(["revert", "bench"]);
        if (rev.code === 0) rec.step("revert", rev);
        else rec.note(`lago revert failed: ${rev.stderr.trim().split("\n").slice(-3).join(" ")}`);
      }
    }
    ws.init(editInit(withVm03));
    rec.step("add", await env.apply("add"));
    // The same VM booted by virsh alone, beside the two running VMs (the next apply finds it running, as it was).
    rec.result.floors = { add: await bootToSsh((await env.domains()).filter((d) => d.vm === "vm03"), "vm03 beside the two running VMs") };
    ws.init(
      editInit((doc) => {
        withVm03(doc);
        doc.setIn(["domains", "vm01", "memory"], 512);
      }),
    );
    const edit = await env.apply("memory");
    const restart = await env.apply("restart", ["--restart"]);
    rec.step("memory", sum(edit, restart));
    const vm01 = (await env.domains()).find((d) => d.vm === "vm01");
    const mem = vm01 ? await maxMemoryKiB(vm01.name) : undefined;
    if (mem !== 512 * 1024) rec.note(`after apply + apply --restart, vm01's max memory is ${String(mem)} KiB, not ${512 * 1024}`);
    rec.step("destroy", await env.destroy());
    ws.init(EXAMPLE);
    rec.step("reapply", await env.apply("reapply"));
    rec.result.bootToSsh = await bootToSsh(await env.domains(), "both at once");
    rec.result.floors = { ...rec.result.floors, reapplyFirstBoot: await bootToSsh(await env.domains(), "both at once, first boot again", true) };
  } finally {
    const d = await env.run(["destroy", "--auto-approve"]);
    if (d.code !== 0) rec.note(`cleanup: lago destroy failed: ${d.stderr.trim().split("\n").slice(-3).join(" ")}`);
    rmSync(ws.root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- vagrant

interface VagrantMachine {
  name: string;
  memory: number;
  cpus: number;
  networks?: Array<{ name: string; ip: string }>;
  disks?: Array<{ size: string; dev: string }>;
  commands: string[];
}

function hostnameCommand(vm: string): string {
  return `echo ${vm} > /etc/hostname && hostname ${vm}`;
}

/** The machines Vagrant brings up: the same VMs as lago's, with a provisioner doing lago's bootstrap (hostname) and build steps. */
function vagrantMachines(scenario: ScenarioName, opts: { vm03?: boolean; vm01Memory?: number } = {}): VagrantMachine[] {
  const plain = (name: string, memory = 256): VagrantMachine => ({ name, memory, cpus: 1, commands: [hostnameCommand(name)] });
  if (scenario === "ten") return Array.from({ length: TEN }, (_, i) => plain(`vm${String(i + 1).padStart(2, "0")}`));
  const machines = [
    plain("vm01", opts.vm01Memory ?? 256),
    {
      name: "vm02",
      memory: 256,
      cpus: 1,
      networks: [{ name: "lago-bench-vbackend", ip: "192.168.152.12" }],
      disks: [{ size: "64M", dev: "vdb" }],
      commands: [hostnameCommand("vm02"), "touch /root/built-by-lago", "printf 'built by lago' > /etc/motd"],
    },
  ];
  if (opts.vm03) machines.push(plain("vm03"));
  return machines;
}

class VagrantEnv {
  readonly env: Record<string, string>;
  readonly specFile: string;

  constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly rec: Recorder,
  ) {
    this.specFile = path.join(dir, "spec.json");
    this.env = {
      LAGO_BENCH_VAGRANT_SPEC: this.specFile,
      VAGRANT_HOME: path.join(VAGRANT_DIR, "home"),
      VAGRANT_CHECKPOINT_DISABLE: "1",
      VAGRANT_BOX_UPDATE_CHECK_DISABLE: "1",
      VAGRANT_DEFAULT_PROVIDER: "libvirt",
      VAGRANT_NO_PLUGINS_CHECK: "1",
      VAGRANT_SUPPRESS_PLUGIN_WARNINGS: "1",
    };
  }

  spec(machines: VagrantMachine[]): void {
    const spec = {
      box: VAGRANT_BOX,
      domain_type: process.env.LAGO_DOMAIN_TYPE ?? "qemu",
      pool: VAGRANT_POOL,
      prefix: this.prefix,
      // Away from lago's leases (192.168.200–255.x).
      management: { name: "lago-bench-vmgmt", address: "192.168.151.0/24" },
      machines,
    };
    writeFileSync(this.specFile, JSON.stringify(spec, null, 1));
  }

  run(args: string[]): Promise<Timed> {
    return timed("vagrant", [...args, "--no-color"], { cwd: this.dir, env: this.env });
  }

  async noop(): Promise<void> {
    await settle(this.rec);
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let i = 0; i < NOOP_RUNS; i++) {
      const r = failIfBad("vagrant status", await this.run(["status"]));
      walls.push(r.wallMs);
      cpus.push(r.cpuMs);
    }
    this.rec.result.noopAll = walls;
    this.rec.step("noop", { wallMs: median(walls), cpuMs: median(cpus) });
  }

  /** Removes whatever a failed run left: domains and volumes named with this run's prefix. */
  async sweep(): Promise<void> {
    const list = await virsh("list", "--all", "--name");
    for (const name of list.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith(this.prefix))) {
      await virsh("destroy", name);
      await virsh("undefine", name);
      this.rec.note(`cleanup: removed leftover domain ${name}`);
    }
    const vols = await virsh("vol-list", VAGRANT_POOL);
    for (const line of vols.stdout.split("\n")) {
      const vol = line.trim().split(/\s+/)[0];
      if (vol?.startsWith(this.prefix)) await virsh("vol-delete", "--pool", VAGRANT_POOL, vol);
    }
  }
}

async function ensurePool(): Promise<void> {
  const info = await virsh("pool-info", VAGRANT_POOL);
  if (info.code !== 0) {
    mkdirSync(VAGRANT_POOL_DIR, { recursive: true });
    await mustRun("virsh", ["-c", "qemu:///system", "-q", "pool-define-as", VAGRANT_POOL, "dir", "--target", VAGRANT_POOL_DIR]);
  }
  if (!/^State:\s+running/m.test((await virsh("pool-info", VAGRANT_POOL)).stdout)) {
    await mustRun("virsh", ["-c", "qemu:///system", "-q", "pool-start", VAGRANT_POOL]);
  }
}

async function boxUploaded(): Promise<boolean> {
  const vols = await virsh("vol-list", VAGRANT_POOL);
  return vols.stdout.split("\n").some((l) => l.trim().startsWith(`${VAGRANT_BOX}_vagrant_box_image`));
}

async function vagrantScenario(scenario: ScenarioName, rec: Recorder, runDir: string): Promise<void> {
  if (!existsSync(path.join(VAGRANT_DIR, "home", "boxes"))) throw new Error(`no Vagrant box in ${VAGRANT_DIR}/home: bench/vagrant/box.sh builds it (bench/side-by-side.ts runs it)`);
  await ensurePool();
  const dir = path.join(runDir, `${scenario}-vagrant`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "Vagrantfile"), readFileSync(VAGRANTFILE));
  const env = new VagrantEnv(dir, `lb${process.pid}_`, rec);
  teardown = async () => {
    await env.run(["destroy", "-f"]);
    await env.sweep();
  };
  try {
    if (!(await boxUploaded())) {
      // Warm Vagrant's store like lago's: the box is uploaded into the pool once, untimed.
      log("warming: uploading the box into the storage pool (untimed)");
      env.spec([vagrantMachines("ten")[0] ?? { name: "vm01", memory: 256, cpus: 1, commands: [] }]);
      failIfBad("vagrant up (warm-up)", await env.run(["up", "--no-provision"]));
      failIfBad("vagrant destroy (warm-up)", await env.run(["destroy", "-f"]));
    }
    env.spec(vagrantMachines(scenario));
    rec.step("up", failIfBad("vagrant up", await env.run(["up"])));
    await env.noop();
    if (scenario === "ten") {
      rec.step("destroy", failIfBad("vagrant destroy", await env.run(["destroy", "-f"])));
      return;
    }
    env.spec(vagrantMachines(scenario, { vm03: true }));
    rec.step("add", failIfBad("vagrant up vm03", await env.run(["up", "vm03"])));
    env.spec(vagrantMachines(scenario, { vm03: true, vm01Memory: 512 }));
    rec.step("memory", failIfBad("vagrant reload vm01", await env.run(["reload", "vm01"])));
    const mem = await maxMemoryKiB(`${env.prefix}vm01`);
    if (mem !== 512 * 1024) rec.note(`after vagrant reload, vm01's max memory is ${String(mem)} KiB, not ${512 * 1024}`);
    rec.step("destroy", failIfBad("vagrant destroy", await env.run(["destroy", "-f"])));
  } finally {
    if (existsSync(path.join(dir, ".vagrant", "machines"))) {
      const machines = readdirSync(path.join(dir, ".vagrant", "machines"));
      if (machines.some((m) => existsSync(path.join(dir, ".vagrant", "machines", m, "libvirt", "id")))) {
        const d = await env.run(["destroy", "-f"]);
        if (d.code !== 0) rec.note(`cleanup: vagrant destroy failed: ${d.stderr.trim().split("\n").slice(-3).join(" ")}`);
      }
    }
    await env.sweep();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const [scenario, tool, out] = process.argv.slice(2);
  if ((scenario !== "two" && scenario !== "ten") || (tool !== "lago" && tool !== "vagrant") || !out) {
    process.stderr.write("usage: node --import tsx bench/vm-scenario.ts two|ten lago|vagrant RESULT.json (inside scripts/testbed.sh run)\n");
    return 2;
  }
  const rec = new Recorder(scenario, tool);
  const runDir = path.join(BENCH_STATE, "runs", `${tool}-${scenario}-${process.pid}`);
  mkdirSync(runDir, { recursive: true });
  try {
    if (tool === "lago") await lagoScenario(scenario, rec, runDir);
    else await vagrantScenario(scenario, rec, runDir);
    rec.result.ok = true;
  } catch (err) {
    rec.result.error = err instanceof Error ? err.message : String(err);
    log(`FAILED: ${rec.result.error}`);
  } finally {
    rec.result.loadAfter = os.loadavg();
    writeFileSync(out, `${JSON.stringify(rec.result, null, 1)}\n`);
    rmSync(runDir, { recursive: true, force: true });
  }
  return rec.result.ok ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  process.exitCode = await main();
}
