import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { SavedPlan } from "../../src/engine/session.ts";
import { readSavedPlan, writeSavedPlan } from "../../src/plan/saved-plan.ts";
import { Ajv2020 } from "ajv/dist/2020.js";
import { planToJson } from "../../src/plan/json.ts";
import { FIXTURES_DIR, fixturePriorState, listFixtures, planFixture } from "./plan-fixture-support.ts";

const schema = JSON.parse(readFileSync(path.join(FIXTURES_DIR, "..", "..", "schemas", "plan.schema.json"), "utf8")) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: true, strict: true });
const validate = ajv.compile(schema);

function load(folder: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(FIXTURES_DIR, folder, "expected-plan.json"), "utf8")) as Record<string, unknown>;
}

for (const folder of listFixtures()) {
  test(`${folder}/expected-plan.json validates against schemas/plan.schema.json`, () => {
    const ok = validate(load(folder));
    assert.equal(ok, true, ajv.errorsText(validate.errors));
  });
}

test("a broken plan document is rejected with every problem named", () => {
  const plan = load("004-template-change");
  const changes = plan.resource_changes as Record<string, unknown>[];
  const first = changes[0];
  assert.ok(first);
  first.action = "recreate";
  delete first.restart;
  plan.serial = -1;
  plan.extra = true;
  assert.equal(validate(plan), false);
  const found = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`).sort();
  assert.deepEqual(found, [
    " additionalProperties",
    "/resource_changes/0 required",
    "/resource_changes/0/action enum",
    "/serial minimum",
  ]);
});

test("an unknown resource address or kind is rejected", () => {
  const plan = load("001-single-vm");
  const changes = plan.resource_changes as Record<string, unknown>[];
  const first = changes[0];
  assert.ok(first);
  first.address = "volume.vm01";
  first.kind = "volume";
  assert.equal(validate(plan), false);
  const found = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.keyword}`).sort();
  assert.deepEqual(found, ["/resource_changes/0/address pattern", "/resource_changes/0/kind enum"]);
});

test("a missing top-level field is rejected", () => {
  const plan = load("007-no-changes");
  delete plan.pending_restarts;
  assert.equal(validate(plan), false);
  assert.deepEqual(validate.errors?.map((e) => e.params), [{ missingProperty: "pending_restarts" }]);
});

test("the live JSON plan of every fixture validates (not only the snapshots)", () => {
  for (const folder of listFixtures()) {
    const plan = planToJson(planFixture(folder, fixturePriorState(folder)));
    assert.equal(validate(plan), true, `${folder}: ${ajv.errorsText(validate.errors)}`);
  }
});

for (const folder of listFixtures()) {
  test(`${folder}: a saved plan file validates against $defs/savedPlan and reads back exactly`, () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "lago-saved-plan-"));
    try {
      const plan = planFixture(folder, fixturePriorState(folder));
      const file = path.join(dir, "p.plan");
      const saved: SavedPlan = { kind: "lago-plan", formatVersion: 1, env: "default", workdir: "/srv/env/.lago", initFile: "/srv/env/LagoInitFile", restart: false, plan };
      writeSavedPlan(file, saved);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.deepEqual(readSavedPlan(file), JSON.parse(JSON.stringify(saved)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
