/**
 * Attribute diffs as JSON Patch (fast-json-patch), turned into per-path
 * changes with before/after values. Attributes hold named collections as
 * objects keyed by name, so the diff is by key, never by index.
 */
import jsonpatch from "fast-json-patch";
import type { AttrChange, Attrs, Json, ResourceKind } from "../resources/types.ts";

function valueAt(doc: Attrs, pointer: string): Json | undefined {
  try {
    return jsonpatch.getValueByPointer(doc, pointer) as Json | undefined;
  } catch {
    return undefined;
  }
}

/** Whether `path` is at or below `prefix`, or above it (a whole object replaced). */
export function underPrefix(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`) || prefix.startsWith(`${path}/`);
}

/** Every changed path between `before` and `after`, sorted by path. */
export function diffAttrs(before: Attrs, after: Attrs, kind?: Pick<ResourceKind, "replaceOn" | "restartOn" | "restartWhen">): AttrChange[] {
  const ops = jsonpatch.compare(before, after);
  const changes: AttrChange[] = ops.map((op) => {
    const change: AttrChange = {
      path: op.path,
      before: op.op === "add" ? undefined : valueAt(before, op.path),
      after: op.op === "remove" ? undefined : valueAt(after, op.path),
      forcesReplacement: false,
    };
    const rule = kind?.replaceOn.find((r) => underPrefix(op.path, r.path) && (!r.when || r.when(change)));
    if (rule) {
      change.forcesReplacement = true;
      change.reason = rule.reason;
    }
    if (kind?.restartOn?.some((p) => underPrefix(op.path, p)) || kind?.restartWhen?.(change, before, after)) change.requiresRestart = true;
    return change;
  });
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
