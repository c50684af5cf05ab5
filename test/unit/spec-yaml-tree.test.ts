/**
 * js-yaml's event stream and the `yaml` package give the same tree (kinds,
 * scalar text and style, tags, anchors, aliases, start offsets) wherever both
 * accept a file; `parseTree` uses the first for speed and the second where
 * they disagree (tabs, errors).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { fastPathApplies, parseTree, parseWithJsYaml, parseWithYamlPackage, type YNode } from "../../src/spec/yaml-tree.ts";
import { generateInitFile } from "../../bench/generate.ts";
import { isTemplate } from "../../src/spec/template.ts";
import { mutatedText } from "../helpers/mutate.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = path.resolve(ROOT, "..", "shared", "corpus");

function plain(node: YNode | undefined): unknown {
  if (!node) return null;
  switch (node.kind) {
    case "alias":
      return { alias: node.name, start: node.start, target: node.target ? node.target.start : null };
    case "scalar":
      return { s: node.value, plain: node.plain, empty: node.empty, tag: node.tag ?? null, anchor: node.anchor ?? null, start: node.start };
    case "seq":
      return { seq: node.items.map(plain), tag: node.tag ?? null, anchor: node.anchor ?? null, start: node.start };
    case "map": {
      // A flow pair with an empty key (`[: x]`) starts at the `:` for one parser and at the value for the other.
      const first = node.items[0]?.[0];
      const start = first?.kind === "scalar" && first.empty ? "either" : node.start;
      // A collection as a key (`? a: 1`) is refused by the reader; the parsers place its start differently.
      const key = (k: YNode): unknown => (k.kind === "map" || k.kind === "seq" ? { complexKey: k.kind } : plain(k));
      return { map: node.items.map(([k, v]) => [key(k), plain(v)]), tag: node.tag ?? null, anchor: node.anchor ?? null, start };
    }
  }
}

function same(text: string): void {
  if (!fastPathApplies(text)) return;
  const fast = parseWithJsYaml(text, 100);
  const slow = parseWithYamlPackage(text);
  if (!fast.ok || !slow.ok) return;
  assert.deepEqual(plain(fast.root), plain(slow.root), JSON.stringify(text));
}

const texts = readdirSync(CORPUS)
  .filter((f) => f !== "SOURCES.md")
  .map((f) => readFileSync(path.join(CORPUS, f), "utf8"))
  .filter((t) => !isTemplate(t))
  .map((t) => t.replace(/[\t&*!]/g, " "));

test("both parsers give the same tree for every corpus file and a generated environment", () => {
  for (const t of [...texts, generateInitFile(50).text]) {
    if (!fastPathApplies(t)) continue;
    assert.equal(parseWithJsYaml(t, 100).ok, parseWithYamlPackage(t).ok, t.slice(0, 80));
    same(t);
  }
});

test("property: both parsers give the same tree for mutated corpus files whenever both accept them", () => {
  fc.assert(
    fc.property(mutatedText(texts, "ab: -[]{},<<|>'\"#01.~\n  ?%@`"), same),
    { numRuns: 1500 },
  );
});

test("tabs, anchors, aliases, tags and errors go to the yaml package: its reading and its messages", () => {
  for (const t of ["a: &x 1\nb: *x\n", "a: !!str 1\n", "a:\n\tb: 1\n"]) assert.equal(fastPathApplies(t), false, t);
  assert.equal(fastPathApplies("domains:\n  vm: {memory: 1024}\n"), true);
  const tabbed = parseTree("a:\n\t- 1\n", 100);
  assert.equal(tabbed.ok, false);
  const bad = parseTree("a: [1, 2\nb: 3\n", 100);
  assert.ok(!bad.ok && /Flow sequence in block collection/.test(bad.message));
});
