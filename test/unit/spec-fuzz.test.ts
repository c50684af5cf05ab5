/**
 * Bad input, bounded: random bytes, truncations and mutations of the corpus
 * files, and generated alias/merge-key bombs thrown at what `lago validate`
 * and `lago plan` run (in-process, the same functions), and a few through the
 * built CLI. The only acceptable outcomes are a spec (and a plan) or the
 * project's own errors with positions inside the file; never an internal
 * error, a stack trace or a hang (a generous per-case deadline detects one).
 *
 * Replay a failure with the seed and path fast-check prints:
 * `FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/unit/spec-fuzz.test.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { ConfigError, LagoError } from "../../src/errors.ts";
import { parseSpec } from "../../src/spec/load.ts";
import { compile } from "../../src/graph/compile.ts";
import { computePlan } from "../../src/plan/plan.ts";
import { emptyState } from "../../src/state/state.ts";
import { resolveTemplatesIn } from "../../src/engine/session.ts";
import { benchTemplateRepo } from "../../bench/generate.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = path.resolve(ROOT, "..", "shared", "corpus");
const FILE = "/fuzz/LagoInitFile";
/** A case that takes this long is a hang (a 100 KiB file must finish well under a second). */
const DEADLINE_MS = 5_000;
const REPO = benchTemplateRepo();

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const replay = process.env.FC_PATH;
function params<T>(numRuns: number): fc.Parameters<T> {
  return { numRuns, ...(seed === undefined ? {} : { seed }), ...(replay === undefined ? {} : { path: replay }), endOnFailure: true };
}

function corpusTexts(): string[] {
  return readdirSync(CORPUS)
    .filter((f) => f !== "SOURCES.md")
    .sort()
    .map((f) => readFileSync(path.join(CORPUS, f), "utf8"));
}

/**
 * Runs validate then plan (empty state, templates from an in-memory
 * repository) on `text`. Returns "plan" or "rejected"; throws an assertion
 * error for anything else.
 */
function validateAndPlan(text: string): "plan" | "rejected" {
  const started = performance.now();
  const lines = text.split("\n").length;
  try {
    const spec = parseSpec(text, FILE, { env: {} });
    const desired = compile({ spec, templates: resolveTemplatesIn(spec, { repo: REPO }).templates, prior: emptyState(), domainType: "kvm" });
    computePlan({ desired, state: emptyState(), observed: undefined, initFileSha256: spec.sha256 });
    return "plan";
  } catch (err) {
    if (!(err instanceof LagoError)) {
      const e = err instanceof Error ? err : new Error(String(err));
      assert.fail(`internal error ${e.name}: ${e.message}\n${e.stack ?? ""}`);
    }
    if (err instanceof ConfigError) {
      assert.ok(err.diagnostics.length > 0, "a ConfigError without diagnostics");
      for (const d of err.diagnostics) {
        assert.equal(d.pos.file, FILE);
        assert.ok(d.pos.line >= 1 && d.pos.line <= lines + 1, `line ${d.pos.line} outside the file (${lines} lines): ${d.message}`);
        assert.ok(d.pos.col >= 1, `column ${d.pos.col}: ${d.message}`);
        assert.doesNotMatch(d.message, /\n\s+at /, "a stack trace in a diagnostic");
      }
    }
    return "rejected";
  } finally {
    const took = performance.now() - started;
    assert.ok(took < DEADLINE_MS, `a case of ${text.length} bytes took ${Math.round(took)} ms`);
  }
}

/** Alias and merge-key bombs: deep, wide and mixed, placed where an init file's values go. */
const bomb = fc
  .record({
    depth: fc.integer({ min: 1, max: 40 }),
    width: fc.integer({ min: 1, max: 12 }),
    kind: fc.constantFrom("merge", "alias-list", "mixed", "flow-merge"),
    keysPerLevel: fc.integer({ min: 0, max: 3 }),
    where: fc.constantFrom("domains", "metadata", "nets", "top"),
  })
  .map(({ depth, width, kind, keysPerLevel, where }) => {
    const rows = ["b0: &b0 {x: 1, y: [1, 2, 3]}"];
    for (let i = 1; i <= depth; i++) {
      const refs = Array.from({ length: width }, () => `*b${i - 1}`).join(", ");
      const own = Array.from({ length: keysPerLevel }, (_, k) => `k${i}_${k}: ${k}`).join(", ");
      const sep = own ? ", " : "";
      const useMerge = kind === "merge" || kind === "flow-merge" || (kind === "mixed" && i % 2 === 0);
      if (!useMerge) rows.push(`b${i}: &b${i} [${refs}]`);
      else if (kind === "flow-merge") rows.push(`b${i}: &b${i} {<<: [${refs}]${sep}${own}}`);
      else rows.push(`b${i}: &b${i}`, `  <<: [${refs}]`, ...(own ? own.split(", ").map((o) => `  ${o}`) : []));
    }
    const top = `*b${depth}`;
    const vm = ["domains:", "  vm01:", "    nics: [{net: lago}]", "    disks: [{name: root, type: template, template_name: el8-base, dev: vda}]"];
    const nets = ["nets:", "  lago: {type: nat, management: true}"];
    if (where === "domains") return [...rows, `domains: ${top}`, ...nets, ""].join("\n");
    if (where === "metadata") return [...rows, ...vm, `    metadata: ${top}`, ...nets, ""].join("\n");
    if (where === "nets") return [...rows, ...vm, "nets:", `  lago: ${top}`, ""].join("\n");
    return [...rows, `<<: ${top}`, ...vm, ...nets, ""].join("\n");
  });

/** Edits that break YAML in the ways people (and fuzzers) do. */
const mutation = fc.oneof(
  fc.record({ op: fc.constant("delete" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), text: fc.string({ unit: fc.constantFrom(..."\n :-[]{}&*!|>'\"#%@,?<=~\t\\0xyz") , maxLength: 12 }) }),
  fc.record({ op: fc.constant("dupline" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("indent" as const), at: fc.nat(), by: fc.integer({ min: -4, max: 4 }) }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % text.length;
  const lines = text.split("\n");
  const line = lines.length === 0 ? 0 : m.at % lines.length;
  switch (m.op) {
    case "delete":
      return text.slice(0, at) + text.slice(at + m.len);
    case "insert":
      return text.slice(0, at) + m.text + text.slice(at);
    case "dupline":
      lines.splice(line, 0, lines[line] ?? "");
      return lines.join("\n");
    case "indent":
      lines[line] = m.by >= 0 ? " ".repeat(m.by) + (lines[line] ?? "") : (lines[line] ?? "").replace(new RegExp(`^ {0,${-m.by}}`), "");
      return lines.join("\n");
    case "truncate":
      return text.slice(0, at);
  }
}

test("random bytes are rejected with positions, never an internal error", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2_000 }), (bytes) => {
      validateAndPlan(new TextDecoder("utf-8").decode(bytes));
    }),
    params(300),
  );
});

test("random YAML-ish text is accepted or rejected with positions", () => {
  const unit = fc.constantFrom(..."domains:nets vm01 lago\n  - :[]{},&a*a<<!!|>'\"#0123456789.-yes~");
  fc.assert(
    fc.property(fc.string({ unit, maxLength: 600 }), (text) => {
      validateAndPlan(text);
    }),
    params(400),
  );
});

test("random template syntax is rendered or rejected with positions (nothing escapes the sandbox)", () => {
  const piece = fc.constantFrom(
    "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", " for ", " in ", " if ", " endif ", " endfor ", " else ", "range(", ")", "(", "x", "env.HOME",
    "|default(", "|int", " is defined", "loop.first", "'s'", "3", "\n", "domains:\n", "  vm: ", ".constructor", "[", "]", ",", " set ", " = ", " raw ", " endraw ", " include ", " macro ",
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }), (pieces) => {
      validateAndPlan(pieces.join("").replaceAll("\\n", "\n"));
    }),
    params(500),
  );
});

test("truncated and mutated corpus files are accepted or rejected with positions", () => {
  const texts = corpusTexts();
  assert.ok(texts.length > 20);
  fc.assert(
    fc.property(fc.constantFrom(...texts), fc.array(mutation, { minLength: 1, maxLength: 6 }), (text, edits) => {
      validateAndPlan(edits.reduce(mutate, text));
    }),
    params(600),
  );
});

test("alias and merge-key bombs are bounded: deep, wide and mixed", () => {
  fc.assert(
    fc.property(bomb, (text) => {
      validateAndPlan(text);
    }),
    params(60),
  );
});

test("bomb fixtures: the issue's 351-byte merge bomb and its bigger siblings finish fast", () => {
  const merge = (depth: number, width: number): string => {
    const rows = ["m0: &m0 {a: 1, b: 2}"];
    for (let i = 1; i <= depth; i++) rows.push(`m${i}: &m${i} {<<: [${Array(width).fill(`*m${i - 1}`).join(", ")}]}`);
    return `${rows.join("\n")}\ndomains: *m${depth}\nnets: {}\n`;
  };
  const laughs = (depth: number, width: number): string => {
    const rows = [`l0: &l0 [${Array(width).fill("lol").join(", ")}]`];
    for (let i = 1; i <= depth; i++) rows.push(`l${i}: &l${i} [${Array(width).fill(`*l${i - 1}`).join(", ")}]`);
    return `${rows.join("\n")}\ndomains: {}\nnets: {}\n`;
  };
  const deepFlow = (n: number): string => `domains: ${"[".repeat(n)}${"]".repeat(n)}\nnets: {}\n`;
  const deepBlock = (n: number): string => `domains:\n${Array.from({ length: n }, (_, i) => `${" ".repeat(i + 1)}k:`).join("\n")}\nnets: {}\n`;
  const cases: Array<[string, string, RegExp]> = [
    ["merge 8×4 (the issue's)", merge(8, 4), /`domains\.m1` must be a mapping|domain/],
    ["merge 30×10", merge(30, 10), /domain/],
    ["billion laughs 9×9", laughs(9, 9), /aliases and merge keys expand this file to more than \d+ values/],
    ["billion laughs 30×30", laughs(30, 30), /aliases and merge keys expand/],
    ["flow nesting 5,000 deep", deepFlow(5_000), /nest/],
    ["block nesting 1,000 deep", deepBlock(1_000), /nest/],
  ];
  for (const [name, text, expected] of cases) {
    assert.equal(validateAndPlan(text), "rejected", name);
    assert.throws(() => parseSpec(text, FILE, { env: {} }), (err: unknown) => err instanceof ConfigError && err.diagnostics.some((d) => expected.test(d.message)), name);
  }
});

test("through the built CLI: bombs and garbage give positions and exit 1, never a stack trace", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-fuzz-"));
  try {
    const files: Array<[string, string]> = [
      ["merge-bomb", `m0: &m0 {a: 1}\n${Array.from({ length: 12 }, (_, i) => `m${i + 1}: &m${i + 1} {<<: [*m${i}, *m${i}, *m${i}, *m${i}]}`).join("\n")}\ndomains: *m12\nnets: {}\n`],
      ["laughs", `a: &a [x, x, x, x, x, x, x, x, x, x]\n${"bcdefghi".split("").map((c, i) => `${c}: &${c} [${Array(10).fill(`*${"abcdefgh"[i] ?? "a"}`).join(", ")}]`).join("\n")}\ndomains: {}\nnets: {}\n`],
      ["garbage", "\u0000\u0001{[&*!!<<: :: -\n\t- ]"],
    ];
    for (const [name, text] of files) {
      const file = path.join(dir, name);
      writeFileSync(file, text);
      for (const verb of ["validate", "plan"]) {
        const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          execFile(process.execPath, [path.join(ROOT, "bin", "lago.js"), "--workdir", dir, verb, "-f", file], { timeout: 30_000, cwd: dir }, (error, _stdout, stderr) => {
            resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stderr });
          });
        });
        assert.equal(r.code, 1, `${verb} ${name}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `, "m"), `${verb} ${name}`);
        assert.doesNotMatch(r.stderr, /Internal error|\n\s+at /, `${verb} ${name}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
