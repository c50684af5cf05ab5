/**
 * {@link SshDriver} over ssh2's Client. Every connection verifies the host
 * key: against the pinned one when there is one, otherwise the key seen is
 * accepted and returned so the caller can pin it (trust on first use).
 *
 * Waiting for a booting VM costs no fixed sleeps: a plain TCP connect to the SSH
 * port starts every {@link PORT_RETRY_MS} (and {@link REFUSED_RETRY_MS} after a
 * refusal) until the server accepts, and that very socket is handed to the SSH
 * client, so the login starts as soon as the server can send its banner.
 */
import net from "node:net";
import { readFile } from "node:fs/promises";
import type { AnyAuthMethod, Client as SshClient, ClientChannel } from "ssh2";
import { LagoError, errorMessage } from "../../errors.ts";
import type { CallOptions, SshDriver, SshLogin, SshTarget } from "../types.ts";
import { cancelledError, sleep } from "../../util/sleep.ts";
import { loadSsh2 } from "./ssh2-module.ts";

const CONNECT_TIMEOUT_MS = 30_000;
/** A fresh TCP connect this often while the port is closed or the host does not answer yet. */
const PORT_RETRY_MS = 200;
/**
 * A refused connect means the guest is up and its SSH server about to listen: the next try comes this soon,
 * instead of at the next {@link PORT_RETRY_MS} tick (one such retry pending at a time).
 */
const REFUSED_RETRY_MS = 50;
/** Connect attempts report back to the wait (its deadline, its progress message) after this long. */
const PORT_WINDOW_MS = 2_000;
/** Pause after a failed login on an open port (e.g. cloud-init has not written the key yet). */
const LOGIN_RETRY_MS = 500;
/** At most one progress message per this interval while waiting. */
const PROGRESS_EVERY_MS = 5_000;

/** The server's host key differs from the pinned one: never retried. */
export class HostKeyMismatchError extends LagoError {
  readonly expected: string;
  readonly actual: string;

  constructor(target: SshTarget, actual: string) {
    super(
      "SSH_HOST_KEY_MISMATCH",
      `host key mismatch for ${target.host}:${target.port}: expected ${target.pinnedHostKey ?? "?"}, got ${actual}`,
      { hint: "the machine answering is not the one lago first contacted; if it was recreated, refresh the environment's state" },
    );
    this.expected = target.pinnedHostKey ?? "";
    this.actual = actual;
  }
}

export interface Connection {
  client: SshClient;
  hostKey: string;
  /** -1: the key; otherwise the index of the password that logged in. */
  credential: number;
}

/** `user@host:port`, for messages. */
export function where(t: SshTarget): string {
  return `${t.user}@${t.host}:${t.port}`;
}

/** An SSH error in words (authentication failures and socket codes named). */
export function describeError(err: unknown): string {
  const e = err as (Error & { level?: string; code?: string }) | undefined;
  if (e instanceof Error && e.level === "client-authentication") return `authentication failed (${e.message})`;
  if (e instanceof Error && e.code) return `${e.code}: ${e.message}`;
  return errorMessage(err);
}

/**
 * A TCP connection to the target's SSH port. A fresh connect starts every
 * {@link PORT_RETRY_MS} while earlier ones are still pending, and
 * {@link REFUSED_RETRY_MS} after one is refused; the first to connect wins and
 * the others are dropped. A booting guest that gets its address or starts its
 * server is thus reached within one stagger, not after the kernel's SYN backoff
 * (1 s, 3 s, …). After `windowMs` without a connection,
 * rejects with the last attempt's error (ECONNREFUSED while the server is not
 * listening, EHOSTUNREACH while the guest has no address yet), or ETIMEDOUT when
 * no attempt got an answer. `dial`: how one attempt connects (tests replace it).
 */
export function openPort(
  target: SshTarget,
  windowMs: number,
  signal: AbortSignal | undefined,
  dial: (host: string, port: number) => net.Socket = (host, port) => net.connect({ host, port }),
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelledError(`connecting to ${where(target)}`));
      return;
    }
    const pending = new Set<net.Socket>();
    let lastError: unknown;
    let settled = false;
    let refusedRetry: NodeJS.Timeout | undefined;
    const finish = (winner: net.Socket | undefined, err?: unknown): void => {
      if (settled) return;
      settled = true;
      clearInterval(stagger);
      clearTimeout(windowTimer);
      clearTimeout(refusedRetry);
      signal?.removeEventListener("abort", onAbort);
      for (const sock of pending) {
        sock.removeAllListeners("connect");
        sock.removeAllListeners("error");
        if (sock !== winner) {
          sock.on("error", () => undefined);
          sock.destroy();
        }
      }
      pending.clear();
      if (winner) resolve(winner);
      else reject(err);
    };
    const attempt = (): void => {
      const sock = dial(target.host, target.port);
      pending.add(sock);
      sock.once("connect", () => finish(sock));
      sock.once("error", (err: NodeJS.ErrnoException) => {
        lastError = err;
        pending.delete(sock);
        sock.destroy();
        if (err.code === "ECONNREFUSED" && !settled && refusedRetry === undefined) {
          refusedRetry = setTimeout(() => {
            refusedRetry = undefined;
            attempt();
          }, REFUSED_RETRY_MS);
        }
      });
    };
    const onAbort = (): void => finish(undefined, cancelledError(`connecting to ${where(target)}`));
    signal?.addEventListener("abort", onAbort, { once: true });
    const stagger = setInterval(attempt, PORT_RETRY_MS);
    const windowTimer = setTimeout(
      () => finish(undefined, lastError ?? Object.assign(new Error(`connect ETIMEDOUT ${target.host}:${target.port}`), { code: "ETIMEDOUT" })),
      windowMs,
    );
    attempt();
  });
}

/** The key first, then each password, as ssh2 auth methods. */
function authMethods(target: SshTarget, privateKey: Buffer): AnyAuthMethod[] {
  return [
    { type: "publickey", username: target.user, key: privateKey },
    ...(target.passwords ?? []).map((password): AnyAuthMethod => ({ type: "password", username: target.user, password })),
  ];
}

/**
 * One connection attempt, host key verified; resolves once authenticated with the
 * key or one of the target's passwords. `sock`: an already connected socket to use.
 */
export async function connect(target: SshTarget, privateKey: Buffer, readyTimeoutMs: number, signal: AbortSignal | undefined, sock?: net.Socket): Promise<Connection> {
  const ssh2 = await loadSsh2();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      sock?.destroy();
      reject(cancelledError(`connecting to ${where(target)}`));
      return;
    }
    const client = new ssh2.Client();
    let seen: string | undefined;
    let mismatch: HostKeyMismatchError | undefined;
    let settled = false;
    const methods = authMethods(target, privateKey);
    let tried = -1;
    const settle = (err: unknown, conn?: Connection): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      if (err !== undefined || !conn) {
        client.end();
        sock?.destroy();
        reject(err);
      } else {
        resolve(conn);
      }
    };
    const onAbort = (): void => settle(cancelledError(`connecting to ${where(target)}`));
    signal?.addEventListener("abort", onAbort, { once: true });
    // After settling, late errors (a reset while closing) must not crash the process.
    client.on("error", (err) => settle(mismatch ?? err));
    client.on("close", () => settle(mismatch ?? new LagoError("SSH_CLOSED", `connection to ${where(target)} closed before it was ready`)));
    client.on("ready", () => {
      if (seen === undefined) settle(new LagoError("SSH_HOST_KEY", `no host key received from ${where(target)}`));
      else settle(undefined, { client, hostKey: seen, credential: tried - 1 });
    });
    try {
      client.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        ...(sock ? { sock } : {}),
        authHandler: (_left, _partial, next) => {
          tried += 1;
          const method = methods[tried];
          next(method ?? (false as unknown as AnyAuthMethod));
        },
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: 0,
        hostVerifier: (key: Buffer): boolean => {
          seen = key.toString("base64");
          if (target.pinnedHostKey !== undefined && target.pinnedHostKey !== seen) {
            mismatch = new HostKeyMismatchError(target, seen);
            return false;
          }
          return true;
        },
      });
    } catch (err) {
      settle(new LagoError("SSH_CONFIG", `cannot connect to ${where(target)}: ${errorMessage(err)}`, { cause: err }));
    }
  });
}

/** Run `command` on an open connection; collects output until the channel closes. */
function execOn(
  conn: Connection,
  target: SshTarget,
  command: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  shownTimeoutMs: number = timeoutMs,
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let channel: ClientChannel | undefined;
    const finish = (err: unknown, result?: { code: number; stdout: string; stderr: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err !== undefined || !result) {
        channel?.destroy();
        reject(err);
      } else {
        resolve(result);
      }
    };
    const timer = setTimeout(() => {
      finish(new LagoError("SSH_TIMEOUT", `command \`${command}\` on ${where(target)} timed out after ${shownTimeoutMs / 1000}s`));
    }, timeoutMs);
    const onAbort = (): void => finish(cancelledError(`command \`${command}\` on ${where(target)}`));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    conn.client.on("close", () => finish(new LagoError("SSH_CLOSED", `connection to ${where(target)} closed while running \`${command}\``)));
    conn.client.exec(command, (err, stream) => {
      if (err) {
        finish(new LagoError("SSH_EXEC", `cannot run \`${command}\` on ${where(target)}: ${err.message}`, { cause: err }));
        return;
      }
      channel = stream;
      if (input !== undefined) stream.end(input);
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      stream.on("data", (d: Buffer) => out.push(d));
      stream.stderr.on("data", (d: Buffer) => errOut.push(d));
      stream.on("close", (code: number | null | undefined, sig: string | undefined) => {
        const stderr = Buffer.concat(errOut).toString("utf8");
        finish(undefined, {
          // A command killed by a signal has no exit status; -1 cannot be confused with one.
          code: typeof code === "number" ? code : -1,
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: sig ? `${stderr}${stderr && !stderr.endsWith("\n") ? "\n" : ""}killed by signal ${sig}` : stderr,
        });
      });
    });
  });
}

/** The target's private key, or an SSH_KEY error naming the file. */
export async function readKey(target: SshTarget): Promise<Buffer> {
  try {
    return await readFile(target.privateKeyPath);
  } catch (err) {
    throw new LagoError("SSH_KEY", `cannot read the SSH private key ${target.privateKeyPath}: ${errorMessage(err)}`, { cause: err });
  }
}

export class Ssh2Client implements SshDriver {
  /**
   * Wait until SSH answers with the key and `true` runs, or `timeoutMs` passes.
   * Returns the host key (base64 of the key blob). See {@link Ssh2Client.waitLogin}.
   */
  async waitReady(target: SshTarget, timeoutMs: number, opts: CallOptions = {}): Promise<string> {
    return (await this.waitLogin({ ...target, passwords: undefined }, timeoutMs, opts)).hostKey;
  }

  /**
   * Connect until a login with the key or one of the target's passwords succeeds and
   * the probe (`true` unless given) exits 0, or `timeoutMs` passes. While the port is closed, TCP connects are
   * retried every 200 ms (50 ms after a refusal) and the connected socket goes straight to the SSH client.
   * A pinned host key that does not match fails at once; the timeout error names the
   * last connection error (never a password). Side-effect free on the server.
   */
  async waitLogin(target: SshTarget, timeoutMs: number, opts: CallOptions & { probe?: string } = {}): Promise<SshLogin> {
    const command = opts.probe ?? "true";
    const privateKey = await readKey(target);
    const started = Date.now();
    const deadline = started + timeoutMs;
    let lastError: unknown;
    let attempts = 0;
    let told = 0;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let conn: Connection | undefined;
      // openPort keeps trying for its whole window: a closed port is retried at once, a failed login after a pause.
      let pause = 0;
      attempts++;
      try {
        const sock = await openPort(target, Math.min(remaining, PORT_WINDOW_MS), opts.signal);
        pause = LOGIN_RETRY_MS;
        conn = await connect(target, privateKey, Math.max(1_000, Math.min(deadline - Date.now(), CONNECT_TIMEOUT_MS)), opts.signal, sock);
        const probe = await execOn(conn, target, command, Math.max(1_000, Math.min(deadline - Date.now(), CONNECT_TIMEOUT_MS)), opts.signal);
        if (probe.code === 0) return { hostKey: conn.hostKey, credential: conn.credential, output: probe.stdout };
        lastError = new Error(`the probe command \`${command}\` exited with ${probe.code}${probe.stderr ? `: ${probe.stderr.trim()}` : ""}`);
      } catch (err) {
        if (err instanceof HostKeyMismatchError) throw err;
        if (err instanceof LagoError && err.code === "CANCELLED") throw err;
        if (err instanceof LagoError && (err.code === "SSH_CONFIG" || err.code === "SSH_KEY")) throw err;
        lastError = err;
      } finally {
        conn?.client.end();
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      if (Date.now() - told >= PROGRESS_EVERY_MS) {
        told = Date.now();
        opts.progress?.(`waiting for SSH on ${where(target)}: ${describeError(lastError)}`);
      }
      if (pause > 0) await sleep(Math.min(pause, left), opts.signal, `waiting for SSH on ${where(target)}`);
    }
    throw new LagoError(
      "SSH_TIMEOUT",
      `timed out after ${Math.round(timeoutMs / 100) / 10}s waiting for SSH on ${where(target)} (${attempts} attempt${attempts === 1 ? "" : "s"}); last error: ${
        lastError === undefined ? "none" : describeError(lastError)
      }`,
      { cause: lastError },
    );
  }

  /**
   * Run `command` once (no retries) and collect its exit code and output; `timeoutMs` (default 5 min)
   * covers connecting and running. `input` goes to the command's stdin (a way to pass secrets).
   */
  async exec(target: SshTarget, command: string, opts: CallOptions & { timeoutMs?: number; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const privateKey = await readKey(target);
    const timeoutMs = opts.timeoutMs ?? 5 * 60_000;
    const deadline = Date.now() + timeoutMs;
    let conn: Connection;
    try {
      conn = await connect(target, privateKey, Math.max(1_000, Math.min(timeoutMs, CONNECT_TIMEOUT_MS)), opts.signal);
    } catch (err) {
      if (err instanceof LagoError) throw err;
      throw new LagoError("SSH_CONNECT", `cannot connect to ${where(target)}: ${describeError(err)}`, { cause: err });
    }
    try {
      return await execOn(conn, target, command, Math.max(1, deadline - Date.now()), opts.signal, timeoutMs, opts.input);
    } finally {
      conn.client.end();
    }
  }
}
