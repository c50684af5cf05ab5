/**
 * The apply journal: append-only, one JSON record a line, fsynced. An intent is
 * written before every reconciler call and an outcome after it, so that after a
 * crash the next run knows which calls may have half-happened.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import type { Attrs, Kind } from "../resources/types.ts";
import { fsyncDir } from "../util/fs-atomic.ts";

export type JournalAction = "create" | "update" | "delete";

export type JournalRecord =
  | { type: "intent"; seq: number; time: string; address: string; kind: Kind; action: JournalAction; attrs: Attrs; dependsOn: string[] }
  | { type: "outcome"; seq: number; time: string; address: string; action: JournalAction; ok: boolean };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type JournalEntry = DistributiveOmit<JournalRecord, "seq" | "time">;

/** An intent with no outcome: the call may or may not have happened. */
export type PendingIntent = Extract<JournalRecord, { type: "intent" }>;

export class Journal {
  private fd: number | undefined;
  private seq = 0;
  private written = 0;
  private readonly crashAfter: number | undefined;

  constructor(private readonly file: string) {
    const crash = process.env.LAGO_TEST_CRASH_AFTER_JOURNAL;
    this.crashAfter = crash && /^\d+$/.test(crash) ? Number(crash) : undefined;
  }

  /** Append a record and fsync it before returning. */
  append(record: JournalEntry): void {
    if (this.fd === undefined) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const existed = existsSync(this.file);
      this.fd = openSync(this.file, "a", 0o600);
      if (!existed) fsyncDir(path.dirname(this.file));
    }
    const full = { ...record, seq: ++this.seq, time: new Date().toISOString() };
    writeSync(this.fd, `${JSON.stringify(full)}\n`);
    fsyncSync(this.fd);
    this.written += 1;
    // Fault injection for the crash-safety tests: die right after the Nth record.
    if (this.crashAfter !== undefined && this.written === this.crashAfter) process.kill(process.pid, "SIGKILL");
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Remove the journal once its effects are all recorded in the state. */
  clear(): void {
    this.close();
    rmSync(this.file, { force: true });
  }
}

/** Intents without an outcome, in journal order. A torn last line (crash mid-write) is ignored. */
export function pendingIntents(file: string): PendingIntent[] {
  if (!existsSync(file)) return [];
  const open = new Map<string, PendingIntent>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let rec: JournalRecord;
    try {
      rec = JSON.parse(line) as JournalRecord;
    } catch {
      continue;
    }
    const key = `${rec.address}\0${rec.action}`;
    if (rec.type === "intent") open.set(key, rec);
    else open.delete(key);
  }
  return [...open.values()];
}
