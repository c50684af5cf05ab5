/**
 * Generated edit sequences (fast-check): any valid init file, edited in any
 * way, step after step — plan, apply, and the properties of
 * test/property/runner.ts after every step. See test/property/property.ts
 * for seeds and replay.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkSequences, selected } from "../property/property.ts";

test("edit sequences converge: empty plan after apply, the world as described, kept VMs keep identity", { skip: !selected("edits") }, async (t) => {
  const r = await checkSequences({ name: "edits", faults: false, runs: 600 });
  t.diagnostic(`${r.runs} sequences (seed ${r.seed}): ${JSON.stringify(r.stats)}`);
  // (Not when replaying one counterexample.) The generator reaches what the property is about: changes, no-ops, replacements, restarts, refusals,
  // builds run at first boot and offline.
  if (!process.env.LAGO_PROPERTY_PATH) for (const k of ["changes", "noChanges", "replaced", "restarts", "refused", "firstBootBuilds", "offlineBuilds"] as const) assert.ok(r.stats[k] > 0, `no step with ${k}: ${JSON.stringify(r.stats)}`);
});
