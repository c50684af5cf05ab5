/**
 * A cross-process lock whose dead holder is taken over without ever removing a
 * live holder's lock: the environment lock, the subnet lease store and the
 * template store all use it.
 *
 * The protocol. A lock at path `L` is held while a directory *instance* sits at
 * `L`; each instance holds `owner.json` (a random token, pid, process start
 * time, boot id, PID namespace, host, command, time).
 * - Acquire: make a private directory `L.<pid>.<rand>.new` with `owner.json`
 *   inside, then `rename` it to `L`. The rename fails while another instance
 *   (never empty) sits at `L`, so at most one contender wins; the instance
 *   appears complete, never without its owner record.
 * - Release: the holder renames its instance away (`L.<pid>.<rand>.gone`) and
 *   deletes it. Only the holder or the single winner of a takeover claim ever
 *   moves an instance away, and instances never come back to `L`.
 * - Takeover of a dead holder's instance with token T: create
 *   `L/claim-T` with O_EXCL, then read `L/owner.json` again. A claim can only
 *   matter where the owner token is T, i.e. in the dead instance itself (a
 *   claim that landed in a newer instance, because the dead one vanished
 *   meanwhile, is noticed by the token check, removed and ignored); O_EXCL lets
 *   exactly one contender win it. Only that winner renames `L` away — and `L`
 *   can then only be the dead instance, since nobody else may move it. Then
 *   everyone races to acquire as usual.
 * - Liveness: a holder on this host, boot and PID namespace is alive while a
 *   process with its PID exists, is not a zombie, and has the recorded start
 *   time (so a reused PID does not keep a dead lock alive). Holders whose
 *   liveness cannot be checked (another host sharing the directory, another
 *   PID namespace, another boot, an unreadable record) refresh the mtime of
 *   their `owner.json` (a heartbeat) and are dead once it is `staleMs` old.
 *
 * Crash safety: a SIGKILL at any point leaves at most a stray `.new`/`.gone`
 * directory (removed by the next acquirer once its maker is dead) or a lock
 * held by a dead process (taken over at once). Linux only (reads /proc).
 */
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync, constants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LagoError, LockError, errorMessage } from "../errors.ts";
import { cancelledError, sleep } from "./sleep.ts";

const OWNER = "owner.json";
const CLAIM = "claim-";

/** Who holds a lock, as recorded in its instance. */
export interface LockHolder {
  token: string;
  pid: number;
  /** Process start time in clock ticks since boot (`/proc/<pid>/stat` field 22). */
  start: number;
  boot: string;
  pidns: string;
  host: string;
  command: string;
  /** ISO time the lock was taken. */
  since: string;
}

export interface DirLockOptions {
  /** Recorded for other processes' messages, e.g. `lago apply`. */
  command: string;
  /** Give up after waiting this long (0: one attempt, then fail if held). */
  timeoutMs: number;
  /** A holder whose liveness cannot be checked is dead when its heartbeat is older than this (default 60 s). */
  staleMs?: number | undefined;
  /** First and longest pause between attempts while waiting (default 10 ms and 250 ms, jittered). */
  retryMinMs?: number | undefined;
  retryMaxMs?: number | undefined;
  /** Mode of the instance directory (default 0700); its owner record is readable where the directory is. */
  mode?: number | undefined;
  signal?: AbortSignal | undefined;
  /** Called once when the lock is held by another live process and we start waiting. */
  onWait?: ((holder: LockHolder | undefined) => void) | undefined;
}

/** A held lock. */
export interface HeldLock {
  readonly path: string;
  readonly token: string;
  /** Set when this process noticed that its lock was taken from it (only possible after it was judged dead). */
  lost(): Error | undefined;
  /** Idempotent: removes the instance if it is still ours; never touches another holder's. */
  release(): Promise<void>;
}

/** The lock is held by another live process and the wait ran out. */
export class LockBusyError extends LockError {
  readonly holder: LockHolder | undefined;
  readonly lockPath: string;

  constructor(lockPath: string, holder: LockHolder | undefined, waitedMs: number) {
    super(`${lockPath} is locked by ${describeHolder(holder)}${waitedMs > 0 ? `; gave up after ${Math.round(waitedMs / 100) / 10}s` : ""}`);
    this.holder = holder;
    this.lockPath = lockPath;
  }
}

/** `PID 123 (lago apply) since 2026-…`, or `another process` when unknown. Pure. */
export function describeHolder(holder: LockHolder | undefined): string {
  if (!holder) return "another process";
  const where = holder.host !== os.hostname() ? ` on ${holder.host}` : "";
  return `PID ${holder.pid}${where} (${holder.command}) since ${holder.since}`;
}

interface Self {
  pid: number;
  start: number;
  boot: string;
  pidns: string;
  host: string;
}

let self: Self | undefined;

function readStat(pid: number | "self"): { state: string; start: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0] ?? "";
  const start = Number(rest[19]);
  return Number.isFinite(start) ? { state, start } : undefined;
}

function whoAmI(): Self {
  if (self && self.pid === process.pid) return self;
  const stat = readStat("self");
  let boot = "";
  let pidns = "";
  try {
    boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    pidns = readlinkSync("/proc/self/ns/pid");
  } catch {
    // Without /proc, every holder's liveness is judged by its heartbeat.
  }
  self = { pid: process.pid, start: stat?.start ?? -1, boot, pidns, host: os.hostname() };
  return self;
}

/** Protocol steps at which tests may pause a contender (to widen every race window). */
export type LockStep = "placing" | "observed-dead" | "claimed" | "verified" | "moved" | "release-checked";

let stepHook: ((step: LockStep) => void) | undefined;

/**
 * Test-only: call `hook` (synchronously) at each step of the protocol, e.g. to
 * sleep there so that races a real scheduler hits rarely are hit often.
 * `undefined` removes it.
 */
export function setLockStepHookForTesting(hook: ((step: LockStep) => void) | undefined): void {
  stepHook = hook;
}

/**
 * Locks this process holds, by token; a token declared dead (tests) is removed.
 * `done` hands the lock to the next contender of this process (see {@link localTurn}).
 */
const held = new Map<string, { path: string; timer: NodeJS.Timeout | undefined; done: (() => void) | undefined }>();

/**
 * Contenders for one lock within this process queue here, first come first
 * served, and each waits for the previous one's release instead of polling the
 * file system with back-off (a build of 100 layers on 4 templates otherwise
 * spent most of its time in those sleeps). Only an ordering and a wake-up: the
 * directory lock stays what excludes, across processes and within this one.
 */
const localTails = new Map<string, Promise<void>>();

function localTurn(abs: string): { previous: Promise<void>; done: () => void } {
  const previous = localTails.get(abs) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((resolve) => (done = resolve));
  const tail = previous.then(() => mine);
  localTails.set(abs, tail);
  void tail.then(() => {
    if (localTails.get(abs) === tail) localTails.delete(abs);
  });
  return { previous, done };
}

/** Whether `p` settles within `ms`; rejects as cancelled when `signal` aborts first. */
function settlesWithin(p: Promise<void>, ms: number, signal: AbortSignal | undefined, what: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError(what));
      return;
    }
    const finish = (settle: () => void): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => reject(cancelledError(what)));
    const timer = setTimeout(() => finish(() => resolve(false)), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
    void p.then(() => finish(() => resolve(true)));
  });
}

/**
 * Test-only: declare locks held by *this* process dead, as if their holder had
 * been SIGKILLed, so that a later acquirer in the same process takes them over.
 * `under`: only locks whose path is or lies under that path. Their heartbeat
 * stops and their `release()` becomes a no-op once another holder took over.
 * Never call it outside tests: a real process's own locks are alive.
 * Returns how many locks were declared dead.
 */
export function declareHeldLocksDeadForTesting(under?: string): number {
  const root = under === undefined ? undefined : path.resolve(under);
  let n = 0;
  for (const [token, h] of held) {
    if (root !== undefined && h.path !== root && !h.path.startsWith(root + path.sep) && !h.path.startsWith(`${root}.`)) continue;
    if (h.timer) clearInterval(h.timer);
    held.delete(token);
    h.done?.();
    n++;
  }
  return n;
}

type Liveness = "alive" | "dead" | "unknown";

function processLiveness(pid: number, start: number): Liveness {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, owned by another user.
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return "dead";
  }
  const stat = readStat(pid);
  // /proc hidden (hidepid) or raced with the exit: kill() said it exists.
  if (!stat) return "alive";
  if (stat.state === "Z" || stat.state === "X") return "dead";
  return stat.start === start ? "alive" : "dead";
}

function holderLiveness(h: LockHolder): Liveness {
  const me = whoAmI();
  if (!me.boot || h.host !== me.host || h.boot !== me.boot || h.pidns !== me.pidns) return "unknown";
  if (h.pid === me.pid && h.start === me.start) return held.has(h.token) ? "alive" : "dead";
  return processLiveness(h.pid, h.start);
}

function isHolder(v: unknown): v is LockHolder {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.token === "string" &&
    /^[0-9a-f]{32}$/.test(o.token) &&
    typeof o.pid === "number" &&
    typeof o.start === "number" &&
    typeof o.boot === "string" &&
    typeof o.pidns === "string" &&
    typeof o.host === "string" &&
    typeof o.command === "string" &&
    typeof o.since === "string"
  );
}

type Observed =
  | { kind: "absent" }
  | { kind: "held"; holder: LockHolder; heartbeatMs: number }
  /** An instance without a readable record: torn by a power loss, or made by another tool. */
  | { kind: "opaque"; ino: number; mtimeMs: number };

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function observe(lockPath: string): Observed {
  let st;
  try {
    st = statSync(lockPath);
  } catch (err) {
    if (code(err) === "ENOENT") return { kind: "absent" };
    throw err;
  }
  if (!st.isDirectory()) {
    throw new LockError(`${lockPath} is not a lock directory`, { hint: `if no lago process is running, remove ${lockPath}` });
  }
  try {
    const file = path.join(lockPath, OWNER);
    const doc: unknown = JSON.parse(readFileSync(file, "utf8"));
    if (isHolder(doc)) return { kind: "held", holder: doc, heartbeatMs: statSync(file).mtimeMs };
  } catch (err) {
    if (code(err) === "ENOENT" && !pathExists(lockPath)) return { kind: "absent" };
  }
  return { kind: "opaque", ino: st.ino, mtimeMs: st.mtimeMs };
}

function pathExists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

function ownerToken(lockPath: string): string | undefined {
  try {
    const doc: unknown = JSON.parse(readFileSync(path.join(lockPath, OWNER), "utf8"));
    return isHolder(doc) ? doc.token : undefined;
  } catch {
    return undefined;
  }
}

function inodeOf(p: string): number | undefined {
  try {
    return statSync(p).ino;
  } catch {
    return undefined;
  }
}

function rand(): string {
  return randomBytes(16).toString("hex");
}

/** `L.<pid>.<start>.<rand>.<suffix>`: a private name beside the lock, naming its maker. */
function sidePath(lockPath: string, suffix: "new" | "gone"): string {
  const me = whoAmI();
  return `${lockPath}.${me.pid}.${me.start}.${randomBytes(6).toString("hex")}.${suffix}`;
}

/** Try once: true when the instance made in `tmp` is now at `lockPath`. */
function tryPlace(tmp: string, lockPath: string): boolean {
  try {
    renameSync(tmp, lockPath);
    return true;
  } catch (err) {
    const c = code(err);
    if (c === "ENOTEMPTY" || c === "EEXIST") return false;
    if (c === "ENOTDIR") throw new LockError(`${lockPath} is not a lock directory`, { hint: `if no lago process is running, remove ${lockPath}` });
    throw err;
  }
}

interface Claimant {
  pid: number;
  start: number;
  boot: string;
  pidns: string;
  host: string;
}

/** Is the maker of a claim file dead? A claim is made and resolved within one synchronous step, so one of ours is stale. */
function claimantDead(file: string, staleMs: number): boolean {
  let doc: Claimant;
  let mtimeMs: number;
  try {
    doc = JSON.parse(readFileSync(file, "utf8")) as Claimant;
    mtimeMs = statSync(file).mtimeMs;
  } catch (err) {
    // Vanished: its instance is gone. Torn (its maker died while writing it): judged by its age.
    if (code(err) === "ENOENT" || code(err) === "ENOTDIR") return false;
    try {
      return Date.now() - statSync(file).mtimeMs > staleMs;
    } catch {
      return false;
    }
  }
  const me = whoAmI();
  if (!me.boot || doc.host !== me.host || doc.boot !== me.boot || doc.pidns !== me.pidns) return Date.now() - mtimeMs > staleMs;
  if (doc.pid === me.pid && doc.start === me.start) return true;
  return processLiveness(doc.pid, doc.start) === "dead";
}

/**
 * Claim the takeover of the dead instance named `id` and, if won, move it out
 * of the way. Claims are numbered slots `claim-<id>.<n>`, made with O_EXCL: a
 * contender takes the first free slot after slots whose makers died, and backs
 * off when a slot's maker is alive. `stillIt` re-checks, after the claim
 * exists, that the instance at `lockPath` is the dead one. Returns false when
 * a live contender is taking it over (wait for it), true otherwise.
 */
function takeOver(lockPath: string, id: string, staleMs: number, stillIt: () => boolean): boolean {
  const me = whoAmI();
  const record = JSON.stringify({ pid: me.pid, start: me.start, boot: me.boot, pidns: me.pidns, host: me.host });
  for (let slot = 0; slot < 1000; slot++) {
    const claim = path.join(lockPath, `${CLAIM}${id}.${slot}`);
    let fd: number;
    try {
      fd = openSync(claim, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
    } catch (err) {
      const c = code(err);
      // ENOENT/ENOTDIR: the instance is gone already.
      if (c === "ENOENT" || c === "ENOTDIR") return true;
      if (c === "EEXIST") {
        if (claimantDead(claim, staleMs)) continue;
        return false;
      }
      if (c === "EACCES" || c === "EPERM") {
        throw new LockError(`the lock ${lockPath} belongs to a process that is gone, and this user may not remove it`, {
          hint: `remove ${lockPath} as its owner (or root)`,
          cause: err,
        });
      }
      throw err;
    }
    let won = false;
    try {
      try {
        writeSync(fd, record);
      } finally {
        closeSync(fd);
      }
      // A claim that landed in a newer instance (the dead one vanished meanwhile) means nothing there.
      stepHook?.("claimed");
      if (!stillIt()) return true;
      stepHook?.("verified");
      const grave = sidePath(lockPath, "gone");
      renameSync(lockPath, grave);
      won = true;
      stepHook?.("moved");
      rmSync(grave, { recursive: true, force: true });
    } finally {
      if (!won) rmSync(claim, { force: true });
    }
    return true;
  }
  return false;
}

/** Directories this process has swept: once each (a store holds thousands of entries, and takes thousands of locks). */
const swept = new Set<string>();

/**
 * Remove the `.new`/`.gone` leftovers of processes killed mid-protocol, for every lock in the lock's
 * directory (lock paths end in `.lock` or `.lockdir`), once per directory and process. Best effort.
 */
function sweep(lockPath: string): void {
  const dir = path.dirname(lockPath);
  if (swept.has(dir)) return;
  swept.add(dir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const me = whoAmI();
  for (const name of names) {
    const m = /\.lock(?:dir)?\.(\d+)\.(-?\d+)\.[0-9a-f]+\.(new|gone)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    const start = Number(m[2]);
    if (pid === me.pid && start === me.start) continue;
    if (processLiveness(pid, start) === "dead") rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/**
 * Acquire the lock at `lockPath` (a path beside the thing it protects, named
 * `….lock` or `….lockdir`, which is how a holder tells a killed contender's
 * leftovers in that directory; its parent directory must exist). Waits while a live process holds it, up to
 * `timeoutMs`, then throws {@link LockBusyError} naming the holder; a dead
 * holder's lock is taken over at once. Safe against any number of concurrent
 * contenders and against SIGKILL at any point (see the module comment).
 */
export async function acquireDirLock(lockPath: string, options: DirLockOptions): Promise<HeldLock> {
  const abs = path.resolve(lockPath);
  const started = Date.now();
  const me = whoAmI();
  const token = rand();
  const holder: LockHolder = { token, pid: me.pid, start: me.start, boot: me.boot, pidns: me.pidns, host: me.host, command: options.command, since: "" };
  // Wait for this process's earlier contenders first (not with a one-shot attempt). If that wait runs out, the
  // attempt below names the holder.
  const turn = options.timeoutMs > 0 ? localTurn(abs) : undefined;
  try {
    let told = false;
    if (turn) {
      let settled = false;
      void turn.previous.then(() => (settled = true));
      await Promise.resolve();
      if (!settled) {
        told = true;
        options.onWait?.(undefined);
      }
      await settlesWithin(turn.previous, options.timeoutMs, options.signal, `waiting for the lock ${abs}`);
    }
    return await acquireLoop(abs, options, token, holder, turn?.done, started, told);
  } catch (err) {
    turn?.done();
    throw err;
  }
}

async function acquireLoop(abs: string, options: DirLockOptions, token: string, holder: LockHolder, done: (() => void) | undefined, started: number, toldAlready: boolean): Promise<HeldLock> {
  const staleMs = options.staleMs ?? 60_000;
  const minMs = options.retryMinMs ?? 10;
  const maxMs = options.retryMaxMs ?? 250;
  let told = toldAlready;
  let pause = minMs;
  for (;;) {
    holder.since = new Date().toISOString();
    const tmp = sidePath(abs, "new");
    try {
      mkdirSync(tmp, { mode: options.mode ?? 0o700 });
      writeFileSync(path.join(tmp, OWNER), JSON.stringify(holder), { mode: 0o644 });
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      throw new LockError(`cannot create the lock ${abs}: ${errorMessage(err)}`, { cause: err });
    }
    let placed: boolean;
    try {
      stepHook?.("placing");
      placed = tryPlace(tmp, abs);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    if (placed) {
      const timer = setInterval(() => heartbeat(abs, token), Math.max(1_000, Math.floor(staleMs / 4)));
      timer.unref();
      held.set(token, { path: abs, timer, done });
      sweep(abs);
      return makeHandle(abs, token);
    }

    const seen = observe(abs);
    if (seen.kind === "absent") continue;
    if (seen.kind === "held") {
      let live = holderLiveness(seen.holder);
      if (live === "unknown") live = Date.now() - seen.heartbeatMs > staleMs ? "dead" : "alive";
      if (live === "dead") {
        stepHook?.("observed-dead");
        const dead = seen.holder.token;
        if (takeOver(abs, dead, staleMs, () => ownerToken(abs) === dead)) continue;
      }
    } else if (Date.now() - seen.mtimeMs > staleMs) {
      stepHook?.("observed-dead");
      if (takeOver(abs, `ino-${seen.ino}`, staleMs, () => inodeOf(abs) === seen.ino && ownerToken(abs) === undefined)) continue;
    }

    const waited = Date.now() - started;
    const who = seen.kind === "held" ? seen.holder : undefined;
    if (waited >= options.timeoutMs) throw new LockBusyError(abs, who, options.timeoutMs > 0 ? waited : 0);
    if (!told) {
      told = true;
      options.onWait?.(who);
    }
    const jittered = Math.floor(pause / 2 + Math.random() * pause);
    await sleep(Math.min(jittered, Math.max(1, options.timeoutMs - waited)), options.signal, `waiting for the lock ${abs}`);
    pause = Math.min(maxMs, pause * 2);
  }
}

/**
 * {@link acquireDirLock}, with a lock still held by another live process when
 * the wait ran out reported as `busy(holder)`'s error (each lock's own words).
 */
export async function acquireDirLockOr(lockPath: string, options: DirLockOptions, busy: (holder: LockHolder | undefined) => Error): Promise<HeldLock> {
  try {
    return await acquireDirLock(lockPath, options);
  } catch (err) {
    throw err instanceof LockBusyError ? busy(err.holder) : err;
  }
}

/** Run `fn` holding the lock ({@link acquireDirLockOr}); released afterwards, also on failure. */
export async function withDirLock<T>(lockPath: string, options: DirLockOptions, busy: (holder: LockHolder | undefined) => Error, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
  const lock = await acquireDirLockOr(lockPath, options, busy);
  try {
    return await fn(lock);
  } finally {
    await lock.release();
  }
}

const lostLocks = new Map<string, Error>();

function heartbeat(lockPath: string, token: string): void {
  if (!held.has(token)) return;
  if (ownerToken(lockPath) !== token) {
    lostLocks.set(token, new LockError(`the lock ${lockPath} was taken over by another process`));
    const h = held.get(token);
    if (h?.timer) clearInterval(h.timer);
    return;
  }
  const now = new Date();
  try {
    utimesSync(path.join(lockPath, OWNER), now, now);
  } catch {
    // The next beat tries again; a lost lock is noticed by the token check.
  }
}

function makeHandle(lockPath: string, token: string): HeldLock {
  let released = false;
  return {
    path: lockPath,
    token,
    lost: () => lostLocks.get(token) ?? (ownerToken(lockPath) === token ? undefined : new LockError(`the lock ${lockPath} is no longer held by this process`)),
    async release() {
      if (released) return;
      released = true;
      const h = held.get(token);
      try {
        releaseInstance(lockPath, token, h);
      } finally {
        h?.done?.();
      }
    },
  };
}

/** Stop the heartbeat and remove the instance if it is still ours; never touches another holder's. */
function releaseInstance(lockPath: string, token: string, h: { timer: NodeJS.Timeout | undefined } | undefined): void {
  if (h?.timer) clearInterval(h.timer);
  held.delete(token);
  lostLocks.delete(token);
  if (ownerToken(lockPath) !== token) return;
  stepHook?.("release-checked");
  const grave = sidePath(lockPath, "gone");
  try {
    renameSync(lockPath, grave);
  } catch (err) {
    if (code(err) === "ENOENT") return;
    throw new LagoError("LOCKED", `cannot release the lock ${lockPath}: ${errorMessage(err)}`, { cause: err });
  }
  if (ownerToken(grave) !== token) {
    // Taken over between our check and the rename (only after being judged dead by heartbeat): put it back.
    try {
      renameSync(grave, lockPath);
      return;
    } catch {
      // Someone acquired meanwhile; the moved instance was a dead one's by then.
    }
  }
  rmSync(grave, { recursive: true, force: true });
}
