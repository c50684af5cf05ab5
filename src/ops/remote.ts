/**
 * Commands and interactive sessions on a VM over SSH (`lago ssh`, `lago
 * shell`): the environment's key, the host key pinned at first contact.
 */
import { LagoError, UsageError, errorMessage } from "../errors.ts";
import { SshSession, type ExitStatus, type PtyTerminal } from "../drivers/real/ssh-session.ts";
import type { OpsContext } from "./context.ts";
import { readView, oneVm, sshTargetOf, type VmView } from "./view.ts";

export interface RunOptions {
  stdin?: string | Buffer | undefined;
  onStdout?: ((chunk: Buffer) => void) | undefined;
  onStderr?: ((chunk: Buffer) => void) | undefined;
  timeoutMs?: number | undefined;
}

/**
 * Open an SSH session to the VM named `vm` of the environment. The caller
 * closes it. When SSH does not answer because the VM is not running, the
 * error says so and how to start it.
 */
export async function openSession(ctx: OpsContext, vm: string | VmView): Promise<SshSession> {
  const view = typeof vm === "string" ? oneVm(readView(ctx), vm) : vm;
  const target = sshTargetOf(view);
  try {
    return await SshSession.open(target, { signal: ctx.signal });
  } catch (err) {
    const state = (await ctx.virsh.domainStates(view.libvirtName).catch(() => undefined))?.get(view.libvirtName)?.state ?? "missing";
    if (state === "running") throw err;
    throw new UsageError(`VM ${view.name} is ${state}: SSH cannot reach it`, {
      hint: state === "missing" ? "recreate it with `lago apply`" : `start it with: lago start ${view.name}`,
      cause: err,
    });
  }
}

/** An error's message and, for a {@link LagoError} with one, its hint: one line of a per-VM report. */
export function messageWithHint(err: unknown): string {
  return err instanceof LagoError && err.hint ? `${err.message} (${err.hint})` : errorMessage(err);
}

/** Run `command` (a remote shell command line) on `vm`, streaming its output; resolves with its exit status. */
export async function runOnVm(ctx: OpsContext, vm: string, command: string, opts: RunOptions = {}): Promise<ExitStatus> {
  const session = await openSession(ctx, vm);
  try {
    return await session.exec(command, { ...opts, signal: ctx.signal });
  } finally {
    session.close();
  }
}

/** Run `command` on `vm` and collect its output (`lago ssh --json`, the SDK's `vm.ssh`). */
export async function captureOnVm(ctx: OpsContext, vm: string, command: string, opts: Omit<RunOptions, "onStdout" | "onStderr"> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const status = await runOnVm(ctx, vm, command, { ...opts, onStdout: (d) => out.push(d), onStderr: (d) => err.push(d) });
  const stderr = Buffer.concat(err).toString("utf8");
  return {
    code: status.code,
    stdout: Buffer.concat(out).toString("utf8"),
    stderr: status.signal ? `${stderr}${stderr && !stderr.endsWith("\n") ? "\n" : ""}killed by signal ${status.signal}` : stderr,
  };
}

/** An interactive session on `vm` on a PTY: its login shell, or `command`. Resolves with the exit status. */
export async function interactiveOnVm(ctx: OpsContext, vm: string, command: string | undefined, terminal: PtyTerminal): Promise<ExitStatus> {
  const session = await openSession(ctx, vm);
  try {
    return await session.interactive(command, terminal);
  } finally {
    session.close();
  }
}
