/**
 * The build-layer store against the real qemu-img (and qemu-io to write a layer's
 * content, standing in for virt-customize, which the end-to-end suite runs), and the
 * cloud-init seed image against the real genisoimage.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LagoError } from "../../src/errors.ts";
import type { LayerRequest, TemplateRef } from "../../src/drivers/types.ts";
import { FsLayerStore } from "../../src/drivers/real/layer-store.ts";
import { QemuImg } from "../../src/drivers/real/qemu-img.ts";
import { FsTemplateStore } from "../../src/drivers/real/template-store.ts";
import { GenisoimageSeeds } from "../../src/drivers/real/seed-image.ts";

type Ctx = { after: (fn: () => Promise<void> | void) => void };

async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-layers-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface World {
  store: string;
  layers: FsLayerStore;
  templates: FsTemplateStore;
  ref: TemplateRef;
  template: { path: string; format: string };
}

/** A file repository with one small qcow2 template, ensured into a fresh store. */
async function world(t: Ctx): Promise<World> {
  const dir = await tempDir(t);
  const repo = path.join(dir, "repo");
  await mkdir(repo);
  const image = path.join(repo, "base.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "8M"]);
  await writeFile(`${image}.hash`, createHash("sha1").update(await readFile(image)).digest("hex"));
  const store = path.join(dir, "store");
  const images = new QemuImg();
  const templates = new FsTemplateStore(store, images);
  const ref: TemplateRef = { repo: "r", name: "base", version: "v1", handle: "base.qcow2", source: { type: "file", location: repo } };
  const stored = await templates.ensure(ref, "/env/one");
  return { store, layers: new FsLayerStore(store, images, templates, { lockWaitMs: 30_000 }), templates, ref, template: { path: stored.path, format: stored.format } };
}

const KEY = "a".repeat(64);

function request(w: World, over: Partial<LayerRequest> = {}): LayerRequest {
  return {
    key: KEY,
    template: w.template,
    templateRef: w.ref,
    manifest: { steps: ["--touch", "/x"] },
    user: "/env/one/vms/vm01/disks/root.qcow2",
    build: async (tmp) => {
      execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 64k", tmp], { stdio: "ignore" });
    },
    ...over,
  };
}

async function usersOf(file: string): Promise<string[]> {
  return Object.keys((JSON.parse(await readFile(file, "utf8")) as { users: Record<string, string> }).users);
}

test("a layer is built once, read-only, backed by its template, and registered both ways", async (t) => {
  const w = await world(t);
  let builds = 0;
  const req = request(w, {
    build: async (tmp) => {
      builds++;
      execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 64k", tmp], { stdio: "ignore" });
    },
  });
  assert.equal(await w.layers.lookup(KEY), undefined);
  const first = await w.layers.ensure(req);
  assert.equal(first.cached, false);
  assert.equal(first.path, path.join(w.store, "layers", `${KEY}.qcow2`));
  const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", first.path], { encoding: "utf8" })) as Record<string, unknown>;
  assert.equal(info.format, "qcow2");
  assert.equal(info["backing-filename"], w.template.path);
  assert.equal((await stat(first.path)).mode & 0o777, 0o444, "never modified once published");
  assert.match(execFileSync("qemu-io", ["-r", "-f", "qcow2", "-c", "read -P 0xab 0 64k", first.path], { encoding: "utf8" }), /read 65536\/65536 bytes/);
  assert.deepEqual(await usersOf(path.join(w.store, "layers", `${KEY}.users`)), ["/env/one/vms/vm01/disks/root.qcow2"]);
  assert.deepEqual((await usersOf(`${w.template.path}.users`)).sort(), ["/env/one", first.path].sort(), "the layer keeps its template");

  assert.deepEqual(first.users, ["/env/one/vms/vm01/disks/root.qcow2"]);
  const again = await w.layers.ensure({ ...req, user: "/env/two/vms/vm01/disks/root.qcow2" });
  const both = ["/env/one/vms/vm01/disks/root.qcow2", "/env/two/vms/vm01/disks/root.qcow2"];
  assert.deepEqual(again, { ...first, users: both, cached: true });
  assert.equal(builds, 1);
  assert.deepEqual(await usersOf(path.join(w.store, "layers", `${KEY}.users`)), ["/env/one/vms/vm01/disks/root.qcow2", "/env/two/vms/vm01/disks/root.qcow2"]);
  assert.deepEqual(await w.layers.lookup(KEY), { key: KEY, path: first.path, template: w.template.path, users: both });
  const [listed] = await w.layers.list();
  assert.equal(listed?.key, KEY);
  assert.ok(listed && listed.bytes > 0);
  assert.deepEqual(listed?.manifest.build, { steps: ["--touch", "/x"] });
});

test("many concurrent ensures of one key build it once; the others wait and get it cached", async (t) => {
  const w = await world(t);
  let builds = 0;
  const results = await Promise.all(
    Array.from({ length: 4 }, (_, i) =>
      w.layers.ensure(
        request(w, {
          user: `/env/${i}/disk.qcow2`,
          build: async (tmp) => {
            builds++;
            await new Promise((r) => setTimeout(r, 300));
            execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xcd 0 4k", tmp], { stdio: "ignore" });
          },
        }),
      ),
    ),
  );
  assert.equal(builds, 1);
  assert.deepEqual(results.map((r) => r.cached).sort(), [false, true, true, true]);
  assert.equal((await usersOf(path.join(w.store, "layers", `${KEY}.users`))).length, 4);
});

test("a failed build leaves no layer, no temporary file and no user", async (t) => {
  const w = await world(t);
  await assert.rejects(
    w.layers.ensure(
      request(w, {
        build: async () => {
          throw new LagoError("COMMAND_FAILED", "virt-customize exited with code 1");
        },
      }),
    ),
    /virt-customize exited with code 1/,
  );
  assert.equal(await w.layers.lookup(KEY), undefined);
  const left = await readdir(path.join(w.store, "layers"));
  assert.deepEqual(left.filter((f) => f.endsWith(".qcow2") || f.endsWith(".tmp") || f.endsWith(".json")), []);
  assert.deepEqual(await usersOf(path.join(w.store, "layers", `${KEY}.users`)), []);
  // A build that does not leave an overlay on the template is refused.
  await assert.rejects(
    w.layers.ensure(request(w, { build: async (tmp) => void execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", tmp, "8M"]) })),
    /expected a qcow2 overlay on .*r:base:v1, got qcow2 backed by nothing/,
  );
  assert.equal(await w.layers.lookup(KEY), undefined);
});

test("prune removes only unused layers and releases their template; release keeps the layer as a cache", async (t) => {
  const w = await world(t);
  const other = "b".repeat(64);
  const a = await w.layers.ensure(request(w));
  const b = await w.layers.ensure(request(w, { key: other, user: "/env/two/disk.qcow2" }));
  await w.layers.release(KEY, "/env/one/vms/vm01/disks/root.qcow2");
  assert.ok(await w.layers.lookup(KEY), "released, still cached");
  assert.deepEqual(await w.layers.prune(), [KEY]);
  assert.equal(existsSync(a.path), false);
  assert.equal(await w.layers.lookup(KEY), undefined);
  assert.ok(await w.layers.lookup(other), "a layer in use stays");
  assert.deepEqual((await usersOf(`${w.template.path}.users`)).sort(), ["/env/one", b.path].sort());
  assert.deepEqual(
    (await w.layers.list()).map((l) => [l.key, l.users]),
    [[other, ["/env/two/disk.qcow2"]]],
  );
});

test("hashFiles: contents, names and modes of files and trees; a missing file is a clear error", async (t) => {
  const dir = await tempDir(t);
  const layers = new FsLayerStore(dir, new QemuImg(), new FsTemplateStore(dir, new QemuImg()));
  await mkdir(path.join(dir, "tree", "sub"), { recursive: true });
  await writeFile(path.join(dir, "tree", "sub", "a"), "one");
  await writeFile(path.join(dir, "file"), "hello");
  const h1 = await layers.hashFiles([path.join(dir, "file"), path.join(dir, "tree")]);
  assert.equal(h1[path.join(dir, "file")], createHash("sha256").update("hello").digest("hex"));
  assert.match(String(h1[path.join(dir, "tree")]), /^tree:[0-9a-f]{64}$/);
  await chmod(path.join(dir, "tree", "sub", "a"), 0o755);
  const h2 = await layers.hashFiles([path.join(dir, "tree")]);
  assert.notEqual(h2[path.join(dir, "tree")], h1[path.join(dir, "tree")]);
  await writeFile(path.join(dir, "tree", "sub", "a"), "two");
  const h3 = await layers.hashFiles([path.join(dir, "tree")]);
  assert.notEqual(h3[path.join(dir, "tree")], h2[path.join(dir, "tree")]);
  await assert.rejects(layers.hashFiles([path.join(dir, "nope")]), /cannot read .*nope, which a build step uses/);
});

test("the cloud-init seed is an ISO 9660 image labelled cidata with meta-data and user-data, mode 0600", async (t) => {
  const dir = await tempDir(t);
  const seeds = new GenisoimageSeeds();
  const file = path.join(dir, "vms", "vm01", "cidata.iso");
  await seeds.write(file, { metaData: 'instance-id: "lago-1"\nlocal-hostname: "vm01"\n', userData: "#cloud-config\nhostname: vm01\n" });
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.match(execFileSync("isoinfo", ["-d", "-i", file], { encoding: "utf8" }), /Volume id: cidata/);
  assert.equal(execFileSync("isoinfo", ["-R", "-i", file, "-x", "/user-data"], { encoding: "utf8" }), "#cloud-config\nhostname: vm01\n");
  assert.equal(execFileSync("isoinfo", ["-R", "-i", file, "-x", "/meta-data"], { encoding: "utf8" }), 'instance-id: "lago-1"\nlocal-hostname: "vm01"\n');
  assert.deepEqual((await readdir(path.dirname(file))).sort(), ["cidata.iso"], "no temporary files left");
  await seeds.write(file, { metaData: "instance-id: x\n", userData: "#cloud-config\n" });
  assert.equal(execFileSync("isoinfo", ["-R", "-i", file, "-x", "/meta-data"], { encoding: "utf8" }), "instance-id: x\n");
  await seeds.remove(file);
  await seeds.remove(file);
  assert.equal(existsSync(file), false);
});
