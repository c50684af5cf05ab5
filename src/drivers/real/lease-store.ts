/**
 * {@link LeaseStoreDriver} compatible with Lago's `SubnetStore`: one file per
 * leased /24, `<dir>/<third-octet>.lease`, holding the JSON array
 * `[uuidPath, uuid]` — the owner's uuid file and the 32-hex uuid it held when
 * it took the lease. A lease is stale (free to take) when that file no longer
 * exists or holds another uuid. Every change happens under the store lock
 * `<dir>/leases.lock` ({@link acquireDirLock}: a killed holder's lock is taken
 * over at once, a live holder's never).
 *
 * What happens under the lock never yields to the event loop (a few small
 * reads and writes, and their fsyncs: milliseconds): other work of the same
 * process — an apply creates disks and networks meanwhile — cannot stretch the
 * time the store is locked, nor delay the subnet a network waits for.
 *
 * Lago itself (since 0.46) serialises with flock(2) on `<dir>/subnet-lease.lock`,
 * which Node cannot take without a native addon: lago and Lago share the lease
 * files and their staleness rule, but one lago and one Lago acquiring at the
 * very same moment are not serialised against each other.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { LagoError, LockError, errorMessage } from "../../errors.ts";
import { describeHolder, withDirLock, type LockHolder } from "../../util/dir-lock.ts";
import { writeFileAtomic } from "../../util/fs-atomic.ts";
import type { CallOptions, LeaseStoreDriver } from "../types.ts";
import { readText, readTextSync } from "../../util/read.ts";

export interface LeaseRange {
  /** Lowest third octet handed out (Lago's default: 200). */
  first: number;
  /** Highest third octet handed out, inclusive (Lago's default: 255). */
  last: number;
}

interface Lease {
  octet: number;
  file: string;
  uuidPath: string | undefined;
  uuid: string | undefined;
}

const LOCK_NAME = "leases.lock";
const LEASE_FILE = /^(\d{1,3})\.lease$/;
/** Temp files of writeFileAtomic: `.<name>.<pid>.<rand>.tmp`. */
const TEMP_FILE = /^\.\d{1,3}\.lease\.\d+\.[0-9a-f]+\.tmp$/;

/** Parse `192.168.X.0` or `192.168.X.0/24` to its third octet, or undefined. Pure. */
export function parseSubnet(subnet: string): number | undefined {
  const m = /^192\.168\.(\d{1,3})\.0(?:\/24)?$/.exec(subnet.trim());
  if (!m?.[1]) return undefined;
  const octet = Number(m[1]);
  return octet <= 255 && String(octet) === m[1] ? octet : undefined;
}

/** The lease file content exactly as Lago's `json.dump((path, uuid), f)` writes it. */
export function formatLease(uuidPath: string, uuid: string): string {
  return `[${JSON.stringify(uuidPath)}, ${JSON.stringify(uuid)}]`;
}

export class FsLeaseStore implements LeaseStoreDriver {
  readonly dir: string;
  readonly range: LeaseRange;
  /** How long to wait for the store lock before giving up. */
  lockWaitMs = 60_000;
  /** A holder whose liveness cannot be checked (another host or PID namespace) is dead after this long without a heartbeat. */
  lockStaleMs = 15_000;

  constructor(dir: string, range: LeaseRange) {
    if (!Number.isInteger(range.first) || !Number.isInteger(range.last) || range.first < 0 || range.last > 255 || range.first > range.last) {
      throw new LagoError("CONFIG", `invalid subnet lease range ${range.first}-${range.last}: expected 0 <= first <= last <= 255`);
    }
    this.dir = path.resolve(dir);
    this.range = { first: range.first, last: range.last };
  }

  private rangeText(): string {
    return `192.168.${this.range.first}.0/24 - 192.168.${this.range.last}.0/24`;
  }

  /**
   * The owner's subnet: the one it already holds (idempotent), else
   * `requested` (which must be in range and not held by another live owner),
   * else the lowest free /24. A `requested` subnet different from the one held
   * moves the lease. Creates the owner's uuid file if absent.
   */
  async acquire(owner: string, requested: string | undefined, opts: CallOptions = {}): Promise<string> {
    const ownerPath = path.resolve(owner);
    let wanted: number | undefined;
    if (requested !== undefined) {
      wanted = parseSubnet(requested);
      if (wanted === undefined) {
        throw new LagoError("SUBNET_MALFORMED", `requested subnet ${JSON.stringify(requested)} is not of the form 192.168.X.0 (a /24)`);
      }
      if (wanted < this.range.first || wanted > this.range.last) {
        throw new LagoError("SUBNET_OUT_OF_RANGE", `requested subnet 192.168.${wanted}.0/24 is outside the lease store's range ${this.rangeText()}`);
      }
    }
    return this.withLock(opts, () => {
      const uuid = this.ensureOwnerFile(ownerPath);
      const live = this.readLeases().filter((lease) => this.isLive(lease));
      const mine = live.filter((l) => l.uuidPath === ownerPath && l.uuid === uuid);
      const held = mine[0];
      if (held && (wanted === undefined || held.octet === wanted)) return `192.168.${held.octet}.0`;

      let octet: number;
      if (wanted !== undefined) {
        const taken = live.find((l) => l.octet === wanted && !(l.uuidPath === ownerPath && l.uuid === uuid));
        if (taken) {
          throw new LagoError("SUBNET_TAKEN", `subnet 192.168.${wanted}.0/24 is already leased to ${taken.uuidPath ?? "another environment"}`);
        }
        octet = wanted;
      } else {
        const used = new Set(live.map((l) => l.octet));
        let free: number | undefined;
        for (let o = this.range.first; o <= this.range.last; o++) {
          if (!used.has(o)) {
            free = o;
            break;
          }
        }
        if (free === undefined) {
          throw new LagoError("SUBNET_STORE_FULL", `the subnet lease store ${this.dir} is full: every /24 in ${this.rangeText()} is leased`, {
            hint: "destroy unused environments, or widen lease_range in lago.conf",
          });
        }
        octet = free;
      }
      writeFileAtomic(this.leaseFile(octet), formatLease(ownerPath, uuid));
      for (const old of mine) {
        if (old.octet !== octet) rmSync(old.file, { force: true });
      }
      return `192.168.${octet}.0`;
    });
  }

  /** The subnet leased by `owner` (a live lease with its current uuid), if any. Lock-free: lease files are replaced atomically. */
  async find(owner: string): Promise<string | undefined> {
    return (await this.snapshot()).find(owner);
  }

  /**
   * The store read once (lock-free): `find` then costs one read of the
   * owner's uuid file, not a read of every lease (a refresh asks for each
   * of an environment's leases).
   */
  async snapshot(): Promise<{ find(owner: string): Promise<string | undefined> }> {
    const leases = this.readLeases();
    return {
      async find(owner: string): Promise<string | undefined> {
        const ownerPath = path.resolve(owner);
        const mine = leases.filter((l) => l.uuidPath === ownerPath);
        if (!mine.length) return undefined;
        const uuid = await readText(ownerPath, true);
        const lease = uuid === undefined ? undefined : mine.find((l) => l.uuid === uuid);
        return lease ? `192.168.${lease.octet}.0` : undefined;
      },
    };
  }

  /** Remove every lease naming `owner` and the owner's uuid file; absent is fine. */
  async release(owner: string, opts: CallOptions = {}): Promise<void> {
    const ownerPath = path.resolve(owner);
    await this.withLock(opts, () => {
      for (const lease of this.readLeases()) {
        if (lease.uuidPath === ownerPath) rmSync(lease.file, { force: true });
      }
      rmSync(ownerPath, { force: true });
    });
  }

  private leaseFile(octet: number): string {
    return path.join(this.dir, `${octet}.lease`);
  }

  /** The owner's uuid, creating the file with a fresh 32-hex uuid if absent or empty. */
  private ensureOwnerFile(ownerPath: string): string {
    const current = readTextSync(ownerPath, true);
    if (current !== undefined && current.trim() !== "") return current;
    const uuid = randomBytes(16).toString("hex");
    writeFileAtomic(ownerPath, uuid);
    return uuid;
  }

  /** Lago's rule: the owner file exists and holds the lease's uuid. */
  private isLive(lease: Lease): boolean {
    if (lease.uuidPath === undefined || lease.uuid === undefined) return false;
    return readTextSync(lease.uuidPath, true) === lease.uuid;
  }

  /** Lease files in range, sorted by octet; unreadable or malformed ones count as stale. */
  private readLeases(): Lease[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new LagoError("SUBNET_STORE", `cannot read the subnet lease store ${this.dir}: ${errorMessage(err)}`, { cause: err });
    }
    const leases: Lease[] = [];
    for (const name of names) {
      const m = LEASE_FILE.exec(name);
      if (!m?.[1]) continue;
      const octet = Number(m[1]);
      const file = path.join(this.dir, name);
      const text = readTextSync(file, true);
      if (text === undefined) continue;
      let uuidPath: string | undefined;
      let uuid: string | undefined;
      try {
        const doc: unknown = JSON.parse(text);
        if (Array.isArray(doc) && typeof doc[0] === "string" && typeof doc[1] === "string") {
          uuidPath = doc[0];
          uuid = doc[1];
        }
      } catch {
        // A malformed lease has no owner: it is stale, like one whose owner is gone.
      }
      leases.push({ octet, file, uuidPath, uuid });
    }
    return leases.sort((a, b) => a.octet - b.octet);
  }

  private async withLock<T>(opts: CallOptions, fn: () => T): Promise<T> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      throw new LagoError("SUBNET_STORE", `cannot create the subnet lease store ${this.dir}: ${errorMessage(err)}`, { cause: err });
    }
    const options = { command: "lago (subnet lease)", timeoutMs: this.lockWaitMs, staleMs: this.lockStaleMs, retryMinMs: 5, retryMaxMs: 100, mode: 0o755, signal: opts.signal };
    const busy = (holder: LockHolder | undefined): LockError =>
      new LockError(`the subnet lease store ${this.dir} is locked by ${describeHolder(holder)}; gave up after ${Math.round(this.lockWaitMs / 1000)}s`, {
        hint: "wait for that process to finish (the lock of a process that died is taken over without waiting)",
      });
    return withDirLock(path.join(this.dir, LOCK_NAME), options, busy, async (lock) => {
      this.sweepTemps();
      const result = fn();
      const lost = lock.lost();
      if (lost) throw new LockError(`lost the subnet lease store lock ${this.dir}: ${lost.message}`, { cause: lost });
      return result;
    });
  }

  /** Under the lock: temp files of lease writes by processes killed mid-write. */
  private sweepTemps(): void {
    for (const name of readdirSync(this.dir)) {
      if (TEMP_FILE.test(name)) rmSync(path.join(this.dir, name), { force: true });
    }
  }
}
