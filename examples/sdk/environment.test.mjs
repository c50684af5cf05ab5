// An environment as a test fixture, with node:test and lago's SDK: brought up
// in `before`, checked, torn down in `after`. Run it where a LagoInitFile is:
//
//   node --test path/to/environment.test.mjs
//
// (with lago installed: npm install lago, or a link to a checkout).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Environment } from "lago";

const env = await Environment.load("LagoInitFile");

before(
  async () => {
    env.on("progress", (e) => {
      if (e.type === "done" || e.type === "failed") console.error(`${e.address}: ${e.type}`);
    });
    await env.apply();
  },
  { timeout: 20 * 60_000 },
);

after(() => env.destroy(), { timeout: 5 * 60_000 });

test("every VM runs and answers SSH", async () => {
  const status = await env.status();
  for (const vm of status.vms) {
    assert.equal(vm.state, "running", vm.name);
    assert.equal(vm.sshAnswers, true, vm.name);
  }
});

test("every VM has its own name as hostname", async () => {
  for (const name of env.vmNames) {
    const { code, stdout, stderr } = await env.vm(name).ssh("hostname");
    assert.equal(code, 0, stderr);
    assert.equal(stdout.trim(), name);
  }
});

test("the artifacts of every VM can be collected", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "artifacts-"));
  try {
    const results = await env.collect(dir, { strict: true });
    for (const r of results) assert.ok(readdirSync(path.join(dir, r.vm)).length > 0, r.vm);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
