/**
 * Runs a sequence of init files through lago in process (plan, apply, plan
 * again, each step) and checks the properties after every step:
 * - the plan right after an apply has no changes and no drift;
 * - the world is what the init file describes (see `oracle.ts`), with
 *   nothing the state does not record;
 * - a VM whose spec (and the nets it uses) did not change keeps its identity
 *   (same domain id, never restarted) and its MACs, and so does every VM the
 *   plan promised to update in place or leave alone;
 * - a text that means the same as the previous one plans nothing;
 * - an apply's outcome accounts for every planned step, and an apply that
 *   did not complete its plan is never reported as ok;
 * - with a fault (a driver call that fails, or the process killed before or
 *   after any driver call), the apply fails cleanly (a LagoError, never a
 *   bug), the next plan works, and the next apply converges to the same world.
 */
import { mkdirSync, truncateSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "safe-stable-stringify";
import { ConfigError, LagoError, errorMessage } from "../../src/errors.ts";
import { hasChanges, type Plan } from "../../src/plan/plan.ts";
import type { EnvSpec } from "../../src/spec/types.ts";
import type { ApplyResult } from "../../src/engine/session.ts";
import { InProcessEnv, type StepResult } from "../helpers/in-process.ts";
import { FAULT_METHODS, type Fault } from "./arbitraries.ts";
import { BASE_IMAGE_COUNT, IMAGE_COUNT, IMAGE_SIZE, baseImagePath, imagePath } from "./model.ts";
import { checkWorld, pendingOf } from "./oracle.ts";

/** One step as replayed: the init file's text and how its apply is run. */
export interface StepInput {
  text: string;
  /**
   * The plan must refuse this file (a ConfigError with a diagnostic at a JSON
   * pointer matching this regular expression), and so must the apply, changing nothing.
   */
  refused?: string | undefined;
  fault?: Fault | undefined;
  restart?: boolean | undefined;
  parallelism?: number | undefined;
}

export class PropertyFailure extends Error {
  constructor(
    message: string,
    /** The steps up to the failing one, with their faults as the harness took them (for a fixture). */
    readonly steps: StepInput[],
  ) {
    super(message);
  }
}

/** What the sequences exercised (reported by the tests, to see that faults do hit). */
export const stats = { refused: 0, sequences: 0, steps: 0, crashed: 0, failed: 0, faultMissed: 0, changes: 0, noChanges: 0, replaced: 0, restarts: 0, firstBootBuilds: 0, offlineBuilds: 0 };

interface DomainSnapshot {
  id: number | null;
  boots: number;
  macs: string[];
  pending: boolean;
}

const show = (v: unknown): string => stringify(v) ?? "undefined";

/** A spec's meaning without positions, file name or hash: equal for two texts that mean the same. */
function meaning(v: unknown): string {
  return stringify(v, (k, x: unknown) => (k === "pointer" || k === "locate" || k === "sha256" || k === "file" ? undefined : x)) ?? "";
}

/** Number of steps an apply of `plan` must account for. */
export function plannedSteps(plan: Plan): number {
  let n = 0;
  for (const c of plan.resourceChanges) {
    if (c.action === "replace") n += 2;
    else if (c.action !== "no-op") n += 1;
    if (c.releases.length) n += 1;
  }
  return n;
}

function actions(plan: Plan): Record<string, string> {
  return Object.fromEntries(plan.resourceChanges.filter((c) => c.action !== "no-op").map((c) => [c.address, c.action]));
}

/** Make the images a generated init file may name (sparse files beside it). */
export function makeImages(env: InProcessEnv): void {
  const dir = path.join(env.work, "images");
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < IMAGE_COUNT; i++) {
    writeFileSync(path.join(env.work, imagePath(i)), "");
    truncateSync(path.join(env.work, imagePath(i)), IMAGE_SIZE);
  }
  for (let i = 0; i < BASE_IMAGE_COUNT; i++) {
    writeFileSync(path.join(env.work, baseImagePath(i)), "");
    truncateSync(path.join(env.work, baseImagePath(i)), IMAGE_SIZE);
  }
}

/** Driver methods an apply of `plan` calls (fake world names; `driver.method` for the stores). */
function methodsOf(plan: Plan): string[] {
  const out = new Set<string>();
  const add = (...m: string[]): void => {
    for (const x of m) out.add(x);
  };
  for (const c of plan.resourceChanges) {
    const acts = c.action === "replace" ? ["delete", "create"] : [c.action];
    if (c.releases.length) acts.push("update");
    for (const a of acts) {
      if (c.kind === "domain") {
        if (a === "create") add("defineDomain", "startDomain", "sshWaitReady");
        if (a === "update") add("attachNic", "detachNic", "attachDisk", "detachDisk", "defineDomain", "startDomain", "stopDomain");
        if (a === "delete") add("deleteDomain");
      } else if (c.kind === "network") {
        if (a === "create") add("createNetwork");
        if (a === "update") add("redefineNetwork", "addNetworkHost", "removeNetworkHost", "addDnsHost", "removeDnsHost", "setDhcpRange", "setNetworkMetadata", "stopNetwork");
        if (a === "delete") add("deleteNetwork");
      } else if (c.kind === "disk") {
        if (a === "create") add("createOverlay", "createBlank", "imageInfo");
        if (a === "update") add("resize", "resizeDiskLive", "imageInfo");
        if (a === "delete") add("removeImage");
      } else if (c.kind === "build" && a === "create") add("customize");
      else if (c.kind === "lease") add(a === "delete" ? "leases.release" : "leases.acquire");
      else if (c.kind === "template") add(a === "delete" ? "templates.release" : "templates.ensure");
      else if (c.kind === "keypair") add(a === "delete" ? "keys.remove" : "keys.ensure");
    }
  }
  return [...out].sort();
}

/** The fault as the fake world's option, for the VM and net names of `spec`. */
function faultOptions(fault: Fault, spec: EnvSpec, plan: Plan): { faults?: string[]; crash?: { at: number; when: "before" | "after" } } {
  if (fault.type === "exact") return { ...(fault.faults ? { faults: fault.faults } : {}), ...(fault.crash ? { crash: fault.crash } : {}) };
  if (fault.type === "fail") {
    // A method this plan calls (most of the time), on one of the environment's names (or any).
    const methods = methodsOf(plan);
    const method = methods.length && fault.method % 4 !== 0 ? (methods[fault.method % methods.length] as string) : (FAULT_METHODS[fault.method % FAULT_METHODS.length] as string);
    if (method.includes(".")) return { faults: [`fail:${method}`] };
    const names = [...spec.domains.map((d) => d.name), ...spec.nets.map((n) => n.name)];
    const match = fault.match === undefined ? undefined : names[fault.match % names.length];
    return { faults: [`fail:${method}${match ? `@${match}` : ""}`] };
  }
  // Spread crash points over the calls an apply of this plan makes (a few per step).
  const calls = Math.max(2, 3 * plannedSteps(plan) + 4);
  return { crash: { at: 1 + ((fault.at - 1) % calls), when: fault.when } };
}

export function describeFault(fault: Fault | undefined, spec?: EnvSpec, plan?: Plan): string {
  if (!fault) return "none";
  if (!spec || !plan) return show(fault);
  const o = faultOptions(fault, spec, plan);
  return o.faults ? o.faults.join(",") : `crash ${o.crash?.when} driver call ${o.crash?.at}`;
}

/**
 * Plays `steps` on a fresh in-process environment, checking every property
 * after every step. Throws a {@link PropertyFailure} naming the step, what
 * went wrong, and every init file up to it.
 */
export async function runSequence(steps: StepInput[]): Promise<void> {
  // VMs on `other` are bootstrapped by a cloud-init seed (their boot disk's builds run at first boot), on `tiny` by virt-customize.
  const env = new InProcessEnv(undefined, { cloudInit: ["other"] });
  makeImages(env);
  stats.sequences += 1;
  const log: string[] = [];
  const resolved: StepInput[] = [];
  let index = 0;
  const fail = (what: string, detail?: StepResult<unknown>): never => {
    const trace = detail ? `\n  driver calls of that command (${detail.calls}): ${detail.trace.slice(-40).join(" ")}` : "";
    const files = steps
      .slice(0, index + 1)
      .map((s, i) => `--- step ${i + 1}${s.refused ? ` (must be refused at ${s.refused})` : ""}${s.fault ? ` (fault: ${describeFault(s.fault)})` : ""}${s.restart ? " (--restart)" : ""}${s.parallelism ? ` (--parallelism ${s.parallelism})` : ""}\n${s.text}`)
      .join("");
    const upTo = steps.slice(0, index + 1).map((s, i) => resolved[i] ?? s);
    throw new PropertyFailure(`step ${index + 1} of ${steps.length}: ${what}${trace}\n${log.length ? `  log: ${log.join("; ")}\n` : ""}init files:\n${files}`, upTo);
  };
  try {
    let prevSpec: EnvSpec | undefined;
    for (; index < steps.length; index++) {
      const step = steps[index] as StepInput;
      let spec: EnvSpec;
      try {
        spec = env.spec(step.text);
      } catch (err) {
        fail(`the generated init file is invalid (a generator bug): ${errorMessage(err)}`);
        return;
      }
      const before = snapshot(env);
      resolved[index] = step;
      stats.steps += 1;
      if (step.refused !== undefined) {
        await expectRefusal(env, step, fail);
        if (show([...snapshot(env)]) !== show([...before])) fail("a refused apply changed the VMs");
        stats.refused += 1;
        continue;
      }
      const pre = await env.plan(step.text);
      if (pre.error !== undefined || !pre.result) fail(`plan failed: ${errorMessage(pre.error)}`, pre);
      const prePlan = pre.result as Plan;
      const sameMeaning = prevSpec !== undefined && meaning(prevSpec) === meaning(spec);
      if (sameMeaning && hasChanges(prePlan)) fail(`the init file means the same as the previous one, but the plan changes ${show(actions(prePlan))}`);
      if (prePlan.drift.length) fail(`drift before the apply: ${show(prePlan.drift)}`);

      if (hasChanges(prePlan)) stats.changes += 1;
      else stats.noChanges += 1;
      if (prePlan.resourceChanges.some((c) => c.kind === "domain" && c.action === "replace")) stats.replaced += 1;
      if (step.restart) stats.restarts += 1;
      const promised = new Map<string, string>();
      for (const c of prePlan.resourceChanges) if (c.kind === "domain") promised.set(c.address, c.action);
      // With --restart, VMs whose changes wait for a restart are restarted (and only those).
      const restarting = new Set<string>();
      if (step.restart) {
        const planned = await env.plan(step.text, { restart: true });
        for (const c of planned.result?.resourceChanges ?? []) if (c.restart) restarting.add(c.address);
      }
      if (step.fault) {
        const opts = faultOptions(step.fault, spec, prePlan);
        resolved[index] = { ...step, fault: { type: "exact", ...opts } };
        log.push(`step ${index + 1} fault: ${describeFault(step.fault, spec, prePlan)}`);
        const faulted = await env.apply(step.text, { ...opts, parallelism: step.parallelism });
        if (faulted.hung) fail("the faulted apply hangs", faulted);
        if (!faulted.crashed) checkApplyResult(faulted, fail, true);
        if (faulted.crashed) stats.crashed += 1;
        else if (faulted.error !== undefined || faulted.result?.outcome?.ok === false) stats.failed += 1;
        else stats.faultMissed += 1;
        log.push(`step ${index + 1} faulted apply: ${faulted.crashed ? "crashed" : faulted.error ? `error ${errorMessage(faulted.error).split("\n")[0]}` : faulted.result?.outcome?.ok === false ? "failed" : "ok"}`);
        // The next plan after any interruption works (recovering an interrupted apply in memory).
        const after = await env.plan(step.text);
        if (after.error !== undefined) fail(`plan after a ${faulted.crashed ? "crash" : "failure"} failed: ${errorMessage(after.error)}`, after);
        if (faulted.result?.plan) for (const c of faulted.result.plan.resourceChanges) if (c.kind === "domain" && (c.action === "replace" || c.action === "create")) promised.set(c.address, c.action);
        if (after.result) for (const c of after.result.resourceChanges) if (c.kind === "domain" && (c.action === "replace" || c.action === "create")) promised.set(c.address, c.action);
      }
      const prior = env.state();
      const applied = await env.apply(step.text, { restart: step.restart, parallelism: step.parallelism });
      if (applied.crashed) fail("the apply crashed without a fault");
      checkApplyResult(applied, fail, false);
      const result = applied.result as ApplyResult;
      if (!step.fault && !result.outcome && hasChanges(prePlan)) fail(`apply did nothing, but the plan changes ${show(actions(prePlan))}`);
      if (result.outcome) for (const c of result.plan.resourceChanges) if (c.kind === "domain" && (c.action === "replace" || c.action === "create")) promised.set(c.address, c.action);

      const post = await env.plan(step.text);
      if (post.error !== undefined || !post.result) fail(`plan after the apply failed: ${errorMessage(post.error)}`, post);
      const postPlan = post.result as Plan;
      if (hasChanges(postPlan)) fail(`the plan after a successful apply is not empty: ${show(actions(postPlan))}\n  changes: ${show(postPlan.resourceChanges.filter((c) => c.action !== "no-op").map((c) => ({ address: c.address, changes: c.changes, reasons: c.replaceReasons })))}\n  drift: ${show(postPlan.drift)}\n  recovered/events: ${show(post.events.filter((e) => e.type !== "progress"))}`, applied);
      if (postPlan.drift.length) fail(`the plan after a successful apply finds drift: ${show(postPlan.drift)}`, applied);

      const recorded = env.state();
      for (const r of recorded.resources.values()) if (r.kind === "build") stats[r.outputs.mode === "first-boot" ? "firstBootBuilds" : "offlineBuilds"] += 1;
      const problems = checkWorld({ spec, env: env.env, world: env.world, state: recorded, prior, pendingRestarts: postPlan.pendingRestarts });
      if (problems.length) fail(`the world is not what the init file describes:\n  - ${problems.join("\n  - ")}`, applied);

      // Identity: unchanged VMs, and VMs the plan promised not to replace, are the same running instances.
      const after = snapshot(env);
      for (const [vm, was] of before) {
        const now = after.get(vm);
        const address = `domain.${vm}`;
        const promise = promised.get(address) ?? "no-op";
        const unchanged = prevSpec !== undefined && vmUnchanged(prevSpec, spec, vm);
        if (!now || !(unchanged || promise === "update" || promise === "no-op")) continue;
        const restarted = restarting.has(address) || (step.restart && was.pending);
        if (now.id !== was.id && !restarted) fail(`${address} was ${unchanged ? "unchanged" : `planned as ${promise}`} but its domain id changed ${was.id} → ${now.id}`, applied);
        if (now.boots !== was.boots && !restarted) fail(`${address} was ${unchanged ? "unchanged" : `planned as ${promise}`} but it was restarted (boots ${was.boots} → ${now.boots})`, applied);
        if (unchanged && show(now.macs) !== show(was.macs)) fail(`${address} was unchanged but its MACs changed ${show(was.macs)} → ${show(now.macs)}`, applied);
      }
      if (sameMeaning) {
        const kept = (m: Map<string, DomainSnapshot>): string => show([...m].filter(([vm]) => !(restarting.has(`domain.${vm}`) || (step.restart && before.get(vm)?.pending))).map(([vm, d]) => [vm, { ...d, pending: undefined }]));
        if (kept(after) !== kept(before)) fail(`the init file meant the same, but the VMs changed: ${kept(before)} → ${kept(after)}`);
      }
      prevSpec = spec;
    }
  } finally {
    env.cleanup();
  }
}

/** Plan and apply both refuse the file with a diagnostic at the expected place; the state does not move. */
async function expectRefusal(env: InProcessEnv, step: StepInput, fail: (what: string, detail?: StepResult<unknown>) => never): Promise<void> {
  const serial = env.state().serial;
  for (const r of [await env.plan(step.text), await env.apply(step.text)]) {
    const err = r.error;
    if (!(err instanceof ConfigError)) fail(`expected the init file to be refused at ${step.refused ?? ""}, got ${err === undefined ? "success" : errorMessage(err)}`, r);
    const at = new RegExp(step.refused ?? "");
    if (!err.diagnostics.some((d) => at.test(d.pointer) && d.pos.line > 0)) fail(`refused, but not at ${step.refused ?? ""}: ${show(err.diagnostics.map((d) => [d.pointer, d.pos.line, d.message]))}`, r);
  }
  if (env.state().serial !== serial) fail("a refused apply wrote the state");
}

/** The apply's result is coherent: a LagoError or an outcome that accounts for every planned step. */
function checkApplyResult(r: StepResult<ApplyResult>, fail: (what: string, detail?: StepResult<unknown>) => never, faulty: boolean): void {
  if (r.error !== undefined) {
    if (!faulty) fail(`apply failed: ${errorMessage(r.error)}`, r);
    if (!(r.error instanceof LagoError) || r.error.code === "INTERNAL") fail(`apply failed with a bug, not a LagoError: ${r.error instanceof Error ? (r.error.stack ?? r.error.message) : String(r.error)}`, r);
    return;
  }
  const result = r.result;
  if (!result) return fail("apply returned nothing", r);
  const outcome = result.outcome;
  const failedEvents = r.events.filter((e) => e.type === "failed").length;
  if (!outcome) {
    if (hasChanges(result.plan)) fail(`apply returned no outcome for a plan with changes ${show(actions(result.plan))}`, r);
    if (failedEvents) fail("apply without an outcome reported failures", r);
    return;
  }
  const total = plannedSteps(result.plan);
  const accounted = outcome.done + outcome.failed.length + outcome.skipped.length;
  if (accounted !== total) fail(`apply accounted for ${accounted} steps (done ${outcome.done}, failed ${outcome.failed.length}, skipped ${outcome.skipped.length}) of ${total} planned`, r);
  if (outcome.ok !== (outcome.failed.length === 0 && outcome.skipped.length === 0)) fail(`apply reported ok=${outcome.ok} with ${outcome.failed.length} failed and ${outcome.skipped.length} skipped steps`, r);
  if (failedEvents && outcome.ok) fail("a step failed but the apply was reported ok", r);
  if (!faulty && !outcome.ok) {
    fail(`apply failed: ${[...outcome.failed.map((f) => `${f.address} ${f.action}: ${f.error.message}`), ...outcome.skipped.map((s) => `${s.address} ${s.action} skipped: ${s.reason}`)].join("; ")}`, r);
  }
}

function snapshot(env: InProcessEnv): Map<string, DomainSnapshot> {
  const prefix = `lago-${env.env.id}-`;
  const out = new Map<string, DomainSnapshot>();
  for (const [name, dom] of Object.entries(env.world.domains)) {
    const live = dom.live;
    const pending = !!live && pendingOf(dom).length > 0;
    out.set(name.slice(prefix.length), { id: dom.id, boots: dom.boots, macs: dom.def.nics.map((n) => `${n.network.slice(prefix.length)} ${n.mac.toLowerCase()}`), pending });
  }
  return out;
}

/** The VM's own spec and the specs of the nets it is on are the same in both. */
function vmUnchanged(a: EnvSpec, b: EnvSpec, vm: string): boolean {
  const da = a.domains.find((d) => d.name === vm);
  const db = b.domains.find((d) => d.name === vm);
  if (!da || !db || meaning(da) !== meaning(db)) return false;
  const mgmt = (s: EnvSpec) => s.nets.find((n) => n.management);
  if (meaning(mgmt(a)) !== meaning(mgmt(b))) return false;
  // A new static IP may take the address a dynamic NIC had: that NIC moves (a new address, a new MAC).
  const statics = (s: EnvSpec, net: string): string => show(s.domains.flatMap((d) => d.nics.filter((n) => n.net === net && n.ip).map((n) => n.ip)).sort());
  for (const nic of da.nics) {
    if (meaning(a.nets.find((n) => n.name === nic.net)) !== meaning(b.nets.find((n) => n.name === nic.net))) return false;
    if (statics(a, nic.net) !== statics(b, nic.net)) return false;
  }
  return true;
}
