/**
 * Contenders for the lock race tests (test/unit/dir-lock-race.test.ts), three per process: each takes the
 * lock in a loop until `<work>/stop` exists, and inside it enters a critical
 * section guarded by an O_EXCL marker file `<work>/cs` holding its PID. Finding
 * the marker of a *live* process there means two holders at once: it is
 * recorded in `<work>/violations`. A marker whose maker is dead is the trace of
 * a holder the test SIGKILLed inside the section, and is taken over.
 *
 * Every step of the lock protocol may pause for a few milliseconds, which
 * widens each race window from microseconds to milliseconds.
 *
 * argv: environment directory, work dir.
 */
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, rmSync, writeSync, constants } from "node:fs";
import path from "node:path";
import { lockEnv } from "../../src/state/lock.ts";
import { setLockStepHookForTesting } from "../../src/util/dir-lock.ts";

const [target = "", work = ""] = process.argv.slice(2);
const marker = path.join(work, "cs");

function dead(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return /^[ZX]$/.test(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] ?? "");
  } catch {
    return true;
  }
}

function enter(): void {
  for (;;) {
    try {
      const fd = openSync(marker, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let other = NaN;
    try {
      other = Number(readFileSync(marker, "utf8"));
    } catch {
      continue;
    }
    if (Number.isInteger(other) && other > 0 && !dead(other)) {
      appendFileSync(path.join(work, "violations"), `${process.pid} entered while ${other} was inside\n`);
      process.exit(3);
    }
    rmSync(marker, { force: true });
  }
}

// Pause at random protocol steps, so that two contenders often sit in the same window at once.
const nap = new Int32Array(new SharedArrayBuffer(4));
setLockStepHookForTesting(() => {
  if (Math.random() < 0.5) Atomics.wait(nap, 0, 0, Math.random() * 4);
});

async function contend(): Promise<void> {
  while (!existsSync(path.join(work, "stop"))) {
    const lock = await lockEnv(target, "lago race", 120_000);
    enter();
    appendFileSync(path.join(work, "entries"), `${process.pid}\n`);
    // Stay inside a little, sometimes across turns of the event loop (where this process's other contenders run).
    const until = Date.now() + Math.random() * 3;
    while (Date.now() < until) {
      // busy
    }
    if (Math.random() < 0.3) await new Promise((r) => setTimeout(r, 1));
    rmSync(marker);
    await lock.release();
    if (Math.random() < 0.5) await new Promise((r) => setTimeout(r, Math.random() * 3));
  }
}

// Several contenders per process: they race with each other in-process too.
await Promise.all([contend(), contend(), contend()]);
