/**
 * What every entry of the shared store (a template image, a build layer) has
 * beside it: Lago's `.users` registry of who uses it, and a directory lock
 * that downloads, builds and prunes take.
 */
import { mkdir } from "node:fs/promises";
import { LagoError, LockError, errorMessage } from "../../errors.ts";
import { describeHolder, withDirLock, type LockHolder } from "../../util/dir-lock.ts";
import { writeFileAtomicAsync } from "../../util/fs-atomic.ts";
import { isRecord, readText } from "../../util/read.ts";
import type { CallOptions } from "../types.ts";

/**
 * The users registered in a Lago `.users` document (`{"users": {…}, "last_access": …}`, or a plain
 * list) and the document itself. A corrupt or absent registry names nobody. Pure.
 */
export function usersOf(text: string | undefined): { doc: Record<string, unknown>; users: Record<string, unknown> } {
  let doc: Record<string, unknown> = {};
  let users: Record<string, unknown> = {};
  if (text === undefined) return { doc, users };
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) {
      for (const u of parsed) if (typeof u === "string") users[u] = "";
    } else if (isRecord(parsed)) {
      doc = parsed;
      if (isRecord(parsed.users)) users = { ...parsed.users };
    }
  } catch {
    // A corrupt registry is rebuilt; it only records who uses the entry.
  }
  return { doc, users };
}

/** The names `usersOf` finds, sorted. Pure. */
export function userNames(text: string | undefined): string[] {
  return Object.keys(usersOf(text).users).sort();
}

/** Add or remove `user` in the `.users` file `file` (rewritten atomically, users sorted, `last_access` now). */
export async function updateUsers(file: string, user: string, add: boolean): Promise<void> {
  const text = await readText(file);
  const { doc, users } = usersOf(text);
  if (add) users[user] = users[user] ?? "";
  else if (Object.hasOwn(users, user)) delete users[user];
  else if (text !== undefined) return;
  const sorted: Record<string, unknown> = {};
  for (const u of Object.keys(users).sort()) sorted[u] = users[u];
  await writeFileAtomicAsync(file, `${JSON.stringify({ ...doc, users: sorted, last_access: Math.floor(Date.now() / 1000) }, null, 4)}\n`);
}

export interface EntryLock {
  /** The store directory (created if missing) and its name for errors ("template store"). */
  dir: string;
  dirName: string;
  /** The lock directory. */
  lock: string;
  /** The entry, for messages ("template r:t:v1", "build layer 0123456789ab"). */
  entry: string;
  /** The progress line while another process holds the lock. */
  waiting: string;
  waitMs: number;
  staleMs: number | undefined;
}

/** Run `fn` holding the entry's lock (waiting up to `waitMs`); `fn` can ask whether the lock was lost. */
export async function withEntryLock<T>(l: EntryLock, opts: CallOptions, fn: (isCompromised: () => Error | undefined) => Promise<T>): Promise<T> {
  try {
    await mkdir(l.dir, { recursive: true });
  } catch (err) {
    throw new LagoError("TEMPLATE_STORE", `cannot create the ${l.dirName} ${l.dir}: ${errorMessage(err)}`, { cause: err });
  }
  const options = {
    command: `lago (${l.entry})`,
    timeoutMs: l.waitMs,
    staleMs: l.staleMs,
    retryMinMs: 50,
    retryMaxMs: 500,
    mode: 0o755,
    signal: opts.signal,
    onWait: () => opts.progress?.(l.waiting),
  };
  const busy = (holder: LockHolder | undefined): LockError =>
    new LockError(`${l.entry} is locked by ${describeHolder(holder)} (${l.lock}); gave up after ${Math.round(l.waitMs / 1000)}s`, {
      hint: "wait for that process to finish (the lock of a process that died is taken over without waiting)",
    });
  return withDirLock(l.lock, options, busy, (lock) => fn(() => lock.lost()));
}
