/**
 * The environment lock under a storm: contenders loop on one lock while the
 * test SIGKILLs holders inside their critical section (and others at random
 * points of the protocol), so every kill leaves a lock whose holder just died
 * for all the others to race on. Proven: never two holders at once (an O_EXCL
 * marker of a live process found inside the section), and a dead holder's lock
 * never stuck (someone else gets in after every kill).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../helpers/sandbox.ts";
import { lockEnv, envLockPath } from "../../src/state/lock.ts";

const WORKER = path.join(REPO_ROOT, "test", "helpers", "lock-race-worker.ts");
const PROCESSES = Number(process.env.LAGO_TEST_LOCK_PROCESSES ?? 6);
const KILLS = Number(process.env.LAGO_TEST_LOCK_KILLS ?? 30);

function readPid(file: string): number | undefined {
  try {
    const n = Number(readFileSync(file, "utf8"));
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function until<T>(what: string, ms: number, probe: () => T | undefined): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000}s: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test(`${PROCESSES} processes (3 contenders each) race on a lock whose holder was just SIGKILLed, ${KILLS} times: never two holders, never stuck`, { timeout: 300_000 }, async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "lago-lock-race-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const envDir = path.join(root, ".lago", "default");
  const work = path.join(root, "work");
  mkdirSync(work);
  const workers = new Map<number, ChildProcess>();
  const exits: Promise<{ pid: number; code: number | null; signal: string | null; stderr: string }>[] = [];
  const killed = new Set<number>();
  const spawnWorker = (): void => {
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, envDir, work], { cwd: REPO_ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const pid = child.pid ?? -1;
    workers.set(pid, child);
    exits.push(
      new Promise((resolve) =>
        child.on("exit", (code, signal) => {
          workers.delete(pid);
          resolve({ pid, code, signal, stderr });
        }),
      ),
    );
  };
  for (let i = 0; i < PROCESSES; i++) spawnWorker();

  const marker = path.join(work, "cs");
  for (let k = 0; k < KILLS; k++) {
    let victim: number;
    if (k % 3 === 2) {
      // Anywhere in the protocol: acquiring, taking over, releasing, waiting.
      const live = [...workers.keys()];
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      victim = live[Math.floor(Math.random() * live.length)] ?? -1;
    } else {
      // A holder inside its critical section.
      victim = await until("a contender inside the critical section", 60_000, () => {
        const pid = readPid(marker);
        return pid !== undefined && workers.has(pid) && !killed.has(pid) ? pid : undefined;
      });
    }
    killed.add(victim);
    workers.get(victim)?.kill("SIGKILL");
    spawnWorker();
    // Not stuck: another process gets in after the kill.
    await until(`another holder after PID ${victim} was killed`, 60_000, () => {
      const pid = readPid(marker);
      return pid !== undefined && pid !== victim && !killed.has(pid) ? pid : undefined;
    });
    if (existsSync(path.join(work, "violations"))) assert.fail(`two holders at once: ${readFileSync(path.join(work, "violations"), "utf8")}`);
  }
  writeFileSync(path.join(work, "stop"), "");
  const results = await Promise.all(exits);
  const violations = existsSync(path.join(work, "violations")) ? readFileSync(path.join(work, "violations"), "utf8") : "";
  assert.equal(violations, "", "two holders at once");
  for (const r of results) {
    if (killed.has(r.pid)) continue;
    assert.equal(r.code, 0, `contender ${r.pid} failed (${r.signal ?? r.code}):\n${r.stderr}`);
  }
  const entries = readFileSync(path.join(work, "entries"), "utf8").trim().split("\n");
  t.diagnostic(`${entries.length} entries into the critical section by ${new Set(entries).size} processes`);
  assert.ok(entries.length > KILLS && new Set(entries).size > PROCESSES, `${entries.length} entries by ${new Set(entries).size} processes`);
  // Nothing stuck or left behind: the lock is free, and the next holder sweeps the killed processes' leftovers.
  assert.equal(existsSync(envLockPath(envDir)), false);
  const lock = await lockEnv(envDir, "lago check", 0);
  await lock.release();
  assert.deepEqual(readdirSync(path.dirname(envDir)), []);
});
