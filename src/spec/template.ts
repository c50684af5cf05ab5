/**
 * Init files written as Jinja2 templates, as oVirt's system tests and Ansible
 * roles write them (`{{ env.suite_name }}`, `{% for i in range(hostCount) %}`,
 * `loop.first`, `|default`, `is defined`), rendered with nunjucks before they
 * are read as YAML.
 *
 * **Which files are templates.** A file is rendered when its text contains a
 * Jinja2 delimiter, `{{`, `{%` or `{#`; any other file is read as written.
 * Plain YAML and JSON init files never contain these outside strings, and a
 * file that needs them literally writes `{{ '{{' }}` or `{% raw %}…{% endraw %}`,
 * as in Jinja2.
 *
 * **Variables.** The context holds the variables given (`--var NAME=VALUE`,
 * strings; `--var-file FILE`, a YAML or JSON mapping; later ones win) and
 * `env`, the process environment, as OST's renderer provides it. Semantics are
 * Jinja2's with its default `Undefined`, except that printing an undefined
 * value, or passing one to `range()`, is an error naming the variable: a
 * condition on an undefined variable is false (`{% if env.coverage == "true" %}`
 * is how these files make things optional), `x is defined` and `x|default(y)`
 * work, looping over an undefined value loops zero times.
 *
 * **Sandbox.** Templates read nothing but their variables: no loader but one
 * for `include`/`import`/`extends` of files inside the init file's directory
 * (symlinks out refused); member access to `constructor`, `__proto__` and
 * `prototype` yields nothing (the way out of nunjucks' sandbox into
 * JavaScript); `range()` may produce at most {@link MAX_RANGE_ITEMS} numbers
 * per render; the output may be at most {@link MAX_OUTPUT} characters.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type nunjucksModule from "nunjucks";
import type { Diagnostic, SourcePos } from "../errors.ts";
import { checkBuildHostPath } from "./host-paths.ts";
import { LineMap } from "./line-map.ts";

/** Most numbers all `range()` calls of one render may produce together. */
export const MAX_RANGE_ITEMS = 100_000;
/** Longest rendered text, in characters. */
export const MAX_OUTPUT = 16 * 1024 * 1024;

/** Whether `text` is rendered as a template before it is read (see the module comment). Pure. */
export function isTemplate(text: string): boolean {
  return text.includes("{{") || text.includes("{%") || text.includes("{#");
}

export interface TemplateInput {
  /** Variables from `--var-file` and `--var`, merged. `env` is reserved. */
  vars: Record<string, unknown>;
  /** The process environment, seen by templates as `env`. */
  env: Record<string, string | undefined>;
}

export interface Rendered {
  text: string;
  /** Maps positions in `text` to positions in the template. */
  lines: LineMap;
  /** The variables the render read (names given with `--var`/`--var-file`, and `env.NAME`s), sorted. */
  used: { vars: string[]; env: string[] };
}

export type RenderResult = { ok: true; rendered: Rendered } | { ok: false; diagnostics: Diagnostic[] };

const BLOCKED_MEMBERS = new Set(["constructor", "__proto__", "prototype", "__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__"]);

let loaded: typeof nunjucksModule | undefined;

/** nunjucks, loaded on first use: only templated init files pay for it. */
function engine(): typeof nunjucksModule {
  if (loaded) return loaded;
  const nunjucks = createRequire(import.meta.url)("nunjucks") as typeof nunjucksModule;
  // nunjucks' compiled templates read members through runtime.memberLookup; no
  // template of an init file needs these members, and they lead to Function.
  const runtime = nunjucks.runtime as unknown as { memberLookup: (obj: unknown, key: unknown) => unknown; __lagoGuarded?: boolean };
  if (!runtime.__lagoGuarded) {
    const memberLookup = runtime.memberLookup;
    runtime.memberLookup = (obj, key) => (BLOCKED_MEMBERS.has(String(key)) ? undefined : memberLookup(obj, key));
    runtime.__lagoGuarded = true;
  }
  loaded = nunjucks;
  return nunjucks;
}

/** Raised inside a render to stop it with a message of ours. */
class RenderStop extends Error {}

interface Tracker {
  /** Names looked up and missing, most recent last (`hostCount`, `env.suite_name`). */
  misses: string[];
  usedVars: Set<string>;
  usedEnv: Set<string>;
  rangeItems: number;
}

/** Wraps plain objects and arrays so that reading a missing member is recorded with its path. */
function tracked(value: unknown, at: string, tracker: Tracker, top: boolean): unknown {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key !== "string") return Reflect.get(target, key, receiver);
      const here = `${at}.${key}`;
      if (!Object.hasOwn(target, key)) {
        if (!(key in target)) tracker.misses.push(here);
        return Reflect.get(target, key, receiver);
      }
      if (top) tracker.usedEnv.add(key);
      return tracked(Reflect.get(target, key, receiver), here, tracker, false);
    },
  });
}

/**
 * Where each line of the template's text data starts, so that the rendered
 * output can be mapped back. See {@link LineMap} for how the markers work.
 */
interface Marked {
  source: string;
  /** Offsets (in the original template) where markers were inserted, with the marker's length. */
  inserted: Array<{ at: number; length: number }>;
  open: string;
  close: string;
}

interface LexToken {
  type: string;
  value: string;
  lineno: number;
  colno: number;
}

/** Two adjacent private-use characters that do not occur in `text`, to delimit markers. */
function markerChars(text: string): [string, string] {
  for (let c = 0xe000; c < 0xf8ff; c++) {
    const open = String.fromCharCode(c);
    const close = String.fromCharCode(c + 1);
    if (!text.includes(open) && !text.includes(close)) return [open, close];
  }
  return ["\ue000", "\ue001"];
}

/**
 * Inserts a marker `open + "LINE:COL" + close` before the first non-blank
 * character of every line of template text (never inside tags, never inside a
 * `{% set %}…{% endset %}` or `{% filter %}` block, whose captured text the
 * template may compare). Markers sit after leading whitespace and never end a
 * line, so `{%-`/`-%}` trim exactly what they trim without them.
 */
function insertMarkers(source: string): Marked | Diagnostic["pos"] & { message: string } {
  const [open, close] = markerChars(source);
  const lineStarts = [0];
  for (let i = source.indexOf("\n"); i >= 0; i = source.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const offsetOf = (t: LexToken): number => (lineStarts[t.lineno] ?? 0) + t.colno;
  const lexer = (engine() as unknown as { lexer: { lex(src: string, opts: object): { nextToken(): LexToken | null; lineno: number; colno: number } } }).lexer;
  const tokens = lexer.lex(source, {});
  const next = (): LexToken | null | Error => {
    try {
      return tokens.nextToken();
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  };
  const inserts: Array<{ at: number; text: string }> = [];
  let captureDepth = 0;
  let inBlock = false;
  let blockWords: LexToken[] = [];
  for (let t = next(); t; t = next()) {
    if (t instanceof Error) {
      const line = Math.min(tokens.lineno + 1, lineStarts.length);
      const length = (source.slice(lineStarts[line - 1] ?? 0).split("\n")[0] ?? "").length;
      return { file: "", line, col: Math.min(tokens.colno + 1, length + 1), message: `template syntax error: ${t.message}` };
    }
    if (t.type === "block-start") {
      inBlock = true;
      blockWords = [];
      continue;
    }
    if (inBlock) {
      if (t.type === "block-end") {
        inBlock = false;
        const first = blockWords[0]?.value;
        const isAssignment = blockWords.some((w) => w.type === "operator" && w.value === "=");
        if ((first === "set" && !isAssignment) || first === "filter") captureDepth++;
        else if ((first === "endset" || first === "endfilter") && captureDepth > 0) captureDepth--;
      } else if (t.type !== "whitespace") blockWords.push(t);
      continue;
    }
    if (t.type !== "data" || captureDepth > 0) continue;
    const start = offsetOf(t);
    let lineStart = 0;
    while (lineStart <= t.value.length) {
      const nl = t.value.indexOf("\n", lineStart);
      const end = nl < 0 ? t.value.length : nl;
      let first = lineStart;
      while (first < end && (t.value[first] === " " || t.value[first] === "\t" || t.value[first] === "\r")) first++;
      if (first < end) {
        const at = start + first;
        let line = lineStarts.length - 1;
        while (line > 0 && (lineStarts[line] ?? 0) > at) line--;
        inserts.push({ at, text: `${open}${line + 1}:${at - (lineStarts[line] ?? 0) + 1}${close}` });
      }
      if (nl < 0) break;
      lineStart = nl + 1;
    }
  }
  let out = "";
  let last = 0;
  for (const ins of inserts) {
    out += source.slice(last, ins.at) + ins.text;
    last = ins.at;
  }
  out += source.slice(last);
  return { source: out, inserted: inserts.map((i) => ({ at: i.at, length: i.text.length })), open, close };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Renders the template `text` (the init file `file`). Never throws for a bad
 * template: problems come back as diagnostics at template positions. Reads
 * only files `include`d from the init file's directory.
 */
export function renderTemplate(text: string, file: string, input: TemplateInput, dir: string): RenderResult {
  const nunjucks = engine();
  const marked = insertMarkers(text);
  if (!("source" in marked)) return { ok: false, diagnostics: [{ pos: { file, line: marked.line, col: marked.col }, pointer: "", message: marked.message }] };
  const tracker: Tracker = { misses: [], usedVars: new Set(), usedEnv: new Set(), rangeItems: 0 };
  const fail = (line: number, col: number, message: string): RenderResult => ({
    ok: false,
    diagnostics: [{ pos: { file, line, col }, pointer: "", message }],
  });
  if (Object.hasOwn(input.vars, "env")) return fail(1, 1, "a template variable cannot be named `env`: templates see the process environment as `env`");

  const loader = {
    getSource(name: string): { src: string; path: string; noCache: boolean } {
      const check = checkBuildHostPath(dir, name, false);
      if (!check.ok) throw new RenderStop(`cannot include \`${name}\`: ${check.reason}`);
      return { src: readFileSync(check.path, "utf8"), path: check.path, noCache: true };
    },
  };
  const env = new nunjucks.Environment(loader as unknown as nunjucksModule.ILoader, { autoescape: false, throwOnUndefined: true, trimBlocks: false, lstripBlocks: false });
  // Every top-level name that is neither a variable nor a global is recorded when looked up.
  const names = new Set([...Object.keys(input.vars), "env"]);
  const globals = (env as unknown as { globals: Record<string, unknown> }).globals;
  globals.range = (...args: unknown[]): number[] => {
    if (args.some((a) => a === undefined || a === null)) throw new RenderStop("range() got an undefined value");
    const nums = args.map((a) => Number(a));
    if (nums.some((n) => !Number.isInteger(n))) throw new RenderStop(`range() takes whole numbers, got ${args.map((a) => JSON.stringify(a)).join(", ")}`);
    const [a = 0, b, step = 1] = nums;
    const [start, stop] = b === undefined ? [0, a] : [a, b];
    if (step === 0) throw new RenderStop("range() step must not be zero");
    const count = Math.max(0, Math.ceil((stop - start) / step));
    tracker.rangeItems += count;
    if (tracker.rangeItems > MAX_RANGE_ITEMS) throw new RenderStop(`range() would produce more than ${MAX_RANGE_ITEMS} numbers in one render`);
    return Array.from({ length: count }, (_, i) => start + i * step);
  };
  (env as unknown as { globals: Record<string, unknown> }).globals = new Proxy(globals, {
    has(target, key) {
      if (typeof key === "string") {
        if (names.has(key)) {
          if (key !== "env") tracker.usedVars.add(key);
        } else if (!(key in target)) tracker.misses.push(key);
      }
      return key in target;
    },
  });
  const context: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input.vars)) context[k] = tracked(v, k, tracker, false);
  context.env = tracked({ ...input.env }, "env", tracker, true);

  let template: nunjucksModule.Template;
  try {
    // The fourth argument (eager compilation) makes parse errors surface here, apart from render errors.
    const compile = nunjucks.compile as unknown as (src: string, env: nunjucksModule.Environment, path: string | undefined, eager: boolean) => nunjucksModule.Template;
    // A first line of our own: nunjucks drops the position of errors on its line 0.
    template = compile(`${marked.open}${marked.close}\n${marked.source}`, env, undefined, true);
  } catch (err) {
    return { ok: false, diagnostics: [renderDiagnostic(err, "parse", text, file, marked, tracker)] };
  }
  let output: string;
  try {
    output = template.render(context);
  } catch (err) {
    return { ok: false, diagnostics: [renderDiagnostic(err, "render", text, file, marked, tracker)] };
  }
  // Drop that first line (its newline is gone if the template starts with `{%-`).
  output = output.slice(2);
  if (output.startsWith("\n")) output = output.slice(1);
  if (output.length > MAX_OUTPUT) return fail(1, 1, `the template renders to more than ${MAX_OUTPUT} characters`);
  const lines = LineMap.fromMarked(output, marked.open, marked.close);
  return {
    ok: true,
    rendered: { text: lines.text, lines, used: { vars: [...tracker.usedVars].sort(), env: [...tracker.usedEnv].sort() } },
  };
}

/**
 * Turns a nunjucks error into a diagnostic at the template position it names.
 * nunjucks reports 1-based positions for parse errors and for printing an
 * undefined value, 0-based ones for other errors raised while rendering.
 */
function renderDiagnostic(err: unknown, phase: "parse" | "render", text: string, file: string, marked: Marked, tracker: Tracker): Diagnostic {
  const raw = err instanceof Error ? err.message : String(err);
  const where = /\[Line (\d+)(?:, Column (\d+))?\]/.exec(raw);
  const base = phase === "parse" || /attempted to output null or undefined value/.test(raw) ? 0 : 1;
  const lines = text.split("\n").length;
  // Less one for the line renderTemplate puts first.
  let lineNo = where ? Math.max(1, Math.min(Number(where[1]) + base - 1, lines)) : undefined;
  let col = where?.[2] !== undefined ? Number(where[2]) + base : 1;
  const lineStarts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  // Columns nunjucks reports count the markers inserted earlier on the line.
  if (lineNo !== undefined) {
    const start = lineStarts[lineNo - 1] ?? 0;
    let shift = 0;
    for (const ins of marked.inserted) {
      if (ins.at >= start && ins.at - start + shift < col - 1 && (lineStarts[lineNo] ?? Infinity) > ins.at) shift += ins.length;
    }
    col = Math.max(1, col - shift);
  }
  const detail = raw
    .replace(/^\(unknown path\)(?: \[Line \d+(?:, Column \d+)?\])?\s*/, "")
    .replace(/^Template render error:\s*/, "")
    .replace(/^(?:Error|TypeError|RangeError): /, "")
    .replace(new RegExp(`${escapeRegExp(marked.open)}[0-9:]*${escapeRegExp(marked.close)}`, "g"), "")
    .trim();
  const pos: SourcePos = { file, line: lineNo ?? 1, col };
  const lineText = lineNo === undefined ? "" : text.slice(lineStarts[lineNo - 1] ?? 0, lineStarts[lineNo] ?? text.length);
  const culprit = (): string | undefined =>
    [...tracker.misses].reverse().find((m) => new RegExp(`(^|[^\\w.])${escapeRegExp(m.split(".")[0] ?? m)}\\b`).test(lineText));
  let message: string;
  if (/Cannot read properties of (?:null|undefined)/.test(detail) && phase === "parse") {
    lineNo = lines;
    col = (text.split("\n")[lines - 1] ?? "").length + 1;
    return { pos: { file, line: lineNo, col }, pointer: "", message: "template syntax error: the template ends inside an unfinished tag or expression" };
  }
  if (/attempted to output null or undefined value/.test(detail) || /range\(\) got an undefined value/.test(detail)) {
    const name = culprit();
    const use = /range/.test(detail) ? "passed to range()" : "printed";
    const give = name?.startsWith("env.") ? `set the environment variable ${name.slice(4)}` : `give it with --var ${name ?? "NAME"}=VALUE or --var-file`;
    message = name
      ? `undefined template variable \`${name}\` ${use}: ${give}, or guard it (\`is defined\`, \`|default(…)\`)`
      : `a template expression on this line is undefined or null and is ${use}`;
  } else if (/Maximum call stack size exceeded/.test(detail)) {
    message = "the template recurses too deeply";
  } else if (/Invalid string length|Array buffer allocation failed|Invalid array length/.test(detail)) {
    message = "the template renders to more text than lago accepts";
  } else {
    message = `template error: ${detail.split("\n")[0] ?? detail}`;
  }
  if (err instanceof RangeError && lineNo === undefined) message = "the template recurses too deeply or renders too much text";
  return { pos, pointer: "", message };
}
