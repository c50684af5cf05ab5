import type { Drivers } from "../drivers/types.ts";
import type { EnvContext } from "../env/context.ts";
import type { Attrs, Kind, ReconcileContext } from "../resources/types.ts";
import type { State } from "../state/state.ts";
import type { Emit } from "./events.ts";

export interface EngineContext {
  env: EnvContext;
  drivers: Drivers;
  emit: Emit;
  signal: AbortSignal;
  cache: Map<string, Promise<unknown>>;
}

/** Releases the caller's parallelism slot while `fn` runs (the applier gives one per step). */
export type Idle = <T>(fn: () => Promise<T>) => Promise<T>;

/** The reconciler context of `address`, its dependencies taken from `state` as it is now. */
export function reconcileContext(engine: EngineContext, state: State, address: string, dependsOn: string[], options: { restart?: boolean; idle?: Idle } = {}): ReconcileContext {
  const deps = new Map<string, { kind: Kind; attrs: Attrs; outputs: Attrs }>();
  for (const dep of dependsOn) {
    const rec = state.resources.get(dep);
    if (rec) deps.set(dep, { kind: rec.kind, attrs: rec.attrs, outputs: rec.outputs });
  }
  return {
    address,
    env: engine.env,
    drivers: engine.drivers,
    deps,
    progress: (message) => engine.emit({ type: "progress", address, message }),
    signal: engine.signal,
    restart: options.restart ?? false,
    idle: options.idle ?? ((fn) => fn()),
    cache: engine.cache,
  };
}
