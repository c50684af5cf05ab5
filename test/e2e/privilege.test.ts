/**
 * Least privilege on the real stack: under the default configuration (lago as
 * root, `qemu_user = auto`), qemu runs as libvirt's qemu user with libvirt's
 * DAC relabelling, the VM boots and answers SSH, and lago's files have the
 * tightest modes that work (directories 0710 for qemu's group, disks 0600,
 * store images 0640, state and journal 0600). An environment under a
 * directory qemu cannot search fails with lago's error, before any domain.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { SHARED, makeEnv, requireTestbed, sh, testTemplate, virsh } from "./helpers.ts";

const { repo } = requireTestbed();

const INIT = `domains:
  vm01:
    memory: 256
    vcpu: 1
    nics:
      - net: lago
    disks:
      - template_name: lago-tiny
        type: template
        name: root
        dev: vda
        format: qcow2
      - name: data
        type: empty
        size: 16M
        dev: vdb
        format: qcow2
nets:
  lago:
    type: nat
    management: true
    dhcp: {start: 100, end: 254}
`;

function modeOf(p: string): string {
  return (statSync(p).mode & 0o7777).toString(8).padStart(4, "0");
}

async function uidOf(user: string): Promise<number> {
  const r = await sh("id", ["-u", user]);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

async function gidOf(group: string): Promise<number> {
  const r = await sh("getent", ["group", group]);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.split(":")[2]);
}

const env = makeEnv("priv", repo);
after(async () => {
  await env.lago(["destroy", "--auto-approve"]);
});

test("default: qemu is not root, the VM answers SSH, and every file has the tightest mode that works", { timeout: 900_000 }, async () => {
  env.init(INIT);
  const applied = await env.lago(["apply", "--auto-approve"]);
  assert.equal(applied.code, 0, `${applied.stdout}\n${applied.stderr}`);
  const hello = await env.lago(["ssh", "vm01", "echo", "hello"]);
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout.trim(), "hello");

  const state = env.state();
  const name = String(state.resources["domain.vm01"]?.outputs.libvirt_name);
  const pid = readFileSync(`/run/libvirt/qemu/${name}.pid`, "utf8").trim();
  const ps = await sh("ps", ["-o", "user=", "-p", pid]);
  assert.equal(ps.stdout.trim(), "libvirt-qemu", `qemu (pid ${pid}) runs as ${ps.stdout.trim()}`);
  const xml = await virsh("dumpxml", name);
  assert.doesNotMatch(xml.stdout, /relabel=["']no["']/);

  const qemuUid = await uidOf("libvirt-qemu");
  const qemuGid = await gidOf("libvirt-qemu");
  const workdir = path.join(env.dir, ".lago");
  const envDir = path.join(workdir, "default");
  for (const dir of [workdir, envDir, path.join(envDir, "vms"), path.join(envDir, "vms", "vm01"), path.join(envDir, "vms", "vm01", "disks"), SHARED.store]) {
    assert.equal(modeOf(dir), "0710", dir);
    assert.equal(statSync(dir).gid, qemuGid, dir);
  }
  for (const disk of ["root.qcow2", "data.qcow2"]) {
    const file = path.join(envDir, "vms", "vm01", "disks", disk);
    assert.equal(modeOf(file), "0600", file);
    // libvirt hands the image to qemu while the VM runs (and gives it back when it stops).
    assert.equal(statSync(file).uid, qemuUid, file);
  }
  const template = String(state.resources[`template.${testTemplate().key}`]?.outputs.path);
  assert.equal(modeOf(template), "0640", template);
  assert.equal(modeOf(path.join(envDir, "state.json")), "0600");
  // The journal is folded into the state after a successful apply; while it exists it is 0600 too.
  const journal = path.join(envDir, "journal.jsonl");
  if (existsSync(journal)) assert.equal(modeOf(journal), "0600");
  assert.equal(modeOf(path.join(envDir, "ssh")), "0700");
});

test("an environment under a directory qemu cannot search: lago's error naming it, and no domain", { timeout: 600_000 }, async () => {
  const closed = makeEnv("closed", repo);
  closed.init(INIT.replace(/      - template_name[\s\S]*?format: qcow2\n/, ""));
  chmodSync(closed.dir, 0o700);
  try {
    const r = await closed.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`qemu runs as libvirt-qemu \\(uid \\d+\\), which cannot reach ${closed.dir}/\\.lago/default/vms/vm01/disks/data\\.qcow2: ${closed.dir} \\(mode 0700, owner uid 0, group gid 0\\) does not let it search`));
    assert.match(r.stderr, /setfacl -m u:libvirt-qemu:x/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
    const id = String(Object.values(closed.state().resources).find((x) => x.kind === "network")?.outputs.libvirt_name ?? "").split("-")[1];
    assert.ok(id);
    const domains = (await virsh("list", "--all", "--name")).stdout.split("\n").filter((n) => n.startsWith(`lago-${id}-`));
    assert.deepEqual(domains, []);
  } finally {
    chmodSync(closed.dir, 0o711);
    await closed.lago(["destroy", "--auto-approve"]);
  }
});
