/**
 * A persistent libvirt domain: started, and ready only when SSH answers with
 * the environment's key. Memory, vCPU and CPU changes redefine it in place and
 * wait for a restart (`apply --restart`); NICs and data disks are attached or
 * detached without recreating it, and re-attached when the network or data
 * disk they use is replaced or restarted (the VM keeps its identity and MACs).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { envPaths, libvirtName, libvirtPrefix } from "../env/context.ts";
import { ProviderError } from "../errors.ts";
import { reportedCpu } from "../drivers/cpu-report.ts";
import type { DomainCpuDef, DomainDef, DomainDiskDef, DomainNicDef, SshTarget } from "../drivers/types.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { BOOTSTRAP_METHODS, bootstrapSpec, cloudInitSeed, firstLoginScript, publishedRootPassword, type BootstrapMethod, type BootstrapSpec } from "./bootstrap.ts";
import { parseStatus, statusProbe } from "./first-boot.ts";
import { currentInventoryOf, dependency, diskAddress, inventoryOf, ipIn, macForIp, macForKey, obj, parseDiskAddress, str } from "./common.ts";
import type { Attrs, Json, ReconcileContext, RecordedResource, ResourceKind } from "./types.ts";
import type { DomainInfo, DomainView } from "../drivers/types.ts";
import { SNAPSHOTS, STOPPED_ON_PURPOSE } from "./domain-records.ts";

const RESTART_PATHS = ["/memory", "/vcpu", "/cpu"];

interface NicPlan {
  key: string;
  /** Position among the VM's NICs (the guest's ethN order). */
  index: number;
  def: DomainNicDef;
  ip: string | undefined;
}

function nicDefs(ctx: ReconcileContext, attrs: Attrs): NicPlan[] {
  const vm = str(attrs.name, "name");
  return Object.entries(obj(attrs.nics))
    .map(([key, v]): NicPlan => {
      const nic = obj(v);
      // An interface lago did not put there (found by refresh): known by its MAC only.
      if (typeof nic.mac === "string") return { key, index: Number.MAX_SAFE_INTEGER, ip: undefined, def: { mac: nic.mac, network: String(nic.libvirt_network ?? ""), mtu: undefined } };
      const network = dependency(ctx, `network.${str(nic.net, "net")}`).outputs;
      const subnet = typeof network.subnet === "string" ? network.subnet : undefined;
      const ip = subnet && typeof nic.host === "number" ? ipIn(subnet, nic.host) : undefined;
      return {
        key,
        index: Number(nic.index ?? 0),
        ip,
        def: {
          mac: ip ? macForIp(ip) : macForKey(ctx.env.id, vm, key),
          network: str(network.libvirt_name, "network libvirt_name"),
          mtu: typeof nic.mtu === "number" ? nic.mtu : undefined,
        },
      };
    })
    .sort((a, b) => a.index - b.index);
}

function diskDefs(ctx: ReconcileContext, attrs: Attrs): (DomainDiskDef & { name: string })[] {
  const vm = str(attrs.name, "name");
  return Object.entries(obj(attrs.disks))
    .map(([name, v]) => {
      const d = obj(v);
      const disk = typeof d.source === "string" ? { path: d.source } : dependency(ctx, diskAddress(vm, name)).outputs;
      return {
        name,
        dev: str(d.dev, "dev"),
        bus: d.bus === "scsi" ? ("scsi" as const) : d.bus === "ide" ? ("ide" as const) : ("virtio" as const),
        path: str(disk.path, "disk path"),
        format: d.format === "raw" ? ("raw" as const) : ("qcow2" as const),
        device: d.device === "cdrom" ? ("cdrom" as const) : ("disk" as const),
        boot: d.boot === true,
      };
    })
    .sort((a, b) => (a.boot === b.boot ? (a.dev < b.dev ? -1 : 1) : a.boot ? -1 : 1))
    .map(({ boot: _boot, ...rest }) => rest);
}

/** How the VM is bootstrapped, as its first template disk recorded it (disk.ts decides). */
interface Boot {
  spec: BootstrapSpec;
  method: BootstrapMethod;
  templateImage: string;
  /** Build steps the guest runs at its first boot, from the seed (resources/first-boot.ts). */
  build: { script: string; id: string } | undefined;
}

function bootOf(ctx: ReconcileContext, attrs: Attrs): Boot | undefined {
  const vm = str(attrs.name, "name");
  for (const [name, v] of Object.entries(obj(attrs.disks))) {
    if (obj(v).kind !== "template") continue;
    const dep = ctx.deps.get(diskAddress(vm, name));
    const spec = bootstrapSpec(dep?.attrs.bootstrap);
    const method = dep?.outputs.bootstrap_method;
    if (!dep || !spec || !(BOOTSTRAP_METHODS as readonly unknown[]).includes(method)) continue;
    const fb = obj(dep.outputs.first_boot_build);
    const build = typeof fb.script === "string" ? { script: fb.script, id: str(fb.id, "first-boot id") } : undefined;
    return { spec, method: method as BootstrapMethod, templateImage: str(dep.outputs.template_image, "template image"), build };
  }
  return undefined;
}

/** The cloud-init seed of a VM: a file of its own beside its disks. */
function seedPath(ctx: ReconcileContext, vm: string): string {
  return path.join(envPaths.vmDir(ctx.env, vm), "cidata.iso");
}

/** An IDE CD-ROM slot the VM's disks leave free (the `pc` machine has four). */
function seedDev(disks: DomainDiskDef[]): string | undefined {
  const used = new Set(disks.map((d) => d.dev));
  return ["hdc", "hdd", "hdb", "hda"].find((d) => !used.has(d));
}

function seedDisk(ctx: ReconcileContext, attrs: Attrs, disks: DomainDiskDef[]): DomainDiskDef | undefined {
  if (bootOf(ctx, attrs)?.method !== "cloud-init") return undefined;
  const dev = seedDev(disks);
  if (!dev) throw new ProviderError(ctx.address, "no IDE slot (hda–hdd) is free for the cloud-init seed CD-ROM");
  return { dev, bus: "ide", path: seedPath(ctx, str(attrs.name, "name")), format: "raw", device: "cdrom" };
}

/**
 * Write the VM's cloud-init seed when it is bootstrapped that way, before each definition that names it.
 * Idempotent (the seed is deterministic).
 */
async function writeSeed(ctx: ReconcileContext, attrs: Attrs): Promise<void> {
  const boot = bootOf(ctx, attrs);
  if (boot?.method !== "cloud-init") return;
  const publicKey = str(dependency(ctx, KEYPAIR).outputs.publicKey, "publicKey");
  let bootcmd: string | undefined;
  if (boot.build) {
    try {
      bootcmd = await readFile(boot.build.script, "utf8");
    } catch (err) {
      throw new ProviderError(ctx.address, `cannot read its first-boot build script: ${(err as Error).message}`, { cause: err, hint: "lago apply replaces a build whose script is missing" });
    }
  }
  await ctx.drivers.seeds.write(seedPath(ctx, str(attrs.name, "name")), cloudInitSeed(boot.spec, publicKey, bootcmd), { signal: ctx.signal });
}

function cpuDef(attrs: Attrs): DomainCpuDef {
  const cpu = obj(attrs.cpu);
  if (cpu.mode === "model") return { mode: "model", model: str(cpu.model, "cpu model") };
  if (cpu.mode === "custom") return { mode: "custom", custom: obj(cpu.custom) as Record<string, unknown> };
  return { mode: "host-passthrough" };
}

function definition(ctx: ReconcileContext, attrs: Attrs): DomainDef {
  const vm = str(attrs.name, "name");
  const disks = diskDefs(ctx, attrs);
  const seed = seedDisk(ctx, attrs, disks);
  return {
    name: libvirtName(ctx.env, vm),
    type: attrs.domain_type === "qemu" ? "qemu" : "kvm",
    memoryMiB: Number(attrs.memory),
    vcpu: Number(attrs.vcpu),
    cpu: cpuDef(attrs),
    disks: seed ? [...disks, seed] : disks,
    nics: nicDefs(ctx, attrs).map((n) => n.def),
    consoleLog: envPaths.consoleLog(ctx.env, vm),
    metadata: JSON.stringify({ address: ctx.address, env: ctx.env.id, attrs }),
    runAs: ctx.env.config.qemuUser === "invoking" ? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 } : undefined,
  };
}

/** The address of the VM's management NIC, if that net has addresses. */
function managementIp(attrs: Attrs, nics: NicPlan[]): string | undefined {
  const key = typeof attrs.management_nic === "string" ? attrs.management_nic : undefined;
  return nics.find((n) => n.key === key)?.ip;
}

function sshTarget(ctx: ReconcileContext, attrs: Attrs, pinned: string | undefined): SshTarget | undefined {
  const ip = managementIp(attrs, nicDefs(ctx, attrs));
  if (!ip) return undefined;
  return {
    host: ip,
    port: 22,
    user: str(attrs.ssh_user, "ssh_user"),
    privateKeyPath: str(dependency(ctx, KEYPAIR).outputs.privateKeyPath, "privateKeyPath"),
    pinnedHostKey: pinned,
  };
}

/**
 * How to reach a VM recorded in the state (for `lago ssh`): its management
 * address, user, the environment's key and the host key pinned at first contact.
 */
export function recordedSshTarget(domain: RecordedResource, keypair: RecordedResource): SshTarget | undefined {
  const ip = domain.outputs.ip;
  if (typeof ip !== "string") return undefined;
  return {
    host: ip,
    port: 22,
    user: str(domain.attrs.ssh_user, "ssh_user"),
    privateKeyPath: str(keypair.outputs.privateKeyPath, "privateKeyPath"),
    pinnedHostKey: typeof domain.outputs.host_key === "string" ? domain.outputs.host_key : undefined,
  };
}

/**
 * The first login of a VM bootstrapped over SSH: as root, with the key if an earlier,
 * interrupted attempt already installed it, else with the template's published
 * `root-password` (or the VM's own, if an interrupted attempt already set it), then
 * the bootstrap script. Idempotent. Returns the host key seen, for pinning.
 */
async function firstLogin(ctx: ReconcileContext, target: SshTarget, boot: Boot, timeoutMs: number): Promise<string> {
  const published = publishedRootPassword(await ctx.drivers.templates.metadataOf(boot.templateImage));
  const passwords = [...new Set([published, boot.spec.root_password ?? undefined].filter((p): p is string => p !== undefined && p !== ""))];
  if (!passwords.length) {
    throw new ProviderError(ctx.address, `cannot bootstrap over SSH: the template publishes no root-password in ${boot.templateImage}.metadata`, {
      hint: "bootstrap with a cloud-init seed or virt-customize instead: set [lago] bootstrap (LAGO_BOOTSTRAP) to cloud-init or virt-customize",
    });
  }
  const root: SshTarget = { ...target, user: "root", passwords };
  const login = await ctx.drivers.ssh.waitLogin(root, timeoutMs, { signal: ctx.signal, progress: ctx.progress });
  if (login.credential >= 0 || target.user !== "root") {
    ctx.progress(`first login as root with ${login.credential >= 0 ? "the template's published password" : "the key"}: installing the key, setting the host name${boot.spec.root_password === null ? "" : " and the root password"}`);
    const { command, input } = firstLoginScript(boot.spec, str(dependency(ctx, KEYPAIR).outputs.publicKey, "publicKey"));
    const r = await ctx.drivers.ssh.exec({ ...root, pinnedHostKey: login.hostKey }, command, { signal: ctx.signal, timeoutMs: 120_000, ...(input === undefined ? {} : { input }) });
    if (r.code !== 0) {
      throw new ProviderError(ctx.address, `the bootstrap script run over SSH as root on ${target.host} exited with ${r.code}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ""}`);
    }
  }
  return login.hostKey;
}

/**
 * Start (if needed) and wait for SSH; returns the outputs to record. The whole wait
 * runs in `ctx.idle`: booting VMs cost the apply no parallelism slot, so every VM
 * of an environment boots at once. A VM never confirmed ready (no host key pinned)
 * gets its bootstrap: the cloud-init seed its definition names (written with it), or
 * the first SSH login; both converge after a crash at any point.
 */
async function bootAndWait(ctx: ReconcileContext, attrs: Attrs, prior: Attrs | undefined): Promise<Attrs> {
  const name = libvirtName(ctx.env, str(attrs.name, "name"));
  const pinned = typeof prior?.host_key === "string" ? prior.host_key : undefined;
  const target = sshTarget(ctx, attrs, pinned);
  const outputs: Attrs = { libvirt_name: name, ip: target?.host ?? null, host_key: pinned ?? null, pendingRestart: [] };
  // Snapshots live in the VM's disks and survive a restart.
  if (prior?.[SNAPSHOTS] !== undefined) outputs[SNAPSHOTS] = prior[SNAPSHOTS];
  const boot = bootOf(ctx, attrs);
  return ctx.idle(async () => {
    await ctx.drivers.libvirt.startDomain(name, { signal: ctx.signal });
    if (!target) return outputs;
    const first = boot?.method === "ssh" && pinned === undefined ? (timeoutMs: number) => firstLogin(ctx, target, boot, timeoutMs) : undefined;
    // Never confirmed ready: its first-boot build, if any, must have run (the first login reads its status).
    const probe = boot?.build && pinned === undefined ? statusProbe(boot.build.id) : undefined;
    const ready = await waitForSsh(ctx, attrs, target, "the VM started", undefined, first, probe);
    if (probe !== undefined) checkFirstBootBuild(ctx, ready.output ?? "");
    outputs.host_key = ready.hostKey;
    return outputs;
  });
}

/** Fails the VM's create when its first-boot build did not run, or failed: the step and the end of its output. */
function checkFirstBootBuild(ctx: ReconcileContext, output: string): void {
  const status = parseStatus(output);
  if (status.state === "ok") return;
  const hint = "fix the step in the init file and apply again (the disk is made afresh), or run its build offline: [lago] build = offline (LAGO_BUILD)";
  if (status.state === "missing") {
    throw new ProviderError(ctx.address, "its build steps did not run at first boot: the guest's cloud-init ignored the seed's bootcmd", { hint });
  }
  throw new ProviderError(ctx.address, `its build failed at first boot, in the guest: ${status.message}${status.log ? `\n${status.log}` : ""}`, { hint });
}

/**
 * Wait until SSH answers on `target` (the host key pinned when known); resolves the host key and what `probe`
 * (a command to run at the login, instead of `true`) printed. `after`: what just happened, and `hint`: what to
 * check (default: the serial console's log), for the error. `first`: a first login to run before (the SSH
 * bootstrap), which resolves the host key it met.
 */
async function waitForSsh(
  ctx: ReconcileContext,
  attrs: Attrs,
  target: SshTarget,
  after: string,
  hint?: string,
  first?: (timeoutMs: number) => Promise<string>,
  probe?: string,
): Promise<{ hostKey: string; output?: string | undefined }> {
  const timeoutMs = ctx.env.config.bootTimeout * 1000;
  ctx.progress(`waiting for SSH on ${target.host}`);
  try {
    const firstKey = first ? await first(timeoutMs) : undefined;
    const ready = firstKey === undefined ? target : { ...target, pinnedHostKey: firstKey };
    if (probe === undefined) return { hostKey: await ctx.drivers.ssh.waitReady(ready, timeoutMs, { signal: ctx.signal, progress: ctx.progress }) };
    return await ctx.drivers.ssh.waitLogin({ ...ready, passwords: undefined }, timeoutMs, { signal: ctx.signal, progress: ctx.progress, probe });
  } catch (err) {
    if (err instanceof ProviderError) throw err;
    throw new ProviderError(ctx.address, `${after} but SSH on ${target.host} did not answer: ${(err as Error).message}`, {
      cause: err,
      hint: hint ?? `its serial console is logged to ${envPaths.consoleLog(ctx.env, str(attrs.name, "name"))}`,
    });
  }
}

/**
 * What libvirt reports for a CPU configured as `attrs.cpu` (libvirt names a
 * CPU model's mode `custom`); undefined when lago leaves the CPU to the
 * hypervisor (TCG without a model: libvirt fills in its default, e.g.
 * `custom`/`qemu64`, which is not drift).
 */
function expectedCpu(attrs: Attrs): { mode: string; model: string | undefined } | undefined {
  const cpu = cpuDef(attrs);
  const type = attrs.domain_type === "qemu" ? "qemu" : "kvm";
  // TCG without a model: libvirt's default, which is not lago's to check.
  if (cpu.mode === "host-passthrough" && type === "qemu") return undefined;
  return reportedCpu(cpu, type);
}

const sameCpu = (a: { mode: string; model: string | undefined }, b: { mode: string; model: string | undefined }): boolean => a.mode === b.mode && (a.model ?? "") === (b.model ?? "");

/** The configuration fields whose running value differs from the persistent one: they wait for a restart. */
function pendingRestart(info: DomainInfo): string[] {
  const live = info.live;
  if (!info.running || !live) return [];
  const pending: string[] = [];
  if (live.memoryMiB !== info.config.memoryMiB) pending.push("memory");
  if (live.vcpu !== info.config.vcpu) pending.push("vcpu");
  if (!sameCpu(live.cpu, info.config.cpu)) pending.push("cpu");
  if (diskSet(live.disks) !== diskSet(info.config.disks)) pending.push("disks");
  return pending;
}

/** A domain's disks by device and source, for comparing the running instance with a definition. */
function diskSet(disks: readonly { dev: string; path: string | undefined; device: string; format: string | undefined; bus: string | undefined }[]): string {
  return disks
    .map((d) => `${d.dev}=${d.path ?? ""}:${d.device}:${d.format ?? ""}:${d.bus ?? ""}`)
    .sort()
    .join(",");
}

/**
 * The attributes reality shows, in the recorded attributes' shape: a NIC is
 * matched by its MAC, a disk by its device; a NIC on another network, with
 * another MTU, or a disk with another source shows as a change; interfaces
 * and disks lago did not put there show under `~<mac>` / `~<dev>` keys, so
 * that an update removes them. libvirt's own spellings do not count.
 */
function observedAttrs(ctx: ReconcileContext, recorded: Attrs, info: DomainInfo): Attrs {
  const config: DomainView = info.config;
  const attrs: Attrs = { ...recorded, running: info.running, memory: config.memoryMiB, vcpu: config.vcpu };
  const cpu = expectedCpu(recorded);
  if (cpu && !sameCpu(config.cpu, cpu)) attrs.cpu = { mode: "observed", libvirt_mode: config.cpu.mode, model: config.cpu.model ?? null };
  let nicPlans: NicPlan[] | undefined;
  try {
    nicPlans = nicDefs(ctx, recorded);
  } catch {
    // A network it uses is gone from the state: its NICs cannot be matched.
    nicPlans = undefined;
  }
  if (nicPlans) {
    const nics: { [k: string]: Json } = {};
    const recordedNics = obj(recorded.nics);
    const netName = (libvirtNetwork: string | undefined): string | null => (libvirtNetwork?.startsWith(libvirtPrefix(ctx.env)) ? libvirtNetwork.slice(libvirtPrefix(ctx.env).length) : (libvirtNetwork ?? null));
    const matched = new Set<string>();
    for (const plan of nicPlans) {
      const real = config.nics.find((n) => n.mac.toLowerCase() === plan.def.mac.toLowerCase());
      if (!real) continue;
      matched.add(real.mac.toLowerCase());
      const entry = obj(recordedNics[plan.key]);
      const moved = real.network !== plan.def.network || (real.mtu ?? null) !== (plan.def.mtu ?? null);
      nics[plan.key] = moved ? { ...entry, net: netName(real.network), mtu: real.mtu ?? null } : entry;
    }
    for (const real of config.nics) {
      if (!matched.has(real.mac.toLowerCase())) nics[`~${real.mac.toLowerCase()}`] = { mac: real.mac.toLowerCase(), libvirt_network: real.network ?? null, net: netName(real.network) };
    }
    attrs.nics = nics;
  }
  let expected: (DomainDiskDef & { name: string })[] | undefined;
  try {
    expected = diskDefs(ctx, recorded);
  } catch {
    expected = undefined;
  }
  if (expected) {
    const disks: { [k: string]: Json } = {};
    const recordedDisks = obj(recorded.disks);
    for (const want of expected) {
      const real = config.disks.find((d) => d.dev === want.dev);
      if (!real) continue;
      const entry = obj(recordedDisks[want.name]);
      const realFormat = real.format === "raw" || real.format === "qcow2" ? real.format : real.format;
      const differs = real.path !== want.path || (realFormat ?? want.format) !== want.format || (real.bus ?? want.bus) !== want.bus || real.device !== want.device;
      disks[want.name] = differs ? { ...entry, source: real.path ?? null, format: realFormat ?? null, bus: real.bus ?? null, device: real.device } : entry;
    }
    for (const real of config.disks) {
      // Devices lago's own definition adds (such as a seed CD-ROM) are not disks of the spec.
      if (real.device !== "disk" || expected.some((w) => w.dev === real.dev)) continue;
      disks[`~${real.dev}`] = { dev: real.dev, source: real.path ?? null, format: real.format ?? null, bus: real.bus ?? null, device: real.device, boot: false, kind: "data" };
    }
    attrs.disks = disks;
  }
  return attrs;
}

/**
 * The recorded NICs with the MACs the domain really has them under. A NIC's MAC comes from its address in its
 * net's subnet when it was plugged; the net may have moved to another subnet since (earlier in this apply), so
 * a recorded NIC whose computed MAC the domain lacks is the domain's NIC on that network no other one claims.
 */
async function pluggedNics(ctx: ReconcileContext, name: string, recorded: NicPlan[]): Promise<NicPlan[]> {
  const info = (await inventoryOf(ctx)).domains.get(name);
  if (!info) return recorded;
  const present = (info.live ?? info.config).nics.map((p) => ({ mac: p.mac.toLowerCase(), network: p.network }));
  const has = (mac: string): boolean => present.some((p) => p.mac === mac.toLowerCase());
  const claimed = new Set(recorded.map((n) => n.def.mac.toLowerCase()).filter(has));
  return recorded.map((n) => {
    if (has(n.def.mac)) return n;
    const other = present.find((p) => p.network === n.def.network && !claimed.has(p.mac));
    if (!other) return n;
    claimed.add(other.mac);
    return { ...n, def: { ...n.def, mac: other.mac } };
  });
}

/**
 * Detach what goes and attach what comes, NICs by MAC and disks by device; a changed one is detached, then
 * attached. Resolves the MACs of the NICs it attached. IDE disks are left alone: QEMU cannot plug them into a
 * running VM, so they change in the definition only (written next) and wait for a restart.
 */
async function converge(ctx: ReconcileContext, name: string, prior: Attrs, desired: Attrs): Promise<Set<string>> {
  const lv = ctx.drivers.libvirt;
  const opts = { signal: ctx.signal };
  const nicSig = (n: NicPlan): string => `${n.def.mac.toLowerCase()}|${n.def.network}|${n.def.mtu ?? ""}`;
  const priorNics = await pluggedNics(ctx, name, nicDefs(ctx, prior));
  const wantNics = nicDefs(ctx, desired);
  const wantSigs = new Set(wantNics.map(nicSig));
  const priorSigs = new Set(priorNics.map(nicSig));
  for (const n of priorNics) if (!wantSigs.has(nicSig(n))) await lv.detachNic(name, n.def.mac, opts);
  const attached = new Set<string>();
  for (const n of wantNics) {
    if (priorSigs.has(nicSig(n))) continue;
    await lv.attachNic(name, n.def, opts);
    attached.add(n.def.mac.toLowerCase());
  }

  const diskSig = (d: DomainDiskDef): string => `${d.dev}|${d.path}|${d.format}|${d.bus}|${d.device}`;
  const priorDisks = diskDefs(ctx, prior);
  const wantDisks = diskDefs(ctx, desired);
  const wantDiskSigs = new Set(wantDisks.map(diskSig));
  const priorDiskSigs = new Set(priorDisks.map(diskSig));
  for (const d of priorDisks) if (d.bus !== "ide" && !wantDiskSigs.has(diskSig(d))) await lv.detachDisk(name, d.dev, opts);
  for (const d of wantDisks) if (d.bus !== "ide" && !priorDiskSigs.has(diskSig(d))) await lv.attachDisk(name, d, opts);
  return attached;
}

export const domainKind: ResourceKind = {
  kind: "domain",
  // A boot to SSH.
  typicalMs: 10_000,
  replaceOn: [
    { path: "/name", reason: "the VM is renamed" },
    { path: "/domain_type", reason: "the libvirt domain type changes" },
  ],
  restartOn: RESTART_PATHS,
  // IDE disks cannot be plugged into a running VM, and the disk that carries Lago's bootstrap decides whether
  // (and in which IDE slot) the VM has a seed CD-ROM: their changes wait for a restart.
  restartWhen: (change, before, after) => {
    const name = /^\/disks\/([^/]+)/.exec(change.path)?.[1];
    if (name === undefined) return false;
    return [before, after].some((a) => {
      const d = obj(obj(a.disks)[name.replaceAll("~1", "/").replaceAll("~0", "~")]);
      return d.bus === "ide" || (d.boot === true && d.kind === "template");
    });
  },
  onDependencyDisrupted: (dep, self) => {
    if (dep.kind === "disk") {
      const disk = obj(obj(self.disks)[parseDiskAddress(dep.address).disk]);
      return disk.kind === "template"
        ? { action: "replace", reason: `its disk ${dep.address} is replaced` }
        : { action: "reattach", reason: `its disk ${dep.address} is detached while it is recreated, then attached again` };
    }
    if (dep.kind === "network") {
      return {
        action: "reattach",
        reason: `its NICs on ${dep.address} are detached while the network is ${dep.how === "replace" ? "recreated" : "restarted"}, then attached again (same MACs)`,
      };
    }
    return undefined;
  },
  withoutDependency(attrs, dep) {
    if (dep.startsWith("network.")) {
      const net = dep.slice("network.".length);
      return { ...attrs, nics: Object.fromEntries(Object.entries(obj(attrs.nics)).filter(([, v]) => obj(v).net !== net)) };
    }
    if (dep.startsWith("disk.")) {
      const { disk } = parseDiskAddress(dep);
      return { ...attrs, disks: Object.fromEntries(Object.entries(obj(attrs.disks)).filter(([k]) => k !== disk)) };
    }
    return attrs;
  },
  async read(ctx, current) {
    const name = libvirtName(ctx.env, str(current.attrs.name, "name"));
    const info = (await inventoryOf(ctx)).domains.get(name);
    if (!info) return undefined;
    const attrs = observedAttrs(ctx, current.attrs, info);
    let ip: string | undefined;
    try {
      ip = managementIp(current.attrs, nicDefs(ctx, current.attrs));
    } catch {
      ip = undefined;
    }
    // Ready means SSH answered once with the environment's key (its host key is pinned);
    // a VM whose create was interrupted before that is not.
    attrs.ready = info.running && (!ip || typeof current.outputs?.host_key === "string");
    return { attrs, outputs: { ...(current.outputs ?? {}), libvirt_name: name, ip: ip ?? null, pendingRestart: pendingRestart(info) }, healthy: true };
  },
  async create(ctx, desired) {
    await writeSeed(ctx, desired);
    try {
      await ctx.drivers.libvirt.defineDomain(definition(ctx, desired), { signal: ctx.signal, expectNew: true });
    } catch (err) {
      // Nothing names the seed yet: it goes, so that a VM never defined leaves no file behind.
      await ctx.drivers.seeds.remove(seedPath(ctx, str(desired.name, "name")), { signal: ctx.signal }).catch(() => undefined);
      throw err;
    }
    if (desired.running === false) {
      // Stopped on purpose (`lago stop`): defined, started by `lago start`.
      return { libvirt_name: libvirtName(ctx.env, str(desired.name, "name")), ip: null, host_key: null, pendingRestart: [], [STOPPED_ON_PURPOSE]: true };
    }
    return bootAndWait(ctx, desired, undefined);
  },
  async update(ctx, desired, prior: RecordedResource, changes) {
    const lv = ctx.drivers.libvirt;
    const opts = { signal: ctx.signal };
    const name = libvirtName(ctx.env, str(desired.name, "name"));
    const attached = await converge(ctx, name, prior.attrs, desired);
    // Everything else lives in the persistent definition (with the seed it names, whose bootstrap may have changed).
    const def = definition(ctx, desired);
    const seedFile = seedPath(ctx, str(desired.name, "name"));
    await writeSeed(ctx, desired);
    await lv.defineDomain(def, opts);
    // A VM that no longer gets a seed (its boot disk changed) lets its file go; a running one keeps it open until it restarts.
    if (!def.disks.some((d) => d.path === seedFile)) await ctx.drivers.seeds.remove(seedFile, opts);
    const pending = new Set(Array.isArray(prior.outputs.pendingRestart) ? prior.outputs.pendingRestart.map(String) : []);
    for (const p of RESTART_PATHS) if (changes.some((c) => c.path === p || c.path.startsWith(`${p}/`))) pending.add(p.slice(1));
    // IDE devices (user disks on hdX, the seed CD-ROM) change in the definition only: the running instance's
    // (which nothing here plugs or unplugs) differ from the new definition's until a restart.
    // Read now: an earlier step of this apply may have restarted the VM (a release letting go of its old boot disk).
    const live = (await currentInventoryOf(ctx)).domains.get(name)?.live;
    const ide = (disks: Parameters<typeof diskSet>[0]): string => diskSet(disks.filter((d) => d.bus === "ide"));
    if (live && ide(live.disks) !== ide(def.disks)) pending.add("disks");
    const priorHostKey = typeof prior.outputs.host_key === "string" ? prior.outputs.host_key : null;
    // A running VM whose management net gained addresses (a bridge became a NAT net) never answered SSH there.
    const gainsAddress = prior.attrs.running === true && priorHostKey === null && managementIp(desired, nicDefs(ctx, desired)) !== undefined;
    // First, even for a VM never confirmed ready: waiting for SSH on the running instance would miss what
    // only its next boot gets (a new boot disk's seed, with the first-boot build the wait checks for).
    if (prior.attrs.running === true && pending.size && ctx.restart) {
      ctx.progress(`restarting to apply ${[...pending].sort().join(", ")}`);
      await lv.stopDomain(name, ctx.env.config.shutdownTimeout * 1000, opts);
      return bootAndWait(ctx, desired, prior.outputs);
    }
    if (desired.running === true && (prior.attrs.running !== true || prior.attrs.ready !== true || gainsAddress)) {
      // Stopped, or never confirmed ready: (re)start it and wait for SSH.
      const outputs = await bootAndWait(ctx, desired, prior.outputs);
      // Started before, not restarted now: what waited for a restart still does.
      return prior.attrs.running === true ? { ...outputs, pendingRestart: [...pending].sort() } : outputs;
    }
    let ip: string | null = null;
    try {
      ip = managementIp(desired, nicDefs(ctx, desired)) ?? null;
    } catch {
      ip = null;
    }
    // Its management NIC was plugged in again (its network restarted or was recreated): ready when SSH answers again.
    if (prior.attrs.running === true && desired.running === true && ip !== null && attached.has(macForIp(ip).toLowerCase())) {
      const target = sshTarget(ctx, desired, priorHostKey ?? undefined);
      if (target) {
        await waitForSsh(ctx, desired, target, "its management NIC was plugged in again", "the guest must configure a NIC plugged in while it runs (DHCP on hotplug, as udev/NetworkManager do)");
      }
    }
    return { ...prior.outputs, libvirt_name: name, ip, host_key: priorHostKey, pendingRestart: prior.attrs.running === true ? [...pending].sort() : [] };
  },
  // The seed first: a delete that fails after it leaves the domain, which the next apply deletes again (and
  // a domain kept after all gets its seed back before its next definition); the other way round, a seed
  // whose domain is gone would be forgotten.
  async delete(ctx, prior) {
    await ctx.drivers.seeds.remove(seedPath(ctx, str(prior.attrs.name, "name")), { signal: ctx.signal });
    await ctx.drivers.libvirt.deleteDomain(libvirtName(ctx.env, str(prior.attrs.name, "name")), { signal: ctx.signal });
  },
};
