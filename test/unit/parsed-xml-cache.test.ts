import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ParsedXmlCache } from "../../src/drivers/real/parsed-xml-cache.ts";
import { VERSION } from "../../src/version.ts";

test("ParsedXmlCache: parses once per content and kind across processes' readings; writes only after a miss", (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-xml-cache-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "cache.json");
  const parsed: string[] = [];
  const parse = (x: string) => {
    parsed.push(x);
    return { len: x.length, text: x.toUpperCase() };
  };

  const first = new ParsedXmlCache(file);
  assert.equal(first.knows("domain", ["<a/>"]), false);
  assert.deepEqual(first.get("domain", "<a/>", parse), { len: 4, text: "<A/>" });
  assert.deepEqual(first.get("domain", "<a/>", parse), { len: 4, text: "<A/>" });
  assert.deepEqual(first.get("network", "<a/>", parse), { len: 4, text: "<A/>" }, "another kind is another entry");
  assert.deepEqual(parsed, ["<a/>", "<a/>"]);
  first.save();

  const second = new ParsedXmlCache(file);
  assert.equal(second.knows("domain", ["<a/>"]), true);
  assert.equal(second.knows("domain", ["<a/>", "<b/>"]), false, "a changed document is not known");
  assert.deepEqual(second.get("domain", "<a/>", parse), { len: 4, text: "<A/>" });
  assert.equal(parsed.length, 2, "read from the file, not parsed");
  writeFileSync(file, "garbage");
  second.save();
  assert.equal(readFileSync(file, "utf8"), "garbage", "nothing was parsed: nothing is written");

  // Another lago version never reads these entries; a corrupt file is an empty cache.
  writeFileSync(file, JSON.stringify({ lago: `${VERSION}-other`, entries: { [`domain:${"0".repeat(40)}`]: 1 } }));
  assert.equal(new ParsedXmlCache(file).knows("domain", ["<a/>"]), false);
  const fresh = new ParsedXmlCache(file);
  fresh.get("domain", "<c/>", parse);
  fresh.save();
  assert.deepEqual(Object.keys((JSON.parse(readFileSync(file, "utf8")) as { entries: object }).entries).length, 1);

  // The environment's directory is never created for it.
  const gone = new ParsedXmlCache(path.join(dir, "no-such-env", "cache.json"));
  gone.get("domain", "<d/>", parse);
  gone.save();
  assert.equal(existsSync(path.join(dir, "no-such-env")), false);
});
