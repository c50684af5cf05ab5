/**
 * Where each value of the resolved (aliases expanded, merge keys applied)
 * document is written in the source. A value reached through an alias or a
 * `<<` merge key maps to the place it is written, i.e. inside the anchored node.
 */
import type { SourcePos } from "../errors.ts";
import { parentPointer } from "./pointer.ts";

export interface Location {
  /** Where the key naming this value is written (mapping entries only). */
  key: SourcePos | undefined;
  /** Where the value starts. */
  value: SourcePos;
}

/** Offsets into the text (key, value; -1 for no key), turned into positions only when asked for. */
type Offsets = [number, number];

export class SourceMap {
  readonly file: string;
  private readonly entries = new Map<string, Location | Offsets>();
  private readonly position: ((offset: number) => SourcePos) | undefined;
  private filler: (() => void) | undefined;

  /** @param position turns text offsets recorded with {@link setOffsets} into positions. */
  constructor(file: string, position?: (offset: number) => SourcePos) {
    this.file = file;
    this.position = position;
  }

  /**
   * Defers recording: `fill` records every location (with {@link setOffsets})
   * the first time one is needed. Reading a large valid file never needs them.
   */
  deferTo(fill: () => void): void {
    this.filler = fill;
  }

  private fill(): void {
    const fill = this.filler;
    if (!fill) return;
    this.filler = undefined;
    fill();
  }

  set(pointer: string, location: Location): void {
    this.fill();
    this.entries.set(pointer, location);
  }

  /**
   * Records where the value at `pointer` (and its key, `-1` for none) starts,
   * as text offsets: reading a large file records one per value, and most are
   * never looked up, so positions are computed on demand.
   */
  setOffsets(pointer: string, key: number, value: number): void {
    this.entries.set(pointer, [key, value]);
  }

  get(pointer: string): Location | undefined {
    this.fill();
    const found = this.entries.get(pointer);
    if (!Array.isArray(found)) return found;
    const at = this.position ?? ((): SourcePos => ({ file: this.file, line: 1, col: 1 }));
    const location = { key: found[0] < 0 ? undefined : at(found[0]), value: at(found[1]) };
    this.entries.set(pointer, location);
    return location;
  }

  /**
   * Position of the value at `pointer`; for a pointer that does not exist
   * (a missing key), the position of the nearest existing parent.
   */
  locate(pointer: string): SourcePos {
    let p: string | undefined = pointer;
    while (p !== undefined) {
      const found = this.get(p);
      if (found) return found.value;
      p = parentPointer(p);
    }
    return { file: this.file, line: 1, col: 1 };
  }

  /** Position of the key naming the value at `pointer`, else of the value (see {@link locate}). */
  locateKey(pointer: string): SourcePos {
    return this.get(pointer)?.key ?? this.locate(pointer);
  }

  /**
   * Makes every location under `from` also known under `to` (used when a
   * prototype's attributes are copied into a domain): `from/x/y` → `to/x/y`.
   * Existing locations under `to` are kept.
   */
  alias(from: string, to: string): void {
    this.fill();
    const additions: Array<[string, Location | Offsets]> = [];
    for (const [pointer, location] of this.entries) {
      if (pointer === from || pointer.startsWith(`${from}/`)) {
        const target = to + pointer.slice(from.length);
        if (!this.entries.has(target)) additions.push([target, location]);
      }
    }
    for (const [pointer, location] of additions) this.entries.set(pointer, location);
  }
}
