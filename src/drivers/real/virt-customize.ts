/** {@link CustomizeDriver} over `virt-customize` (libguestfs, direct backend). */
import { accessSync, constants } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { CallOptions, CustomizeArg, CustomizeDriver } from "../types.ts";
import { run } from "./exec.ts";

export interface VirtCustomizeOptions {
  /** Make libguestfs's appliance use TCG instead of KVM (`LIBGUESTFS_BACKEND_SETTINGS=force_tcg`). */
  forceTcg: boolean;
  /** Default 20 minutes. */
  timeoutMs?: number | undefined;
}

/**
 * Whether libguestfs should be told to use TCG: when lago runs domains as
 * `qemu` (configuration `domain_type`) or /dev/kvm is not
 * usable by this process.
 */
export function shouldForceTcg(domainType: "kvm" | "qemu"): boolean {
  if (domainType === "qemu") return true;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return false;
  } catch {
    return true;
  }
}

export class VirtCustomize implements CustomizeDriver {
  private readonly forceTcg: boolean;
  private readonly timeoutMs: number;

  constructor(options: VirtCustomizeOptions) {
    this.forceTcg = options.forceTcg;
    this.timeoutMs = options.timeoutMs ?? 20 * 60_000;
  }

  /**
   * `virt-customize -a <disk> <args…>`: one run with all the given operations,
   * its output lines streamed to `opts.progress`. The caller chooses the
   * operations (including `--no-network` when none needs the network).
   * Secret arguments go through 0600 files in a private temporary directory,
   * removed afterwards (also on failure); argv and errors show only those files' names.
   */
  async run(disk: string, args: CustomizeArg[], opts: CallOptions = {}): Promise<void> {
    const env: Record<string, string> = { LIBGUESTFS_BACKEND: "direct" };
    if (this.forceTcg) env.LIBGUESTFS_BACKEND_SETTINGS = "force_tcg";
    const progress = opts.progress;
    const secrets = args.some((a) => typeof a !== "string") ? await mkdtemp(path.join(os.tmpdir(), "lago-secret-")) : undefined;
    try {
      const argv: string[] = [];
      let n = 0;
      for (const a of args) {
        if (typeof a === "string") {
          argv.push(a);
          continue;
        }
        const file = path.join(secrets ?? os.tmpdir(), `secret-${n++}`);
        await writeFile(file, a.secretFile, { mode: 0o600, flag: "wx" });
        argv.push(`${a.prefix}${file}`);
      }
      await run("virt-customize", ["-a", disk, ...argv], {
        env,
        timeoutMs: this.timeoutMs,
        signal: opts.signal,
        onStdoutLine: progress
          ? (line) => {
              const text = line.trim();
              if (text) progress(text);
            }
          : undefined,
      });
    } finally {
      if (secrets) await rm(secrets, { recursive: true, force: true });
    }
  }
}
