/**
 * The durable state of an environment: the last checkpoint (state.json) plus
 * the journal replayed on top of it. Appending a record costs a write (and,
 * for intents, a shared fsync); rewriting the whole state file happens only
 * at checkpoints, so an apply writes O(resources) bytes, not O(resources²).
 */
import { fromStored, readState, toStored, writeState, type State } from "./state.ts";
import { Journal, openIntents, readJournal, type JournalAction, type JournalEntry, type JournalRecord, type PendingIntent } from "./journal.ts";
import type { Attrs, Kind, RecordedResource } from "../resources/types.ts";

export interface StateFiles {
  state: string;
  journal: string;
}

export interface LoadedState {
  state: State;
  /** Intents of an interrupted run: they may or may not have happened. */
  pending: PendingIntent[];
  /** A journal was found: a run did not finish (it crashed or was killed). */
  interrupted: boolean;
}

/** Apply one journal record to `state` (in memory). */
function applyRecord(state: State, rec: JournalRecord): void {
  if (rec.type === "set" || (rec.type === "outcome" && rec.resource !== undefined)) {
    const resource = rec.resource ?? null;
    if (resource === null) state.resources.delete(rec.address);
    else {
      const r = fromStored(rec.address, resource);
      if (r) state.resources.set(rec.address, r);
    }
  } else if (rec.type === "meta") state.initFileSha256 = rec.initFileSha256;
}

/**
 * The state as it is: the checkpoint, plus the journal's records when the
 * journal continues that checkpoint (a journal left behind by a crash after
 * a newer checkpoint was written holds nothing new but its open intents).
 */
export function loadState(files: StateFiles): LoadedState {
  const state = readState(files.state);
  const records = readJournal(files.journal);
  if (!records.length) return { state, pending: [], interrupted: false };
  const begin = records[0]?.type === "begin" ? records[0] : undefined;
  if (begin && begin.lineage === state.lineage && begin.serial === state.serial) {
    for (const rec of records) applyRecord(state, rec);
  }
  return { state, pending: openIntents(records), interrupted: true };
}

export interface WriterOptions {
  /** Writes are dropped once this returns false (in-process crash simulation). */
  alive?: (() => boolean) | undefined;
  /** Checkpoint after this many journal records (default 4,000; at least twice the state's resources)… */
  checkpointRecords?: number | undefined;
  /** …or after this long (default 10 s), once a quarter of them are there. */
  checkpointMs?: number | undefined;
}

/**
 * Records changes to a state as they happen: in memory at once, durably in
 * the journal, and in the state file at checkpoints. One writer per apply.
 */
export class StateWriter {
  private readonly journal: Journal;
  private readonly alive: () => boolean;
  private readonly open = new Map<string, PendingIntent>();
  private records = 0;
  private lastCheckpoint = Date.now();
  private readonly checkpointRecords: number;
  private readonly checkpointMs: number;

  constructor(
    private readonly files: StateFiles,
    readonly state: State,
    options: WriterOptions = {},
  ) {
    this.alive = options.alive ?? (() => true);
    this.journal = new Journal(files.journal, { alive: this.alive });
    this.checkpointRecords = options.checkpointRecords ?? 4000;
    this.checkpointMs = options.checkpointMs ?? 10_000;
  }

  /**
   * Start recording: the state as it is in memory becomes a checkpoint when
   * it differs from the file (a recovered picture, an interrupted journal),
   * and the journal continues from it.
   */
  begin(options: { checkpoint: boolean }): void {
    if (options.checkpoint) this.checkpoint();
    else if (!this.journal.exists()) this.journal.append(this.beginRecord());
  }

  private beginRecord(): JournalEntry {
    return { type: "begin", lineage: this.state.lineage, serial: this.state.serial };
  }

  /** Record the intent of a reconciler call; durable when this resolves. */
  async intent(address: string, kind: Kind, action: JournalAction, attrs: Attrs, dependsOn: string[]): Promise<void> {
    const entry = { type: "intent" as const, address, kind, action, attrs, dependsOn };
    this.open.set(`${address}\0${action}`, { ...entry, seq: 0, time: "" });
    this.count();
    await this.journal.intent(entry);
  }

  /**
   * Record a call's outcome: `resource` is the resource as it must now be
   * recorded (null: gone), or undefined when nothing changed (a failure).
   */
  outcome(address: string, action: JournalAction, ok: boolean, resource: RecordedResource | null | undefined): void {
    this.open.delete(`${address}\0${action}`);
    if (resource === null) this.state.resources.delete(address);
    else if (resource) this.state.resources.set(address, resource);
    this.journal.append({ type: "outcome", address, action, ok, ...(resource === undefined ? {} : { resource: resource && toStored(resource) }) });
    this.count();
  }

  /** Record a change without a reconciler call (refreshed attributes, drift). */
  set(address: string, resource: RecordedResource | null): void {
    if (resource === null) this.state.resources.delete(address);
    else this.state.resources.set(address, resource);
    this.journal.append({ type: "set", address, resource: resource && toStored(resource) });
    this.count();
  }

  meta(initFileSha256: string | null): void {
    if (this.state.initFileSha256 === initFileSha256) return;
    this.state.initFileSha256 = initFileSha256;
    this.journal.append({ type: "meta", initFileSha256 });
    this.count();
  }

  /**
   * A checkpoint rewrites the whole state: it waits for at least twice as many records as the state has
   * resources, so that checkpoints cost O(1) per record however big the environment (10,000 domains
   * checkpointed every 4,000 records or 10 s rewrote their state a dozen times per apply).
   */
  private count(): void {
    this.records += 1;
    const due = Math.max(this.checkpointRecords, 2 * this.state.resources.size);
    if (this.records >= due || (this.records >= due / 4 && Date.now() - this.lastCheckpoint >= this.checkpointMs)) this.checkpoint();
  }

  /** Write the state file and restart the journal from it, keeping the intents still open. */
  checkpoint(): void {
    writeState(this.files.state, this.state, this.alive);
    const open = [...this.open.values()].map(({ seq: _seq, time: _time, ...rest }) => rest);
    this.journal.reset([this.beginRecord(), ...open]);
    this.records = 0;
    this.lastCheckpoint = Date.now();
  }

  /** The run is over: a last checkpoint; the journal keeps only intents still open (if any). */
  finish(): void {
    writeState(this.files.state, this.state, this.alive);
    const open = [...this.open.values()].map(({ seq: _seq, time: _time, ...rest }) => rest);
    this.journal.reset(open.length ? [this.beginRecord(), ...open] : []);
  }

  /** Give up without a checkpoint (the journal stays as written, for the next run). */
  close(): void {
    this.journal.close();
  }
}
