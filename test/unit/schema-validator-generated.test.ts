/** The precompiled init-file validator is what the schema and Ajv's options give today. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

test("src/spec/schema-validator.generated.js is up to date with schemas/lago-init-file.schema.json", () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, "scripts", "gen-schema-validator.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
