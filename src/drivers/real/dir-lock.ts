/**
 * A lock on a shared store's entry (proper-lockfile: a lock directory, refreshed while
 * held, stale after `staleMs` when its holder died), waited for with jitter up to a
 * deadline. The template, lease and layer stores lock this way.
 */
import lockfile from "proper-lockfile";
import { LockError, errorMessage } from "../../errors.ts";
import { sleep } from "../../util/sleep.ts";

export interface DirLockOptions {
  /** The directory the lock belongs to (it must exist). */
  dir: string;
  /** The lock directory's path. */
  lockPath: string;
  /** What is locked, for messages: "build layer 3f2a…". */
  what: string;
  waitMs: number;
  staleMs?: number | undefined;
  updateMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called once when the lock is busy and lago starts waiting. */
  onWait?: (() => void) | undefined;
}

/**
 * Run `fn` holding the lock. `fn` gets a function that tells whether the lock was
 * lost meanwhile (its refresh failed): then it must not publish what it made.
 */
export async function withDirLock<T>(o: DirLockOptions, fn: (isCompromised: () => Error | undefined) => Promise<T>): Promise<T> {
  let compromised: Error | undefined;
  const deadline = Date.now() + o.waitMs;
  let told = false;
  let unlock: (() => Promise<void>) | undefined;
  for (;;) {
    try {
      unlock = await lockfile.lock(o.dir, {
        lockfilePath: o.lockPath,
        stale: o.staleMs ?? 30_000,
        update: o.updateMs ?? 10_000,
        retries: 0,
        onCompromised: (err) => {
          compromised = err;
        },
      });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ELOCKED") {
        throw new LockError(`cannot lock ${o.what} in ${o.dir}: ${errorMessage(err)}`, { cause: err });
      }
      if (Date.now() >= deadline) {
        throw new LockError(`${o.what} is locked by another process (${o.lockPath}); gave up after ${Math.round(o.waitMs / 1000)}s`, {
          hint: "if no lago process is running, remove the lock directory",
        });
      }
      if (!told) {
        told = true;
        o.onWait?.();
      }
      await sleep(200 + Math.floor(Math.random() * 300), o.signal, `waiting for ${o.what}`);
    }
  }
  try {
    return await fn(() => compromised);
  } finally {
    await unlock().catch(() => undefined);
  }
}
