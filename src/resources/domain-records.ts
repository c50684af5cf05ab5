/**
 * What the everyday verbs record on a domain in the state, outside plan and
 * apply: that the user stopped it on purpose (`lago stop`/`shutdown`), and
 * its snapshots (`lago snapshot`). Kept in the domain's outputs, which the
 * reconcilers carry over; read by the compiler and the planner.
 */
import type { Attrs, Json } from "./types.ts";

/** Output key: `true` while the VM is stopped because the user asked for it. */
export const STOPPED_ON_PURPOSE = "stopped_on_purpose";

/** Output key: the VM's snapshots, by name. */
export const SNAPSHOTS = "snapshots";

/** A snapshot as the state records it. */
export interface SnapshotRecord {
  /** ISO 8601 time it was taken. */
  created: string;
  /** Whether the VM was running (memory saved with it) or shut off. */
  state: "running" | "shut off";
}

/** True when the user stopped the VM on purpose: plans keep it stopped. */
export function isStoppedOnPurpose(domain: { outputs: Attrs } | undefined): boolean {
  return domain?.outputs[STOPPED_ON_PURPOSE] === true;
}

/** The snapshots recorded on a domain, by name (sorted). */
export function recordedSnapshots(domain: { outputs: Attrs } | undefined): Map<string, SnapshotRecord> {
  const raw = domain?.outputs[SNAPSHOTS];
  const out = new Map<string, SnapshotRecord>();
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return out;
  for (const name of Object.keys(raw).sort()) {
    const v = raw[name];
    if (!v || typeof v !== "object" || Array.isArray(v)) continue;
    out.set(name, { created: typeof v.created === "string" ? v.created : "", state: v.state === "running" ? "running" : "shut off" });
  }
  return out;
}

/** The JSON to store for `snapshots`. */
export function snapshotsJson(snapshots: Map<string, SnapshotRecord>): Json {
  const out: { [k: string]: Json } = {};
  for (const [name, s] of [...snapshots].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[name] = { created: s.created, state: s.state };
  return out;
}
