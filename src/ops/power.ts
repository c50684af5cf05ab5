/**
 * `lago start`, `stop`, `shutdown [--reboot]`: power VMs on and off, and
 * record what the user asked for in the state (under the environment lock),
 * so that a VM stopped on purpose is not drift: plans keep it stopped until
 * `lago start`.
 */
import { LagoError } from "../errors.ts";
import { updateState } from "../engine/session.ts";
import { libvirtPrefix } from "../env/context.ts";
import type { State } from "../state/state.ts";
import { STOPPED_ON_PURPOSE } from "../resources/domain-records.ts";
import { engineSession, type OpsContext } from "./context.ts";
import { envView, selectVms, type VmView } from "./view.ts";
import { eachVm, throwIfFailed } from "./each-vm.ts";

export interface PowerResult {
  vm: string;
  /** What happened: `started`, `already running`, `powered off`, `shut down`, `rebooted`, `already stopped`. */
  outcome: string;
}

function record(state: State, vm: VmView, running: boolean, extra: { hostKey?: string | undefined; freshBoot: boolean; onPurpose: boolean }): void {
  const rec = state.resources.get(vm.address);
  if (!rec) return;
  rec.attrs = { ...rec.attrs, running, ready: running };
  const outputs = { ...rec.outputs };
  if (extra.onPurpose) outputs[STOPPED_ON_PURPOSE] = true;
  else delete outputs[STOPPED_ON_PURPOSE];
  // A VM that boots afresh runs its whole persistent definition: nothing waits for a restart any more.
  if (extra.freshBoot) outputs.pendingRestart = [];
  if (extra.hostKey) outputs.host_key = extra.hostKey;
  rec.outputs = outputs;
}

async function bootAndWait(ctx: OpsContext, vm: VmView): Promise<string | undefined> {
  await ctx.drivers.libvirt.startDomain(vm.libvirtName, { signal: ctx.signal });
  if (!vm.ssh) return undefined;
  ctx.emit({ type: "vm", vm: vm.name, message: `waiting for SSH on ${vm.ssh.host}` });
  return ctx.drivers.ssh.waitReady(vm.ssh, ctx.env.config.bootTimeout * 1000, { signal: ctx.signal });
}

/**
 * Start the VMs named (all when none): their networks first, then every VM at
 * once, each ready when SSH answers with the environment's key. Clears the
 * "stopped on purpose" mark. Idempotent.
 */
export async function startVms(ctx: OpsContext, names: readonly string[]): Promise<PowerResult[]> {
  const { results } = await updateState(engineSession(ctx), "lago start", async (state) => {
    const view = envView(ctx.env, state);
    const vms = selectVms(view, names);
    const states = await ctx.virsh.domainStates(libvirtPrefix(ctx.env));
    const nets = new Set(vms.flatMap((v) => v.nics.map((n) => n.net)));
    for (const net of view.nets.filter((n) => nets.has(n.name))) await ctx.drivers.libvirt.startNetwork(net.libvirtName, { signal: ctx.signal });
    const results = await eachVm(vms, async (vm): Promise<PowerResult> => {
      const before = states.get(vm.libvirtName)?.state;
      if (!before) throw new LagoError("VM_MISSING", `its libvirt domain ${vm.libvirtName} does not exist`, { hint: "recreate it with `lago apply`" });
      if (before === "running") {
        record(state, vm, true, { freshBoot: false, onPurpose: false });
        return { vm: vm.name, outcome: "already running" };
      }
      ctx.emit({ type: "vm", vm: vm.name, message: before === "paused" ? "resuming" : "starting" });
      const hostKey = await bootAndWait(ctx, vm);
      record(state, vm, true, { hostKey, freshBoot: before !== "paused", onPurpose: false });
      return { vm: vm.name, outcome: before === "paused" ? "resumed" : "started" };
    });
    return { changed: true, result: { results } };
  });
  throwIfFailed("start", results);
  return results.flatMap((r) => (r.value ? [r.value] : []));
}

/**
 * Stop the VMs named (all when none): `graceful` is an ACPI shutdown that
 * powers off after the configured timeout, otherwise an immediate power off.
 * With `reboot`, the VMs are started again afterwards (a cold boot: pending
 * configuration takes effect) and waited for; otherwise they are recorded as
 * stopped on purpose. Idempotent.
 */
export async function stopVms(ctx: OpsContext, names: readonly string[], how: { graceful: boolean; reboot: boolean }): Promise<PowerResult[]> {
  const verb = how.reboot ? "lago shutdown --reboot" : how.graceful ? "lago shutdown" : "lago stop";
  const { results } = await updateState(engineSession(ctx), verb, async (state) => {
    const vms = selectVms(envView(ctx.env, state), names);
    const states = await ctx.virsh.domainStates(libvirtPrefix(ctx.env));
    const results = await eachVm(vms, async (vm): Promise<PowerResult> => {
      const before = states.get(vm.libvirtName)?.state;
      if (!before) throw new LagoError("VM_MISSING", `its libvirt domain ${vm.libvirtName} does not exist`, { hint: "recreate it with `lago apply`" });
      const wasRunning = before !== "shut off";
      if (wasRunning) {
        ctx.emit({ type: "vm", vm: vm.name, message: how.graceful ? `shutting down (ACPI, then power off after ${ctx.env.config.shutdownTimeout}s)` : "powering off" });
        if (how.graceful) await ctx.drivers.libvirt.stopDomain(vm.libvirtName, ctx.env.config.shutdownTimeout * 1000, { signal: ctx.signal });
        else await ctx.virsh.powerOff(vm.libvirtName);
      }
      if (how.reboot) {
        ctx.emit({ type: "vm", vm: vm.name, message: "starting" });
        const hostKey = await bootAndWait(ctx, vm);
        record(state, vm, true, { hostKey, freshBoot: true, onPurpose: false });
        return { vm: vm.name, outcome: "rebooted" };
      }
      record(state, vm, false, { freshBoot: true, onPurpose: true });
      return { vm: vm.name, outcome: !wasRunning ? "already stopped" : how.graceful ? "shut down" : "powered off" };
    });
    return { changed: true, result: { results } };
  });
  throwIfFailed(how.reboot ? "reboot" : how.graceful ? "shutdown" : "stop", results);
  return results.flatMap((r) => (r.value ? [r.value] : []));
}
