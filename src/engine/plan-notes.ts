/** Notes on a computed plan from the kinds that know more ahead of time (a build's cached layer). */
import { errorMessage } from "../errors.ts";
import type { Plan } from "../plan/plan.ts";
import { kindOf } from "../resources/registry.ts";
import type { DesiredResource } from "../resources/types.ts";
import type { State } from "../state/state.ts";
import { reconcileContext, type EngineContext } from "./context.ts";
import { mapLimit } from "../util/limit.ts";

/**
 * Fill `note` on the creates and replacements of kinds with a `planNote`. Reads only; a
 * note that cannot be worked out is left out (a plan never fails for a note).
 */
export async function annotatePlan(engine: EngineContext, plan: Plan, state: State, parallelism: number): Promise<void> {
  const graph = new Map<string, DesiredResource>(plan.desired.map((d) => [d.address, d]));
  const wanted = plan.resourceChanges.filter((c) => (c.action === "create" || c.action === "replace") && kindOf(c.kind).planNote && c.after);
  await mapLimit(wanted, parallelism, async (c) => {
    const note = kindOf(c.kind).planNote;
    const ctx = reconcileContext(engine, state, c.address, c.dependsOn);
    try {
      const text = await note?.(ctx, c.after ?? {}, graph);
      if (text) c.note = text;
    } catch (err) {
      engine.emit({ type: "progress", address: c.address, message: `no plan note: ${errorMessage(err)}` });
    }
  });
}
