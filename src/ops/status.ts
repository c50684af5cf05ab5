/**
 * `lago status`: what each VM and net of the environment is doing right now.
 * Batched: one `virsh list`, one `virsh net-list` and one TCP probe of each
 * running VM's SSH port, all at once.
 */
import { libvirtPrefix } from "../env/context.ts";
import { sshBannerAnswers } from "../drivers/real/ssh-banner.ts";
import type { OpsContext } from "./context.ts";
import { readView } from "./view.ts";

/** How long a VM's SSH port may take to show its banner before it counts as not answering. */
const SSH_PROBE_MS = 1500;

export interface VmStatus {
  name: string;
  /** libvirt's state (`running`, `paused`, `shut off`, …) or `missing` when the domain is gone. */
  state: string;
  libvirtName: string;
  /** libvirt's domain id while running. */
  id: number | null;
  nics: { net: string; device: string; ip: string | null; mac: string }[];
  /** Whether the VM's SSH server answers on its management address (null: it has none, or is not running). */
  sshAnswers: boolean | null;
  /** Configuration applied but waiting for a restart (`memory`, `vcpu`, `cpu`). */
  pendingRestart: string[];
  /** Stopped with `lago stop`/`shutdown`: plans keep it stopped. */
  stoppedOnPurpose: boolean;
  snapshots: string[];
}

export interface NetStatus {
  name: string;
  type: string;
  management: boolean;
  /** `active`, `inactive` or `missing`. */
  state: string;
  subnet: string | null;
  gateway: string | null;
  bridge: string;
}

export interface EnvStatus {
  env: string;
  dir: string;
  vms: VmStatus[];
  nets: NetStatus[];
  /** Templates the environment's disks are overlays on. */
  templates: { address: string; path: string | null }[];
}

/** Read the state (no lock: it is always whole on disk) and look at reality. Read-only. */
export async function envStatus(ctx: OpsContext): Promise<EnvStatus> {
  const view = readView(ctx);
  const prefix = libvirtPrefix(ctx.env);
  const [domains, networks] = view.vms.length || view.nets.length
    ? await Promise.all([ctx.virsh.domainStates(prefix), ctx.virsh.networkStates(prefix)])
    : [new Map(), new Map()];
  const vms = await Promise.all(
    view.vms.map(async (vm): Promise<VmStatus> => {
      const d = domains.get(vm.libvirtName);
      const state = d?.state ?? "missing";
      return {
        name: vm.name,
        state,
        libvirtName: vm.libvirtName,
        id: d?.id ?? null,
        nics: vm.nics.map((n) => ({ net: n.net, device: `eth${n.index}`, ip: n.ip ?? null, mac: n.mac })),
        sshAnswers: vm.ssh && state === "running" ? await sshBannerAnswers(vm.ssh.host, vm.ssh.port, SSH_PROBE_MS) : null,
        pendingRestart: vm.pendingRestart,
        stoppedOnPurpose: vm.stoppedOnPurpose,
        snapshots: [...vm.snapshots.keys()],
      };
    }),
  );
  const nets = view.nets.map((n): NetStatus => {
    const s = networks.get(n.libvirtName);
    return {
      name: n.name,
      type: n.type,
      management: n.management,
      state: s ? (s.active ? "active" : "inactive") : "missing",
      subnet: n.subnet ?? null,
      gateway: n.gateway ?? null,
      bridge: n.bridge,
    };
  });
  return { env: ctx.env.name, dir: ctx.env.dir, vms, nets, templates: view.templates.map((t) => ({ address: t.address, path: t.path ?? null })) };
}
