/**
 * The environment as the state records it, seen from the everyday verbs: its
 * VMs (libvirt name, NICs with addresses, disks, how to reach them over SSH),
 * nets and templates. Pure: reads the state, touches nothing.
 */
import { UsageError } from "../errors.ts";
import { envPaths, libvirtName, type EnvContext } from "../env/context.ts";
import type { SshTarget } from "../drivers/types.ts";
import { readState, type State } from "../state/state.ts";
import type { RecordedResource } from "../resources/types.ts";
import { diskAddress, ipIn, macForIp, macForKey, obj } from "../resources/common.ts";
import { isStoppedOnPurpose, recordedSnapshots, type SnapshotRecord } from "../resources/domain-records.ts";

export interface NicView {
  /** `<net>#<n>`. */
  key: string;
  net: string;
  /** Position among the VM's NICs: the guest's `eth<index>`. */
  index: number;
  ip: string | undefined;
  mac: string;
}

export interface DiskView {
  name: string;
  /** The image file. */
  path: string;
  format: string;
  /** `template`, `file` or `empty`. */
  type: string;
  dev: string;
  /** Address of the template it is an overlay on. */
  template: string | undefined;
  /** An image the init file names by path: used in place, not owned by lago. */
  external: boolean;
}

export interface VmView {
  name: string;
  address: string;
  libvirtName: string;
  nics: NicView[];
  disks: DiskView[];
  /** How to reach it over SSH, when it has an address on a management net. */
  ssh: SshTarget | undefined;
  pendingRestart: string[];
  stoppedOnPurpose: boolean;
  snapshots: Map<string, SnapshotRecord>;
  record: RecordedResource;
}

export interface NetView {
  name: string;
  address: string;
  libvirtName: string;
  type: string;
  management: boolean;
  bridge: string;
  /** e.g. `192.168.201.0/24`, or undefined for a bridge net without addresses. */
  subnet: string | undefined;
  gateway: string | undefined;
}

export interface TemplateView {
  address: string;
  /** The image in the store (or the local image a path template names). */
  path: string | undefined;
}

export interface EnvView {
  env: EnvContext;
  vms: VmView[];
  nets: NetView[];
  templates: TemplateView[];
  /** The environment's SSH private key, once created. */
  privateKeyPath: string | undefined;
}

const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function text(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** The view of the environment's recorded state (read from its state file). */
export function readView(ctx: { env: EnvContext }): EnvView {
  return envView(ctx.env, readState(envPaths.state(ctx.env)));
}

/** Build the view of `state`. Pure. */
export function envView(env: EnvContext, state: State): EnvView {
  const r = state.resources;
  const privateKeyPath = text(r.get("keypair")?.outputs.privateKeyPath);
  const subnets = new Map<string, string>();
  const nets: NetView[] = [];
  for (const rec of r.values()) {
    if (rec.kind !== "network") continue;
    const name = String(rec.attrs.net);
    const subnet = text(rec.outputs.subnet) ?? text(r.get(`lease.${name}`)?.outputs.subnet);
    if (subnet) subnets.set(name, subnet);
    nets.push({
      name,
      address: rec.address,
      libvirtName: text(rec.outputs.libvirt_name) ?? libvirtName(env, name),
      type: String(rec.attrs.type),
      management: rec.attrs.management === true,
      bridge: text(rec.outputs.bridge) ?? "",
      subnet: subnet ? `${subnet}/24` : undefined,
      gateway: subnet && typeof rec.attrs.gateway === "number" ? ipIn(subnet, rec.attrs.gateway) : undefined,
    });
  }
  const vms: VmView[] = [];
  for (const rec of r.values()) {
    if (rec.kind !== "domain") continue;
    const name = String(rec.attrs.name);
    const nics: NicView[] = Object.entries(obj(rec.attrs.nics))
      .map(([key, v]) => {
        const nic = obj(v);
        const net = String(nic.net);
        const subnet = subnets.get(net);
        const ip = subnet && typeof nic.host === "number" ? ipIn(subnet, nic.host) : undefined;
        return { key, net, index: Number(nic.index ?? 0), ip, mac: ip ? macForIp(ip) : macForKey(env.id, name, key) };
      })
      .sort((a, b) => a.index - b.index);
    const disks: DiskView[] = Object.entries(obj(rec.attrs.disks))
      .map(([diskName, v]) => {
        const d = obj(v);
        const disk = r.get(diskAddress(name, diskName));
        return {
          name: diskName,
          path: text(disk?.outputs.path) ?? "",
          format: text(disk?.attrs.format) ?? text(d.format) ?? "qcow2",
          type: text(disk?.attrs.type) ?? "",
          dev: String(d.dev),
          template: text(disk?.attrs.template),
          external: typeof disk?.attrs.path === "string",
        };
      })
      .sort((a, b) => (a.dev < b.dev ? -1 : 1));
    const ip = text(rec.outputs.ip);
    const mgmtKey = text(rec.attrs.management_nic);
    const mgmtIp = ip ?? nics.find((n) => n.key === mgmtKey)?.ip;
    vms.push({
      name,
      address: rec.address,
      libvirtName: text(rec.outputs.libvirt_name) ?? libvirtName(env, name),
      nics,
      disks,
      ssh:
        mgmtIp && privateKeyPath
          ? { host: mgmtIp, port: 22, user: text(rec.attrs.ssh_user) ?? "root", privateKeyPath, pinnedHostKey: text(rec.outputs.host_key) }
          : undefined,
      pendingRestart: Array.isArray(rec.outputs.pendingRestart) ? rec.outputs.pendingRestart.map(String) : [],
      stoppedOnPurpose: isStoppedOnPurpose(rec),
      snapshots: recordedSnapshots(rec),
      record: rec,
    });
  }
  const templates: TemplateView[] = [...r.values()]
    .filter((t) => t.kind === "template")
    .map((t) => ({ address: t.address, path: text(t.outputs.path) ?? text(t.attrs.path) }))
    .sort((a, b) => (a.address < b.address ? -1 : 1));
  return { env, vms: vms.sort(byName), nets: nets.sort(byName), templates, privateKeyPath };
}

/**
 * The VMs named (all of them when `names` is empty), in the environment's
 * order. An unknown name is a usage error that lists the VMs there are.
 */
export function selectVms(view: EnvView, names: readonly string[]): VmView[] {
  if (!view.vms.length) {
    throw new UsageError(`environment ${view.env.name} has no VMs`, { hint: "create them with `lago apply`" });
  }
  if (!names.length) return view.vms;
  const unknown = names.filter((n) => !view.vms.some((v) => v.name === n));
  if (unknown.length) {
    throw new UsageError(`no VM ${unknown.join(", ")} in environment ${view.env.name}`, { hint: `its VMs: ${view.vms.map((v) => v.name).join(", ")}` });
  }
  return view.vms.filter((v) => names.includes(v.name));
}

/** The one VM named `name`. */
export function oneVm(view: EnvView, name: string): VmView {
  const [vm] = selectVms(view, [name]);
  if (!vm) throw new UsageError(`no VM ${name} in environment ${view.env.name}`);
  return vm;
}

/** How to reach `vm` over SSH, or a usage error saying why it cannot be reached. */
export function sshTargetOf(vm: VmView): SshTarget {
  if (!vm.ssh) {
    throw new UsageError(`VM ${vm.name} has no address on a management net lago can reach`, { hint: "give it a NIC on a NAT net" });
  }
  return vm.ssh;
}
