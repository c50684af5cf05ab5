/**
 * Errors on the real drivers say what failed, where, why and what to do next:
 * `lago apply` with the real virsh against a libvirt socket nobody listens on,
 * run by a user who may not write the template store. Touches no libvirtd.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { makeSandbox, REPO_ROOT } from "../helpers/sandbox.ts";

test("real drivers: no libvirtd and an unwritable template store each get their next step, exit 1, no stack trace", () => {
  const sb = makeSandbox();
  try {
    // As root, drop to nobody (root may write anywhere); as anyone else, the store is simply not ours to write.
    const asRoot = process.getuid?.() === 0;
    chmodSync(sb.root, 0o755);
    for (const d of [sb.work, path.join(sb.root, "home"), path.join(sb.root, "leases")]) {
      mkdirSync(d, { recursive: true });
      chmodSync(d, 0o777);
    }
    mkdirSync(path.join(sb.root, "store"), { mode: 0o555 });
    sb.init("domains:\n  vm01:\n    nics: [{net: lago}]\n    disks:\n      - {template_name: tiny, name: root, dev: vda}\nnets:\n  lago: {type: nat}\n");
    chmodSync(path.join(sb.work, "LagoInitFile"), 0o644);
    const env = sb.env({ LAGO_LIBVIRT_URI: `qemu+unix:///system?socket=${sb.root}/nobody-listens.sock`, LAGO_DOMAIN_TYPE: "qemu" });
    delete env.LAGO_DRIVER;
    const lago = [process.execPath, path.join(REPO_ROOT, "bin", "lago.js"), "apply", "--auto-approve"];
    const cmd = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...lago] : lago;
    const r = spawnSync(cmd[0] ?? "", cmd.slice(1), { cwd: sb.work, env, encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 1, r.stderr);
    const store = path.join(sb.root, "store");
    assert.match(r.stderr, new RegExp(`Error: template\\.test-repo:tiny:v2: .*EACCES: permission denied.*\\nhint: the template store ${store} is not writable for you: .*--template-store DIR`));
    assert.match(
      r.stderr,
      /Error: network\.lago: command `virsh -c "qemu\+unix:\/\/\/system\?socket=\S+nobody-listens\.sock" -q net-define \S+\/object\.xml` exited with code 1:\n {2}error: failed to connect to the hypervisor\n {2}error: Failed to connect socket to '\S+': No such file or directory\nhint: libvirtd is not running \(nothing listens on \S+nobody-listens\.sock\): start it with `systemctl start libvirtd`/,
    );
    assert.match(r.stdout, /disk\.vm01\.root: not created: template\.test-repo:tiny:v2 did not create/);
    assert.doesNotMatch(r.stderr, /Internal error|\n\s+at /);
  } finally {
    sb.cleanup();
  }
});
