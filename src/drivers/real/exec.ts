/**
 * The one way lago runs an external command: argument arrays only (never a
 * shell), `LC_ALL=C` so output is parseable, and every failure turned into a
 * {@link CommandError} that names the command, its exit code and its stderr.
 */
import { CommandError } from "../../errors.ts";
import { lazy } from "../../util/lazy.ts";

export interface RunOptions {
  /** Kill the command (SIGTERM, then SIGKILL) after this many milliseconds. */
  timeoutMs?: number | undefined;
  /** Cancel the command: it is killed and the call rejects with "was cancelled". */
  signal?: AbortSignal | undefined;
  /** Added to the inherited environment (after `LC_ALL=C`, so it can override it). */
  env?: Record<string, string> | undefined;
  /** Written to the command's stdin; without it stdin is closed. */
  input?: string | Uint8Array | undefined;
  /** Called with every stdout line (without its newline) as it arrives. */
  onStdoutLine?: ((line: string) => void) | undefined;
  cwd?: string | undefined;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  "qemu-img": "qemu-utils",
  virsh: "libvirt-clients",
  "virt-customize": "libguestfs-tools",
  "virt-format": "libguestfs-tools",
  guestfish: "libguestfs-tools",
  xz: "xz-utils",
  "ssh-keygen": "openssh-client",
  genisoimage: "genisoimage",
};

/** The Debian package that provides `cmd`, when lago knows it. */
export function debianPackageFor(cmd: string): string | undefined {
  return DEBIAN_PACKAGES[cmd];
}

/** The error for a command that is not installed, saying which package provides it. */
export function commandNotFoundError(command: string[], cause?: unknown): CommandError {
  const cmd = command[0] ?? "";
  const pkg = debianPackageFor(cmd);
  const detail = pkg
    ? `failed: ${cmd} is not installed (Debian package ${pkg})`
    : `failed: ${cmd} is not installed or not in PATH`;
  return new CommandError(command, undefined, "", detail, {
    hint: pkg ? `install it with: apt-get install ${pkg}` : undefined,
    cause,
  });
}

type Execa = typeof import("execa");

/** execa, loaded on the first command run: a plan of an empty state runs none. */
const loadExeca: () => Promise<Execa> = lazy(() => import("execa"));

/**
 * Run `cmd args…` and return its output. Rejects with a {@link CommandError}
 * on a non-zero exit, a timeout ("timed out after Ns"), a cancellation ("was
 * cancelled"), a signal, or a missing binary (naming its Debian package).
 */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args];
  const onLine = opts.onStdoutLine;
  const { execa, ExecaError } = await loadExeca();
  try {
    const result = await execa(cmd, args, {
      env: { LC_ALL: "C", ...opts.env },
      extendEnv: true,
      ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
      ...(opts.signal === undefined ? {} : { cancelSignal: opts.signal }),
      ...(opts.input === undefined ? { stdin: "ignore" as const } : { input: opts.input }),
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(onLine === undefined
        ? {}
        : {
            stdout: [
              function* forward(line: unknown): Generator<unknown, void, unknown> {
                onLine(String(line));
                yield line;
              },
            ],
          }),
      stripFinalNewline: false,
      forceKillAfterDelay: 5000,
    });
    return { stdout: String(result.stdout), stderr: String(result.stderr) };
  } catch (err) {
    throw toCommandError(command, err, opts.timeoutMs, ExecaError);
  }
}

function toCommandError(command: string[], err: unknown, timeoutMs: number | undefined, ExecaError: Execa["ExecaError"]): CommandError {
  if (!(err instanceof ExecaError)) {
    return new CommandError(command, undefined, "", `failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const stderr = typeof err.stderr === "string" ? err.stderr : "";
  if (err.code === "ENOENT" && err.exitCode === undefined) return commandNotFoundError(command, err);
  if (err.timedOut) {
    const secs = timeoutMs === undefined ? "?" : String(Math.round(timeoutMs / 100) / 10);
    return new CommandError(command, err.exitCode, stderr, `timed out after ${secs}s`, { cause: err });
  }
  if (err.isCanceled) return new CommandError(command, err.exitCode, stderr, "was cancelled", { cause: err });
  if (err.exitCode !== undefined) return new CommandError(command, err.exitCode, stderr, undefined, { cause: err });
  if (err.signal !== undefined) return new CommandError(command, undefined, stderr, `was killed by ${err.signal}`, { cause: err });
  return new CommandError(command, undefined, stderr, `failed: ${err.originalMessage ?? err.shortMessage}`, { cause: err });
}
