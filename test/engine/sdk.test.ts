import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { makeSandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";
import { Environment, LagoError, type EnvironmentEvent } from "../../src/sdk/index.ts";

/** The SDK drives the same engine as the CLI: here against the fake world (the e2e suite runs it on real VMs). */
test("the SDK loads an init file, plans, applies (with progress events), converges and destroys", async () => {
  const sb = makeSandbox();
  const saved = { ...process.env };
  try {
    process.env.LAGO_DRIVER = `fake:${sb.worldFile}`;
    process.env.HOME = path.join(sb.root, "home");
    process.env.XDG_CONFIG_DIRS = path.join(sb.root, "no-xdg");
    sb.init(BASE);
    const env = await Environment.load(path.join(sb.work, "LagoInitFile"), {
      templateRepoPath: sb.repoMetadata,
      templateStore: path.join(sb.root, "store"),
      leaseDir: path.join(sb.root, "leases"),
      domainType: "qemu",
    });
    assert.deepEqual(env.vmNames, ["vm01", "vm02"]);
    assert.equal(env.context.dir, path.join(sb.work, ".lago", "default"));
    const plan = await env.plan();
    assert.equal(plan.summary.create, plan.resourceChanges.length);
    const events: EnvironmentEvent[] = [];
    env.on("progress", (e) => events.push(e));
    const applied = await env.apply();
    assert.equal(applied.changed, true);
    assert.ok(events.some((e) => e.type === "done" && e.address === "domain.vm02"), "progress events arrive");
    assert.equal(Object.keys(sb.world().domains).length, 2);
    assert.equal((await env.apply()).changed, false, "a second apply has nothing to do");
    assert.equal((await env.plan()).summary.create, 0);
    await env.destroy();
    assert.deepEqual(Object.keys(sb.world().domains), []);
  } finally {
    process.env = saved;
    sb.cleanup();
  }
});

test("a failed apply throws a LagoError naming the resource; the state keeps what was done", async () => {
  const sb = makeSandbox();
  const saved = { ...process.env };
  try {
    process.env.LAGO_DRIVER = `fake:${sb.worldFile}`;
    process.env.LAGO_FAKE_FAULTS = "fail:defineDomain@vm02";
    process.env.HOME = path.join(sb.root, "home");
    process.env.XDG_CONFIG_DIRS = path.join(sb.root, "no-xdg");
    sb.init(BASE);
    const env = await Environment.load(path.join(sb.work, "LagoInitFile"), { templateRepoPath: sb.repoMetadata, templateStore: path.join(sb.root, "store"), leaseDir: path.join(sb.root, "leases"), domainType: "qemu" });
    await assert.rejects(env.apply(), (err: unknown) => err instanceof LagoError && err.code === "APPLY_FAILED" && /domain\.vm02/.test(err.message));
    assert.ok(sb.state().resources["domain.vm01"], "vm01 was created and recorded");
    delete process.env.LAGO_FAKE_FAULTS;
    await env.destroy();
  } finally {
    process.env = saved;
    sb.cleanup();
  }
});

test("the SDK renders a templated init file with the variables given; an undefined one is an error naming it", async () => {
  const sb = makeSandbox();
  const saved = { ...process.env };
  try {
    process.env.LAGO_DRIVER = `fake:${sb.worldFile}`;
    process.env.HOME = path.join(sb.root, "home");
    process.env.XDG_CONFIG_DIRS = path.join(sb.root, "no-xdg");
    sb.init(BASE.replace("  vm02:\n", "  {{ second }}:\n"));
    const file = path.join(sb.work, "LagoInitFile");
    const options = { templateRepoPath: sb.repoMetadata, templateStore: path.join(sb.root, "store"), leaseDir: path.join(sb.root, "leases"), domainType: "qemu" as const };
    const env = await Environment.load(file, { ...options, vars: { second: "db01" } });
    assert.deepEqual(env.vmNames, ["db01", "vm01"]);
    await assert.rejects(Environment.load(file, options), (err: unknown) => err instanceof LagoError && /second/.test(err.message));
  } finally {
    process.env = saved;
    sb.cleanup();
  }
});
