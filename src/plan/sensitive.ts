/**
 * Secrets in attributes (a root password) never reach a rendered or JSON
 * plan: their values show as `(sensitive)`, like Terraform's. Which
 * attributes are secret is each kind's `sensitive` list of JSON pointers.
 */
import jsonpatch from "fast-json-patch";
import { kindOf } from "../resources/registry.ts";
import type { AttrChange, Attrs, Json, Kind } from "../resources/types.ts";

export const SENSITIVE = "(sensitive)";

function isSensitive(kind: Kind, path: string): boolean {
  return (kindOf(kind).sensitive ?? []).some((p) => path === p || path.startsWith(`${p}/`));
}

/** `attrs` with every sensitive value replaced by `(sensitive)` (a copy; the input is untouched). */
export function maskSensitive(kind: Kind, attrs: Attrs): Attrs {
  const paths = kindOf(kind).sensitive ?? [];
  if (!paths.length) return attrs;
  const copy = structuredClone(attrs);
  for (const p of paths) {
    let value: Json | undefined;
    try {
      value = jsonpatch.getValueByPointer(copy, p) as Json | undefined;
    } catch {
      value = undefined;
    }
    if (value !== undefined && value !== null) jsonpatch.applyOperation(copy, { op: "replace", path: p, value: SENSITIVE });
  }
  return copy;
}

/** Changes with sensitive before/after values masked. */
export function maskChanges(kind: Kind, changes: AttrChange[]): AttrChange[] {
  return changes.map((c) => {
    if (!c.path.startsWith("/")) return c;
    if (isSensitive(kind, c.path)) {
      return { ...c, before: c.before === undefined || c.before === null ? c.before : SENSITIVE, after: c.after === undefined || c.after === null ? c.after : SENSITIVE };
    }
    // A change above a sensitive path (a whole object added or removed) carries it inside.
    const inner = (kindOf(kind).sensitive ?? []).filter((p) => p.startsWith(`${c.path}/`));
    if (!inner.length) return c;
    const mask = (v: Json | undefined): Json | undefined => {
      if (v === undefined || v === null || typeof v !== "object") return v;
      const wrapped = maskSensitive(kind, rebuild(c.path, v));
      return jsonpatch.getValueByPointer(wrapped, c.path) as Json;
    };
    return { ...c, before: mask(c.before), after: mask(c.after) };
  });
}

/** An attrs object holding `value` at `path` (for masking a sub-tree with the kind's pointers). */
function rebuild(path: string, value: Json): Attrs {
  const segments = path.slice(1).split("/");
  const root: Attrs = {};
  let cur: Attrs = root;
  segments.forEach((seg, i) => {
    const key = seg.replaceAll("~1", "/").replaceAll("~0", "~");
    if (i === segments.length - 1) cur[key] = value;
    else {
      const next: Attrs = {};
      cur[key] = next;
      cur = next;
    }
  });
  return root;
}
