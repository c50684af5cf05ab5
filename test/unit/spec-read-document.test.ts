import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { formatDiagnostic } from "../../src/errors.ts";
import { readDocument } from "../../src/spec/read-document.ts";
import { generateInitFile } from "../../bench/generate.ts";
import { mutatedText } from "../helpers/mutate.ts";

const FILE = "/env/f.yaml";

test("plain scalars resolve as PyYAML (YAML 1.1) resolves them", () => {
  const r = readDocument(
    "{a: yes, b: n, c: 010, d: 1:20, e: 1e5, f: 0x1F, g: ~, h: Off, i: 'yes', j: 2019-01-01, k: 1_000, l: !!str 12, m: .5, n: False, o: y, p: -0b11, q: 1.5e+3}",
    FILE,
  );
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.format, "yaml");
  assert.deepEqual(r.value, {
    a: true,
    b: "n",
    c: 8,
    d: 80,
    e: "1e5",
    f: 31,
    g: null,
    h: false,
    i: "yes",
    j: "2019-01-01",
    k: 1000,
    l: "12",
    m: 0.5,
    n: false,
    o: "y",
    p: -3,
    q: 1500,
  });
});

test("JSON content is read with JSON's rules, whatever the file name", () => {
  const r = readDocument('{\n\t"a": 1e5,\n\t"b": ["yes", 010]\n}\n'.replace("010", "10"), "/env/f.yaml");
  assert.equal(r.format, "json");
  assert.deepEqual(r.value, { a: 100000, b: ["yes", 10] });
  assert.deepEqual(r.map.locate("/b/1"), { file: "/env/f.yaml", line: 3, col: 15 });
});

test("two `<<` merge keys in one mapping: both merge, the later wins, own keys win over both", () => {
  const text = ["a: &a {x: 1, y: 1, z: 1}", "b: &b {y: 2, w: 2}", "c:", "  <<: *a", "  <<: *b", "  z: 3", "d:", "  <<: [*a, *b]", ""].join("\n");
  const r = readDocument(text, FILE);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.value, {
    a: { x: 1, y: 1, z: 1 },
    b: { y: 2, w: 2 },
    c: { x: 1, y: 2, z: 3, w: 2 },
    // In a merge list the first mapping wins (PyYAML).
    d: { y: 1, w: 2, x: 1, z: 1 },
  });
  // Values that came through a merge point where they are written.
  assert.deepEqual(r.map.locate("/c/y"), { file: FILE, line: 2, col: 11 });
  assert.deepEqual(r.map.locateKey("/c/x"), { file: FILE, line: 1, col: 8 });
  assert.deepEqual(r.map.locate("/c/z"), { file: FILE, line: 6, col: 6 });
});

test("chained merges and a whole-mapping alias", () => {
  const text = ["base: &base {memory: 64}", "host: &host", "  <<: *base", "  vm-type: h", "domains:", "  vm01: *host", "  vm02:", "    <<: *host", "    memory: 128", ""].join("\n");
  const r = readDocument(text, FILE);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual((r.value as { domains: unknown }).domains, {
    vm01: { memory: 64, "vm-type": "h" },
    vm02: { memory: 128, "vm-type": "h" },
  });
  assert.deepEqual(r.map.locate("/domains/vm01/memory"), { file: FILE, line: 1, col: 22 });
  assert.deepEqual(r.map.locate("/domains/vm01"), { file: FILE, line: 3, col: 3 });
});

test("duplicate keys are reported at the duplicate; `<<` twice is not a duplicate", () => {
  const r = readDocument("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n  m: 1\n  m: 2\n", FILE);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    `${FILE}:6:3: duplicate key \`m\` (already set at line 5, column 3); PyYAML would silently keep only the last one`,
  ]);
});

test("structure problems: unknown anchors, bad merge values, unsupported tags", () => {
  const r = readDocument("a: *nope\nb:\n  <<: 3\nc: !!python/object {}\nd: !!int abc\n", FILE);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    `${FILE}:1:4: unknown anchor \`nope\`: no \`&nope\` is defined before this alias`,
    `${FILE}:3:7: a \`<<\` merge key takes an alias to a mapping (\`<<: *settings\`) or a list of them (\`<<: [*a, *b]\`)`,
    `${FILE}:4:20: unsupported tag \`!!python/object\`: an init file may only use the standard tags (!!str, !!int, !!float, !!bool, !!null, !!map, !!seq)`,
    `${FILE}:5:10: \`abc\` is not a valid \`!!int\``,
  ]);
});

test("syntax errors come with positions and no value", () => {
  const r = readDocument("a: [1, 2\nb: 3\n", FILE);
  assert.equal(r.value, undefined);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    `${FILE}:2:1: syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
  ]);
  assert.deepEqual(readDocument("a: 1\n---\nb: 2\n", FILE).diagnostics.map(formatDiagnostic), [
    `${FILE}:2:1: syntax error: the file holds several YAML documents (separated by \`---\`); an init file is a single document`,
  ]);
});

test("an alias bomb is cut short with one diagnostic and no value", () => {
  const rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (const [name, prev] of [["b", "a"], ["c", "b"], ["d", "c"], ["e", "d"], ["f", "e"]] as const) {
    rows.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]`);
  }
  const r = readDocument(`${rows.join("\n")}\n`, FILE);
  assert.equal(r.value, undefined);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    `${FILE}:1:14: aliases and merge keys expand this file to more than 100272 values, the most a file of 272 bytes may hold (100000 + 1 per byte)`,
  ]);
});

const CORPUS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "shared", "corpus");
const corpus = readdirSync(CORPUS)
  .filter((f) => f !== "SOURCES.md")
  .map((f) => readFileSync(path.join(CORPUS, f), "utf8"));

/** The direct reading (from the parser's events) and the tree reading agree: value, diagnostics, positions. */
function agree(text: string): void {
  const direct = readDocument(text, FILE);
  const tree = readDocument(text, FILE, undefined, { direct: false });
  const label = JSON.stringify(text.slice(0, 120));
  assert.deepEqual(direct.value, tree.value, label);
  assert.deepEqual(direct.diagnostics.map(formatDiagnostic), tree.diagnostics.map(formatDiagnostic), label);
  assert.equal(direct.format, tree.format, label);
  for (const pointer of ["", "/domains", "/nets", "/a", "/a/0", "/domains/vm00001/disks/0/name"]) {
    assert.deepEqual(direct.map.get(pointer), tree.map.get(pointer), `${label} ${pointer}`);
  }
}

test("documents read straight from the parser's events read as through the tree", () => {
  const tricky = [
    "__proto__: {a: 1}\nconstructor: 2\n",
    "yes: 1\n1.0: 2\n~: 3\n010: 4\n'q': 5\n\"d\": 6\n: 7\n",
    "a:\nb: ''\nc: |\n  x\n  y\nd: >-\n  z\n",
    `a: ${"x".repeat(300)}\n`,
    "a: [1, {b: c}, [], {}]\n",
    "a: 1\na: 2\n",
    "a:\n  <<: {b: 1}\n  c: 2\n",
    "? [a]\n: 1\n",
    '{"a": [1, 2.5, true, null, "yes"], "b": {"c": "010"}}',
    "",
    "# only a comment\n",
    "- 1\n- 2\n",
    "plain\n",
  ];
  for (const t of [...tricky, ...corpus, generateInitFile(30).text]) agree(t);
});

test("property: the direct reading agrees with the tree reading on mutated corpus files", () => {
  fc.assert(
    fc.property(mutatedText(corpus, "ab: -[]{},<<|>'\"#01.~\n  ?%@`_"), agree),
    { numRuns: 400 },
  );
});
