import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CommandError } from "../../src/errors.ts";
import { VirtCustomize } from "../../src/drivers/real/virt-customize.ts";

// virt-customize inspects the guest for an operating system before any
// operation, so on a disk without one it must fail. The positive case
// (--touch, --ssh-inject on a bootable guest) is covered by the e2e suite.
test("a failing virt-customize run surfaces a CommandError with the command and its stderr", { timeout: 300_000 }, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-customize-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const disk = path.join(dir, "blank.qcow2");
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "64M"]);
  const progress: string[] = [];
  const customize = new VirtCustomize({ forceTcg: true });
  await assert.rejects(customize.run(disk, ["--no-network", "--touch", "/hello"], { progress: (m) => progress.push(m) }), (err: unknown) => {
    assert.ok(err instanceof CommandError, String(err));
    assert.deepEqual(err.command, ["virt-customize", "-a", disk, "--no-network", "--touch", "/hello"]);
    assert.equal(err.exitCode, 1);
    assert.match(err.stderr, /no operating systems were found in the guest image/);
    assert.match(err.message, /^command `virt-customize -a \S+blank\.qcow2 --no-network --touch \/hello` exited with code 1:\n/);
    return true;
  });
  assert.ok(progress.some((l) => /Examining the guest/.test(l)), progress.join("\n"));
});
