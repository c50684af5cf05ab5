/**
 * The lock protocol of src/util/dir-lock.ts, case by case: who is alive, who is
 * dead (gone, PID reused, other host with an old heartbeat), records it cannot
 * read, claims left by dead contenders, leftovers, waiting and cancelling. The
 * race under SIGKILL is in dir-lock-race.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { LockError } from "../../src/errors.ts";
import { LockBusyError, acquireDirLock, declareHeldLocksDeadForTesting, describeHolder, type LockHolder } from "../../src/util/dir-lock.ts";

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-dir-lock-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function startOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[19]);
}

/** A holder record as another process on this machine would write it. */
function record(pid: number, start: number, extra: Partial<LockHolder> = {}): LockHolder {
  return {
    token: "0123456789abcdef0123456789abcdef",
    pid,
    start,
    boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
    pidns: readlinkSync("/proc/self/ns/pid"),
    host: os.hostname(),
    command: "lago apply",
    since: "2026-01-02T03:04:05.000Z",
    ...extra,
  };
}

function plant(lock: string, holder: LockHolder, ageMs = 0): void {
  mkdirSync(lock);
  const file = path.join(lock, "owner.json");
  writeFileSync(file, JSON.stringify(holder));
  if (ageMs) {
    const then = new Date(Date.now() - ageMs);
    utimesSync(file, then, then);
    utimesSync(lock, then, then);
  }
}

/** The PID of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

const opts = { command: "lago test", timeoutMs: 0 };

test("acquire, busy while held (naming the holder), free after release; release is idempotent", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  const a = await acquireDirLock(lock, opts);
  assert.equal(a.lost(), undefined);
  await assert.rejects(acquireDirLock(lock, { ...opts, command: "lago plan" }), (err: unknown) => {
    assert.ok(err instanceof LockBusyError && err instanceof LockError);
    assert.equal(err.holder?.pid, process.pid);
    assert.equal(err.holder?.command, "lago test");
    assert.match(err.message, new RegExp(`^${lock} is locked by PID ${process.pid} \\(lago test\\) since \\d{4}-\\d\\d-\\d\\dT`));
    return true;
  });
  await a.release();
  await a.release();
  assert.equal(existsSync(lock), false);
  const b = await acquireDirLock(lock, opts);
  await b.release();
  assert.deepEqual(readdirSync(path.dirname(lock)), []);
});

test("a waiter gets the lock when the holder releases; onWait is told once, with the holder", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  const a = await acquireDirLock(lock, opts);
  const told: (LockHolder | undefined)[] = [];
  const waiting = acquireDirLock(lock, { ...opts, timeoutMs: 10_000, onWait: (h) => told.push(h) });
  setTimeout(() => void a.release(), 150);
  const b = await waiting;
  assert.equal(told.length, 1);
  assert.equal(told[0]?.token, a.token);
  await b.release();
});

test("waiting is cancelled by the signal", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  const a = await acquireDirLock(lock, opts);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(acquireDirLock(lock, { ...opts, timeoutMs: 60_000, signal: ac.signal }), /was cancelled/);
  await a.release();
});

test("test hook: a holder declared dead is taken over; its late release leaves the new holder alone", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  const a = await acquireDirLock(lock, opts);
  assert.equal(declareHeldLocksDeadForTesting(path.join(path.dirname(lock), "other")), 0);
  assert.equal(declareHeldLocksDeadForTesting(lock), 1);
  const b = await acquireDirLock(lock, opts);
  assert.ok(a.lost() instanceof LockError);
  await a.release();
  assert.equal(b.lost(), undefined);
  await assert.rejects(acquireDirLock(lock, opts), LockBusyError);
  await b.release();
  assert.equal(existsSync(lock), false);
});

test("the lock of a process that is gone is taken over at once", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  plant(lock, record(deadPid(), 12345));
  const l = await acquireDirLock(lock, opts);
  assert.equal(JSON.parse(readFileSync(path.join(lock, "owner.json"), "utf8")).pid, process.pid);
  await l.release();
});

test("a reused PID does not keep a dead lock alive: the start time must match", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  plant(lock, record(process.ppid, startOf(process.ppid) + 1));
  const l = await acquireDirLock(lock, opts);
  await l.release();
});

test("a live process's lock is never taken, however old", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  plant(lock, record(process.ppid, startOf(process.ppid)), 3_600_000);
  await assert.rejects(acquireDirLock(lock, { ...opts, timeoutMs: 200, staleMs: 1 }), (err: unknown) => {
    assert.ok(err instanceof LockBusyError);
    assert.match(err.message, new RegExp(`is locked by PID ${process.ppid} \\(lago apply\\) since 2026-01-02T03:04:05.000Z; gave up after 0\\.\\ds$`));
    return true;
  });
  assert.equal(describeHolder(undefined), "another process");
});

test("a holder on another host is judged by its heartbeat: alive while fresh, dead when stale", async (t) => {
  const dir = tmp(t);
  const fresh = path.join(dir, "fresh.lock");
  plant(fresh, record(1, 1, { host: "elsewhere" }));
  await assert.rejects(acquireDirLock(fresh, { ...opts, staleMs: 60_000 }), /locked by PID 1 on elsewhere \(lago apply\)/);
  const stale = path.join(dir, "stale.lock");
  plant(stale, record(1, 1, { host: "elsewhere" }), 120_000);
  const l = await acquireDirLock(stale, { ...opts, staleMs: 60_000 });
  await l.release();
  const rebooted = path.join(dir, "rebooted.lock");
  plant(rebooted, record(process.pid, startOf(process.pid), { boot: "00000000-0000-0000-0000-000000000000" }), 120_000);
  const r = await acquireDirLock(rebooted, { ...opts, staleMs: 60_000 });
  await r.release();
});

test("an instance without a readable record: busy while recent, taken over when stale; an empty one is replaced", async (t) => {
  const dir = tmp(t);
  const lock = path.join(dir, "env.lock");
  mkdirSync(lock);
  writeFileSync(path.join(lock, "owner.json"), "{torn");
  await assert.rejects(acquireDirLock(lock, { ...opts, staleMs: 60_000 }), /is locked by another process/);
  const then = new Date(Date.now() - 120_000);
  utimesSync(lock, then, then);
  const l = await acquireDirLock(lock, { ...opts, staleMs: 60_000 });
  await l.release();
  // proper-lockfile's locks (earlier lago versions) are empty directories.
  mkdirSync(lock);
  const m = await acquireDirLock(lock, opts);
  await m.release();
});

test("a takeover claim left by a dead contender does not block; one by a live contender is waited for", async (t) => {
  const dir = tmp(t);
  const lock = path.join(dir, "env.lock");
  const dead = record(deadPid(), 1);
  plant(lock, dead);
  const claimant = (pid: number, start: number): string => JSON.stringify({ pid, start, boot: dead.boot, pidns: dead.pidns, host: dead.host });
  writeFileSync(path.join(lock, `claim-${dead.token}.0`), claimant(deadPid(), 1));
  writeFileSync(path.join(lock, `claim-${dead.token}.1`), "");
  utimesSync(path.join(lock, `claim-${dead.token}.1`), new Date(0), new Date(0));
  const l = await acquireDirLock(lock, { ...opts, staleMs: 60_000 });
  await l.release();
  plant(lock, dead);
  writeFileSync(path.join(lock, `claim-${dead.token}.0`), claimant(process.ppid, startOf(process.ppid)));
  await assert.rejects(acquireDirLock(lock, { ...opts, timeoutMs: 100 }), LockBusyError);
});

test("leftovers of killed contenders are swept by the next holder; a live one's are kept", async (t) => {
  const dir = tmp(t);
  const lock = path.join(dir, "env.lock");
  const gone = `${lock}.${deadPid()}.77.0a0b0c.new`;
  const grave = `${lock}.${deadPid()}.77.0a0b0d.gone`;
  const live = `${lock}.${process.ppid}.${startOf(process.ppid)}.0a0b0e.new`;
  for (const d of [gone, grave, live]) mkdirSync(d);
  writeFileSync(path.join(grave, "owner.json"), "{}");
  const l = await acquireDirLock(lock, opts);
  await l.release();
  assert.deepEqual(readdirSync(dir), [path.basename(live)]);
});

test("a file where the lock directory should be is an error naming it", async (t) => {
  const lock = path.join(tmp(t), "env.lock");
  writeFileSync(lock, "");
  await assert.rejects(acquireDirLock(lock, opts), (err: unknown) => {
    assert.ok(err instanceof LockError);
    assert.equal(err.message, `${lock} is not a lock directory`);
    assert.equal(err.hint, `if no lago process is running, remove ${lock}`);
    return true;
  });
});
