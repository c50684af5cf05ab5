/**
 * One authenticated SSH connection to a VM (host key verified against the
 * pinned one) for the everyday verbs: commands with streamed output and
 * stdin, interactive sessions on a PTY, and SFTP. Built on ssh2's Client
 * through {@link connect}, so the host key rules are the same as the engine's.
 */
import type { ClientChannel, SFTPWrapper } from "ssh2";
import { LagoError } from "../../errors.ts";
import type { SshTarget } from "../types.ts";
import { cancelledError } from "../../util/sleep.ts";
import { connect, describeError, readKey, where, type Connection } from "./ssh.ts";

const CONNECT_TIMEOUT_MS = 30_000;

/** How a remote command ended: its exit status, or the signal that killed it (code -1). */
export interface ExitStatus {
  code: number;
  signal: string | undefined;
}

export interface ExecStreamOptions {
  /** Written to the command's stdin, which is then closed; without it stdin is closed at once. */
  stdin?: string | Buffer | undefined;
  onStdout?: ((chunk: Buffer) => void) | undefined;
  onStderr?: ((chunk: Buffer) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Give up (and close the channel) after this long; default: no limit. */
  timeoutMs?: number | undefined;
}

/** A terminal the interactive session is attached to. */
export interface PtyTerminal {
  term: string;
  rows: number;
  cols: number;
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Register a listener for window size changes; returns the unregister function. */
  onResize?: ((listener: (rows: number, cols: number) => void) => () => void) | undefined;
}

/** Resolve with the channel's exit status once it closes. */
function waitExit(channel: ClientChannel, what: string, target: SshTarget, opts: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined }): Promise<ExitStatus> {
  return new Promise((resolve, reject) => {
    let status: ExitStatus | undefined;
    let settled = false;
    const finish = (err: unknown, result?: ExitStatus): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (err !== undefined || !result) {
        channel.destroy();
        reject(err);
      } else resolve(result);
    };
    const onAbort = (): void => finish(cancelledError(`${what} on ${where(target)}`));
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => finish(new LagoError("SSH_TIMEOUT", `${what} on ${where(target)} timed out after ${opts.timeoutMs! / 1000}s`)), opts.timeoutMs);
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    channel.on("exit", (code: number | null, sig?: string) => {
      status = { code: typeof code === "number" ? code : -1, signal: typeof sig === "string" ? sig : undefined };
    });
    channel.on("close", () => finish(undefined, status ?? { code: -1, signal: undefined }));
  });
}

export class SshSession {
  private constructor(
    private readonly conn: Connection,
    readonly target: SshTarget,
  ) {}

  /** Connect and authenticate once (no retries). Rejects with a LagoError naming the VM's address. */
  static async open(target: SshTarget, opts: { signal?: AbortSignal | undefined; timeoutMs?: number | undefined } = {}): Promise<SshSession> {
    const key = await readKey(target);
    try {
      return new SshSession(await connect(target, key, opts.timeoutMs ?? CONNECT_TIMEOUT_MS, opts.signal), target);
    } catch (err) {
      if (err instanceof LagoError) throw err;
      throw new LagoError("SSH_CONNECT", `cannot connect to ${where(target)}: ${describeError(err)}`, { cause: err });
    }
  }

  /** The host key the server presented (base64 of the key blob). */
  get hostKey(): string {
    return this.conn.hostKey;
  }

  /**
   * Run `command` (a string for the remote shell, passed as is) and stream its
   * output; resolves with its exit status. A non-zero status is not an error.
   */
  exec(command: string, opts: ExecStreamOptions = {}): Promise<ExitStatus> {
    return new Promise((resolve, reject) => {
      this.conn.client.exec(command, (err, channel) => {
        if (err) {
          reject(new LagoError("SSH_EXEC", `cannot run \`${command}\` on ${where(this.target)}: ${err.message}`, { cause: err }));
          return;
        }
        channel.on("data", (d: Buffer) => opts.onStdout?.(d));
        channel.stderr.on("data", (d: Buffer) => opts.onStderr?.(d));
        waitExit(channel, `command \`${command}\``, this.target, opts).then(resolve, reject);
        if (opts.stdin !== undefined) channel.end(opts.stdin);
        else channel.end();
      });
    });
  }

  /**
   * An interactive session on a remote PTY sized like `terminal`: its login
   * shell, or `command` when given. Input is forwarded byte for byte, window
   * size changes follow the terminal. Resolves with the remote exit status.
   */
  interactive(command: string | undefined, terminal: PtyTerminal): Promise<ExitStatus> {
    const pty = { term: terminal.term, rows: terminal.rows, cols: terminal.cols, height: 0, width: 0 };
    return new Promise((resolve, reject) => {
      const started = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) {
          reject(new LagoError("SSH_SHELL", `cannot open a terminal session on ${where(this.target)}: ${err.message}`, { cause: err }));
          return;
        }
        const forward = (chunk: Buffer | string): void => {
          channel.write(chunk);
        };
        terminal.input.on("data", forward);
        const unresize = terminal.onResize?.((rows, cols) => channel.setWindow(rows, cols, 0, 0));
        channel.on("data", (d: Buffer) => terminal.output.write(d));
        channel.stderr.on("data", (d: Buffer) => terminal.output.write(d));
        const detach = (): void => {
          terminal.input.off("data", forward);
          unresize?.();
        };
        waitExit(channel, command ? `command \`${command}\`` : "the shell", this.target, {}).then(
          (status) => {
            detach();
            resolve(status);
          },
          (err: unknown) => {
            detach();
            reject(err);
          },
        );
      };
      if (command === undefined) this.conn.client.shell(pty, started);
      else this.conn.client.exec(command, { pty }, started);
    });
  }

  /** The SFTP subsystem (the guest needs an sftp-server). */
  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      this.conn.client.sftp((err, sftp) => {
        if (err) {
          reject(
            new LagoError("SSH_SFTP", `cannot start SFTP on ${where(this.target)}: ${err.message}`, {
              cause: err,
              hint: "the VM's SSH server needs an SFTP server (OpenSSH's sftp-server, e.g. the openssh-sftp-server package)",
            }),
          );
        } else resolve(sftp);
      });
    });
  }

  close(): void {
    this.conn.client.end();
  }
}
