/**
 * Everything an everyday operation needs: the environment, the engine's
 * drivers, the virsh operations, cancellation, the lock timeout and where
 * to report progress. Operations never print.
 */
import type { Drivers } from "../drivers/types.ts";
import type { EnvContext } from "../env/context.ts";
import type { Session } from "../engine/session.ts";
import { DEFAULT_PARALLELISM } from "../engine/parallelism.ts";
import { VirshOps } from "../drivers/real/virsh-ops.ts";
import { createDrivers } from "../drivers/factory.ts";
import type { OpsEmit } from "./events.ts";

export interface OpsContext {
  env: EnvContext;
  drivers: Drivers;
  virsh: VirshOps;
  signal: AbortSignal;
  /** How long to wait for the environment lock (ms). */
  lockTimeoutMs: number;
  emit: OpsEmit;
}

export interface OpsContextOptions {
  signal?: AbortSignal | undefined;
  lockTimeoutMs?: number | undefined;
  emit?: OpsEmit | undefined;
  drivers?: Drivers | undefined;
}

/** The context for `env`, with the real drivers unless others are given. */
export function makeOpsContext(env: EnvContext, options: OpsContextOptions = {}): OpsContext {
  return {
    env,
    drivers: options.drivers ?? createDrivers(env),
    virsh: new VirshOps(env.config.libvirtUri),
    signal: options.signal ?? new AbortController().signal,
    lockTimeoutMs: options.lockTimeoutMs ?? 0,
    emit: options.emit ?? (() => undefined),
  };
}

/** An engine session for {@link updateState}: the same environment, drivers and lock timeout. */
export function engineSession(ctx: OpsContext): Session {
  return { env: ctx.env, drivers: ctx.drivers, emit: () => undefined, signal: ctx.signal, lockTimeoutMs: ctx.lockTimeoutMs, parallelism: DEFAULT_PARALLELISM };
}
