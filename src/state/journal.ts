/**
 * The apply journal: the write-ahead log of the state. Append-only, one JSON
 * record a line. It starts with a `begin` record naming the checkpoint (state
 * file serial) it continues; then, for every reconciler call, an `intent`
 * (made durable with fsync before the call) and an `outcome` carrying the
 * resource as it must now be recorded; `set` and `meta` records change the
 * state without a call (refreshed attributes, the init file's hash).
 *
 * The state is the last checkpoint plus the journal's records replayed in
 * order. After a crash, an intent without an outcome may or may not have
 * happened: the engine resolves it by reading reality back. Records are
 * written in batches, once per turn of the event loop and always before an
 * fsync; outcomes are not fsynced on their own (the next intent's fsync covers
 * them): an outcome lost in a crash only makes its intent look open, which
 * reading reality back resolves correctly.
 */
import { closeSync, existsSync, fsync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { promisify } from "node:util";
import path from "node:path";
import type { Attrs, Kind } from "../resources/types.ts";
import { fsyncDir, writeFileAtomic } from "../util/fs-atomic.ts";

const fsyncAsync = promisify(fsync);

export type JournalAction = "create" | "update" | "delete" | "release";

/** A resource as the state file and the journal store it. */
export interface StoredResource {
  kind: Kind;
  attrs: Attrs;
  outputs: Attrs;
  depends_on: string[];
  status: "ready" | "tainted";
  reason?: string;
}

export type JournalRecord =
  | { type: "begin"; seq: number; time: string; lineage: string; serial: number }
  | { type: "intent"; seq: number; time: string; address: string; kind: Kind; action: JournalAction; attrs: Attrs; dependsOn: string[] }
  | { type: "outcome"; seq: number; time: string; address: string; action: JournalAction; ok: boolean; resource?: StoredResource | null }
  | { type: "set"; seq: number; time: string; address: string; resource: StoredResource | null }
  | { type: "meta"; seq: number; time: string; initFileSha256: string | null };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type JournalEntry = DistributiveOmit<JournalRecord, "seq" | "time">;

/** An intent with no outcome: the call may or may not have happened. */
export type PendingIntent = Extract<JournalRecord, { type: "intent" }>;

export interface JournalOptions {
  /** Writes are dropped once this returns false (in-process crash simulation). */
  alive?: (() => boolean) | undefined;
}

export class Journal {
  private fd: number | undefined;
  private seq = 0;
  private written = 0;
  private readonly crashAfter: number | undefined;
  /** Appended records not yet written to the file. */
  private buffered: string[] = [];
  /** Records made durable so far (of {@link written}). */
  private durable = 0;
  /** The fsync in flight, if any. */
  private flushing: Promise<void> | undefined;
  private readonly alive: () => boolean;

  constructor(
    private readonly file: string,
    options: JournalOptions = {},
  ) {
    const crash = process.env.LAGO_TEST_CRASH_AFTER_JOURNAL;
    this.crashAfter = crash && /^\d+$/.test(crash) ? Number(crash) : undefined;
    this.alive = options.alive ?? (() => true);
    if (existsSync(file)) this.seq = lastSeq(file);
  }

  /** Whether the journal file exists (with records from an earlier run or this one). */
  exists(): boolean {
    return this.fd !== undefined || existsSync(this.file);
  }

  /** Append a record (written within this turn of the event loop, durable after the next {@link sync}). */
  append(record: JournalEntry): void {
    if (!this.alive()) return;
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const existed = existsSync(this.file);
      this.fd = openSync(this.file, "a", 0o600);
      if (!existed) fsyncDir(path.dirname(this.file));
    }
    const full = { ...record, seq: ++this.seq, time: new Date().toISOString() };
    this.buffered.push(`${JSON.stringify(full)}\n`);
    this.written += 1;
    // Fault injection for the crash-safety tests: die right after the Nth record.
    if (this.crashAfter !== undefined && this.written === this.crashAfter) {
      this.write();
      fsyncSync(this.fd);
      process.kill(process.pid, "SIGKILL");
    }
    if (this.buffered.length === 1) setImmediate(() => this.write());
  }

  /**
   * Write the buffered records in one call. Records wait at most one turn of
   * the event loop (and never past a {@link sync}): a process killed meanwhile
   * loses what an OS crash could lose anyway, outcomes that are not yet durable.
   */
  private write(): void {
    if (!this.buffered.length) return;
    const text = this.buffered.join("");
    this.buffered = [];
    if (this.fd !== undefined && this.alive()) writeSync(this.fd, text);
  }

  /**
   * Make every record appended so far durable. Group commit: the fsync runs
   * off the event loop; records appended while one is in flight wait for the
   * next, which covers them all. With many reconcilers in flight (or a
   * zero-latency driver) one fsync covers many intents.
   */
  async sync(): Promise<void> {
    const target = this.written;
    while (this.durable < target) {
      if (this.flushing) {
        // Another caller's flush: it may not cover `target`; a failure is that caller's to report, and ours
        // shows again when we flush ourselves.
        await this.flushing.catch(() => undefined);
        continue;
      }
      this.write();
      const upTo = this.written;
      const fd = this.fd;
      this.flushing = fd !== undefined && this.alive() ? fsyncAsync(fd) : Promise.resolve();
      try {
        await this.flushing;
        this.durable = Math.max(this.durable, upTo);
      } finally {
        this.flushing = undefined;
      }
    }
  }

  /** Append an intent and make it durable before returning. */
  async intent(record: Extract<JournalEntry, { type: "intent" }>): Promise<void> {
    this.append(record);
    await this.sync();
  }

  close(): void {
    this.write();
    const fd = this.fd;
    if (fd !== undefined) {
      if (this.alive()) fsyncSync(fd);
      this.durable = this.written;
      // An fsync still in flight keeps the descriptor until it returns (a reused number would be another file).
      if (this.flushing) void this.flushing.catch(() => undefined).then(() => closeSync(fd));
      else closeSync(fd);
    }
    this.fd = undefined;
  }

  /**
   * Replace the journal, atomically, with `records` (after a checkpoint: a
   * `begin` naming it and the intents still open), or remove it when there
   * are none.
   */
  reset(records: JournalEntry[]): void {
    if (!this.alive()) return;
    this.close();
    if (!records.length) {
      rmSync(this.file, { force: true });
      return;
    }
    const time = new Date().toISOString();
    writeFileAtomic(this.file, records.map((r) => `${JSON.stringify({ ...r, seq: ++this.seq, time })}\n`).join(""), 0o600);
  }

  /** Remove the journal once its effects are all recorded in the state. */
  clear(): void {
    this.reset([]);
  }
}

function lastSeq(file: string): number {
  let max = 0;
  for (const r of readJournal(file)) max = Math.max(max, r.seq);
  return max;
}

/** Every whole record of the journal, in order. A torn last line (crash mid-write) is ignored. */
export function readJournal(file: string): JournalRecord[] {
  if (!existsSync(file)) return [];
  const out: JournalRecord[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as JournalRecord);
    } catch {
      // A torn line is a record that was never completed.
    }
  }
  return out;
}

/** Intents without an outcome among `records`, in journal order. */
export function openIntents(records: JournalRecord[]): PendingIntent[] {
  const open = new Map<string, PendingIntent>();
  for (const rec of records) {
    if (rec.type === "intent") open.set(`${rec.address}\0${rec.action}`, rec);
    else if (rec.type === "outcome") open.delete(`${rec.address}\0${rec.action}`);
  }
  return [...open.values()];
}

/** Intents without an outcome, in journal order. A torn last line (crash mid-write) is ignored. */
export function pendingIntents(file: string): PendingIntent[] {
  return openIntents(readJournal(file));
}
