/** The precompiled validators are what their schemas and Ajv's options give today. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the precompiled validators (init file, saved plan) are up to date with their schemas", () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, "scripts", "gen-schema-validator.mjs"), "--check"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
