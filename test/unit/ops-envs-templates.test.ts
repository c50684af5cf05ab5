import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { listEnvs, selectEnv } from "../../src/ops/envs.ts";
import { currentEnvName } from "../../src/env/current.ts";
import { pruneTemplates, userNeeds } from "../../src/ops/templates.ts";
import { acquireDirLock } from "../../src/util/dir-lock.ts";
import { TemplateStoreAdmin } from "../../src/drivers/real/template-store-admin.ts";
import { FsTemplateStore } from "../../src/drivers/real/template-store.ts";
import { FsLayerStore } from "../../src/drivers/real/layer-store.ts";
import { QemuImg } from "../../src/drivers/real/qemu-img.ts";
import type { TemplateRef } from "../../src/drivers/types.ts";
import { makeEnvContext } from "../../src/env/context.ts";
import { loadConfig } from "../../src/config/config.ts";
import { makeOpsContext } from "../../src/ops/context.ts";
import { emptyState, writeState } from "../../src/state/state.ts";

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), "lago-ops-"));
}

function stateWith(file: string, templatePath: string | undefined): void {
  const s = emptyState();
  if (templatePath) {
    s.resources.set("template.r:t:v1", { address: "template.r:t:v1", kind: "template", attrs: {}, outputs: { path: templatePath }, dependsOn: [], status: "ready" });
    s.resources.set("domain.vm01", { address: "domain.vm01", kind: "domain", attrs: { name: "vm01" }, outputs: {}, dependsOn: [], status: "ready" });
  }
  writeState(file, s);
}

test("env list and select: environments are the workdir's directories with a state; `current` is Lago's symbolic link", () => {
  const workdir = path.join(tmp(), ".lago");
  try {
    assert.deepEqual(listEnvs(workdir), []);
    mkdirSync(path.join(workdir, "default"), { recursive: true });
    mkdirSync(path.join(workdir, "other"));
    mkdirSync(path.join(workdir, "empty"));
    stateWith(path.join(workdir, "default", "state.json"), "/store/r:t:v1");
    stateWith(path.join(workdir, "other", "state.json"), undefined);
    assert.deepEqual(listEnvs(workdir), [
      { name: "default", current: true, vms: ["vm01"], resources: 2 },
      { name: "other", current: false, vms: [], resources: 0 },
    ]);
    selectEnv(workdir, "other");
    assert.equal(readlinkSync(path.join(workdir, "current")), "other");
    assert.equal(currentEnvName(workdir), "other");
    assert.deepEqual(listEnvs(workdir).map((e) => [e.name, e.current]), [["default", false], ["other", true]]);
    selectEnv(workdir, "default");
    assert.equal(currentEnvName(workdir), "default");
    assert.throws(() => selectEnv(workdir, "empty"), /no environment empty in .*\.lago/);
    assert.deepEqual(readdirSync(workdir).sort(), ["current", "default", "empty", "other"]);
  } finally {
    rmSync(path.dirname(workdir), { recursive: true, force: true });
  }
});

test("a store image is in use while a registered user needs it: an environment recording it, or a path that exists", () => {
  const dir = tmp();
  try {
    const image = path.join(dir, "store", "r:t:v1");
    const envDir = path.join(dir, "w", ".lago", "default");
    mkdirSync(envDir, { recursive: true });
    stateWith(path.join(envDir, "state.json"), image);
    assert.equal(userNeeds(envDir, image), true);
    assert.equal(userNeeds(envDir, path.join(dir, "store", "r:t:v2")), false, "the environment records another template");
    assert.equal(userNeeds(path.join(dir, "gone"), image), false, "a destroyed environment or a removed layer");
    writeFileSync(path.join(dir, "layer.qcow2"), "");
    assert.equal(userNeeds(path.join(dir, "layer.qcow2"), image), true, "an exported layer");
    assert.equal(userNeeds("lago template fetch 123", image), false, "not a path");
    mkdirSync(path.join(dir, "w", ".lago", "being-applied"));
    assert.equal(userNeeds(path.join(dir, "w", ".lago", "being-applied"), image), true, "an environment without a state yet");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prune removes only the images nobody uses, with their side files; --dry-run removes nothing", async () => {
  const dir = tmp();
  try {
    const store = path.join(dir, "store");
    mkdirSync(store);
    const envDir = path.join(dir, "w", ".lago", "default");
    mkdirSync(envDir, { recursive: true });
    const add = (key: string, users: string[]): void => {
      writeFileSync(path.join(store, key), "image");
      writeFileSync(path.join(store, `${key}.hash`), "0123456789abcdef0123456789abcdef01234567");
      writeFileSync(path.join(store, `${key}.metadata`), "{}");
      writeFileSync(path.join(store, `${key}.size`), "5\n");
      writeFileSync(path.join(store, `${key}.users`), JSON.stringify({ users: Object.fromEntries(users.map((u) => [u, ""])), last_access: 0 }));
    };
    add("r:used:v1", [envDir]);
    add("r:stale:v1", [path.join(dir, "destroyed-env")]);
    add("r:nobody:v1", []);
    stateWith(path.join(envDir, "state.json"), path.join(store, "r:used:v1"));
    const env = makeEnvContext(path.join(dir, "w", ".lago"), "default", loadConfig({}, { "init.template_store": store }, []));
    const ctx = makeOpsContext(env);
    const dry = await pruneTemplates(ctx, { dryRun: true });
    assert.deepEqual(dry.removed.map((i) => i.key), ["r:nobody:v1", "r:stale:v1"]);
    assert.equal(readdirSync(store).length, 15);
    const done = await pruneTemplates(ctx, { dryRun: false });
    assert.deepEqual(done.removed.map((i) => i.key), ["r:nobody:v1", "r:stale:v1"]);
    assert.deepEqual(done.kept.map((i) => [i.key, i.liveUsers]), [["r:used:v1", [envDir]]]);
    assert.deepEqual(readdirSync(store).sort(), ["r:used:v1", "r:used:v1.hash", "r:used:v1.metadata", "r:used:v1.size", "r:used:v1.users"]);
    assert.deepEqual((await new TemplateStoreAdmin(store).list()).map((i) => i.key), ["r:used:v1"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an image whose lock another process holds is not removed", async () => {
  const dir = tmp();
  try {
    const store = path.join(dir, "store");
    mkdirSync(store, { recursive: true });
    writeFileSync(path.join(store, "r:t:v1"), "image");
    writeFileSync(path.join(store, "r:t:v1.hash"), "0123456789abcdef0123456789abcdef01234567");
    // The lock a download takes (template-store.ts), held by a live process.
    const held = await acquireDirLock(path.join(store, "r:t:v1.lockdir"), { command: "lago apply", timeoutMs: 0 });
    try {
      await assert.rejects(new TemplateStoreAdmin(store).removeIfUnused("r:t:v1", () => true), /template r:t:v1 is in use by PID \d+ \(lago apply\)/);
      assert.ok(existsSync(path.join(store, "r:t:v1")));
      assert.deepEqual((await new TemplateStoreAdmin(store).list()).map((i) => i.key), ["r:t:v1"], "the lock is not listed as an image");
    } finally {
      await held.release();
    }
    assert.equal(await new TemplateStoreAdmin(store).removeIfUnused("r:t:v1", () => true), true, "removed once the lock is released");
    assert.equal(existsSync(path.join(store, "r:t:v1")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("prune removes the build layers whose VM disks are gone, then a template only they used (real qemu-img)", async () => {
  const dir = tmp();
  try {
    const repo = path.join(dir, "repo");
    mkdirSync(repo);
    const image = path.join(repo, "base.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "8M"]);
    writeFileSync(`${image}.hash`, createHash("sha1").update(readFileSync(image)).digest("hex"));
    const store = path.join(dir, "store");
    const images = new QemuImg();
    const templates = new FsTemplateStore(store, images);
    const ref: TemplateRef = { repo: "r", name: "base", version: "v1", handle: "base.qcow2", source: { type: "file", location: repo } };
    // The template's only environment was removed without destroy: only the layers keep it.
    const stored = await templates.ensure(ref, path.join(dir, "removed-env"));
    const layers = new FsLayerStore(store, images, templates);
    const liveDisk = path.join(dir, "env", "root.qcow2");
    mkdirSync(path.dirname(liveDisk));
    writeFileSync(liveDisk, "");
    const layer = (key: string, user: string) =>
      layers.ensure({ key, template: { path: stored.path, format: stored.format }, templateRef: ref, manifest: { steps: [] }, user, build: async () => undefined });
    const kept = await layer("a".repeat(64), liveDisk);
    const stale = await layer("b".repeat(64), path.join(dir, "gone-env", "root.qcow2"));
    const env = makeEnvContext(path.join(dir, "w", ".lago"), "default", loadConfig({}, { "init.template_store": store }, []));
    const ctx = makeOpsContext(env);

    const dry = await pruneTemplates(ctx, { dryRun: true });
    assert.deepEqual(dry.layers.removed.map((l) => l.key), [stale.key]);
    assert.deepEqual(dry.layers.kept.map((l) => [l.key, l.liveUsers]), [[kept.key, [liveDisk]]]);
    assert.deepEqual(dry.kept.map((i) => [i.key, i.liveUsers]), [["r:base:v1", [kept.path]]]);
    assert.ok(existsSync(stale.path), "a dry run removes nothing");

    const once = await pruneTemplates(ctx, { dryRun: false });
    assert.deepEqual(once.layers.removed.map((l) => l.key), [stale.key]);
    assert.equal(existsSync(stale.path), false);
    assert.deepEqual(readdirSync(path.join(store, "layers")).sort(), [`${kept.key}.json`, `${kept.key}.qcow2`, `${kept.key}.users`]);
    assert.deepEqual(once.removed, [], "the template still backs a layer in use");

    // The last VM disk on the layer goes: the layer goes, and the template it alone kept, in one run.
    rmSync(liveDisk);
    const dryAll = await pruneTemplates(ctx, { dryRun: true });
    assert.deepEqual([dryAll.layers.removed.map((l) => l.key), dryAll.removed.map((i) => i.key)], [[kept.key], ["r:base:v1"]]);
    const all = await pruneTemplates(ctx, { dryRun: false });
    assert.deepEqual([all.layers.removed.map((l) => l.key), all.removed.map((i) => i.key), all.kept], [[kept.key], ["r:base:v1"], []]);
    assert.deepEqual(readdirSync(path.join(store, "layers")), []);
    assert.deepEqual(readdirSync(store), ["layers"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
