/**
 * A YAML document as a small tree of nodes with source offsets, built from
 * js-yaml's event stream (`parseEvents`, offsets into the text, no values
 * constructed). Nothing is resolved here: scalars keep their text and style,
 * aliases their anchor name and target, tags their full name; `read-document.ts`
 * applies PyYAML's rules on top. js-yaml's parser is several times faster than
 * the `yaml` package's on large files, which decides how fast `lago plan` is.
 *
 * The two parsers disagree on some malformed YAML, where the `yaml` package
 * agrees with PyYAML (Lago's parser): tabs used as indentation, which js-yaml
 * accepts, and which node gets a tag or anchor written before a mapping's
 * first key. So js-yaml reads a file only when it has no tab, `&`, `*` or `!`
 * character (the large generated files the speed matters for have none) and
 * finds no error; otherwise the `yaml` package reads it (its error messages
 * are also the more helpful ones). Both give the same tree (a property test
 * checks it). Measured against PyYAML on 6,000 random and mutated files,
 * js-yaml still accepts about one in 3,000 that PyYAML rejects (e.g. `: -`);
 * such a file is read as js-yaml reads it, and checked like any other.
 */
import { EVENT_ID, SCALAR_STYLE, getScalarValue, parseEvents, type Event, type ScalarEvent } from "js-yaml";
import type { Node as YamlNode } from "yaml";
import { yamlPackage } from "./yaml-package.ts";

const YAML_TAG = "tag:yaml.org,2002:";

interface Props {
  /** Offset where the node starts (its indicator or first character), -1 for an empty scalar. */
  start: number;
  anchor: string | undefined;
  /** The full tag (`tag:yaml.org,2002:int` for `!!int`, `!` for the non-specific tag), if written. */
  tag: string | undefined;
}

export interface YScalar extends Props {
  kind: "scalar";
  value: string;
  /** Plain (unquoted, not a block scalar): the only style PyYAML's implicit resolvers apply to. */
  plain: boolean;
  /** Written as nothing at all (`key:`), which reads as null. */
  empty: boolean;
}

export interface YMap extends Props {
  kind: "map";
  items: Array<[YNode, YNode]>;
}

export interface YSeq extends Props {
  kind: "seq";
  items: YNode[];
}

export interface YAlias {
  kind: "alias";
  start: number;
  name: string;
  /** The node of the last `&name` before this alias, if any. */
  target: YNode | undefined;
}

export type YNode = YScalar | YMap | YSeq | YAlias;

export type TreeResult =
  | { ok: true; root: YNode | undefined; hasAliases: boolean }
  | { ok: false; offset: number; message: string; multipleDocuments: boolean };

function tagName(raw: string): string {
  if (raw === "!") return "!";
  if (raw.startsWith("!<") && raw.endsWith(">")) return raw.slice(2, -1);
  if (raw.startsWith("!!")) return YAML_TAG + raw.slice(2);
  return raw;
}

/** Where a block scalar's `|` or `>` indicator is, searching back from its content. */
function blockIndicator(text: string, contentStart: number): number {
  for (let i = contentStart - 1; i >= 0; i--) {
    const c = text[i];
    if (c === "|" || c === ">") return i;
  }
  return contentStart;
}

function firstStart(node: YNode): number {
  return node.start >= 0 ? node.start : 0;
}

/**
 * Parses `text` into a tree (see the module comment for which parser). Never
 * throws: a syntax error comes back with its offset and the parser's reason.
 * `maxDepth` bounds collection nesting.
 */
export function parseTree(text: string, maxDepth: number, known?: Event[] | null): TreeResult {
  const events = known === undefined ? fastEvents(text, maxDepth) : known;
  if (events) {
    const fast = treeFromEvents(text, events);
    if (fast.ok) return fast;
  }
  return parseWithYamlPackage(text);
}

/**
 * js-yaml's event stream of `text` when js-yaml may read it ({@link fastPathApplies})
 * and finds no syntax error in it; otherwise undefined. {@link parseTree} builds its
 * tree from these events when they are given (`null`: js-yaml cannot read the text).
 */
export function fastEvents(text: string, maxDepth: number): Event[] | undefined {
  if (!fastPathApplies(text)) return undefined;
  try {
    return parseEvents(text, { maxDepth });
  } catch {
    return undefined;
  }
}

/** The text of a scalar event (`""` for an empty one) and whether it is plain (unquoted, not a block). */
export function scalarOf(text: string, ev: ScalarEvent): { value: string; plain: boolean } {
  return { value: ev.valueStart < 0 ? "" : getScalarValue(text, ev), plain: ev.style === SCALAR_STYLE.PLAIN };
}

/** Whether js-yaml may read `text` (see the module comment). Pure. */
export function fastPathApplies(text: string): boolean {
  return !/[\t&*!]/.test(text);
}

/** The `yaml` package's reading, as a tree. */
export function parseWithYamlPackage(text: string): TreeResult {
  const { isAlias, isMap, isPair, isScalar, isSeq, parseDocument } = yamlPackage();
  const doc = parseDocument(text, { version: "1.1", merge: false, uniqueKeys: false, prettyErrors: false, keepSourceTokens: false });
  const error = doc.errors[0];
  if (error) {
    const message = error.code === "RESOURCE_EXHAUSTION" ? "maximum nesting depth exceeded" : error.message.replace(/\s+$/, "");
    return { ok: false, offset: error.pos[0], message, multipleDocuments: error.code === "MULTIPLE_DOCS" };
  }
  const anchors = new Map<string, YNode>();
  let hasAliases = false;
  const props = (node: YamlNode): Props => ({ start: node.range?.[0] ?? -1, anchor: node.anchor ?? undefined, tag: typeof node.tag === "string" ? node.tag : undefined });
  const emptyScalar = (): YScalar => ({ kind: "scalar", start: -1, anchor: undefined, tag: undefined, value: "", plain: true, empty: true });
  // Recursion depth is bounded: the parser reported RESOURCE_EXHAUSTION for anything deeper than the stack.
  const convert = (node: unknown): YNode => {
    if (node === null || node === undefined) return emptyScalar();
    const n = node as YamlNode;
    if (isAlias(n)) {
      hasAliases = true;
      return { kind: "alias", start: n.range?.[0] ?? -1, name: n.source, target: anchors.get(n.source) };
    }
    if (isScalar(n)) {
      const source = typeof n.source === "string" ? n.source : n.value === null || n.value === undefined ? "" : String(n.value);
      const empty = n.type === "PLAIN" && source === "" && (n.range?.[0] ?? 0) === (n.range?.[1] ?? 0);
      const out: YScalar = { kind: "scalar", ...props(n), value: source, plain: n.type === "PLAIN", empty };
      if (empty) out.start = -1;
      if (out.anchor !== undefined) anchors.set(out.anchor, out);
      return out;
    }
    if (isMap(n)) {
      const out: YMap = { kind: "map", ...props(n), items: [] };
      if (out.anchor !== undefined) anchors.set(out.anchor, out);
      for (const pair of n.items) if (isPair(pair)) out.items.push([convert(pair.key), convert(pair.value)]);
      return out;
    }
    if (isSeq(n)) {
      const out: YSeq = { kind: "seq", ...props(n), items: [] };
      if (out.anchor !== undefined) anchors.set(out.anchor, out);
      for (const item of n.items) out.items.push(convert(item));
      return out;
    }
    return emptyScalar();
  };
  const root = doc.contents === null ? undefined : convert(doc.contents);
  return { ok: true, root, hasAliases };
}

export function parseWithJsYaml(text: string, maxDepth: number): TreeResult {
  let events: Event[];
  try {
    events = parseEvents(text, { maxDepth });
  } catch (err) {
    const e = err as { reason?: unknown; mark?: { position?: unknown }; message?: unknown };
    const offset = typeof e.mark?.position === "number" ? e.mark.position : 0;
    const reason = typeof e.reason === "string" ? e.reason : String(e.message ?? err);
    return { ok: false, offset, message: reason, multipleDocuments: false };
  }
  return treeFromEvents(text, events);
}

/** The tree of js-yaml's `events` of `text`. */
function treeFromEvents(text: string, events: Event[]): TreeResult {
  const anchors = new Map<string, YNode>();
  const stack: Array<YMap | YSeq> = [];
  /** Keys waiting for their value, per open mapping. */
  const pendingKey: Array<YNode | undefined> = [];
  let root: YNode | undefined;
  let documents = 0;
  let hasAliases = false;

  const slice = (start: number, end: number): string | undefined => (start < 0 ? undefined : text.slice(start, end));
  const add = (node: YNode, propsStart = -1): void => {
    const parent = stack[stack.length - 1];
    if (!parent) {
      root = node;
      return;
    }
    // A mapping whose first key carries a tag or anchor starts at that key's content (as the yaml package counts).
    if (parent.kind === "map" && parent.items.length === 0 && pendingKey[stack.length - 1] === undefined && propsStart >= 0 && propsStart === parent.start && node.start >= 0) {
      parent.start = node.start;
    }
    if (parent.kind === "seq") {
      parent.items.push(node);
      return;
    }
    const depth = stack.length - 1;
    const key = pendingKey[depth];
    if (key === undefined) pendingKey[depth] = node;
    else {
      parent.items.push([key, node]);
      pendingKey[depth] = undefined;
    }
  };
  const named = (node: YNode, anchor: string | undefined): void => {
    if (anchor !== undefined) anchors.set(anchor, node);
  };

  for (let i = 0; i < events.length; i++) {
    const ev = events[i] as Event;
    switch (ev.type) {
      case EVENT_ID.DOCUMENT:
        documents++;
        if (documents > 1) {
          // Document events carry no offset: the second document starts at the first marker after the first's content.
          const after = root ? firstStart(root) : 0;
          const marker = /^(?:---|\.\.\.)(?=\s|$)/gm;
          let offset = 0;
          for (let m = marker.exec(text); m; m = marker.exec(text)) {
            if (m.index > after) {
              offset = m.index;
              break;
            }
          }
          return { ok: false, offset, message: "", multipleDocuments: true };
        }
        break;
      case EVENT_ID.MAPPING:
      case EVENT_ID.SEQUENCE: {
        const anchor = slice(ev.anchorStart, ev.anchorEnd);
        const rawTag = slice(ev.tagStart, ev.tagEnd);
        const kindTag = YAML_TAG + (ev.type === EVENT_ID.MAPPING ? "map" : "seq");
        // The non-specific tag `!` on a collection means its kind, as the yaml package resolves it.
        // A block collection whose tag or anchor is on its first line starts after them (as the yaml package counts).
        const propsEnd = Math.max(ev.tagEnd, ev.anchorEnd);
        let start = ev.start;
        if (start < propsEnd) for (start = propsEnd; text[start] === " "; start++);
        const tag = rawTag === undefined ? undefined : rawTag === "!" ? kindTag : tagName(rawTag);
        const node: YMap | YSeq = ev.type === EVENT_ID.MAPPING ? { kind: "map", start, anchor, tag, items: [] } : { kind: "seq", start, anchor, tag, items: [] };
        named(node, anchor);
        add(node);
        stack.push(node);
        pendingKey.push(undefined);
        break;
      }
      case EVENT_ID.SCALAR: {
        const anchor = slice(ev.anchorStart, ev.anchorEnd);
        const rawTag = slice(ev.tagStart, ev.tagEnd);
        const empty = ev.valueStart < 0;
        const quoted = ev.style === SCALAR_STYLE.SINGLE_QUOTED || ev.style === SCALAR_STYLE.DOUBLE_QUOTED;
        const block = ev.style === SCALAR_STYLE.LITERAL_BLOCK || ev.style === SCALAR_STYLE.FOLDED_BLOCK;
        const start = empty ? -1 : quoted ? ev.valueStart - 1 : block ? blockIndicator(text, ev.valueStart) : ev.valueStart;
        const node: YScalar = {
          kind: "scalar",
          start,
          anchor,
          tag: rawTag === undefined ? undefined : tagName(rawTag),
          value: empty ? "" : getScalarValue(text, ev),
          plain: ev.style === SCALAR_STYLE.PLAIN,
          empty,
        };
        named(node, anchor);
        // Where the scalar's tag or anchor (`&name`) starts, whichever comes first.
        const anchorAt = ev.anchorStart < 0 ? -1 : ev.anchorStart - 1;
        add(node, ev.tagStart < 0 ? anchorAt : anchorAt < 0 ? ev.tagStart : Math.min(ev.tagStart, anchorAt));
        break;
      }
      case EVENT_ID.ALIAS: {
        hasAliases = true;
        const name = text.slice(ev.anchorStart, ev.anchorEnd);
        add({ kind: "alias", start: ev.anchorStart - 1, name, target: anchors.get(name) });
        break;
      }
      case EVENT_ID.POP:
        if (stack.length) {
          stack.pop();
          pendingKey.pop();
        }
        break;
    }
  }
  return { ok: true, root, hasAliases };
}
