/**
 * The built CLI starts from V8's code cache that `npm run build` recorded
 * (bin/lago.js, scripts/build.mjs): this Node accepts it, and a cache recorded
 * from another bundle is never used, even when V8 would take it (V8 compares
 * only the source's length, so a stale cache would run the old code).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import Module from "node:module";
import os from "node:os";
import path from "node:path";
import { Script } from "node:vm";
import { execa } from "execa";
import { REPO_ROOT } from "../helpers/sandbox.ts";

const BUNDLE = path.join(REPO_ROOT, "dist", "lago.cjs");
const EXAMPLE = path.join(REPO_ROOT, "examples", "two-vms", "LagoInitFile");

test("npm run build recorded a code cache of the CLI that this Node accepts", () => {
  const code = readFileSync(BUNDLE);
  const cache = readFileSync(`${BUNDLE}.cache`);
  // The cache starts with the SHA-256 of the bundle it was recorded from.
  assert.deepEqual(cache.subarray(0, 32), createHash("sha256").update(code).digest());
  const script = new Script(Module.wrap(code.toString("latin1")), { filename: BUNDLE, cachedData: cache.subarray(32) });
  assert.equal(script.cachedDataRejected, false);
});

test("a bundle changed after its cache was recorded runs as changed, whatever the files' times: the cache is not offered", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "lago-code-cache-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  for (const entry of ["bin", "package.json"]) cpSync(path.join(REPO_ROOT, entry), path.join(root, entry), { recursive: true });
  cpSync(path.join(REPO_ROOT, "dist", "lago.cjs"), path.join(root, "dist", "lago.cjs"));
  cpSync(`${BUNDLE}.cache`, path.join(root, "dist", "lago.cjs.cache"));
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(root, "node_modules"));
  const lago = (): Promise<string> => execa(process.execPath, [path.join(root, "bin", "lago.js"), "validate", "-f", EXAMPLE], { cwd: root, env: { HOME: root, NO_COLOR: "1" } }).then((r) => r.stdout);
  assert.match(await lago(), /LagoInitFile is valid: 2 domain\(s\), 2 net\(s\)\./);

  // The same length, other words: V8 alone would take the old cache and print the old message.
  const bundle = path.join(root, "dist", "lago.cjs");
  const source = readFileSync(bundle, "utf8");
  assert.ok(source.includes(" is valid: "));
  writeFileSync(bundle, source.replaceAll(" is valid: ", " IS VALID: "));
  const earlier = new Date(Date.now() - 60_000);
  utimesSync(bundle, earlier, earlier);
  assert.match(await lago(), /LagoInitFile IS VALID: 2 domain\(s\), 2 net\(s\)\./);
});
