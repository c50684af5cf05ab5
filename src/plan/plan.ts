/**
 * The planner: desired graph × recorded state × observed reality → Plan.
 * Pure: no I/O, deterministic output (resources sorted by address).
 */
import type { AttrChange, Attrs, DesiredResource, Kind, Observed, RecordedResource } from "../resources/types.ts";
import { kindOf } from "../resources/registry.ts";
import type { State } from "../state/state.ts";
import { diffAttrs, underPrefix } from "./diff.ts";
import { dependencyOrder } from "../graph/graph.ts";
import { recordedSnapshots } from "../resources/domain-records.ts";

export type Action = "create" | "update" | "replace" | "delete" | "no-op";

export interface ResourceChange {
  address: string;
  kind: Kind;
  action: Action;
  dependsOn: string[];
  changes: AttrChange[];
  /** Why the resource is replaced (forcing attributes, taint, dependency, --replace). */
  replaceReasons: string[];
  /** The update changes configuration that takes effect only after the VM restarts. */
  requiresRestart: boolean;
  /** With `apply --restart`, the VM is restarted. */
  restart: boolean;
  /** An in-place update that interrupts the resources depending on this one, and why. */
  disrupts: string | undefined;
  /**
   * Dependencies this resource lets go of before they are disrupted and takes
   * again after (a VM's NICs on a network that is replaced or restarted).
   */
  releases: string[];
  /** The resource as refresh found it (absent for a create); apply records it first. */
  refreshed: RecordedResource | undefined;
  /** The recorded attributes (after refresh), absent for a create. */
  before: Attrs | undefined;
  /** The desired attributes, absent for a delete. */
  after: Attrs | undefined;
  /** What the resource's kind knows ahead of time (e.g. "cached: …" for a build whose layer is in the store). */
  note?: string;
}

export interface Drift {
  address: string;
  kind: Kind;
  /** `deleted`: gone from reality; `changed`: differs; `damaged`: exists but unhealthy. */
  type: "deleted" | "changed" | "damaged";
  changes: AttrChange[];
  reason?: string;
}

export interface Plan {
  formatVersion: 1;
  lineage: string | null;
  serial: number;
  initFileSha256: string;
  resourceChanges: ResourceChange[];
  drift: Drift[];
  /** VMs whose applied changes still wait for a restart (`apply --restart`). */
  pendingRestarts: string[];
  /** VMs the user stopped on purpose (`lago stop`): kept stopped until `lago start`. */
  stopped: string[];
  /** Snapshots this plan loses: their VM, or a disk holding them, is replaced or destroyed. */
  snapshotsLost: { address: string; snapshots: string[] }[];
  summary: { create: number; update: number; replace: number; delete: number };
  /** The desired graph the plan was computed from; apply uses it as is. */
  desired: DesiredResource[];
  /** A plan of destroying everything. */
  destroy: boolean;
  /** Things the user should know that change nothing (a template kept although a newer version exists). */
  notices: string[];
}

export interface PlanInput {
  desired: DesiredResource[];
  state: State;
  /** Observed reality by address; `null` = absent. Missing map = no refresh. */
  observed: ReadonlyMap<string, Observed | null> | undefined;
  initFileSha256: string;
  /** Restrict to these addresses and what they depend on. */
  targets?: string[] | undefined;
  /** Force replacement of these addresses. */
  replace?: string[] | undefined;
  /** Plan deleting everything. */
  destroy?: boolean | undefined;
  /** Plan restarting VMs whose changes wait for a restart. */
  restart?: boolean | undefined;
}

const byAddress = <T extends { address: string }>(a: T, b: T): number => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

/** Topological order of the desired graph (dependencies first), stable by address. */
export function topoOrder(desired: DesiredResource[]): DesiredResource[] {
  const byAddr = new Map(desired.map((d) => [d.address, d]));
  return dependencyOrder(desired).flatMap((a) => byAddr.get(a) ?? []);
}

function pendingRestartOf(r: RecordedResource | undefined): string[] {
  const p = r?.outputs.pendingRestart;
  return Array.isArray(p) ? p.map(String) : [];
}

/** Compute the plan. Pure. */
export function computePlan(input: PlanInput): Plan {
  const desired = input.destroy ? [] : input.desired;
  const drift: Drift[] = [];
  const current = new Map<string, RecordedResource>();
  for (const [address, rec] of input.state.resources) {
    const obs = input.observed?.get(address);
    if (input.observed && obs === null) {
      drift.push({ address, kind: rec.kind, type: "deleted", changes: [] });
      continue;
    }
    if (!obs) {
      current.set(address, rec);
      continue;
    }
    const changes = diffAttrs(rec.attrs, obs.attrs);
    if (changes.length) drift.push({ address, kind: rec.kind, type: "changed", changes });
    const refreshed: RecordedResource = { ...rec, attrs: obs.attrs, outputs: { ...rec.outputs, ...obs.outputs } };
    if (!obs.healthy) {
      drift.push({ address, kind: rec.kind, type: "damaged", changes: [], ...(obs.reason ? { reason: obs.reason } : {}) });
      refreshed.status = "tainted";
      if (obs.reason) refreshed.reason = obs.reason;
    }
    current.set(address, refreshed);
  }

  const changes = new Map<string, ResourceChange>();
  const forceReplace = new Set(input.replace ?? []);
  for (const d of topoOrder(desired)) {
    const kind = kindOf(d.kind);
    const cur = current.get(d.address);
    const change: ResourceChange = {
      address: d.address,
      kind: d.kind,
      action: "no-op",
      dependsOn: d.dependsOn,
      changes: [],
      replaceReasons: [],
      requiresRestart: false,
      restart: false,
      disrupts: undefined,
      releases: [],
      refreshed: cur,
      before: cur?.attrs,
      after: d.attrs,
    };
    if (!cur) {
      change.action = "create";
    } else {
      change.changes = diffAttrs(cur.attrs, d.attrs, kind);
      for (const c of change.changes) if (c.forcesReplacement && c.reason && !change.replaceReasons.includes(c.reason)) change.replaceReasons.push(c.reason);
      if (cur.status === "tainted") change.replaceReasons.push(`it is tainted${cur.reason ? `: ${cur.reason}` : ""}`);
      if (forceReplace.has(d.address)) change.replaceReasons.push("replacement requested with --replace");
      const disruptive = change.changes.filter((c) => !c.forcesReplacement && kind.disruptiveOn?.some((r) => underPrefix(c.path, r.path)));
      const reasons = new Set<string>();
      for (const c of disruptive) for (const r of kind.disruptiveOn ?? []) if (underPrefix(c.path, r.path)) reasons.add(r.reason);
      if (reasons.size) change.disrupts = [...reasons].join("; ");
      // A dependency that is replaced, restarted, or recreated after it vanished, may disrupt this resource.
      const reattach: { dep: string; reason: string }[] = [];
      for (const depAddress of d.dependsOn) {
        const dep = changes.get(depAddress);
        if (!dep) continue;
        const how =
          dep.action === "replace" || (dep.action === "create" && input.state.resources.has(depAddress)) ? "replace" : dep.action === "update" && dep.disrupts ? "restart" : undefined;
        if (!how) continue;
        const reaction = kind.onDependencyDisrupted?.({ address: depAddress, kind: dep.kind, how }, d.attrs);
        if (!reaction) continue;
        if (reaction.action === "replace") change.replaceReasons.push(reaction.reason);
        else {
          if (reaction.action === "restart") change.disrupts = change.disrupts ? `${change.disrupts}; ${reaction.reason}` : reaction.reason;
          if (cur.dependsOn.includes(depAddress)) reattach.push({ dep: depAddress, reason: reaction.reason });
          else change.changes.push({ path: `(dependency) ${depAddress}`, before: null, after: null, forcesReplacement: false, reason: reaction.reason });
        }
      }
      if (cur.unfinished) change.changes.push({ path: "(unfinished)", before: null, after: null, forcesReplacement: false, reason: `${cur.unfinished}; it is updated again` });
      if (change.replaceReasons.length) {
        change.action = "replace";
        change.disrupts = undefined;
      } else {
        for (const r of reattach) {
          change.releases.push(r.dep);
          change.changes.push({ path: `(dependency) ${r.dep}`, before: null, after: null, forcesReplacement: false, reason: r.reason });
        }
        if (change.changes.length) change.action = "update";
      }
      change.requiresRestart = change.action === "update" && change.changes.some((c) => c.requiresRestart) && cur.attrs.running === true;
      const pending = pendingRestartOf(cur);
      if (input.restart && change.action !== "replace" && (change.requiresRestart || pending.length)) {
        change.restart = true;
        if (change.action === "no-op") {
          change.action = "update";
          change.changes.push({ path: "(restart)", before: null, after: null, forcesReplacement: false, reason: `restart to apply ${pending.join(", ")}` });
        }
      }
    }
    changes.set(d.address, change);
  }
  const desiredAddresses = new Set(desired.map((d) => d.address));
  for (const [address, rec] of current) {
    if (desiredAddresses.has(address)) continue;
    changes.set(address, {
      address,
      kind: rec.kind,
      action: "delete",
      dependsOn: rec.dependsOn,
      changes: [],
      replaceReasons: [],
      requiresRestart: false,
      restart: false,
      disrupts: undefined,
      releases: [],
      refreshed: rec,
      before: rec.attrs,
      after: undefined,
    });
  }

  // A subnet passes from a lease that goes to one that comes (a net renamed with its gw or static IPs):
  // the new lease waits for the old one's release (see `subnetHandovers`), which waits for the delete of
  // what uses it. What is kept and uses the old lease (a net forwarding DNS to the management net's
  // subnet), or a network deleted with it (VMs kept on that network), lets go of it first, so that its
  // update (attaching it to the new one) does not have to come before that delete. A network replaced
  // without it (a NAT net becoming a bridge) is deleted first too: the same holds for it.
  for (const { from } of subnetHandovers(changes.values())) {
    const going = [from];
    for (const net of changes.values()) {
      if (net.kind === "network" && (net.action === "delete" || net.action === "replace") && net.refreshed?.dependsOn.includes(from)) going.push(net.address);
    }
    for (const dep of going) {
      for (const y of changes.values()) {
        if ((y.action !== "update" && y.action !== "no-op") || !y.refreshed?.dependsOn.includes(dep) || y.releases.includes(dep)) continue;
        if (!kindOf(y.kind).withoutDependency) continue;
        y.releases.push(dep);
        y.changes.push({ path: `(dependency) ${dep}`, before: null, after: null, forcesReplacement: false, reason: `it lets go of ${dep} before it is deleted: its subnet passes to another net` });
        y.action = "update";
      }
    }
  }

  // What lets go of dependencies before they are disrupted also lets go, in that step, of those that
  // are deleted: their deletes would otherwise wait for its update, which waits for what replaces the
  // released ones, which may wait for those deletes (a template disk that becomes an empty one: its
  // build is deleted while the disk is replaced under the kept VM).
  for (const c of changes.values()) {
    if (!c.releases.length || !c.refreshed) continue;
    for (const dep of c.refreshed.dependsOn) if (changes.get(dep)?.action === "delete" && !c.releases.includes(dep)) c.releases.push(dep);
  }

  let selected = [...changes.values()];
  if (input.targets?.length) {
    const keep = new Set<string>();
    const byAddr = new Map(desired.map((d) => [d.address, d]));
    const walk = (address: string): void => {
      if (keep.has(address)) return;
      keep.add(address);
      for (const dep of byAddr.get(address)?.dependsOn ?? []) walk(dep);
    };
    for (const t of input.targets) walk(t);
    selected = selected.filter((c) => keep.has(c.address));
  }
  selected.sort(byAddress);
  const pendingRestarts = [...current.values()]
    .filter((r) => pendingRestartOf(r).length && !(input.restart && desiredAddresses.has(r.address)))
    .map((r) => r.address)
    .sort();
  const stopped = desired.filter((d) => d.kind === "domain" && d.attrs.running === false).map((d) => d.address).sort();
  const gone = new Set(selected.filter((c) => c.action === "replace" || c.action === "delete").map((c) => c.address));
  const snapshotsLost = [...current.values()]
    .filter((r) => r.kind === "domain" && (gone.has(r.address) || r.dependsOn.some((dep) => dep.startsWith("disk.") && gone.has(dep))))
    .map((r) => ({ address: r.address, snapshots: [...recordedSnapshots(r).keys()] }))
    .filter((l) => l.snapshots.length > 0)
    .sort(byAddress);
  const summary = { create: 0, update: 0, replace: 0, delete: 0 };
  for (const c of selected) if (c.action !== "no-op") summary[c.action] += 1;
  return {
    formatVersion: 1,
    lineage: input.state.lineage || null,
    serial: input.state.serial,
    initFileSha256: input.initFileSha256,
    resourceChanges: selected,
    drift: drift.sort(byAddress),
    pendingRestarts,
    stopped,
    snapshotsLost,
    summary,
    desired,
    destroy: input.destroy ?? false,
    notices: [],
  };
}

/**
 * Leases created (or replaced) for a subnet that a lease deleted (or replaced) by the same plan
 * holds: the old one must be released first. `from` and `to` are lease addresses.
 */
export function subnetHandovers(changes: Iterable<ResourceChange>): { from: string; to: string }[] {
  const list = [...changes];
  const held = new Map<string, string>();
  for (const c of list) {
    const subnet = c.refreshed?.outputs.subnet;
    if (c.kind === "lease" && (c.action === "delete" || c.action === "replace") && typeof subnet === "string") held.set(subnet, c.address);
  }
  const out: { from: string; to: string }[] = [];
  for (const c of list) {
    const requested = c.after?.requested;
    const from = typeof requested === "string" ? held.get(requested) : undefined;
    if (c.kind === "lease" && (c.action === "create" || c.action === "replace") && from && from !== c.address) out.push({ from, to: c.address });
  }
  return out;
}

export function hasChanges(plan: Plan): boolean {
  return plan.resourceChanges.some((c) => c.action !== "no-op");
}
