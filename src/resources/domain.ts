/**
 * A persistent libvirt domain: started, and ready only when SSH answers with
 * the environment's key. Memory, vCPU and CPU changes redefine it in place and
 * wait for a restart (`apply --restart`); NICs and data disks are attached or
 * detached without recreating it.
 */
import { envPaths, libvirtName, libvirtPrefix } from "../env/context.ts";
import { ProviderError } from "../errors.ts";
import type { DomainCpuDef, DomainDef, DomainDiskDef, DomainNicDef, SshTarget } from "../drivers/types.ts";
import { KEYPAIR } from "../graph/compile.ts";
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

function cpuDef(attrs: Attrs): DomainCpuDef {
  const cpu = obj(attrs.cpu);
  if (cpu.mode === "model") return { mode: "model", model: str(cpu.model, "cpu model") };
  if (cpu.mode === "custom") return { mode: "custom", custom: obj(cpu.custom) as Record<string, unknown> };
  return { mode: "host-passthrough" };
}

function definition(ctx: ReconcileContext, attrs: Attrs): DomainDef {
  const vm = str(attrs.name, "name");
  return {
    name: libvirtName(ctx.env, vm),
    type: attrs.domain_type === "qemu" ? "qemu" : "kvm",
    memoryMiB: Number(attrs.memory),
    vcpu: Number(attrs.vcpu),
    cpu: cpuDef(attrs),
    disks: diskDefs(ctx, attrs),
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

/** Start (if needed) and wait for SSH; returns the outputs to record. */
async function bootAndWait(ctx: ReconcileContext, attrs: Attrs, prior: Attrs | undefined): Promise<Attrs> {
  const name = libvirtName(ctx.env, str(attrs.name, "name"));
  await ctx.drivers.libvirt.startDomain(name, { signal: ctx.signal });
  const pinned = typeof prior?.host_key === "string" ? prior.host_key : undefined;
  const target = sshTarget(ctx, attrs, pinned);
  const outputs: Attrs = { libvirt_name: name, ip: target?.host ?? null, host_key: pinned ?? null, pendingRestart: [] };
  if (!target) return outputs;
  ctx.progress(`waiting for SSH on ${target.host}`);
  try {
    outputs.host_key = await ctx.drivers.ssh.waitReady(target, ctx.env.config.bootTimeout * 1000, { signal: ctx.signal });
  } catch (err) {
    throw new ProviderError(ctx.address, `the VM started but SSH on ${target.host} did not answer: ${(err as Error).message}`, {
      cause: err,
      hint: `its serial console is logged to ${envPaths.consoleLog(ctx.env, str(attrs.name, "name"))}`,
    });
  }
  return outputs;
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
    if (dep.kind === "build") return { action: "replace", reason: `${dep.address} is redone on a fresh disk` };
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
  },
};
