/**
 * The applier: turns a plan into an execution graph of steps, checks it, and
 * walks it in dependency order, independent steps in parallel. Before every
 * reconciler call the intent goes to the journal (durable); after it, the
 * outcome with the resource as it must now be recorded. A failure stops what
 * depends on the failed step, nothing else.
 *
 * Steps: `create`, `update`, `delete` (a replace is a delete then a create),
 * and `release`: a resource that survives while a dependency of it is
 * replaced or restarted lets go of it first (a VM detaches its NICs on a
 * network that is recreated) and takes it again in its `update` after.
 *
 * Of the steps ready at the same time, the one heading the longest chain to
 * the end of the apply starts first ({@link criticalPath}).
 */
import { Graph, alg } from "@dagrejs/graphlib";
import TinyQueue from "tinyqueue";
import { InternalError, LagoError, ProviderError, errorMessage } from "../errors.ts";
import { subnetHandovers, type Plan, type ResourceChange } from "../plan/plan.ts";
import { diffAttrs } from "../plan/diff.ts";
import { kindOf } from "../resources/registry.ts";
import type { AttrChange, Attrs, DesiredResource, RecordedResource } from "../resources/types.ts";
import type { State } from "../state/state.ts";
import type { StateWriter } from "../state/store.ts";
import { reconcileContext, type EngineContext, type Idle } from "./context.ts";
import type { StepAction } from "./events.ts";

export interface Step {
  id: string;
  address: string;
  action: StepAction;
  change: ResourceChange;
}

type Status = "pending" | "running" | "done" | "failed" | "skipped";

export interface ApplyOutcome {
  ok: boolean;
  failed: { address: string; action: StepAction; error: LagoError }[];
  skipped: { address: string; action: StepAction; reason: string }[];
  done: number;
  /** The run was interrupted (Ctrl-C): steps not started were skipped. */
  interrupted: boolean;
}

const stepId = (action: StepAction, address: string): string => `${action}:${address}`;

/**
 * The execution graph of a plan (edges point from a step to the steps that
 * must wait for it). Throws an {@link InternalError} naming the steps of a
 * cycle: a plan the engine cannot order is a bug, and nothing has run yet.
 */
export function executionGraph(plan: Plan, state: State): Graph {
  const g = new Graph({ directed: true });
  const add = (action: StepAction, change: ResourceChange): void => {
    const step: Step = { id: stepId(action, change.address), address: change.address, action, change };
    g.setNode(step.id, step);
  };
  for (const c of plan.resourceChanges) {
    if (c.action === "create" || c.action === "update" || c.action === "delete") add(c.action, c);
    else if (c.action === "replace") {
      add("delete", c);
      add("create", c);
    }
    if (c.releases.length) add("release", c);
  }
  const has = (action: StepAction, address: string): string | undefined => (g.hasNode(stepId(action, address)) ? stepId(action, address) : undefined);
  const edge = (from: string | undefined, to: string | undefined): void => {
    if (from && to && from !== to) g.setEdge(from, to);
  };
  // Who depends on what, as recorded (deletes and releases are ordered by it).
  const dependents = new Map<string, string[]>();
  for (const rec of state.resources.values()) {
    for (const dep of rec.dependsOn) dependents.set(dep, [...(dependents.get(dep) ?? []), rec.address]);
  }
  const byAddress = new Map(plan.resourceChanges.map((c) => [c.address, c]));
  for (const c of plan.resourceChanges) {
    const self = c.address;
    const forward = has("create", self) ?? has("update", self);
    // Created and updated after what they depend on.
    if (forward) for (const dep of c.dependsOn) edge(has("create", dep) ?? has("update", dep), forward);
    edge(has("delete", self), has("create", self));
    edge(has("release", self), has("update", self));
    // The first step that disrupts this resource waits for what must let go of it, or go away before it.
    const disruption =
      has("delete", self) ?? (c.disrupts ? (has("release", self) ?? has("update", self)) : undefined) ?? (c.action === "create" ? has("create", self) : undefined);
    if (!disruption) continue;
    for (const y of dependents.get(self) ?? []) {
      const release = byAddress.get(y)?.releases.includes(self) ? has("release", y) : undefined;
      edge(has("delete", y) ?? release ?? (has("delete", self) ? has("update", y) : undefined), disruption);
    }
  }
  // A lease that takes over a subnet another lease of the plan releases waits for that release.
  for (const { from, to } of subnetHandovers(plan.resourceChanges)) edge(has("delete", from), has("create", to));
  if (!alg.isAcyclic(g)) {
    const cycle = alg.findCycles(g)[0] ?? [];
    throw new InternalError(`the execution graph has a cycle: ${[...cycle].reverse().join(" → ")} → ${[...cycle].reverse()[0] ?? ""}; nothing was changed`, {
      hint: "this is a bug in lago's planner: please report it with the output of `lago plan --json`",
    });
  }
  return g;
}

/**
 * Each step's critical path: the time it and the longest chain of steps waiting for it typically take
 * (`typicalMs` of their kinds; a delete or a release counts 1 ms). O(steps + edges).
 */
function criticalPath(graph: Graph): Map<string, number> {
  const path = new Map<string, number>();
  for (const id of alg.topsort(graph).reverse()) {
    const s = graph.node(id) as Step;
    const own = s.action === "create" || s.action === "update" ? kindOf(s.change.kind).typicalMs : 1;
    let next = 0;
    for (const succ of graph.successors(id) ?? []) next = Math.max(next, path.get(succ) ?? 0);
    path.set(id, own + next);
  }
  return path;
}

/** A step waiting for a slot: a new one, or one back from an idle wait (`resume` gives it the slot). */
interface Waiting {
  id: string;
  resume?: () => void;
}

export interface ApplyParams {
  engine: EngineContext;
  plan: Plan;
  writer: StateWriter;
  parallelism: number;
  restart: boolean;
  graph: Graph;
}

/** `attrs` changes at run time: the recorded attributes may have moved since the plan (a release ran). */
function runtimeChanges(change: ResourceChange, prior: Attrs, desired: Attrs): AttrChange[] {
  const kind = kindOf(change.kind);
  const pseudo = change.changes.filter((c) => c.path.startsWith("("));
  return [...diffAttrs(prior, desired, kind), ...pseudo];
}

/**
 * Execute the plan's execution graph. Never throws for a resource failure:
 * the outcome lists them. Throws an InternalError if a planned step ends
 * neither done, failed nor skipped with a reason.
 */
export async function applyPlan(p: ApplyParams): Promise<ApplyOutcome> {
  const { engine, plan, writer, graph } = p;
  const state = writer.state;
  const desired = new Map<string, DesiredResource>(plan.desired.map((d) => [d.address, d]));
  const outcome: ApplyOutcome = { ok: true, failed: [], skipped: [], done: 0, interrupted: false };
  const status = new Map<string, Status>();
  const waiting = new Map<string, number>();
  for (const id of graph.nodes()) {
    status.set(id, "pending");
    waiting.set(id, graph.predecessors(id)?.length ?? 0);
  }
  const step = (id: string): Step => graph.node(id) as Step;

  const execute = async (s: Step, idle: Idle): Promise<void> => {
    const { address, action, change } = s;
    const kind = kindOf(change.kind);
    const recorded = state.resources.get(address);
    const want = desired.get(address);
    let dependsOn: string[];
    let attrs: Attrs;
    if (action === "delete") {
      dependsOn = recorded?.dependsOn ?? change.dependsOn;
      attrs = recorded?.attrs ?? change.before ?? {};
    } else if (action === "release") {
      dependsOn = (recorded?.dependsOn ?? []).filter((d) => !change.releases.includes(d));
      attrs = change.releases.reduce((a, dep) => kind.withoutDependency?.(a, dep) ?? a, recorded?.attrs ?? {});
    } else {
      dependsOn = change.dependsOn;
      attrs = want?.attrs ?? change.after ?? {};
    }
    // An update or a release may still need what the resource depended on before (to detach it).
    const visible = action === "update" || action === "release" ? [...new Set([...dependsOn, ...(recorded?.dependsOn ?? [])])] : dependsOn;
    const ctx = reconcileContext(engine, state, address, visible, { restart: p.restart && change.restart, idle });
    // Waiting for the intent to be durable holds no slot: every ready step journals its intent at once,
    // and one fsync covers them all (group commit), instead of one fsync per `parallelism` steps.
    await idle(() => writer.intent(address, change.kind, action, attrs, dependsOn));
    if (engine.signal.aborted) {
      // Interrupted while waiting for a slot: the call never started.
      writer.outcome(address, action, false, undefined);
      status.set(s.id, "skipped");
      outcome.ok = false;
      outcome.interrupted = true;
      outcome.skipped.push({ address, action, reason: "interrupted" });
      engine.emit({ type: "skipped", address, action, reason: "interrupted" });
      return;
    }
    const started = Date.now();
    engine.emit({ type: "start", address, action });
    try {
      if (action === "delete") {
        await kind.delete(ctx, { attrs, outputs: recorded?.outputs });
        writer.outcome(address, action, true, null);
      } else if (action === "create") {
        const outputs = await kind.create(ctx, attrs);
        writer.outcome(address, action, true, { address, kind: change.kind, attrs, outputs, dependsOn, status: "ready" });
      } else {
        const prior: RecordedResource = recorded ?? { address, kind: change.kind, attrs: change.before ?? {}, outputs: {}, dependsOn, status: "ready" };
        const outputs = await kind.update(ctx, attrs, prior, runtimeChanges(change, prior.attrs, attrs));
        writer.outcome(address, action, true, { address, kind: change.kind, attrs, outputs, dependsOn, status: prior.status });
      }
      status.set(s.id, "done");
      outcome.done += 1;
      engine.emit({ type: "done", address, action, elapsedMs: Date.now() - started });
    } catch (err) {
      const error =
        err instanceof ProviderError
          ? err
          : new ProviderError(address, err instanceof LagoError ? err.message : errorMessage(err), { cause: err, hint: err instanceof LagoError ? err.hint : undefined });
      let resource: RecordedResource | undefined;
      let resolved = true;
      if ((action === "update" || action === "release") && recorded) {
        // It may have done part of its work: the next plan updates it again.
        resource = { ...recorded, unfinished: `the ${action} failed: ${error.message.split("\n")[0] ?? ""}` };
      } else if (action === "create") {
        // A failed create should leave nothing, but check: whatever exists is recorded as tainted.
        try {
          const left = await kind.read(ctx, { attrs, outputs: undefined });
          if (left) resource = { address, kind: change.kind, attrs: left.attrs, outputs: left.outputs, dependsOn, status: "tainted", reason: `create failed: ${error.message.split("\n")[0] ?? ""}` };
        } catch {
          // Reading back failed too: the intent stays open for the next run to resolve.
          resolved = false;
        }
      }
      if (resolved) writer.outcome(address, action, false, resource);
      status.set(s.id, "failed");
      outcome.ok = false;
      outcome.failed.push({ address, action, error });
      engine.emit({ type: "failed", address, action, elapsedMs: Date.now() - started, error });
    }
  };

  const critical = criticalPath(graph);
  await new Promise<void>((resolve, reject) => {
    let running = 0;
    /** Steps in an idle wait: under way, though they hold no slot. */
    let idling = 0;
    /**
     * Steps waiting for a slot: new ones, and ones back from an idle wait (`resume`). The longest critical
     * path first; then a step under way before a new one; then by id, so that a run is reproducible.
     */
    const queue = new TinyQueue<Waiting>(
      graph.sources().map((id) => ({ id })),
      (a, b) => (critical.get(b.id) ?? 0) - (critical.get(a.id) ?? 0) || Number(!a.resume) - Number(!b.resume) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );

    const skip = (id: string, reason: string): void => {
      // This step and everything after it can never run.
      const queue = [id];
      const cause = new Map<string, string>([[id, reason]]);
      while (queue.length) {
        const next = queue.shift() as string;
        if (status.get(next) !== "pending") continue;
        status.set(next, "skipped");
        const s = step(next);
        const why = cause.get(next) ?? reason;
        outcome.ok = false;
        outcome.skipped.push({ address: s.address, action: s.action, reason: why });
        engine.emit({ type: "skipped", address: s.address, action: s.action, reason: why });
        for (const succ of graph.successors(next) ?? []) {
          if (!cause.has(succ)) cause.set(succ, `${s.address} was not ${s.action === "delete" ? "destroyed" : s.action === "release" ? "released" : s.action === "update" ? "updated" : "created"}`);
          queue.push(succ);
        }
      }
    };

    const finishIfDone = (): void => {
      if (running > 0 || idling > 0 || queue.length > 0) return;
      const stuck = [...status].filter(([, st]) => st === "pending" || st === "running").map(([id]) => id);
      if (stuck.length) reject(new InternalError(`the apply ended with steps neither done, failed nor skipped: ${stuck.sort().join(", ")}`));
      else resolve();
    };

    const settle = (s: Step): void => {
      const st = status.get(s.id);
      for (const succ of graph.successors(s.id) ?? []) {
        if (st !== "done") {
          skip(succ, `${s.address} did not ${s.action}`);
          continue;
        }
        const left = (waiting.get(succ) ?? 0) - 1;
        waiting.set(succ, left);
        if (left === 0 && status.get(succ) === "pending") queue.push({ id: succ });
      }
    };

    const pump = (): void => {
      while (running < p.parallelism && queue.length > 0) {
        const { id, resume } = queue.pop() as Waiting;
        if (resume) {
          running += 1;
          resume();
          continue;
        }
        if (status.get(id) !== "pending") continue;
        if (engine.signal.aborted) {
          outcome.interrupted = true;
          skip(id, "interrupted");
          continue;
        }
        const s = step(id);
        status.set(id, "running");
        running += 1;
        let holding = true;
        const idle = async <T>(fn: () => Promise<T>): Promise<T> => {
          if (!holding) return fn();
          holding = false;
          running -= 1;
          idling += 1;
          // Not pump() itself: a pump starting many steps that each go idle at once would recurse once per step.
          queueMicrotask(pump);
          try {
            return await fn();
          } finally {
            await new Promise<void>((back) => {
              queue.push({
                id,
                resume: () => {
                  idling -= 1;
                  back();
                },
              });
              pump();
            });
            holding = true;
          }
        };
        void execute(s, idle)
          .catch((err: unknown) => {
            // execute() records every failure itself; anything here is a bug (e.g. the journal failed).
            status.set(id, "failed");
            outcome.ok = false;
            outcome.failed.push({ address: s.address, action: s.action, error: err instanceof LagoError ? err : new InternalError(errorMessage(err), { cause: err }) });
          })
          .finally(() => {
            running -= 1;
            settle(s);
            pump();
            finishIfDone();
          });
      }
      if (engine.signal.aborted) {
        // Steps not started never will; steps under way still get their slot back.
        const underWay: Waiting[] = [];
        while (queue.length > 0) {
          const next = queue.pop() as Waiting;
          if (next.resume) underWay.push(next);
          else if (status.get(next.id) === "pending") {
            outcome.interrupted = true;
            skip(next.id, "interrupted");
          }
        }
        for (const w of underWay) queue.push(w);
      }
      finishIfDone();
    };
    engine.signal.addEventListener("abort", pump, { once: true });
    pump();
  });
  return outcome;
}
