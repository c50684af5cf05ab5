/**
 * Least privilege for qemu (src/drivers/real/qemu-access.ts): libvirt's
 * qemu.conf, the search rule, and what grantQemuAccess changes and refuses on
 * real files (run as root, like the rest of the suite: it chowns).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { LagoError } from "../../src/errors.ts";
import { accountFromFiles, canSearch, grantQemuAccess, libvirtQemuIdentity, parseQemuConf, type QemuIdentity } from "../../src/drivers/real/qemu-access.ts";

const QEMU: QemuIdentity = { user: "qemu-test", uid: 64999, gid: 64998, groups: [64998, 64997] };

function mode(p: string): string {
  return (statSync(p).mode & 0o7777).toString(8).padStart(4, "0");
}

test("parseQemuConf: uncommented user and group only", () => {
  assert.deepEqual(parseQemuConf('#user = "libvirt-qemu"\n#group = "libvirt-qemu"\n'), {});
  assert.deepEqual(parseQemuConf('user = "qemu"  # a comment\n  group="+107"\nuser_x = "no"\n'), { user: "qemu", group: "+107" });
});

test("canSearch follows the owner, else group, else other x bit; root searches anything", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0o777 }), fc.constantFrom(0, 5, 7), fc.constantFrom(0, 5, 7), fc.constantFrom(0, 7, 64999), (m, uid, gid, who) => {
      const id = { uid: who, groups: who === 64999 ? [7] : [who] };
      const expected = who === 0 || (uid === who ? (m & 0o100) !== 0 : id.groups.includes(gid) ? (m & 0o010) !== 0 : (m & 0o001) !== 0);
      assert.equal(canSearch({ uid, gid, mode: m }, id), expected);
    }),
  );
});

test("libvirt's qemu user on this host (Debian: libvirt-qemu, group libvirt-qemu, with kvm)", async () => {
  const id = await libvirtQemuIdentity();
  assert.ok(id, "libvirt's qemu user exists");
  assert.equal(id.user, "libvirt-qemu");
  assert.notEqual(id.uid, 0);
  assert.ok(id.groups.includes(id.gid));
});

test("grantQemuAccess: lago's directories become 0710 for qemu's group, disks 0600, store images 0640; others' untouched", { skip: process.geteuid?.() !== 0 && "needs root (chown)" }, async (t) => {
  const top = mkdtempSync(path.join(os.tmpdir(), "lago-access-"));
  t.after(() => rmSync(top, { recursive: true, force: true }));
  chmodSync(top, 0o711);
  const project = path.join(top, "project");
  const workdir = path.join(project, ".lago");
  const disks = path.join(workdir, "default", "vms", "vm01", "disks");
  const store = path.join(top, "store");
  mkdirSync(disks, { recursive: true, mode: 0o755 });
  mkdirSync(store, { mode: 0o755 });
  chmodSync(project, 0o755);
  const disk = path.join(disks, "root.qcow2");
  const template = path.join(store, "repo:t:v1");
  writeFileSync(disk, "", { mode: 0o644 });
  writeFileSync(template, "", { mode: 0o644 });
  writeFileSync(path.join(workdir, "default", "state.json"), "{}", { mode: 0o600 });
  await grantQemuAccess([disk, template], [path.dirname(disks)], QEMU, { workdir, stores: [store] });
  for (const d of [workdir, path.join(workdir, "default"), path.dirname(disks), disks, store]) {
    assert.equal(mode(d), "0710", d);
    assert.equal(statSync(d).gid, QEMU.gid, d);
  }
  assert.equal(mode(project), "0755");
  assert.equal(mode(top), "0711");
  assert.equal(mode(disk), "0600");
  assert.equal(mode(template), "0640");
  assert.equal(mode(path.join(workdir, "default", "state.json")), "0600");
  // Idempotent.
  await grantQemuAccess([disk, template], [], QEMU, { workdir, stores: [store] });
  assert.equal(mode(disks), "0710");
});

test("grantQemuAccess refuses a directory that is not lago's and keeps qemu out, naming it, before changing anything", { skip: process.geteuid?.() !== 0 && "needs root (chown)" }, async (t) => {
  const top = mkdtempSync(path.join(os.tmpdir(), "lago-access-"));
  t.after(() => rmSync(top, { recursive: true, force: true }));
  assert.equal(mode(top), "0700");
  const workdir = path.join(top, ".lago");
  const disks = path.join(workdir, "default", "vms", "vm01", "disks");
  mkdirSync(disks, { recursive: true, mode: 0o755 });
  const disk = path.join(disks, "root.qcow2");
  writeFileSync(disk, "", { mode: 0o644 });
  await assert.rejects(grantQemuAccess([disk], [], QEMU, { workdir, stores: [] }), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "QEMU_ACCESS");
    assert.equal(err.message, `qemu runs as qemu-test (uid 64999), which cannot reach ${disk}: ${top} (mode 0700, owner uid 0, group gid 0) does not let it search`);
    assert.match(err.hint ?? "", new RegExp(`chmod o\\+x ${top}.*setfacl -m u:qemu-test:x ${top}.*qemu_user=invoking`));
    return true;
  });
  assert.equal(mode(workdir), "0755");
  assert.equal(mode(disk), "0644");
  // The owner (the invoking user) and root need nothing.
  await grantQemuAccess([disk], [], { user: "root", uid: 0, gid: 0, groups: [0] }, { workdir, stores: [] });
  assert.equal(mode(disk), "0644");
});

test("accountFromFiles reads passwd/group text as id does for a local user", () => {
  const passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nlibvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nnogroup-user:x:2000:2000::/:/bin/false\n";
  const group = "root:x:0:\nkvm:x:104:libvirt-qemu,alice\nlibvirt-qemu:x:64055:libvirt-qemu\nlibvirt:x:108:\nqemugrp:x:777:\n";
  // The group named like the user wins over the primary group (as getent group NAME did); both are kept.
  assert.deepEqual(accountFromFiles("libvirt-qemu", passwd, group), { uid: 64055, gid: 64055, groups: [64055, 108, 104] });
  assert.deepEqual(accountFromFiles("libvirt-qemu", passwd, group, "qemugrp"), { uid: 64055, gid: 777, groups: [777, 108, 104, 64055] });
  assert.deepEqual(accountFromFiles("libvirt-qemu", passwd, group, "+5"), { uid: 64055, gid: 5, groups: [5, 108, 104, 64055] });
  assert.deepEqual(accountFromFiles("nogroup-user", passwd, group), { uid: 2000, gid: 2000, groups: [2000] });
  // Not settled by the files: the name service decides.
  assert.equal(accountFromFiles("qemu", passwd, group), undefined);
  assert.equal(accountFromFiles("libvirt-qemu", passwd, group, "ldap-only"), undefined);
});

test("libvirt's qemu user from the account files is what id and getent say", async () => {
  const id = await libvirtQemuIdentity();
  assert.ok(id);
  const viaTools = await libvirtQemuIdentity(undefined, { passwd: "/nonexistent", group: "/nonexistent" });
  assert.ok(viaTools);
  assert.deepEqual({ ...id, groups: [...id.groups].sort() }, { ...viaTools, groups: [...viaTools.groups].sort() });
});
