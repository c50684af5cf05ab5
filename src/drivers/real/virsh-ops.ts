/**
 * The libvirt operations of the everyday verbs (status, power, snapshots,
 * console) over `virsh`, with argument arrays. Reads are batched: one `virsh`
 * process answers for every domain of an environment.
 */
import { spawn } from "node:child_process";
import { CommandError } from "../../errors.ts";
import { commandNotFoundError, run } from "./exec.ts";
import { checkName } from "./libvirt.ts";
import { withVirshSession } from "./virsh-session.ts";

const TIMEOUT_MS = 120_000;
/** Saving or loading a VM's memory under TCG takes a while; give it room. */
const SNAPSHOT_TIMEOUT_MS = 15 * 60_000;

/** A domain as `virsh list --all` shows it. */
export interface DomainState {
  name: string;
  /** libvirt's id while it runs. */
  id: number | undefined;
  /** libvirt's words: `running`, `paused`, `shut off`, `in shutdown`, `crashed`, `pmsuspended`. */
  state: string;
}

/** Parse `virsh -q list --all` (`Id Name State…` rows). Pure. */
export function parseDomainList(table: string, prefix: string): Map<string, DomainState> {
  const out = new Map<string, DomainState>();
  for (const line of table.split("\n")) {
    const cols = line.trim().split(/\s+/);
    const [id, name] = cols;
    if (cols.length < 3 || !name?.startsWith(prefix)) continue;
    out.set(name, { name, id: id === "-" ? undefined : Number(id), state: cols.slice(2).join(" ") });
  }
  return out;
}

/** Parse `virsh -q net-list --all` (`Name State Autostart Persistent` rows). Pure. */
export function parseNetworkList(table: string, prefix: string): Map<string, { active: boolean }> {
  const out = new Map<string, { active: boolean }>();
  for (const line of table.split("\n")) {
    const [name, state] = line.trim().split(/\s+/);
    if (name?.startsWith(prefix)) out.set(name, { active: state === "active" });
  }
  return out;
}

export class VirshOps {
  constructor(private readonly uri: string) {}

  private async virsh(args: string[], timeoutMs = TIMEOUT_MS, signal?: AbortSignal): Promise<string> {
    return (await run("virsh", ["-c", this.uri, "-q", ...args], { timeoutMs, signal })).stdout;
  }

  /** Every domain whose name starts with `prefix`, with its state (one virsh process). */
  async domainStates(prefix: string): Promise<Map<string, DomainState>> {
    return parseDomainList(await this.virsh(["list", "--all"]), prefix);
  }

  /** Every network whose name starts with `prefix`, active or not (one virsh process). */
  async networkStates(prefix: string): Promise<Map<string, { active: boolean }>> {
    return parseNetworkList(await this.virsh(["net-list", "--all"]), prefix);
  }

  /** Power off at once (like pulling the plug); a domain that is not running is left alone. */
  async powerOff(name: string): Promise<void> {
    await this.virsh(["destroy", checkName(name)]).catch((err: unknown) => {
      if (!(err instanceof CommandError && /not running/i.test(err.stderr))) throw err;
    });
  }

  /** Pause a running domain (its CPUs stop; memory stays). Paused already is fine. */
  async suspend(name: string): Promise<void> {
    await this.virsh(["suspend", checkName(name)]).catch((err: unknown) => {
      if (!(err instanceof CommandError && /already paused|not running/i.test(err.stderr))) throw err;
    });
  }

  /** Resume a paused domain; a running one is left alone. */
  async resume(name: string): Promise<void> {
    await this.virsh(["resume", checkName(name)]).catch((err: unknown) => {
      if (!(err instanceof CommandError && /not paused/i.test(err.stderr))) throw err;
    });
  }

  /**
   * An internal snapshot named `snapshot` of every disk of the domain, and of
   * its memory and device state when it is running or paused (qemu writes it
   * into the domain's own qcow2 images, never into their backing files).
   */
  async createSnapshot(name: string, snapshot: string, description: string): Promise<void> {
    await this.virsh(["snapshot-create-as", checkName(name), "--name", checkName(snapshot, "snapshot"), "--description", description, "--atomic"], SNAPSHOT_TIMEOUT_MS);
  }

  /** Revert to `snapshot`; with memory state, the domain ends up paused (`paused`) or running. */
  async revertSnapshot(name: string, snapshot: string, state: "paused" | "running" | "as-saved"): Promise<void> {
    const flags = state === "paused" ? ["--paused"] : state === "running" ? ["--running"] : [];
    await this.virsh(["snapshot-revert", checkName(name), "--snapshotname", checkName(snapshot, "snapshot"), "--force", ...flags], SNAPSHOT_TIMEOUT_MS);
  }

  /** Delete `snapshot` (its data and metadata); an absent one is fine. */
  async deleteSnapshot(name: string, snapshot: string): Promise<void> {
    await this.virsh(["snapshot-delete", checkName(name), "--snapshotname", checkName(snapshot, "snapshot")], SNAPSHOT_TIMEOUT_MS).catch((err: unknown) => {
      if (!(err instanceof CommandError && /not found|no domain snapshot/i.test(err.stderr))) throw err;
    });
  }

  /** Snapshot names of each domain (one virsh process for all of them). Domains that do not exist are absent. */
  async snapshotLists(names: string[]): Promise<Map<string, string[]>> {
    if (!names.length) return new Map();
    const lines = (text: string | undefined): string[] => (text ?? "").split("\n").map((l) => l.trim()).filter(Boolean);
    return withVirshSession(
      this.uri,
      async (round) => {
        const [listed] = await round([["list", "--all", "--name"]]);
        const exist = new Set(lines(listed));
        const present = names.filter((n) => exist.has(checkName(n)));
        const lists = await round(present.map((n) => ["snapshot-list", "--name", n]));
        return new Map(present.map((n, i) => [n, lines(lists[i])]));
      },
      { timeoutMs: TIMEOUT_MS },
    );
  }

  /**
   * Attach the caller's terminal to the domain's serial console (`virsh
   * console`, left with Ctrl-]); resolves with virsh's exit code.
   */
  console(name: string): Promise<number> {
    const command = ["virsh", "-c", this.uri, "console", checkName(name)];
    return new Promise((resolve, reject) => {
      const child = spawn(command[0] ?? "virsh", command.slice(1), { stdio: "inherit" });
      child.once("error", (err: NodeJS.ErrnoException) => reject(err.code === "ENOENT" ? commandNotFoundError(command, err) : new CommandError(command, undefined, "", `failed: ${err.message}`)));
      child.once("exit", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
    });
  }
}
