/**
 * Collects diagnostics while validating an init file: every problem is
 * recorded (never thrown), identical ones (e.g. an error inside an anchor that
 * several domains reuse) are kept once, and the result is sorted by position.
 */
import type { Diagnostic, SourcePos } from "../errors.ts";
import type { SourceMap } from "./source-map.ts";

export class DiagnosticSink {
  private readonly items: Diagnostic[] = [];
  private readonly seen = new Set<string>();
  private readonly map: SourceMap;

  constructor(map: SourceMap) {
    this.map = map;
  }

  /** A problem with the value at `pointer` (or with its nearest existing parent if it is missing). */
  at(pointer: string, message: string): void {
    this.add({ pos: this.map.locate(pointer), pointer, message });
  }

  /** A problem with the key naming the value at `pointer` (unknown, duplicate or unsafe key). */
  atKey(pointer: string, message: string): void {
    this.add({ pos: this.map.locateKey(pointer), pointer, message });
  }

  /** A problem at an explicit position (syntax errors). */
  atPos(pos: SourcePos, pointer: string, message: string): void {
    this.add({ pos, pointer, message });
  }

  add(d: Diagnostic): void {
    const id = `${d.pos.line}:${d.pos.col}:${d.message}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.items.push(d);
  }

  get size(): number {
    return this.items.length;
  }

  /** All diagnostics, ordered by line, column, then message. */
  sorted(): Diagnostic[] {
    return [...this.items].sort(
      (a, b) =>
        a.pos.line - b.pos.line ||
        a.pos.col - b.pos.col ||
        (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
    );
  }
}
