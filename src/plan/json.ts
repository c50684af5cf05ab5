/** The machine-readable plan (`lago plan --json`), described by schemas/plan.schema.json. Pure. */
import type { Plan } from "./plan.ts";
import { maskChanges } from "./sensitive.ts";

export function planToJson(plan: Plan): Record<string, unknown> {
  return {
    format_version: plan.formatVersion,
    lineage: plan.lineage,
    serial: plan.serial,
    init_file_sha256: plan.initFileSha256,
    summary: plan.summary,
    resource_changes: plan.resourceChanges.map((c) => ({
      address: c.address,
      kind: c.kind,
      action: c.action,
      depends_on: c.dependsOn,
      changes: maskChanges(c.kind, c.changes).map((x) => ({
        path: x.path,
        before: x.before ?? null,
        after: x.after ?? null,
        forces_replacement: x.forcesReplacement,
        ...(x.reason ? { reason: x.reason } : {}),
        ...(x.requiresRestart ? { requires_restart: true } : {}),
      })),
      replace_reasons: c.replaceReasons,
      requires_restart: c.requiresRestart,
      restart: c.restart,
      ...(c.disrupts ? { disrupts: c.disrupts } : {}),
      releases: c.releases,
      ...(c.note ? { note: c.note } : {}),
    })),
    drift: plan.drift.map((d) => ({
      address: d.address,
      kind: d.kind,
      type: d.type,
      changes: maskChanges(d.kind, d.changes).map((x) => ({ path: x.path, before: x.before ?? null, after: x.after ?? null })),
      ...(d.reason ? { reason: d.reason } : {}),
    })),
    pending_restarts: plan.pendingRestarts,
    notices: plan.notices,
    // Present only when there is something to say, so plans of environments without them stay as they were.
    ...(plan.stopped?.length ? { stopped: plan.stopped } : {}),
    ...(plan.snapshotsLost?.length ? { snapshots_lost: plan.snapshotsLost.map((l) => ({ address: l.address, snapshots: l.snapshots })) } : {}),
  };
}
