/**
 * The applier: walks a plan in dependency order, independent resources in
 * parallel. Before every reconciler call the intent goes to the journal; after
 * it the state is saved and the outcome journaled. A failure stops what depends
 * on the failed resource, nothing else.
 */
import { LagoError, ProviderError, errorMessage } from "../errors.ts";
import type { Plan, ResourceChange } from "../plan/plan.ts";
import { kindOf } from "../resources/registry.ts";
import type { DesiredResource, RecordedResource } from "../resources/types.ts";
import type { Journal } from "../state/journal.ts";
import { writeState, type State } from "../state/state.ts";
import { reconcileContext, type EngineContext } from "./context.ts";
import type { NodeAction } from "./events.ts";

interface Node {
  id: string;
  address: string;
  action: NodeAction;
  change: ResourceChange;
  after: Set<string>;
  status: "pending" | "running" | "done" | "failed" | "skipped";
}

export interface ApplyOutcome {
  ok: boolean;
  failed: { address: string; action: NodeAction; error: LagoError }[];
  skipped: string[];
  done: number;
}

const nodeId = (action: NodeAction, address: string): string => `${action}:${address}`;

/** The execution graph of a plan: create/update after their dependencies, deletes before what they depend on. */
export function executionGraph(plan: Plan, state: State): Map<string, Node> {
  const nodes = new Map<string, Node>();
  const addNode = (action: NodeAction, change: ResourceChange): void => {
    nodes.set(nodeId(action, change.address), { id: nodeId(action, change.address), address: change.address, action, change, after: new Set(), status: "pending" });
  };
  for (const c of plan.resourceChanges) {
    if (c.action === "create") addNode("create", c);
    else if (c.action === "update") addNode("update", c);
    else if (c.action === "delete") addNode("delete", c);
    else if (c.action === "replace") {
      addNode("delete", c);
      addNode("create", c);
    }
  }
  const forward = (address: string): Node | undefined => nodes.get(nodeId("create", address)) ?? nodes.get(nodeId("update", address));
  for (const node of nodes.values()) {
    const { address } = node;
    if (node.action === "create" || node.action === "update") {
      for (const dep of node.change.dependsOn) {
        const d = forward(dep);
        if (d) node.after.add(d.id);
      }
      if (node.action === "create" && nodes.has(nodeId("delete", address))) node.after.add(nodeId("delete", address));
    } else {
      // Delete X only after everything recorded as depending on X was deleted or updated away from it.
      for (const rec of state.resources.values()) {
        if (!rec.dependsOn.includes(address)) continue;
        const del = nodes.get(nodeId("delete", rec.address));
        if (del) node.after.add(del.id);
        const upd = nodes.get(nodeId("update", rec.address));
        if (upd) node.after.add(upd.id);
      }
    }
  }
  return nodes;
}

export interface ApplyParams {
  engine: EngineContext;
  plan: Plan;
  state: State;
  stateFile: string;
  journal: Journal;
  parallelism: number;
  restart: boolean;
}

/** Execute the plan. Never throws for a resource failure: the outcome lists them. */
export async function applyPlan(p: ApplyParams): Promise<ApplyOutcome> {
  const { engine, plan, state, journal } = p;
  const desired = new Map<string, DesiredResource>(plan.desired.map((d) => [d.address, d]));
  const nodes = executionGraph(plan, state);
  const outcome: ApplyOutcome = { ok: true, failed: [], skipped: [], done: 0 };
  const save = (): void => writeState(p.stateFile, state);

  // What the refresh found deleted is gone from the state before anything runs.
  let dropped = false;
  for (const d of plan.drift) {
    if (d.type === "deleted" && state.resources.delete(d.address)) dropped = true;
  }
  state.initFileSha256 = plan.destroy ? state.initFileSha256 : plan.initFileSha256;
  if (dropped) save();

  const run = async (node: Node): Promise<void> => {
    const { address, action, change } = node;
    const kind = kindOf(change.kind);
    const started = Date.now();
    engine.emit({ type: "start", address, action });
    const recorded = state.resources.get(address);
    const want = desired.get(address);
    const dependsOn = action === "delete" ? (recorded?.dependsOn ?? change.dependsOn) : change.dependsOn;
    // An update may still need what the resource depended on before (to detach it).
    const visible = action === "update" ? [...new Set([...dependsOn, ...(recorded?.dependsOn ?? [])])] : dependsOn;
    const ctx = reconcileContext(engine, state, address, visible, p.restart && change.restart);
    const attrs = action === "delete" ? (recorded?.attrs ?? change.before ?? {}) : (want?.attrs ?? change.after ?? {});
    journal.append({ type: "intent", address, kind: change.kind, action, attrs, dependsOn });
    try {
      if (action === "delete") {
        await kind.delete(ctx, { attrs, outputs: recorded?.outputs });
        state.resources.delete(address);
      } else {
        let outputs;
        if (action === "create") outputs = await kind.create(ctx, attrs);
        else {
          const prior: RecordedResource = recorded
            ? { ...recorded, attrs: change.before ?? recorded.attrs }
            : { address, kind: change.kind, attrs: change.before ?? {}, outputs: {}, dependsOn, status: "ready" };
          outputs = await kind.update(ctx, attrs, prior, change.changes);
        }
        state.resources.set(address, { address, kind: change.kind, attrs, outputs, dependsOn, status: "ready" });
      }
      save();
      journal.append({ type: "outcome", address, action, ok: true });
      node.status = "done";
      outcome.done += 1;
      engine.emit({ type: "done", address, action, elapsedMs: Date.now() - started });
    } catch (err) {
      const error =
        err instanceof ProviderError
          ? err
          : new ProviderError(address, err instanceof LagoError ? err.message : errorMessage(err), { cause: err, hint: err instanceof LagoError ? err.hint : undefined });
      if (action === "create") {
        // A failed create should leave nothing, but check: whatever exists is recorded as tainted.
        try {
          const left = await kind.read(ctx, { attrs, outputs: undefined });
          if (left) {
            state.resources.set(address, { address, kind: change.kind, attrs: left.attrs, outputs: left.outputs, dependsOn, status: "tainted", reason: `create failed: ${error.message.split("\n")[0]}` });
            save();
          }
        } catch {
          // Reading back failed too; the journal keeps the intent open for the next run.
          node.status = "failed";
          outcome.ok = false;
          outcome.failed.push({ address, action, error });
          engine.emit({ type: "failed", address, action, elapsedMs: Date.now() - started, error });
          return;
        }
      }
      journal.append({ type: "outcome", address, action, ok: false });
      node.status = "failed";
      outcome.ok = false;
      outcome.failed.push({ address, action, error });
      engine.emit({ type: "failed", address, action, elapsedMs: Date.now() - started, error });
    }
  };

  await new Promise<void>((resolve) => {
    let running = 0;
    const pump = (): void => {
      let progressed = true;
      while (progressed) {
        progressed = false;
        for (const node of nodes.values()) {
          if (node.status !== "pending") continue;
          const blockers = [...node.after].map((id) => nodes.get(id));
          const bad = blockers.find((b) => b && (b.status === "failed" || b.status === "skipped"));
          if (bad) {
            node.status = "skipped";
            outcome.skipped.push(node.id);
            outcome.ok = false;
            engine.emit({ type: "skipped", address: node.address, action: node.action, reason: `${bad.address} did not ${bad.action}` });
            progressed = true;
            continue;
          }
          if (engine.signal.aborted) {
            node.status = "skipped";
            outcome.skipped.push(node.id);
            outcome.ok = false;
            engine.emit({ type: "skipped", address: node.address, action: node.action, reason: "interrupted" });
            progressed = true;
            continue;
          }
          if (running >= p.parallelism || blockers.some((b) => b && b.status !== "done")) continue;
          node.status = "running";
          running += 1;
          progressed = true;
          void run(node).finally(() => {
            running -= 1;
            pump();
          });
        }
      }
      if (running === 0 && [...nodes.values()].every((n) => n.status !== "pending" && n.status !== "running")) resolve();
    };
    pump();
  });
  if (outcome.ok) journal.clear();
  else journal.close();
  return outcome;
}
