/**
 * Durability at scale: an apply of 1,000 domains (3,387 resources) on the
 * in-memory world, killed at random driver calls (seeded), some of them
 * between two calls of one reconciler; after each kill the next apply
 * converges: a plan with refresh is empty and nothing exists that the state
 * does not record.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import fc from "fast-check";
import { InProcessEnv } from "../helpers/in-process.ts";
import { generateInitFile, TEMPLATES } from "../../bench/generate.ts";
import { hasChanges } from "../../src/plan/plan.ts";

const SEED = Number(process.env.LAGO_SCALE_CRASH_SEED ?? 20261123);

test("a 1,000-domain apply killed at random points converges, nothing leaked", { timeout: 600_000 }, async () => {
  const env = new InProcessEnv(undefined, { templates: TEMPLATES, leaseRange: "0-255" });
  try {
    const { text } = generateInitFile(1000);
    // The first apply's driver calls: kill points are drawn among them.
    const probe = new InProcessEnv(undefined, { templates: TEMPLATES, leaseRange: "0-255" });
    const full = await probe.apply(text);
    probe.cleanup();
    assert.equal(full.result?.outcome?.ok, true);
    const points = fc.sample(fc.tuple(fc.integer({ min: 1, max: full.calls }), fc.constantFrom("before" as const, "after" as const)), { seed: SEED, numRuns: 3 });
    for (const [at, when] of points) {
      const killed = await env.apply(text, { crash: { at, when } });
      assert.equal(killed.crashed, true, `a kill at call ${at} (${when}) should have happened`);
      const again = await env.apply(text);
      assert.equal(again.error, undefined, `apply after a kill at call ${at} (${when}): ${String(again.error)}`);
      assert.equal(again.result?.outcome?.ok, true, `apply after a kill at call ${at} (${when}) failed: ${again.result?.outcome?.failed.map((f) => f.error.message).join("; ")}`);
      const plan = await env.plan(text);
      assert.equal(plan.result && hasChanges(plan.result), false, `not converged after a kill at call ${at} (${when})`);
      // Nothing exists that the state does not record.
      const state = env.state();
      const recorded = (kind: string, output: string) =>
        [...state.resources.values()].filter((r) => r.kind === kind).map((r) => String(r.outputs[output])).sort();
      assert.deepEqual(Object.keys(env.world.domains).sort(), recorded("domain", "libvirt_name"));
      assert.deepEqual(Object.keys(env.world.networks).sort(), recorded("network", "libvirt_name"));
      // Build layers live in the shared store, a cache beyond the environment: each recorded build's is there.
      const layers = `${path.join(env.root, "store", "layers")}${path.sep}`;
      const images = Object.keys(env.world.images);
      assert.deepEqual(images.filter((i) => !i.startsWith(layers)).sort(), recorded("disk", "path"));
      const stored = new Set(images.filter((i) => i.startsWith(layers)));
      assert.deepEqual(recorded("build", "path").filter((l) => !stored.has(l)), [], "every recorded build's layer is in the store");
      const destroyed = await env.destroy();
      assert.equal(destroyed.result?.outcome?.ok, true);
      assert.deepEqual(Object.keys(env.world.domains), []);
    }
  } finally {
    env.cleanup();
  }
});
