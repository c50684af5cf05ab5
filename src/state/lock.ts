/**
 * One lock per environment around plan and apply (proper-lockfile on the
 * environment directory). The holder writes who it is, so a second lago says
 * "locked by PID … since …". A lock whose holder process is gone is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import lockfile from "proper-lockfile";
import { LockError } from "../errors.ts";

interface Holder {
  pid: number;
  since: string;
  command: string;
}

function holderFile(dir: string): string {
  return `${dir}.lock-holder.json`;
}

function readHolder(dir: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(holderFile(dir), "utf8")) as Holder;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface EnvLock {
  release(): Promise<void>;
}

/**
 * Lock `dir` (created if missing). Waits up to `timeoutMs` for another holder,
 * then fails with a LockError naming it.
 */
export async function lockEnv(dir: string, command: string, timeoutMs = 0): Promise<EnvLock> {
  // The lock lives beside the environment directory, which may not exist (yet, or any more).
  mkdirSync(path.dirname(dir), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let compromised: Error | undefined;
  for (;;) {
    try {
      const release = await lockfile.lock(dir, {
        lockfilePath: `${dir}.lock`,
        stale: 15_000,
        update: 5_000,
        realpath: false,
        onCompromised: (err) => {
          compromised = err;
        },
      });
      writeFileSync(holderFile(dir), JSON.stringify({ pid: process.pid, since: new Date().toISOString(), command }));
      return {
        async release() {
          rmSync(holderFile(dir), { force: true });
          if (!compromised) await release().catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ELOCKED") throw err;
      const holder = readHolder(dir);
      if (holder && holder.pid !== process.pid && !alive(holder.pid)) {
        // The holder died without releasing (killed): its lock is ours to take.
        rmSync(`${dir}.lock`, { recursive: true, force: true });
        rmSync(holderFile(dir), { force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        const who = holder ? `PID ${holder.pid} (${holder.command}) since ${holder.since}` : "another process";
        throw new LockError(`environment ${path.basename(dir)} is locked by ${who}`, {
          hint: "wait for it to finish, or pass --lock-timeout SECONDS to wait",
        });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
