/**
 * LAGO_DRIVER selects the drivers of a whole process: `memory` is the fake world
 * in memory (the engine bench's zero-latency driver), gone when the process exits;
 * an unknown selector is a usage error that changes nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { makeSandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("LAGO_DRIVER=memory applies in memory: the state records the VMs, no world file, and the next process finds them gone", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const memory = { env: { LAGO_DRIVER: "memory" } };
    const applied = await sb.lago(["apply", "--auto-approve"], memory);
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual(
      Object.values(sb.state().resources).filter((r) => r.kind === "domain").map((r) => r.attrs.name).sort(),
      ["vm01", "vm02"],
    );
    assert.equal(existsSync(sb.worldFile), false, "nothing written to the file-backed world");
    // A new process starts from an empty world: the recorded VMs are missing there.
    const plan = await sb.lago(["plan", "--detailed-exitcode"], memory);
    assert.equal(plan.code, 2, plan.stdout + plan.stderr);
    assert.match(plan.stdout, /domain\.vm01/);
  } finally {
    sb.cleanup();
  }
});

test("an unknown LAGO_DRIVER is a usage error naming the selectors, and changes nothing", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"], { env: { LAGO_DRIVER: "nope" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown LAGO_DRIVER "nope": use "real", "fake:<world\.json>" or "memory"/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(existsSync(sb.worldFile), false);
  } finally {
    sb.cleanup();
  }
});
