/**
 * JSON pointers (RFC 6901) into the raw init-file document, and human labels
 * for them (`domains.vm01.disks[0].size`) used in diagnostics.
 */
import { isRecord } from "../util/read.ts";

/** Escapes one reference token (`~` → `~0`, `/` → `~1`). */
export function escapeSegment(segment: string): string {
  if (!segment.includes("~") && !segment.includes("/")) return segment;
  return segment.replace(/~/g, "~0").replace(/\//g, "~1");
}

export function unescapeSegment(segment: string): string {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

/** Appends one segment (a key or an array index) to a pointer. */
export function joinPointer(base: string, segment: string | number): string {
  return `${base}/${escapeSegment(String(segment))}`;
}

/** Splits a pointer into its unescaped segments; `""` (the whole document) has none. */
export function splitPointer(pointer: string): string[] {
  if (pointer === "") return [];
  return pointer.slice(1).split("/").map(unescapeSegment);
}

/** The pointer of the parent value, or undefined for the document itself. */
export function parentPointer(pointer: string): string | undefined {
  if (pointer === "") return undefined;
  return pointer.slice(0, pointer.lastIndexOf("/"));
}

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * A readable path for a pointer, resolved against the document so that array
 * indexes print as `[0]`: `/domains/foreman.example.com/nics/0/net` →
 * `domains["foreman.example.com"].nics[0].net`. The document itself is `(top level)`.
 */
export function pointerLabel(pointer: string, root: unknown): string {
  let out = "";
  let current: unknown = root;
  for (const segment of splitPointer(pointer)) {
    if (Array.isArray(current) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      out += `[${segment}]`;
      current = current[Number(segment)];
      continue;
    }
    out += BARE_KEY.test(segment) ? (out === "" ? segment : `.${segment}`) : `[${JSON.stringify(segment)}]`;
    current = isRecord(current) ? current[segment] : undefined;
  }
  return out === "" ? "(top level)" : out;
}

export { isRecord };
