/**
 * Crash recovery: an intent in the journal without an outcome may or may not
 * have happened. Resolve each by reading reality back, never by asking the user.
 */
import { StateError, errorMessage } from "../errors.ts";
import { kindOf } from "../resources/registry.ts";
import type { PendingIntent } from "../state/journal.ts";
import type { State } from "../state/state.ts";
import { reconcileContext, type EngineContext } from "./context.ts";

/** Apply the resolution of `intents` to `state` (in memory). Returns what was found, for display. */
export async function recoverIntents(engine: EngineContext, state: State, intents: PendingIntent[]): Promise<string[]> {
  const notes: string[] = [];
  for (const intent of intents) {
    const kind = kindOf(intent.kind);
    const existing = state.resources.get(intent.address);
    if (intent.action === "create") {
      const taint = kind.taintOnInterruptedCreate?.({ attrs: intent.attrs, dependsOn: intent.dependsOn });
      if (taint !== undefined) {
        const dep = state.resources.get(taint);
        if (dep) state.resources.set(taint, { ...dep, status: "tainted", reason: `${intent.address} was interrupted` });
        state.resources.delete(intent.address);
        notes.push(`${intent.address}: interrupted; ${taint} will be recreated`);
        continue;
      }
    }
    const ctx = reconcileContext(engine, state, intent.address, intent.dependsOn);
    let observed;
    try {
      observed = await kind.read(ctx, { attrs: existing?.attrs ?? intent.attrs, outputs: existing?.outputs });
    } catch (err) {
      throw new StateError(`cannot check the interrupted ${intent.action} of ${intent.address}: ${errorMessage(err)}`, {
        cause: err,
        hint: "lago must read reality back to finish the interrupted apply; fix what stops it (see above) and run the command again",
      });
    }
    if (intent.action === "create") {
      if (observed) {
        state.resources.set(intent.address, {
          address: intent.address,
          kind: intent.kind,
          attrs: observed.attrs,
          outputs: observed.outputs,
          dependsOn: intent.dependsOn,
          status: observed.healthy ? "ready" : "tainted",
          ...(observed.healthy ? {} : { reason: observed.reason ?? "interrupted create" }),
        });
        notes.push(`${intent.address}: interrupted create found in reality; recorded`);
      } else {
        state.resources.delete(intent.address);
        notes.push(`${intent.address}: interrupted create left nothing behind`);
      }
    } else if (intent.action === "delete") {
      if (!observed) {
        state.resources.delete(intent.address);
        notes.push(`${intent.address}: interrupted delete had completed`);
      } else notes.push(`${intent.address}: interrupted delete; still exists`);
    } else {
      // It may have done part of its work: the next plan updates it again.
      if (existing) state.resources.set(intent.address, { ...existing, unfinished: `the ${intent.action} was interrupted` });
      notes.push(`${intent.address}: interrupted ${intent.action}; reality was read back and it will be planned again`);
    }
  }
  return notes;
}
