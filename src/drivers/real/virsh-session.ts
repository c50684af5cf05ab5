/**
 * One `virsh` process answering several rounds of commands: virsh reads
 * commands from its standard input and keeps going after a failed one, so a
 * whole refresh (list everything, then dump what was listed) costs one
 * process. Each command is followed by an `echo` of a unique marker that
 * delimits its output.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { CommandError } from "../../errors.ts";
import { commandNotFoundError } from "./exec.ts";
import { cancelledError } from "../../util/sleep.ts";

/** Runs one round of commands; resolves to each command's standard output, in order. */
export type VirshRound = (commands: string[][]) => Promise<string[]>;

const TOKEN = /^[A-Za-z0-9_.:@%+=,/-]+$/;
const PROMPT = /virsh # [^\n]*(?:\n|$)/g;

/**
 * Where `echo <marker>` printed `marker`, from `from` on (-1: not yet). virsh
 * also echoes each command it reads after its prompt (`virsh # echo <marker>`),
 * so an occurrence right after `echo ` is the command, not its output.
 */
function outputMarkerAt(stdout: string, marker: string, from: number): number {
  for (let at = stdout.indexOf(marker, from); at >= 0; at = stdout.indexOf(marker, at + marker.length)) {
    if (!stdout.endsWith("echo ", at)) return at;
  }
  return -1;
}

/** A running `virsh -c <uri> -q` reading commands from stdin, with what it printed so far. */
interface VirshProcess {
  command: string[];
  child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  failure: Error | undefined;
  waiters: Set<() => void>;
}

/** Resolves at the process's next output or exit. */
function changed(p: VirshProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    p.waiters.add(resolve);
  }).finally(() => p.waiters.clear());
}

function openVirsh(uri: string): VirshProcess {
  const command = ["virsh", "-c", uri, "-q"];
  const child = spawn(command[0] ?? "virsh", command.slice(1), { env: { ...process.env, LC_ALL: "C" }, stdio: ["pipe", "pipe", "pipe"] });
  const p: VirshProcess = { command, child, stdout: "", stderr: "", exited: undefined, failure: undefined, waiters: new Set() };
  const wake = (): void => {
    for (const w of p.waiters) w();
  };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    p.stdout += d;
    wake();
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    if (p.stderr.length < 1 << 20) p.stderr += d;
  });
  child.stdin.on("error", () => undefined);
  child.on("error", (err: NodeJS.ErrnoException) => {
    p.failure = err.code === "ENOENT" ? commandNotFoundError(command, err) : new CommandError(command, undefined, p.stderr, `failed: ${err.message}`, { cause: err });
    p.exited ??= { code: null, signal: null };
    wake();
  });
  child.on("close", (code, signal) => {
    p.exited = { code, signal };
    wake();
  });
  return p;
}

/** Whether the process keeps this one alive: a standby virsh must not. */
function holdProcess(p: VirshProcess, hold: boolean): void {
  for (const handle of [p.child, p.child.stdin, p.child.stdout, p.child.stderr] as { ref(): unknown; unref(): unknown }[]) {
    if (hold) handle.ref();
    else handle.unref();
  }
}

const STANDBY_MS = 10_000;

/** Per libvirt URI, a virsh already connecting, for the next session to take (see {@link warmUpVirsh}). */
const standby = new Map<string, VirshProcess>();

/**
 * Start a virsh process for `uri` now, so that the next {@link withVirshSession}
 * finds it connected: libvirt's connection costs about 40 ms, which then
 * overlaps whatever the command does before its first query. A standby process
 * never keeps Node alive; if no session takes it within 10 s, or before this
 * process exits, it reads end-of-file and quits. One that has exited (libvirtd
 * down) is not taken: the session starts its own, whose error it reports.
 */
export function warmUpVirsh(uri: string): void {
  const current = standby.get(uri);
  if (current && !current.exited) return;
  const p = openVirsh(uri);
  holdProcess(p, false);
  standby.set(uri, p);
  // Left untaken (a long-lived SDK process), it quits rather than idle on.
  setTimeout(() => {
    if (standby.get(uri) !== p) return;
    standby.delete(uri);
    p.child.stdin.end("quit\n");
  }, STANDBY_MS).unref();
}

/**
 * Open `virsh -c <uri>` reading commands from stdin (or take the one
 * {@link warmUpVirsh} started), let `fn` run rounds of
 * commands on it, then quit. Tokens must be plain words (names are checked
 * safe by the caller; nothing is quoted or interpreted).
 *
 * @throws CommandError when virsh cannot start, exits early (e.g. libvirtd is
 *   not running) or times out.
 */
export async function withVirshSession<T>(uri: string, fn: (round: VirshRound) => Promise<T>, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<T> {
  const warm = standby.get(uri);
  standby.delete(uri);
  const proc = warm && !warm.exited ? warm : openVirsh(uri);
  if (proc === warm) holdProcess(proc, true);
  const { command, child } = proc;
  const timer = setTimeout(() => {
    proc.failure ??= new CommandError(command, undefined, proc.stderr, `timed out after ${Math.round(opts.timeoutMs / 100) / 10}s`);
    child.kill("SIGKILL");
  }, opts.timeoutMs);
  const onAbort = (): void => {
    proc.failure ??= cancelledError(`\`${command.join(" ")}\``);
    child.kill("SIGKILL");
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  let seq = 0;
  let consumed = 0;
  const round: VirshRound = async (commands) => {
    const markers: string[] = [];
    let script = "";
    for (const c of commands) {
      for (const token of c) if (!TOKEN.test(token)) throw new CommandError(command, undefined, "", `refused an unsafe virsh token ${JSON.stringify(token)}`);
      const marker = `@@LAGO-${process.pid}-${++seq}@@`;
      markers.push(marker);
      script += `${c.join(" ")}\necho ${marker}\n`;
    }
    if (!commands.length) return [];
    child.stdin.write(script);
    const last = markers[markers.length - 1] ?? "";
    while (outputMarkerAt(proc.stdout, last, consumed) < 0) {
      if (proc.failure) throw proc.failure;
      if (proc.exited) throw new CommandError(command, proc.exited.code ?? undefined, proc.stderr, proc.exited.signal ? `was killed by ${proc.exited.signal}` : undefined);
      await changed(proc);
    }
    const outputs: string[] = [];
    for (const marker of markers) {
      const at = outputMarkerAt(proc.stdout, marker, consumed);
      outputs.push(proc.stdout.slice(consumed, at).replace(PROMPT, ""));
      consumed = at + marker.length;
    }
    return outputs;
  };

  try {
    const result = await fn(round);
    child.stdin.end("quit\n");
    while (!proc.exited) await changed(proc);
    if (proc.failure) throw proc.failure;
    return result;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    if (!proc.exited) child.kill("SIGKILL");
  }
}
