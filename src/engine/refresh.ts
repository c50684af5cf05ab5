/** Refresh: read every recorded resource back from reality, in parallel (batched reads are memoized). */
import { ProviderError, errorMessage, LagoError } from "../errors.ts";
import { kindOf } from "../resources/registry.ts";
import type { Observed } from "../resources/types.ts";
import type { State } from "../state/state.ts";
import { reconcileContext, type EngineContext } from "./context.ts";
import { mapLimit } from "../util/limit.ts";

/** What every recorded resource looks like now (null: gone). Emits nothing: the caller reports it when it uses it. */
export async function refresh(engine: EngineContext, state: State, parallelism: number): Promise<Map<string, Observed | null>> {
  const out = new Map<string, Observed | null>();
  await mapLimit([...state.resources.values()], parallelism, async (rec) => {
    const ctx = reconcileContext(engine, state, rec.address, rec.dependsOn);
    try {
      out.set(rec.address, (await kindOf(rec.kind).read(ctx, { attrs: rec.attrs, outputs: rec.outputs })) ?? null);
    } catch (err) {
      if (err instanceof LagoError && err.code !== "INTERNAL") throw new ProviderError(rec.address, `refresh failed: ${err.message}`, { cause: err, hint: err.hint });
      throw new ProviderError(rec.address, `refresh failed: ${errorMessage(err)}`, { cause: err });
    }
  });
  return out;
}
