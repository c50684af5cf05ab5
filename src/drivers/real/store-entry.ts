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

/** One registration change: `user` added to or removed from an entry's `.users`. */
export interface UserChange {
  user: string;
  add: boolean;
}

/**
 * Apply `changes` in order to the `.users` file `file`: one read, one atomic rewrite (users sorted,
 * `last_access` now). Nothing is written when only absent users are removed from an existing file.
 */
export async function updateUsers(file: string, changes: readonly UserChange[]): Promise<void> {
  const text = await readText(file);
  const { doc, users } = usersOf(text);
  let changed = text === undefined;
  for (const { user, add } of changes) {
    if (add) {
      changed = true;
      users[user] = users[user] ?? "";
    } else if (Object.hasOwn(users, user)) {
      changed = true;
      delete users[user];
    }
  }
  if (!changed) return;
  const sorted: Record<string, unknown> = {};
  for (const u of Object.keys(users).sort()) sorted[u] = users[u];
  await writeFileAtomicAsync(file, `${JSON.stringify({ ...doc, users: sorted, last_access: Math.floor(Date.now() / 1000) }, null, 4)}\n`);
}

/**
 * Requests for one store entry made concurrently in this process, served in batches: a request
 * arriving while a batch for its key runs joins the next one, which takes every request queued
 * meanwhile. So n concurrent registrations of one entry take its lock and rewrite its `.users`
 * a few times instead of n times (each rewrite reads the whole registry: O(n²) otherwise).
 * Requests with different cancellation signals never share a batch: one caller's cancel
 * must not fail another's request.
 */
export class EntryBatches<T, R> {
  private readonly queues = new Map<string, { next: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[]; running: boolean }>();
  private readonly signalIds = new WeakMap<AbortSignal, number>();
  private signals = 0;

  constructor(private readonly run: (items: T[]) => Promise<R>) {}

  submit(key: string, signal: AbortSignal | undefined, item: T): Promise<R> {
    let id = 0;
    if (signal) {
      id = this.signalIds.get(signal) ?? ++this.signals;
      this.signalIds.set(signal, id);
    }
    const qkey = `${key}\0${id}`;
    let q = this.queues.get(qkey);
    if (!q) {
      q = { next: [], running: false };
      this.queues.set(qkey, q);
    }
    const promise = new Promise<R>((resolve, reject) => q.next.push({ item, resolve, reject }));
    if (!q.running) void this.drain(qkey, q);
    return promise;
  }

  private async drain(qkey: string, q: { next: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[]; running: boolean }): Promise<void> {
    q.running = true;
    while (q.next.length > 0) {
      const batch = q.next;
      q.next = [];
      try {
        const r = await this.run(batch.map((b) => b.item));
        for (const b of batch) b.resolve(r);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.queues.delete(qkey);
  }
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
