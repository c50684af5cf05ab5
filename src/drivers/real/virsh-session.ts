/**
 * One `virsh` process answering several rounds of commands: virsh reads
 * commands from its standard input and keeps going after a failed one, so a
 * whole refresh (list everything, then dump what was listed) costs one
 * process. Each command is followed by an `echo` of a unique marker that
 * delimits its output.
 */
import { spawn } from "node:child_process";
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

/**
 * Open `virsh -c <uri>` reading commands from stdin, let `fn` run rounds of
 * commands on it, then quit. Tokens must be plain words (names are checked
 * safe by the caller; nothing is quoted or interpreted).
 *
 * @throws CommandError when virsh cannot start, exits early (e.g. libvirtd is
 *   not running) or times out.
 */
export async function withVirshSession<T>(uri: string, fn: (round: VirshRound) => Promise<T>, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<T> {
  const command = ["virsh", "-c", uri, "-q"];
  const child = spawn(command[0] ?? "virsh", command.slice(1), { env: { ...process.env, LC_ALL: "C" }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let failure: Error | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiters) w();
  };
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    wake();
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    if (stderr.length < 1 << 20) stderr += d;
  });
  child.stdin.on("error", () => undefined);
  const closed = new Promise<void>((resolve) => {
    child.on("error", (err: NodeJS.ErrnoException) => {
      failure = err.code === "ENOENT" ? commandNotFoundError(command, err) : new CommandError(command, undefined, stderr, `failed: ${err.message}`, { cause: err });
      exited ??= { code: null, signal: null };
      wake();
      resolve();
    });
    child.on("close", (code, signal) => {
      exited = { code, signal };
      wake();
      resolve();
    });
  });
  const timer = setTimeout(() => {
    failure ??= new CommandError(command, undefined, stderr, `timed out after ${Math.round(opts.timeoutMs / 100) / 10}s`);
    child.kill("SIGKILL");
  }, opts.timeoutMs);
  const onAbort = (): void => {
    failure ??= cancelledError(`\`${command.join(" ")}\``);
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
    while (outputMarkerAt(stdout, last, consumed) < 0) {
      if (failure) throw failure;
      if (exited) throw new CommandError(command, exited.code ?? undefined, stderr, exited.signal ? `was killed by ${exited.signal}` : undefined);
      await new Promise<void>((resolve) => {
        waiters.add(resolve);
      }).finally(() => waiters.clear());
    }
    const outputs: string[] = [];
    for (const marker of markers) {
      const at = outputMarkerAt(stdout, marker, consumed);
      outputs.push(stdout.slice(consumed, at).replace(PROMPT, ""));
      consumed = at + marker.length;
    }
    return outputs;
  };

  try {
    const result = await fn(round);
    child.stdin.end("quit\n");
    await closed;
    if (failure) throw failure;
    return result;
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onAbort);
    if (!exited) child.kill("SIGKILL");
  }
}
