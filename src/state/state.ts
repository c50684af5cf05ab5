/**
 * The environment's recorded state: `.lago/<env>/state.json`. A format version,
 * a lineage (uuid, fixed for the life of the environment), a serial that grows
 * with every write, and every resource lago created with its attributes,
 * outputs, dependencies and status. Written atomically.
 */
import { existsSync, readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { stringify } from "safe-stable-stringify";
import { StateError } from "../errors.ts";
import { KINDS, type Attrs, type Kind, type RecordedResource } from "../resources/types.ts";
import { writeFileAtomic } from "../util/fs-atomic.ts";
import type { StoredResource } from "./journal.ts";

export const STATE_FORMAT_VERSION = 1;

export interface State {
  formatVersion: number;
  lineage: string;
  serial: number;
  /** sha256 of the init file last applied. */
  initFileSha256: string | null;
  resources: Map<string, RecordedResource>;
}

export function emptyState(): State {
  return { formatVersion: STATE_FORMAT_VERSION, lineage: "", serial: 0, initFileSha256: null, resources: new Map() };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Read the state file; an absent file is an empty state (no lineage yet). */
export function readState(file: string): State {
  if (!existsSync(file)) return emptyState();
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new StateError(`cannot read state ${file}: ${(err as Error).message}`, {
      hint: "the state file is written atomically, so this is damage from outside lago; restore it from a backup",
    });
  }
  if (!isObject(raw) || typeof raw.lineage !== "string" || typeof raw.serial !== "number" || !isObject(raw.resources)) {
    throw new StateError(`state ${file} is not a lago state file`);
  }
  if (raw.format_version !== STATE_FORMAT_VERSION) {
    throw new StateError(`state ${file} has format version ${String(raw.format_version)}; this lago reads version ${STATE_FORMAT_VERSION}`);
  }
  const resources = new Map<string, RecordedResource>();
  for (const [address, r] of Object.entries(raw.resources)) {
    const rec = fromStored(address, r);
    if (!rec) throw new StateError(`state ${file}: resource ${address} is malformed`);
    resources.set(address, rec);
  }
  return {
    formatVersion: STATE_FORMAT_VERSION,
    lineage: raw.lineage,
    serial: raw.serial,
    initFileSha256: typeof raw.init_file_sha256 === "string" ? raw.init_file_sha256 : null,
    resources,
  };
}

/** A recorded resource as the state file and the journal store it. */
export function toStored(r: RecordedResource): StoredResource {
  return { kind: r.kind, attrs: r.attrs, outputs: r.outputs, depends_on: r.dependsOn, status: r.status, ...(r.reason ? { reason: r.reason } : {}), ...(r.unfinished ? { unfinished: r.unfinished } : {}) };
}

/** Back from {@link toStored}; undefined when malformed. */
export function fromStored(address: string, r: unknown): RecordedResource | undefined {
  if (!isObject(r) || !KINDS.includes(r.kind as Kind) || !isObject(r.attrs) || !Array.isArray(r.depends_on)) return undefined;
  const rec: RecordedResource = {
    address,
    kind: r.kind as Kind,
    attrs: r.attrs as Attrs,
    outputs: (isObject(r.outputs) ? r.outputs : {}) as Attrs,
    dependsOn: (r.depends_on as unknown[]).map(String),
    status: r.status === "tainted" ? "tainted" : "ready",
  };
  if (typeof r.reason === "string") rec.reason = r.reason;
  if (typeof r.unfinished === "string") rec.unfinished = r.unfinished;
  return rec;
}

/** Canonical JSON of a state (sorted keys and resources). */
export function serializeState(state: State): string {
  const resources: Record<string, unknown> = {};
  for (const address of [...state.resources.keys()].sort()) {
    const r = state.resources.get(address);
    if (r) resources[address] = toStored(r);
  }
  return `${stringify(
    {
      format_version: STATE_FORMAT_VERSION,
      lineage: state.lineage,
      serial: state.serial,
      init_file_sha256: state.initFileSha256,
      resources,
    },
    null,
    2,
  )}\n`;
}

/**
 * Write the state atomically, bumping the serial and assigning a lineage on
 * the first write. Mutates `state.serial`/`state.lineage`. Does nothing once
 * `alive` returns false (in-process crash simulation).
 */
export function writeState(file: string, state: State, alive: () => boolean = () => true): void {
  if (!alive()) return;
  if (!state.lineage) state.lineage = randomUUID();
  state.serial += 1;
  writeFileAtomic(file, serializeState(state), 0o600);
}
