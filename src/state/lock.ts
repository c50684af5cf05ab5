/**
 * One lock per environment around plan and apply: `<env dir>.lock`, a
 * {@link acquireDirLock} lock. The holder records who it is, so a second lago
 * says "locked by PID … (lago apply) since …". The lock of a holder that died
 * (even by SIGKILL) is taken over at once, and never the lock of a live one.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { LockError } from "../errors.ts";
import { acquireDirLockOr, describeHolder } from "../util/dir-lock.ts";

export interface EnvLock {
  /** Idempotent; never removes a lock another process took over. */
  release(): Promise<void>;
}

/** Path of the lock of the environment directory `dir`. */
export function envLockPath(dir: string): string {
  return `${path.resolve(dir)}.lock`;
}

/**
 * Lock the environment `dir` (its parent is created if missing). Waits up to
 * `timeoutMs` for a live holder, then fails with a LockError naming it; a dead
 * holder's lock is taken over. Safe against any number of concurrent lago
 * processes and against a SIGKILL at any point.
 */
export async function lockEnv(dir: string, command: string, timeoutMs = 0): Promise<EnvLock> {
  // The lock lives beside the environment directory, which may not exist (yet, or any more).
  mkdirSync(path.dirname(path.resolve(dir)), { recursive: true, mode: 0o700 });
  const lock = await acquireDirLockOr(envLockPath(dir), { command, timeoutMs, staleMs: 60_000, retryMinMs: 25, retryMaxMs: 250 }, (holder) =>
    new LockError(`environment ${path.basename(dir)} is locked by ${describeHolder(holder)}`, {
      hint: "wait for it to finish, or pass --lock-timeout SECONDS to wait",
    }),
  );
  return { release: () => lock.release() };
}
