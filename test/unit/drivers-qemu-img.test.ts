import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LagoError } from "../../src/errors.ts";
import { QemuImg } from "../../src/drivers/real/qemu-img.ts";

const MiB = 1024 * 1024;

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-qemu-img-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("createBlank makes thin raw and qcow2 disks of the given size, creating parent dirs", async (t) => {
  const dir = await tempDir(t);
  const img = new QemuImg();
  const raw = path.join(dir, "a", "b", "blank.raw");
  await img.createBlank(raw, "raw", 64 * MiB);
  assert.deepEqual(await img.info(raw), { format: "raw", virtualSize: 64 * MiB, backingFile: undefined, backingFormat: undefined });
  const st = await stat(raw);
  assert.equal(st.size, 64 * MiB);
  assert.ok(st.blocks * 512 < MiB, `raw disk is not sparse: ${st.blocks * 512} bytes allocated`);

  const qcow = path.join(dir, "blank.qcow2");
  await img.createBlank(qcow, "qcow2", 10 * MiB);
  assert.deepEqual(await img.info(qcow), { format: "qcow2", virtualSize: 10 * MiB, backingFile: undefined, backingFormat: undefined });
  assert.deepEqual((await readdir(dir)).sort(), ["a", "blank.qcow2"]);
});

test("createOverlay names its backing file and can grow; a smaller size is refused", async (t) => {
  const dir = await tempDir(t);
  const img = new QemuImg();
  const base = path.join(dir, "base.qcow2");
  await img.createBlank(base, "qcow2", 8 * MiB);

  const same = path.join(dir, "vm", "same.qcow2");
  await img.createOverlay(same, base, "qcow2", undefined);
  assert.deepEqual(await img.info(same), { format: "qcow2", virtualSize: 8 * MiB, backingFile: base, backingFormat: "qcow2" });

  const big = path.join(dir, "vm", "big.qcow2");
  await img.createOverlay(big, base, "qcow2", 20 * MiB);
  assert.deepEqual(await img.info(big), { format: "qcow2", virtualSize: 20 * MiB, backingFile: base, backingFormat: "qcow2" });
  assert.equal(existsSync(`${big}.tmp`), false);

  const small = path.join(dir, "vm", "small.qcow2");
  await assert.rejects(img.createOverlay(small, base, "qcow2", 4 * MiB), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "IMAGE_SHRINK");
    assert.match(err.message, /backing image .*base\.qcow2 has 8388608 bytes and an overlay cannot be smaller/);
    return true;
  });
  assert.equal(existsSync(small), false);

  await assert.rejects(img.createOverlay(path.join(dir, "x.qcow2"), path.join(dir, "nope.qcow2"), "qcow2", undefined), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "COMMAND_FAILED");
    assert.match(err.message, /^command `qemu-img create .*nope\.qcow2/);
    return true;
  });
  assert.deepEqual((await readdir(dir)).sort(), ["base.qcow2", "vm"]);
});

test("resize grows, keeps an equal size, and refuses to shrink", async (t) => {
  const dir = await tempDir(t);
  const img = new QemuImg();
  const disk = path.join(dir, "d.qcow2");
  await img.createBlank(disk, "qcow2", 10 * MiB);
  await img.resize(disk, "qcow2", 30 * MiB);
  assert.equal((await img.info(disk))?.virtualSize, 30 * MiB);
  await img.resize(disk, "qcow2", 30 * MiB);
  await assert.rejects(img.resize(disk, "qcow2", 5 * MiB), {
    code: "IMAGE_SHRINK",
    message: `refusing to shrink ${disk} from ${30 * MiB} to ${5 * MiB} bytes: shrinking a disk destroys the data at its end`,
  });
  assert.equal((await img.info(disk))?.virtualSize, 30 * MiB);

  const raw = path.join(dir, "r.raw");
  await img.createBlank(raw, "raw", MiB);
  await img.resize(raw, "raw", 3 * MiB);
  assert.equal((await stat(raw)).size, 3 * MiB);
});

test("info is undefined for a missing file; remove tolerates absence", async (t) => {
  const dir = await tempDir(t);
  const img = new QemuImg();
  assert.equal(await img.info(path.join(dir, "missing.qcow2")), undefined);
  const disk = path.join(dir, "d.qcow2");
  await img.createBlank(disk, "qcow2", MiB);
  await img.remove(disk);
  await img.remove(disk);
  assert.equal(existsSync(disk), false);
  await assert.rejects(img.resize(disk, "qcow2", 2 * MiB), { code: "IMAGE_MISSING" });
});

test("the in-process header reader agrees with `qemu-img info` on every kind of image lago makes or reads", async (t) => {
  const dir = await tempDir(t);
  const { execFileSync } = await import("node:child_process");
  const { readImageHead } = await import("../../src/drivers/real/qcow2-header.ts");
  const qemu = (file: string) => {
    const doc = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", file], { encoding: "utf8" }));
    return { format: doc.format, virtualSize: doc["virtual-size"], backingFile: doc["full-backing-filename"] ?? doc["backing-filename"], backingFormat: doc["backing-filename-format"] };
  };
  const make = (...args: string[]) => execFileSync("qemu-img", ["create", "-q", ...args]);
  const base = path.join(dir, "base.qcow2");
  make("-f", "qcow2", base, String(8 * MiB));
  const cases: [string, boolean][] = [[base, false]];
  const v2 = path.join(dir, "v2.qcow2");
  make("-f", "qcow2", "-o", "compat=0.10", v2, "3M");
  cases.push([v2, false]);
  const overlay = path.join(dir, "a dir", "overlay.qcow2");
  await (await import("node:fs/promises")).mkdir(path.dirname(overlay));
  make("-f", "qcow2", "-b", base, "-F", "qcow2", overlay, String(16 * MiB));
  cases.push([overlay, false]);
  const rawBase = path.join(dir, "base.raw");
  make("-f", "raw", rawBase, "5M");
  cases.push([rawBase, true]);
  const onRaw = path.join(dir, "on-raw.qcow2");
  make("-f", "qcow2", "-b", rawBase, "-F", "raw", onRaw);
  cases.push([onRaw, false]);
  for (const [file, expectRaw] of cases) {
    const head = await readImageHead(file, expectRaw);
    assert.equal(head.exists, true);
    assert.deepEqual(head.info, qemu(file), file);
  }
  // A format lago does not make itself is left to qemu-img, whatever the caller expects.
  const vmdk = path.join(dir, "x.vmdk");
  make("-f", "vmdk", vmdk, "1M");
  assert.equal((await readImageHead(vmdk, true)).info, undefined);
  assert.equal((await new QemuImg().info(vmdk, { expectFormat: "raw" }))?.format, "vmdk");
  // A raw file is only called raw when lago made it raw.
  assert.equal((await readImageHead(rawBase, false)).info, undefined);
  assert.deepEqual(await readImageHead(path.join(dir, "absent"), true), { exists: false, info: undefined });
});

test("the in-process backing-chain walk names the files `qemu-img info --backing-chain` names, or defers to it", async (t) => {
  const dir = await tempDir(t);
  const { execFileSync } = await import("node:child_process");
  const { mkdir, readFile, symlink, writeFile } = await import("node:fs/promises");
  const { imageChain } = await import("../../src/drivers/real/qcow2-header.ts");
  const qemu = (file: string, format: string): string[] =>
    (JSON.parse(execFileSync("qemu-img", ["info", "--backing-chain", "--output=json", "-U", "-f", format, file], { encoding: "utf8" })) as { filename: string }[]).map((l) => l.filename);
  const make = (...args: string[]) => execFileSync("qemu-img", ["create", "-q", ...args], { cwd: dir });
  await mkdir(path.join(dir, "store", "layers"), { recursive: true });
  await mkdir(path.join(dir, "vm"));
  const rawBase = path.join(dir, "store", "base.raw");
  make("-f", "raw", rawBase, "4M");
  const template = path.join(dir, "store", "template.qcow2");
  make("-f", "qcow2", template, "4M");
  // A build layer naming its template relatively, a disk naming the layer absolutely, one with no backing format (probed).
  const layer = path.join(dir, "store", "layers", "layer.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "../template.qcow2", "-F", "qcow2", "layer.qcow2"], { cwd: path.dirname(layer) });
  const disk = path.join(dir, "vm", "disk.qcow2");
  make("-f", "qcow2", "-b", layer, "-F", "qcow2", disk);
  const onRaw = path.join(dir, "vm", "on-raw.qcow2");
  make("-f", "qcow2", "-b", rawBase, "-F", "raw", onRaw);
  const probed = path.join(dir, "vm", "probed.qcow2");
  make("-f", "qcow2", "-b", template, "-F", "qcow2", probed);
  // As older tools made them: no backing format (qemu-img 7 refuses to write one), its header extension renamed to one qemu ignores.
  const bytes = await readFile(probed);
  const at = bytes.indexOf(Buffer.from([0xe2, 0x79, 0x2a, 0xca]));
  assert.ok(at > 0 && at < 4096);
  bytes.writeUInt32BE(0x0000abcd, at);
  await writeFile(probed, bytes);
  assert.equal(JSON.parse(execFileSync("qemu-img", ["info", "--output=json", probed], { encoding: "utf8" }))["backing-filename-format"], undefined);
  const linked = path.join(dir, "vm", "linked.qcow2");
  await symlink(disk, linked);
  for (const [file, format] of [
    [disk, "qcow2"],
    [onRaw, "qcow2"],
    [probed, "qcow2"],
    [template, "qcow2"],
    [rawBase, "raw"],
    [disk, "raw"],
    [linked, "qcow2"],
  ] as const) {
    assert.deepEqual(await imageChain(file, format), qemu(file, format), `${file} as ${format}`);
  }
  assert.deepEqual(await imageChain(disk, "qcow2"), [disk, layer, `${path.dirname(layer)}/../template.qcow2`]);
  // What the headers cannot tell is left to qemu-img: a missing file or backing, a declared format the file does not have,
  // a format lago does not read, a protocol backing, a loop.
  assert.equal(await imageChain(path.join(dir, "absent.qcow2"), "qcow2"), undefined);
  const orphan = path.join(dir, "vm", "orphan.qcow2");
  make("-f", "qcow2", "-u", "-b", path.join(dir, "gone.qcow2"), "-F", "qcow2", orphan, "4M");
  assert.equal(await imageChain(orphan, "qcow2"), undefined);
  assert.equal(await imageChain(rawBase, "qcow2"), undefined);
  const vmdk = path.join(dir, "x.vmdk");
  make("-f", "vmdk", vmdk, "1M");
  assert.equal(await imageChain(vmdk, "vmdk"), undefined);
  const nbd = path.join(dir, "vm", "nbd.qcow2");
  make("-f", "qcow2", "-u", "-b", "nbd://127.0.0.1:1/x", "-F", "raw", nbd, "4M");
  assert.equal(await imageChain(nbd, "qcow2"), undefined);
  const loopA = path.join(dir, "vm", "loop-a.qcow2");
  const loopB = path.join(dir, "vm", "loop-b.qcow2");
  make("-f", "qcow2", "-u", "-b", loopB, "-F", "qcow2", loopA, "4M");
  make("-f", "qcow2", "-u", "-b", loopA, "-F", "qcow2", loopB, "4M");
  assert.equal(await imageChain(loopA, "qcow2"), undefined);
});
