/** {@link CustomizeDriver} over `virt-customize` (libguestfs, direct backend). */
import { accessSync, constants } from "node:fs";
import type { CallOptions, CustomizeDriver } from "../types.ts";
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
   */
  async run(disk: string, args: string[], opts: CallOptions = {}): Promise<void> {
    const env: Record<string, string> = { LIBGUESTFS_BACKEND: "direct" };
    if (this.forceTcg) env.LIBGUESTFS_BACKEND_SETTINGS = "force_tcg";
    const progress = opts.progress;
    await run("virt-customize", ["-a", disk, ...args], {
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
  }
}
