/**
 * Reads an init file's text into a plain JSON-like value plus a {@link SourceMap}
 * (JSON pointer → line:col), the way Lago reads it: `json.load` first, and if
 * that fails `yaml.load` with PyYAML's YAML 1.1 rules. The format is chosen by
 * content, never by file name.
 *
 * PyYAML semantics reproduced here (yaml@2 differs on each):
 * - plain scalars resolve with PyYAML's implicit resolvers: `yes`/`no`/`on`/`off`/
 *   `True`/`False` are booleans but `y`/`n` are strings, `010` is octal, `1:20` is
 *   sexagesimal, `1e5` (no dot) is a string, timestamps stay strings;
 * - `<<` merge keys, as a single alias or a list, and several `<<` keys in one
 *   mapping (PyYAML merges them all; a later `<<` overrides an earlier one, keys
 *   written in the mapping override both);
 * - a duplicate key, which PyYAML silently lets win, is reported instead.
 */
import { EVENT_ID, type Event } from "js-yaml";
import { fastEvents, parseTree, scalarOf, type YMap, type YNode, type YScalar } from "./yaml-tree.ts";
import type { Diagnostic, SourcePos } from "../errors.ts";
import { joinPointer } from "./pointer.ts";
import { SourceMap } from "./source-map.ts";

/** Maps a 1-based (line, col) of the text read to the position to report (e.g. in the template it was rendered from). */
export type PositionMapper = (line: number, col: number) => { line: number; col: number };

export interface ReadResult {
  /** The resolved document; `undefined` when it could not be read (syntax errors, alias bomb). */
  value: unknown;
  map: SourceMap;
  /** Syntax and structure problems (bad YAML, duplicate keys, bad merge keys…). */
  diagnostics: Diagnostic[];
  format: "json" | "yaml";
}

const BOOL_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const BOOL_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const NULL = /^(?:~|null|Null|NULL|)$/;
const INT =
  /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/;
const FLOAT =
  /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/;

/**
 * Work budget against alias and merge-key bombs ("billion laughs"): every
 * value produced, every entry a `<<` merge copies and every 64 characters of a
 * string value cost one unit. A file may spend `EXPANSION_BASE` units plus
 * `EXPANSION_PER_BYTE` per byte of its text. A value written out takes at
 * least two bytes (`[0,0,0]`), so a file whose values are mostly written out
 * never comes near the limit, whatever its size, while a bomb is cut short
 * after work linear in its size.
 */
export const EXPANSION_BASE = 100_000;
export const EXPANSION_PER_BYTE = 1;
/** Deepest nesting of values accepted (an init file needs fewer than ten levels). */
export const MAX_DEPTH = 100;

/** {@link Reader.direct}'s answer for a document that needs the general reading. */
const GENERAL: unique symbol = Symbol("general reading");

const TAG = "tag:yaml.org,2002:";

/** `out[key] = v`, also for the key `__proto__` (an own entry, never the prototype). */
function setEntry(out: Record<string, unknown>, key: string, v: unknown): void {
  if (key === "__proto__") Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  else out[key] = v;
}

function signOf(s: string): { sign: number; body: string } {
  if (s.startsWith("-")) return { sign: -1, body: s.slice(1) };
  if (s.startsWith("+")) return { sign: 1, body: s.slice(1) };
  return { sign: 1, body: s };
}

function sexagesimal(body: string): number {
  return body.split(":").reduce((acc, part) => acc * 60 + Number(part), 0);
}

/** PyYAML's `construct_yaml_int`. */
function yaml11Int(text: string): number {
  const { sign, body: raw } = signOf(text.replace(/_/g, ""));
  let n: number;
  if (raw === "0") n = 0;
  else if (raw.startsWith("0b")) n = parseInt(raw.slice(2), 2);
  else if (raw.startsWith("0x")) n = parseInt(raw.slice(2), 16);
  else if (raw.startsWith("0")) n = parseInt(raw.slice(1), 8);
  else if (raw.includes(":")) n = sexagesimal(raw);
  else n = parseInt(raw, 10);
  return sign * n;
}

/** PyYAML's `construct_yaml_float`. */
function yaml11Float(text: string): number {
  const { sign, body: raw } = signOf(text.replace(/_/g, "").toLowerCase());
  if (raw === ".inf") return sign * Infinity;
  if (raw === ".nan") return NaN;
  if (raw.includes(":")) return sign * sexagesimal(raw);
  return sign * Number(raw);
}

interface Entry {
  key: string;
  keyNode: YNode;
  valueNode: YNode;
}

/** Line starts of a text, for offset → line:col. */
class Lines {
  private readonly starts: number[] = [0];

  constructor(text: string) {
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.starts.push(i + 1);
  }

  /** 1-based line and column of `offset`. */
  linePos(offset: number): { line: number; col: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - (this.starts[lo] ?? 0) + 1 };
  }
}

class Reader {
  readonly map: SourceMap;
  diagnostics: Diagnostic[] = [];
  /** Whether {@link value} records positions in {@link map} (see {@link readDocument}). */
  recording = false;
  /** Whether the document has aliases (else no node is reached twice). */
  aliases = true;
  private readonly lines: Lines;
  private readonly json: boolean;
  private readonly active = new Set<YNode>();
  private readonly size: number;
  private readonly limit: number;
  private budget: number;
  /** The flattened entries (merge keys applied) of each mapping, computed once however often it is merged. */
  private readonly flattened = new Map<YMap, Entry[]>();
  private readonly flattening = new Set<YMap>();
  /** Set when the work budget ran out or values nest too deep: the value is then incomplete. */
  exhausted = false;

  private readonly mapPos: PositionMapper | undefined;

  constructor(lines: Lines, file: string, json: boolean, size: number, mapPos: PositionMapper | undefined) {
    this.lines = lines;
    this.mapPos = mapPos;
    this.json = json;
    this.map = new SourceMap(file, (offset) => this.pos(offset));
    this.size = size;
    this.limit = EXPANSION_BASE + EXPANSION_PER_BYTE * size;
    this.budget = this.limit;
  }

  pos(offset: number): SourcePos {
    const { line, col } = this.lines.linePos(offset);
    if (!this.mapPos) return { file: this.map.file, line, col };
    const mapped = this.mapPos(line, col);
    return { file: this.map.file, line: mapped.line, col: mapped.col };
  }

  /** Where `node` starts in the text, or `fallback` (an offset too) for a node written nowhere (an empty value). */
  private nodeOff(node: YNode | null, fallback: number): number {
    return node && node.start >= 0 ? node.start : fallback;
  }

  private report(offset: number, pointer: string, message: string): void {
    this.diagnostics.push({ pos: this.pos(offset), pointer, message });
  }

  /** One pass over the document at `root`, with the whole budget; it keeps no node of the tree after. */
  read(root: YNode): unknown {
    this.budget = this.limit;
    this.exhausted = false;
    try {
      return this.value(root, "", -1, 0, 0);
    } finally {
      this.flattened.clear();
    }
  }

  /** Spends `units` of the work budget; false (reported once) when it is exhausted. */
  private spend(units: number, node: YNode | null, pointer: string, fallback: number): boolean {
    this.budget -= units;
    if (this.budget >= 0) return true;
    if (!this.exhausted) {
      this.exhausted = true;
      this.report(
        this.nodeOff(node, fallback),
        pointer,
        `aliases and merge keys expand this file to more than ${this.limit} values, the most a file of ${this.size} bytes may hold (${EXPANSION_BASE} + ${EXPANSION_PER_BYTE} per byte)`,
      );
    }
    return false;
  }

  /** Follows aliases to the node they name; reports unknown anchors. */
  private deref(node: YNode, pointer: string, at: number): Exclude<YNode, { kind: "alias" }> | undefined {
    if (node.kind !== "alias") return node;
    // An alias always names an anchored node, never another alias.
    const target = node.target;
    if (!target || target.kind === "alias") {
      this.report(this.nodeOff(node, at), pointer, `unknown anchor \`${node.name}\`: no \`&${node.name}\` is defined before this alias`);
      return undefined;
    }
    return target;
  }

  /** Converts a node to a plain value, recording positions under `pointer`, `depth` levels below the root. */
  value(node: YNode, pointer: string, key: number, fallback: number, depth: number): unknown {
    if (this.exhausted || !this.spend(1, node, pointer, fallback)) return null;
    if (depth > MAX_DEPTH) {
      this.exhausted = true;
      this.report(this.nodeOff(node, fallback), pointer, `values nest more than ${MAX_DEPTH} levels deep; an init file needs far fewer`);
      return null;
    }
    const target = this.deref(node, pointer, fallback);
    if (target === undefined) {
      if (this.recording) this.map.setOffsets(pointer, key, this.nodeOff(node, fallback));
      return null;
    }
    const at = this.nodeOff(target, fallback);
    if (this.recording) this.map.setOffsets(pointer, key, at);
    if (this.aliases && this.active.has(target)) {
      this.report(this.nodeOff(node, fallback), pointer, "this alias refers to a node that contains it (a recursive structure), which an init file cannot hold");
      return null;
    }
    if (target.kind === "scalar") {
      const v = this.scalar(target, pointer, at);
      if (typeof v === "string" && v.length >= 64 && !this.spend(v.length >> 6, node, pointer, fallback)) return null;
      return v;
    }
    const tag = target.tag;
    if (tag !== undefined && tag !== "!" && tag !== `${TAG}map` && tag !== `${TAG}seq`) {
      const short = tag.startsWith(TAG) ? `!!${tag.slice(TAG.length)}` : tag;
      this.report(at, pointer, `unsupported tag \`${short}\`: an init file may only use the standard tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)`);
    }
    // Only an alias can lead back into a node being read (a recursive structure).
    if (this.aliases) this.active.add(target);
    try {
      if (target.kind === "map") return this.mapping(target, pointer, at, depth);
      const out: unknown[] = [];
      const items = target.items;
      for (let i = 0; i < items.length && !this.exhausted; i++) {
        const item = items[i];
        if (item) out.push(this.value(item, joinPointer(pointer, i), -1, at, depth + 1));
      }
      return out;
    } finally {
      if (this.aliases) this.active.delete(target);
    }
  }

  /**
   * The value of a document given as js-yaml's `events` of `text`, built in one
   * pass without a tree, or {@link GENERAL} when the document needs {@link read}:
   * anything but one document holding a value, an anchor, alias or tag, a `<<`
   * merge key, a key that is not a scalar, a duplicate key, more values than the
   * budget allows or deeper nesting than {@link MAX_DEPTH}. Where it gives a
   * value, {@link read} of the document's tree gives the same value and no
   * diagnostic (a unit test compares them).
   */
  direct(text: string, events: Event[]): unknown {
    this.budget = this.limit;
    this.exhausted = false;
    if (events.length < 3 || events[0]?.type !== EVENT_ID.DOCUMENT || events[1]?.type === EVENT_ID.POP) return GENERAL;
    const cursor = { events, next: 1 };
    const value = this.directNode(text, cursor, 0);
    if (value === GENERAL || cursor.next !== events.length - 1 || events[cursor.next]?.type !== EVENT_ID.POP) return GENERAL;
    return value;
  }

  /** A scalar as written: a plain one resolved by the document's rules (JSON's or YAML 1.1's), a quoted one as is. */
  private resolved(written: string, plain: boolean): unknown {
    if (!plain) return written;
    return this.json ? this.jsonPlain(written) : this.yaml11Plain(written);
  }

  private directNode(text: string, cursor: { events: Event[]; next: number }, depth: number): unknown {
    const ev = cursor.events[cursor.next++];
    if (ev === undefined || depth > MAX_DEPTH || --this.budget < 0) return GENERAL;
    if (ev.type === EVENT_ID.SCALAR) {
      if (ev.anchorStart >= 0 || ev.tagStart >= 0) return GENERAL;
      const { value: written, plain } = scalarOf(text, ev);
      const v = this.resolved(written, plain);
      if (typeof v === "string" && v.length >= 64 && (this.budget -= v.length >> 6) < 0) return GENERAL;
      return v;
    }
    if (ev.type !== EVENT_ID.SEQUENCE && ev.type !== EVENT_ID.MAPPING) return GENERAL;
    if (ev.anchorStart >= 0 || ev.tagStart >= 0) return GENERAL;
    const events = cursor.events;
    if (ev.type === EVENT_ID.SEQUENCE) {
      const out: unknown[] = [];
      while (events[cursor.next]?.type !== EVENT_ID.POP) {
        const v = this.directNode(text, cursor, depth + 1);
        if (v === GENERAL) return GENERAL;
        out.push(v);
      }
      cursor.next++;
      return out;
    }
    const out: Record<string, unknown> = {};
    for (let k = events[cursor.next]; k?.type !== EVENT_ID.POP; k = events[cursor.next]) {
      if (k?.type !== EVENT_ID.SCALAR || k.anchorStart >= 0 || k.tagStart >= 0) return GENERAL;
      cursor.next++;
      const { value: written, plain } = scalarOf(text, k);
      if (plain && !this.json && written === "<<") return GENERAL;
      const resolved = this.resolved(written, plain);
      const key = resolved === null ? "null" : String(resolved);
      if (Object.hasOwn(out, key)) return GENERAL;
      const v = this.directNode(text, cursor, depth + 1);
      if (v === GENERAL) return GENERAL;
      setEntry(out, key, v);
    }
    cursor.next++;
    return out;
  }

  private scalar(node: YScalar, pointer: string, at: number): unknown {
    const text = node.value;
    const tag = node.tag;
    if (tag !== undefined && tag !== "!") {
      return this.tagged(tag, text, pointer, at);
    }
    return this.resolved(text, node.plain && tag !== "!");
  }

  private jsonPlain(text: string): unknown {
    if (text === "true") return true;
    if (text === "false") return false;
    if (text === "null") return null;
    if (JSON_NUMBER.test(text)) return Number(text);
    return text;
  }

  /** Plain scalars resolved so far: keys and values repeat a lot in an init file. */
  private readonly plainCache = new Map<string, unknown>();

  private yaml11Plain(text: string): unknown {
    if (text.length > 32) return this.resolveYaml11(text);
    const known = this.plainCache.get(text);
    if (known !== undefined || this.plainCache.has(text)) return known;
    const v = this.resolveYaml11(text);
    this.plainCache.set(text, v);
    return v;
  }

  private resolveYaml11(text: string): unknown {
    if (BOOL_TRUE.test(text)) return true;
    if (BOOL_FALSE.test(text)) return false;
    if (FLOAT.test(text)) return yaml11Float(text);
    if (INT.test(text)) return yaml11Int(text);
    if (NULL.test(text)) return null;
    return text;
  }

  private tagged(tag: string, text: string, pointer: string, at: number): unknown {
    const short = tag.startsWith(TAG) ? `!!${tag.slice(TAG.length)}` : tag;
    switch (tag) {
      case `${TAG}str`:
      case `${TAG}binary`:
      case `${TAG}timestamp`:
        return text;
      case `${TAG}null`:
        return null;
      case `${TAG}bool`:
        if (BOOL_TRUE.test(text)) return true;
        if (BOOL_FALSE.test(text)) return false;
        break;
      case `${TAG}int`:
        if (INT.test(text)) return yaml11Int(text);
        break;
      case `${TAG}float`:
        if (FLOAT.test(text)) return yaml11Float(text);
        if (INT.test(text)) return yaml11Int(text);
        break;
      default:
        this.report(at, pointer, `unsupported tag \`${short}\`: an init file may only use the standard tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)`);
        return text;
    }
    this.report(at, pointer, `\`${text}\` is not a valid \`${short}\``);
    return text;
  }

  private keyText(keyNode: YNode, pointer: string, fallback: number): string | undefined {
    const target = this.deref(keyNode, pointer, fallback);
    if (target && target.kind === "scalar") {
      const v = this.scalar(target, pointer, this.nodeOff(target, fallback));
      return v === null ? "null" : String(v);
    }
    this.report(this.nodeOff(keyNode, fallback), pointer, "mapping keys must be plain scalars (strings or numbers)");
    return undefined;
  }

  private isMergeKey(keyNode: YNode): boolean {
    return !this.json && keyNode.kind === "scalar" && keyNode.plain && keyNode.value === "<<" && keyNode.tag === undefined;
  }

  /**
   * PyYAML's `flatten_mapping` then `construct_mapping`: each key's winning
   * entry, in the order keys first appear among the merged entries (in merge
   * order) followed by the mapping's own. Computed once per mapping node, so a
   * mapping merged many times (a merge-key bomb) costs its size once, plus one
   * budget unit per entry each merge copies.
   */
  private entries(node: YMap, pointer: string, at: number): Entry[] {
    const known = this.flattened.get(node);
    if (known) return known;
    // Only an alias can lead a merge back into the mapping holding it.
    if (this.aliases) {
      if (this.flattening.has(node)) {
        this.report(at, pointer, "this `<<` merge key refers to a mapping that contains it");
        return [];
      }
      this.flattening.add(node);
    }
    let out: Entry[];
    try {
      const own: Entry[] = [];
      const firstSeen = new Map<string, YNode>();
      let merged: Map<string, Entry> | undefined;
      const items = node.items;
      for (let i = 0; i < items.length; i++) {
        if (this.exhausted) break;
        const [keyNode, valueNode] = items[i] as [YNode, YNode];
        if (this.isMergeKey(keyNode)) {
          merged ??= new Map();
          this.merge(merged, valueNode, pointer, this.nodeOff(keyNode, at));
          continue;
        }
        const key = this.keyText(keyNode, pointer, at);
        if (key === undefined) continue;
        const previous = firstSeen.get(key);
        if (previous) {
          const p = this.pos(this.nodeOff(previous, at));
          this.report(
            this.nodeOff(keyNode, at),
            joinPointer(pointer, key),
            `duplicate key \`${key}\` (already set at line ${p.line}, column ${p.col}); PyYAML would silently keep only the last one`,
          );
          continue;
        }
        firstSeen.set(key, keyNode);
        own.push({ key, keyNode, valueNode });
      }
      // Without merge keys, the mapping's own entries (their keys are unique) are the result.
      if (merged) {
        for (const entry of own) merged.set(entry.key, entry);
        out = [...merged.values()];
      } else {
        out = own;
      }
    } finally {
      if (this.aliases) this.flattening.delete(node);
    }
    // Without aliases no mapping is read twice: nothing to remember.
    if (this.aliases) this.flattened.set(node, out);
    return out;
  }

  /** Applies one `<<` key's value (an alias to a mapping, or a list of them) to `into`. */
  private merge(into: Map<string, Entry>, valueNode: YNode, pointer: string, at: number): void {
    const target = this.deref(valueNode, pointer, at);
    if (target === undefined) return;
    const bad = (): void => {
      this.report(this.nodeOff(valueNode, at), pointer, "a `<<` merge key takes an alias to a mapping (`<<: *settings`) or a list of them (`<<: [*a, *b]`)");
    };
    const groups: Entry[][] = [];
    if (target.kind === "map") {
      groups.push(this.entries(target, pointer, this.nodeOff(target, at)));
    } else if (target.kind === "seq") {
      for (const item of target.items) {
        const sub = this.deref(item, pointer, at);
        if (sub === undefined) continue;
        if (sub.kind !== "map") return bad();
        groups.push(this.entries(sub, pointer, this.nodeOff(sub, at)));
      }
      // PyYAML: in `<<: [*a, *b]`, keys from `a` win over keys from `b`.
      groups.reverse();
    } else {
      return bad();
    }
    for (const group of groups) {
      if (!this.spend(group.length, valueNode, pointer, at)) return;
      for (const entry of group) into.set(entry.key, entry);
    }
  }

  private mapping(node: YMap, pointer: string, at: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const entries = this.entries(node, pointer, at);
    for (let i = 0; i < entries.length; i++) {
      if (this.exhausted) break;
      const { key, keyNode, valueNode } = entries[i] as Entry;
      const keyPos = this.nodeOff(keyNode, at);
      const v = this.value(valueNode, joinPointer(pointer, key), keyPos, keyPos, depth + 1);
      setEntry(out, key, v);
    }
    return out;
  }
}

function looksLikeJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses `text` (from `file`, used in positions). Never throws: problems are
 * returned as diagnostics; `value` is undefined when the document could not be
 * read (syntax errors, aliases expanding beyond reason). `mapPos` translates
 * every position reported (diagnostics and the source map), e.g. back to the
 * template `text` was rendered from. A document without anchors, aliases, tags,
 * merge keys or duplicate keys is read straight from the parser's events;
 * `direct: false` reads it through its tree as every other document (the same
 * value: tests compare the two).
 */
export function readDocument(text: string, file: string, mapPos?: PositionMapper, options: { direct?: boolean } = {}): ReadResult {
  const source = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const json = looksLikeJson(source);
  const lines = new Lines(source);
  const reader = new Reader(lines, file, json, source.length, mapPos);
  const format = json ? "json" : "yaml";
  // Positions are recorded by a second pass over the document's tree (parsed again), only if
  // something asks for one (a diagnostic, prototypes): no tree is kept alive for it meanwhile.
  const recordPositions = (): void => {
    const again = parseTree(source, MAX_DEPTH);
    if (!again.ok || !again.root) return;
    reader.aliases = again.hasAliases;
    reader.diagnostics = [];
    reader.recording = true;
    reader.read(again.root);
  };
  const events = fastEvents(source, MAX_DEPTH);
  if (events && options.direct !== false) {
    const value = reader.direct(source, events);
    if (value !== GENERAL) {
      reader.map.deferTo(recordPositions);
      return { value, map: reader.map, diagnostics: [], format };
    }
  }
  const tree = parseTree(source, MAX_DEPTH, events ?? null);
  if (!tree.ok) {
    const message = tree.multipleDocuments
      ? "syntax error: the file holds several YAML documents (separated by `---`); an init file is a single document"
      : /nesting depth/i.test(tree.message)
        ? `values nest more than ${MAX_DEPTH} levels deep; an init file needs far fewer`
        : `syntax error: ${tree.message}`;
    return { value: undefined, map: reader.map, diagnostics: [{ pos: reader.pos(tree.offset), pointer: "", message }], format };
  }
  if (!tree.root) {
    reader.map.setOffsets("", -1, 0);
    return { value: null, map: reader.map, diagnostics: [], format };
  }
  reader.aliases = tree.hasAliases;
  const value = reader.read(tree.root);
  const diagnostics = reader.diagnostics;
  reader.map.deferTo(recordPositions);
  return { value: reader.exhausted ? undefined : value, map: reader.map, diagnostics, format };
}
