/**
 * `lago snapshot NAME`, `lago revert NAME`, `lago snapshot --list`: snapshots
 * of the whole environment (or the VMs named), consistent across VMs. Running
 * VMs are paused together, each gets an internal libvirt snapshot with its
 * memory (qemu writes it into the VM's own qcow2 overlays; the shared
 * template images behind them are only ever read), then they resume together.
 * A revert loads every VM paused and resumes them together: running VMs come
 * back where they were, without a reboot. Snapshots are recorded on each
 * domain in the state; destroying the environment removes them with its disks.
 */
import { LagoError, UsageError, errorMessage } from "../errors.ts";
import { libvirtPrefix } from "../env/context.ts";
import { updateState } from "../engine/session.ts";
import type { State } from "../state/state.ts";
import { SNAPSHOTS, STOPPED_ON_PURPOSE, recordedSnapshots, snapshotsJson, type SnapshotRecord } from "../resources/domain-records.ts";
import { engineSession, type OpsContext } from "./context.ts";
import { eachVm, throwIfFailed } from "./each-vm.ts";
import { envView, readView, selectVms, type VmView } from "./view.ts";

const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SnapshotSummary {
  name: string;
  /** When the first VM's snapshot was taken. */
  created: string;
  vms: { vm: string; state: SnapshotRecord["state"] }[];
}

export interface SnapshotResult {
  name: string;
  vms: { vm: string; state: SnapshotRecord["state"] }[];
  elapsedMs: number;
}

function checkName(name: string): void {
  if (!SNAPSHOT_NAME.test(name)) throw new UsageError(`invalid snapshot name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 64)`);
}

/** Every disk must be a qcow2 image lago owns: internal snapshots live inside them. */
function checkSnapshottable(vm: VmView): void {
  for (const d of vm.disks) {
    if (d.external) throw new UsageError(`VM ${vm.name}: disk ${d.name} is an image the init file names by path (${d.path}); lago snapshots only the disks it owns`);
    if (d.format !== "qcow2") throw new UsageError(`VM ${vm.name}: disk ${d.name} is ${d.format}; snapshots need qcow2 disks`, { hint: "give the disk `format: qcow2`" });
  }
}

function setRecord(state: State, vm: VmView, update: (snaps: Map<string, SnapshotRecord>) => void): void {
  const rec = state.resources.get(vm.address);
  if (!rec) return;
  const snaps = recordedSnapshots(rec);
  update(snaps);
  rec.outputs = { ...rec.outputs, [SNAPSHOTS]: snapshotsJson(snaps) };
}

/**
 * Take snapshot `name` of the VMs named (all when none), consistently: the
 * running ones are paused together for the duration. All or nothing: when one
 * VM fails, the snapshot is removed from the others.
 */
export async function takeSnapshot(ctx: OpsContext, name: string, names: readonly string[]): Promise<SnapshotResult> {
  checkName(name);
  const started = Date.now();
  return updateState(engineSession(ctx), "lago snapshot", async (state) => {
    const vms = selectVms(envView(ctx.env, state), names);
    for (const vm of vms) {
      checkSnapshottable(vm);
      if (vm.snapshots.has(name)) throw new UsageError(`VM ${vm.name} already has a snapshot ${name}`, { hint: "choose another name" });
    }
    const states = await ctx.virsh.domainStates(libvirtPrefix(ctx.env));
    const missing = vms.filter((v) => !states.has(v.libvirtName));
    if (missing.length) throw new UsageError(`no libvirt domain for ${missing.map((v) => v.name).join(", ")}`, { hint: "recreate it with `lago apply`" });
    const running = vms.filter((v) => states.get(v.libvirtName)?.state !== "shut off");
    const created: VmView[] = [];
    let failure: unknown;
    const paused = await eachVm(running, async (vm) => {
      ctx.emit({ type: "vm", vm: vm.name, message: "pausing" });
      await ctx.virsh.suspend(vm.libvirtName);
    });
    try {
      throwIfFailed("pausing", paused);
      const taken = await eachVm(vms, async (vm) => {
        ctx.emit({ type: "vm", vm: vm.name, message: `taking snapshot ${name}` });
        await ctx.virsh.createSnapshot(vm.libvirtName, name, `lago snapshot ${name} of environment ${ctx.env.name}`);
        created.push(vm);
      });
      throwIfFailed("snapshot", taken);
    } catch (err) {
      failure = err;
    } finally {
      const resumed = await eachVm(
        paused.filter((p) => p.error === undefined).map((p) => p.vm),
        async (vm) => ctx.virsh.resume(vm.libvirtName),
      );
      if (failure === undefined) {
        try {
          throwIfFailed("resuming", resumed);
        } catch (err) {
          failure = err;
        }
      }
    }
    if (failure !== undefined) {
      await eachVm(created, async (vm) => ctx.virsh.deleteSnapshot(vm.libvirtName, name));
      throw failure;
    }
    const now = new Date().toISOString();
    const result: SnapshotResult = { name, vms: [], elapsedMs: 0 };
    for (const vm of vms) {
      const snapState: SnapshotRecord["state"] = running.includes(vm) ? "running" : "shut off";
      setRecord(state, vm, (s) => s.set(name, { created: now, state: snapState }));
      result.vms.push({ vm: vm.name, state: snapState });
    }
    result.elapsedMs = Date.now() - started;
    return { changed: true, result };
  });
}

/**
 * Revert the VMs named (all that have snapshot `name` when none) to it. VMs
 * saved running come back running (resumed together, no reboot) and answer
 * SSH; VMs saved shut off are shut off (and recorded as stopped on purpose).
 */
export async function revertSnapshot(ctx: OpsContext, name: string, names: readonly string[]): Promise<SnapshotResult> {
  checkName(name);
  const started = Date.now();
  return updateState(engineSession(ctx), "lago revert", async (state) => {
    const view = envView(ctx.env, state);
    const vms = names.length ? selectVms(view, names) : view.vms.filter((v) => v.snapshots.has(name));
    if (!vms.length) throw new UsageError(`no snapshot ${name} in environment ${ctx.env.name}`, { hint: "see `lago snapshot --list`" });
    const without = vms.filter((v) => !v.snapshots.has(name));
    if (without.length) throw new UsageError(`VM ${without.map((v) => v.name).join(", ")} has no snapshot ${name}`, { hint: "see `lago snapshot --list`" });
    const saved = new Map(vms.map((v) => [v.name, v.snapshots.get(name)?.state ?? "shut off"]));
    const loaded = await eachVm(vms, async (vm) => {
      ctx.emit({ type: "vm", vm: vm.name, message: `reverting to ${name}` });
      await ctx.virsh.revertSnapshot(vm.libvirtName, name, saved.get(vm.name) === "running" ? "paused" : "as-saved");
    });
    throwIfFailed("revert", loaded);
    const running = vms.filter((v) => saved.get(v.name) === "running");
    throwIfFailed("resuming", await eachVm(running, async (vm) => ctx.virsh.resume(vm.libvirtName)));
    const ready = await eachVm(running, async (vm) => {
      if (!vm.ssh) return;
      ctx.emit({ type: "vm", vm: vm.name, message: "waiting for SSH" });
      await ctx.drivers.ssh.waitReady(vm.ssh, ctx.env.config.bootTimeout * 1000, { signal: ctx.signal });
    });
    for (const vm of vms) {
      const rec = state.resources.get(vm.address);
      if (!rec) continue;
      const isRunning = saved.get(vm.name) === "running";
      const ok = !ready.some((r) => r.vm === vm && r.error !== undefined);
      rec.attrs = { ...rec.attrs, running: isRunning, ready: isRunning && ok };
      const outputs = { ...rec.outputs };
      // The VM is as the snapshot left it, which the user asked for.
      if (isRunning) delete outputs[STOPPED_ON_PURPOSE];
      else outputs[STOPPED_ON_PURPOSE] = true;
      rec.outputs = outputs;
    }
    const failed = ready.filter((r) => r.error !== undefined);
    if (failed.length) {
      throw new LagoError("REVERT_SSH", `reverted to ${name}, but SSH does not answer on ${failed.map((f) => `${f.vm.name} (${errorMessage(f.error)})`).join(", ")}`);
    }
    return { changed: true, result: { name, vms: vms.map((v) => ({ vm: v.name, state: saved.get(v.name) ?? "shut off" })), elapsedMs: Date.now() - started } };
  });
}

/** The environment's snapshots, from the state, checked against libvirt (a snapshot libvirt lost is reported). */
export async function listSnapshots(ctx: OpsContext): Promise<{ snapshots: SnapshotSummary[]; lost: { vm: string; snapshot: string }[] }> {
  const view = readView(ctx);
  const inLibvirt = await ctx.virsh.snapshotLists(view.vms.map((v) => v.libvirtName));
  const byName = new Map<string, SnapshotSummary>();
  const lost: { vm: string; snapshot: string }[] = [];
  for (const vm of view.vms) {
    const present = new Set(inLibvirt.get(vm.libvirtName) ?? []);
    for (const [name, rec] of vm.snapshots) {
      if (!present.has(name)) {
        lost.push({ vm: vm.name, snapshot: name });
        continue;
      }
      const s = byName.get(name) ?? { name, created: rec.created, vms: [] };
      if (rec.created && (!s.created || rec.created < s.created)) s.created = rec.created;
      s.vms.push({ vm: vm.name, state: rec.state });
      byName.set(name, s);
    }
  }
  return { snapshots: [...byName.values()].sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : a.name < b.name ? -1 : 1)), lost };
}
