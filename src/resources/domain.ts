/**
 * A persistent libvirt domain: started, and ready only when SSH answers with
 * the environment's key. Memory, vCPU and CPU changes redefine it in place and
 * wait for a restart (`apply --restart`); NICs and data disks are attached or
 * detached without recreating it.
 */
import path from "node:path";
import { envPaths, libvirtName, libvirtPrefix } from "../env/context.ts";
import { ProviderError } from "../errors.ts";
import type { DomainCpuDef, DomainDef, DomainDiskDef, DomainNicDef, SshTarget } from "../drivers/types.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { BOOTSTRAP_METHODS, bootstrapSpec, cloudInitSeed, firstLoginScript, publishedRootPassword, type BootstrapMethod, type BootstrapSpec } from "./bootstrap.ts";
import { dependency, ipIn, macForIp, macForKey, memo, obj, str } from "./common.ts";
import type { AttrChange, Attrs, Json, ReconcileContext, RecordedResource, ResourceKind } from "./types.ts";

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
      const disk = dependency(ctx, `disk.${vm}.${name}`).outputs;
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
}

function bootOf(ctx: ReconcileContext, attrs: Attrs): Boot | undefined {
  const vm = str(attrs.name, "name");
  for (const [name, v] of Object.entries(obj(attrs.disks))) {
    if (obj(v).kind !== "template") continue;
    const dep = ctx.deps.get(`disk.${vm}.${name}`);
    const spec = bootstrapSpec(dep?.attrs.bootstrap);
    const method = dep?.outputs.bootstrap_method;
    if (!dep || !spec || !(BOOTSTRAP_METHODS as readonly unknown[]).includes(method)) continue;
    return { spec, method: method as BootstrapMethod, templateImage: str(dep.outputs.template_image, "template image") };
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

/** Write the VM's cloud-init seed when it is bootstrapped that way. Idempotent (the seed is deterministic). */
async function writeSeed(ctx: ReconcileContext, attrs: Attrs): Promise<void> {
  const boot = bootOf(ctx, attrs);
  if (boot?.method !== "cloud-init") return;
  const publicKey = str(dependency(ctx, KEYPAIR).outputs.publicKey, "publicKey");
  await ctx.drivers.seeds.write(seedPath(ctx, str(attrs.name, "name")), cloudInitSeed(boot.spec, publicKey), { signal: ctx.signal });
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
 * gets its bootstrap: the cloud-init seed is (re)written before the start, or the
 * first SSH login runs; both converge after a crash at any point.
 */
async function bootAndWait(ctx: ReconcileContext, attrs: Attrs, prior: Attrs | undefined): Promise<Attrs> {
  const name = libvirtName(ctx.env, str(attrs.name, "name"));
  const pinned = typeof prior?.host_key === "string" ? prior.host_key : undefined;
  const target = sshTarget(ctx, attrs, pinned);
  const outputs: Attrs = { libvirt_name: name, ip: target?.host ?? null, host_key: pinned ?? null, pendingRestart: [] };
  const boot = bootOf(ctx, attrs);
  const timeoutMs = ctx.env.config.bootTimeout * 1000;
  return ctx.idle(async () => {
    await writeSeed(ctx, attrs);
    await ctx.drivers.libvirt.startDomain(name, { signal: ctx.signal });
    if (!target) return outputs;
    ctx.progress(`waiting for SSH on ${target.host}`);
    try {
      const firstKey = boot?.method === "ssh" && pinned === undefined ? await firstLogin(ctx, target, boot, timeoutMs) : undefined;
      outputs.host_key = await ctx.drivers.ssh.waitReady({ ...target, pinnedHostKey: firstKey ?? pinned }, timeoutMs, { signal: ctx.signal, progress: ctx.progress });
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw new ProviderError(ctx.address, `the VM started but SSH on ${target.host} did not answer: ${(err as Error).message}`, {
        cause: err,
        hint: `its serial console is logged to ${envPaths.consoleLog(ctx.env, str(attrs.name, "name"))}`,
      });
    }
    return outputs;
  });
}

function changedUnder(changes: AttrChange[], prefix: string): boolean {
  return changes.some((c) => c.path === prefix || c.path.startsWith(`${prefix}/`));
}

export const domainKind: ResourceKind = {
  kind: "domain",
  replaceOn: [
    { path: "/name", reason: "the VM is renamed" },
    { path: "/domain_type", reason: "the libvirt domain type changes" },
  ],
  restartOn: RESTART_PATHS,
  onDependencyReplaced: (dep, self) => {
    if (dep.kind === "disk") {
      const name = dep.address.split(".").slice(2).join(".");
      const disk = obj(obj(self.disks)[name]);
      return disk.kind === "template"
        ? { action: "replace", reason: `its disk ${dep.address} is replaced` }
        : { action: "update", reason: `its disk ${dep.address} is recreated and re-attached` };
    }
    if (dep.kind === "network") return { action: "update", reason: `${dep.address} is recreated: its NICs are re-attached` };
    return undefined;
  },
  async read(ctx, current) {
    const name = libvirtName(ctx.env, str(current.attrs.name, "name"));
    const all = await memo(ctx, `domains:${libvirtPrefix(ctx.env)}`, () => ctx.drivers.libvirt.listDomains(libvirtPrefix(ctx.env), { signal: ctx.signal }));
    const info = all.find((d) => d.name === name);
    if (!info) return undefined;
    const attrs: Attrs = { ...current.attrs, running: info.running, memory: info.memoryMiB, vcpu: info.vcpu };
    let nicPlans: NicPlan[] = [];
    try {
      nicPlans = nicDefs(ctx, current.attrs);
    } catch {
      // A network it uses is gone from the state: its NICs cannot be matched, nor its address known.
      nicPlans = [];
    }
    const ip = managementIp(current.attrs, nicPlans);
    // Ready means SSH answered once with the environment's key (its host key is pinned);
    // a VM whose create was interrupted before that is not.
    attrs.ready = info.running && (!ip || typeof current.outputs?.host_key === "string");
    // NICs and disks missing from the persistent config show as drift.
    const nics: { [k: string]: Json } = {};
    const macs = new Set(info.macs.map((m) => m.toLowerCase()));
    for (const [key, v] of Object.entries(obj(current.attrs.nics))) {
      const plan = nicPlans.find((n) => n.key === key);
      if (!plan || macs.has(plan.def.mac.toLowerCase())) nics[key] = v;
    }
    attrs.nics = nics;
    const disks: { [k: string]: Json } = {};
    for (const [key, v] of Object.entries(obj(current.attrs.disks))) if (info.devs.includes(String(obj(v).dev))) disks[key] = v;
    attrs.disks = disks;
    return { attrs, outputs: { ...(current.outputs ?? {}), libvirt_name: name, ip: ip ?? null }, healthy: true };
  },
  async create(ctx, desired) {
    await writeSeed(ctx, desired);
    await ctx.drivers.libvirt.defineDomain(definition(ctx, desired), { signal: ctx.signal });
    return bootAndWait(ctx, desired, undefined);
  },
  async update(ctx, desired, prior: RecordedResource, changes) {
    const lv = ctx.drivers.libvirt;
    const opts = { signal: ctx.signal };
    const name = libvirtName(ctx.env, str(desired.name, "name"));
    const reattachAll = (kind: "network" | "disk"): Set<string> =>
      new Set(changes.filter((c) => c.path.startsWith(`(dependency) ${kind}.`)).map((c) => c.path.slice("(dependency) ".length)));

    // NICs: detach what goes (or whose network was recreated), attach what comes.
    const recreatedNets = reattachAll("network");
    const priorNics = nicDefs(ctx, prior.attrs);
    const wantNics = nicDefs(ctx, desired);
    const wantMacs = new Map(wantNics.map((n) => [n.def.mac, n]));
    for (const n of priorNics) {
      const net = `network.${String(obj(obj(prior.attrs.nics)[n.key]).net)}`;
      if (!wantMacs.has(n.def.mac) || recreatedNets.has(net)) await lv.detachNic(name, n.def.mac, opts);
    }
    const priorMacs = new Set(priorNics.map((n) => n.def.mac));
    for (const n of wantNics) {
      const net = `network.${String(obj(obj(desired.nics)[n.key]).net)}`;
      if (!priorMacs.has(n.def.mac) || recreatedNets.has(net)) await lv.attachNic(name, n.def, opts);
    }

    // Data disks: the same, by dev.
    const recreatedDisks = reattachAll("disk");
    const vm = str(desired.name, "name");
    const priorDisks = Object.entries(obj(prior.attrs.disks)).map(([k, v]) => ({ name: k, dev: String(obj(v).dev) }));
    const wantDisks = diskDefs(ctx, desired);
    const wantDevs = new Map(wantDisks.map((d) => [d.dev, d]));
    for (const d of priorDisks) {
      if (!wantDevs.has(d.dev) || recreatedDisks.has(`disk.${vm}.${d.name}`)) await lv.detachDisk(name, d.dev, opts);
    }
    const priorDevs = new Set(priorDisks.map((d) => d.dev));
    for (const d of wantDisks) {
      if (!priorDevs.has(d.dev) || recreatedDisks.has(`disk.${vm}.${d.name}`)) await lv.attachDisk(name, d, opts);
    }

    // Everything else lives in the persistent definition.
    await lv.defineDomain(definition(ctx, desired), opts);
    const pendingBefore = Array.isArray(prior.outputs.pendingRestart) ? prior.outputs.pendingRestart.map(String) : [];
    const pending = new Set(pendingBefore);
    for (const p of RESTART_PATHS) if (changedUnder(changes, p)) pending.add(p.slice(1));
    const priorHostKey = typeof prior.outputs.host_key === "string" ? prior.outputs.host_key : null;
    if (prior.attrs.running !== true || prior.attrs.ready !== true) {
      // Stopped, or never confirmed ready: (re)start it and wait for SSH.
      return bootAndWait(ctx, desired, prior.outputs);
    }
    if (pending.size && ctx.restart) {
      ctx.progress(`restarting to apply ${[...pending].sort().join(", ")}`);
      await lv.stopDomain(name, ctx.env.config.shutdownTimeout * 1000, opts);
      return bootAndWait(ctx, desired, prior.outputs);
    }
    return { ...prior.outputs, libvirt_name: name, host_key: priorHostKey, pendingRestart: [...pending].sort() };
  },
  async delete(ctx, prior) {
    await ctx.drivers.libvirt.deleteDomain(libvirtName(ctx.env, str(prior.attrs.name, "name")), { signal: ctx.signal });
    await ctx.drivers.seeds.remove(seedPath(ctx, str(prior.attrs.name, "name")), { signal: ctx.signal });
  },
};
