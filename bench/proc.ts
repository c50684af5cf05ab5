/**
 * Whole-process measurements for the benchmarks: run a command (argument
 * array, never a shell string), time it, and charge it the CPU time of every
 * descendant it waited for (the kernel's cutime/cstime of this process, which
 * grow when a child is reaped). One measured command at a time per process.
 */
import { readFileSync } from "node:fs";
import { execa } from "execa";

/** Clock ticks per second of /proc's time fields (USER_HZ: 100 on every Linux build that matters). */
const USER_HZ = 100;

/** User + system CPU ms of the reaped descendants of this process so far (Linux; 0 elsewhere). */
export function childrenCpuMs(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cutime = Number(rest[13]);
    const cstime = Number(rest[14]);
    return ((cutime + cstime) * 1000) / USER_HZ;
  } catch {
    return 0;
  }
}

export interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** CPU of the command and the descendants it waited for (10 ms resolution). */
  cpuMs: number;
  timedOut: boolean;
}

export interface TimedOptions {
  cwd?: string | undefined;
  env?: Record<string, string> | undefined;
  timeoutMs?: number | undefined;
  input?: string | undefined;
}

/** Runs `cmd args…` to completion, never rejecting: the exit code says how it went. */
export async function timed(cmd: string, args: string[], opts: TimedOptions = {}): Promise<Timed> {
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const r = await execa(cmd, args, {
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: { LC_ALL: "C", ...opts.env },
    extendEnv: true,
    reject: false,
    maxBuffer: 256 * 1024 * 1024,
    forceKillAfterDelay: 5000,
    ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
    ...(opts.input === undefined ? { stdin: "ignore" as const } : { input: opts.input }),
  });
  const wallMs = performance.now() - t0;
  return {
    code: r.exitCode ?? null,
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
    wallMs,
    cpuMs: childrenCpuMs() - cpu0,
    timedOut: r.timedOut === true,
  };
}

/** Like {@link timed}, but a non-zero exit is an error naming the command and its output's tail. */
export async function mustRun(cmd: string, args: string[], opts: TimedOptions = {}): Promise<Timed> {
  const r = await timed(cmd, args, opts);
  if (r.code !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-25).join("\n");
    throw new Error(`${[cmd, ...args].join(" ")} ${r.timedOut ? "timed out" : `exited ${String(r.code)}`}:\n${tail}`);
  }
  return r;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** "1.23 s" / "456 ms" style, for tables. */
export function seconds(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  const s = ms / 1000;
  return s < 10 ? s.toFixed(2) : s < 100 ? s.toFixed(1) : s.toFixed(0);
}
