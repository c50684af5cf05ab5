/**
 * Snapshot tests of the plan for every numbered fixture in test/fixtures:
 * `LagoInitFile` (desired), optionally `LagoInitFile.before` (applied before:
 * its state is snapshotted as `state.json`), and the expected human and JSON
 * plans. `UPDATE_FIXTURES=1` rewrites the snapshots; the action tables below
 * are checked either way, so a rewrite cannot hide a wrong plan.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { hasChanges, type Action } from "../../src/plan/plan.ts";
import { planToJson } from "../../src/plan/json.ts";
import { plainStyle, renderPlan } from "../../src/plan/render.ts";
import { emptyState, readState, serializeState, type State } from "../../src/state/state.ts";
import { FIXTURES_DIR, FIXTURE_LINEAGE, fixturePriorState, listFixtures, planFixture } from "./plan-fixture-support.ts";

const UPDATE = process.env.UPDATE_FIXTURES === "1";

/** The actions each fixture must plan (no-ops left out). */
const EXPECTED_ACTIONS: Record<string, Record<string, Action>> = {
  "001-single-vm": {
    "disk.vm01.root": "create",
    "domain.vm01": "create",
    keypair: "create",
    "lease.lago": "create",
    "network.lago": "create",
    "template.lago-ci:el8-base:v2": "create",
  },
  "002-add-vm": {
    "disk.vm02.data": "create",
    "disk.vm02.root": "create",
    "domain.vm02": "create",
    "network.lago": "update",
  },
  "003-memory-change": { "domain.vm01": "update" },
  "004-template-change": {
    "build.vm01.root": "replace",
    "disk.vm01.root": "replace",
    "domain.vm01": "replace",
    "template.lago-ci:el8-base:v1": "delete",
    "template.lago-ci:el8-base:v2": "create",
  },
  "005-remove-vm": {
    "disk.vm02.data": "delete",
    "disk.vm02.root": "delete",
    "domain.vm02": "delete",
    "network.lago": "update",
    "network.storage": "update",
  },
  "006-rename-net": {
    "domain.vm01": "update",
    "lease.backend": "delete",
    "lease.storage": "create",
    "network.backend": "delete",
    "network.storage": "create",
  },
  "007-no-changes": {},
};

function snapshot(file: string, actual: string): void {
  if (UPDATE) {
    writeFileSync(file, actual);
    return;
  }
  assert.ok(existsSync(file), `${file} is missing: run with UPDATE_FIXTURES=1 to create it`);
  const expected = readFileSync(file, "utf8");
  if (actual === expected) return;
  assert.fail(`${path.relative(FIXTURES_DIR, file)} differs (review, then UPDATE_FIXTURES=1 rewrites it):\n${firstDifference(expected, actual)}`);
}

/** The first differing line with two lines of context, as a small unified diff. */
function firstDifference(expected: string, actual: string): string {
  const e = expected.split("\n");
  const a = actual.split("\n");
  let i = 0;
  while (i < e.length && i < a.length && e[i] === a[i]) i++;
  const from = Math.max(0, i - 2);
  return [
    `@@ line ${i + 1} @@`,
    ...e.slice(from, i).map((l) => `  ${l}`),
    ...e.slice(i, i + 3).map((l) => `- ${l}`),
    ...a.slice(i, i + 3).map((l) => `+ ${l}`),
  ].join("\n");
}

/** The fixture's prior state, snapshotted as state.json and read back the way lago reads it. */
function priorState(folder: string): State {
  const dir = path.join(FIXTURES_DIR, folder);
  if (!existsSync(path.join(dir, "LagoInitFile.before"))) return emptyState();
  const generated = fixturePriorState(folder);
  const file = path.join(dir, "state.json");
  snapshot(file, serializeState(generated));
  const read = readState(file);
  assert.deepEqual(read, generated, "state.json must read back to the state it was written from");
  return read;
}

const folders = listFixtures();

test("the required fixtures exist", () => {
  for (const name of Object.keys(EXPECTED_ACTIONS)) assert.ok(folders.includes(name), `missing fixture ${name}`);
  for (const name of folders) assert.ok(name in EXPECTED_ACTIONS, `fixture ${name} has no entry in EXPECTED_ACTIONS`);
});

for (const folder of folders) {
  test(`fixture ${folder}`, () => {
    const dir = path.join(FIXTURES_DIR, folder);
    const prior = priorState(folder);
    const plan = planFixture(folder, prior);

    const actions = Object.fromEntries(plan.resourceChanges.filter((c) => c.action !== "no-op").map((c) => [c.address, c.action]));
    assert.deepEqual(actions, EXPECTED_ACTIONS[folder] ?? {});
    assert.equal(hasChanges(plan), Object.keys(actions).length > 0);
    assert.equal(plan.lineage, prior.resources.size ? FIXTURE_LINEAGE : null);

    const text = renderPlan(plan, plainStyle);
    const json = `${JSON.stringify(planToJson(plan), null, 2)}\n`;
    snapshot(path.join(dir, "expected-plan.txt"), text);
    snapshot(path.join(dir, "expected-plan.json"), json);

    // Same inputs, same plan, byte for byte.
    const again = planFixture(folder, priorState(folder));
    assert.equal(renderPlan(again, plainStyle), text);
    assert.equal(`${JSON.stringify(planToJson(again), null, 2)}\n`, json);
  });
}

test("007-no-changes renders exactly the no-change message", () => {
  const plan = planFixture("007-no-changes", fixturePriorState("007-no-changes"));
  assert.equal(renderPlan(plan, plainStyle), "No changes. The environment matches the configuration.\n");
  assert.deepEqual(plan.summary, { create: 0, update: 0, replace: 0, delete: 0 });
});

test("004-template-change names the forcing attribute and the dependency reasons", () => {
  const plan = planFixture("004-template-change", fixturePriorState("004-template-change"));
  const by = new Map(plan.resourceChanges.map((c) => [c.address, c]));
  const disk = by.get("disk.vm01.root");
  assert.deepEqual(disk?.changes, [
    {
      path: "/template",
      before: "template.lago-ci:el8-base:v1",
      after: "template.lago-ci:el8-base:v2",
      forcesReplacement: true,
      reason: "the template changes: a fresh overlay is needed",
    },
  ]);
  assert.deepEqual(disk?.replaceReasons, ["the template changes: a fresh overlay is needed", "its build layer build.vm01.root is redone"]);
  // The build layer is made on the new template; the disk overlays it.
  assert.deepEqual(by.get("build.vm01.root")?.replaceReasons, ["the template changes: the steps run again on it, into a fresh layer"]);
  assert.deepEqual(by.get("domain.vm01")?.replaceReasons, ["its disk disk.vm01.root is replaced"]);
  // The data disk and the other VM are untouched.
  assert.equal(by.get("disk.vm01.data")?.action, "no-op");
  assert.equal(by.get("domain.vm02")?.action, "no-op");
});

test("003-memory-change is an in-place update that waits for a restart", () => {
  const plan = planFixture("003-memory-change", fixturePriorState("003-memory-change"));
  const domain = plan.resourceChanges.find((c) => c.address === "domain.vm01");
  assert.equal(domain?.requiresRestart, true);
  assert.equal(domain?.restart, false);
  assert.deepEqual(
    domain?.changes.map((c) => [c.path, c.before, c.after, c.requiresRestart ?? false, c.forcesReplacement]),
    [
      ["/memory", 1024, 4096, true, false],
      ["/vcpu", 2, 4, true, false],
    ],
  );
});

test("a plan against the state read back from state.json renders like one against the in-memory state", () => {
  for (const folder of ["005-remove-vm", "006-rename-net"]) {
    const fromFile = renderPlan(planFixture(folder, priorState(folder)), plainStyle);
    const inMemory = renderPlan(planFixture(folder, fixturePriorState(folder)), plainStyle);
    assert.equal(inMemory, fromFile, folder);
  }
});
