/**
 * How Lago's bootstrap reaches VMs and how build layers are shared, through the engine
 * with the fake world (the real tools are exercised by test/e2e and the driver tests).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions } from "../helpers/sandbox.ts";
import { BASE, VM03, edit } from "./fixtures.ts";
import { reportedLaunches as launches } from "../helpers/launches.ts";

test("cloud-init: a seed per VM on a CD-ROM, the boot disk's build runs from it at first boot: no libguestfs launch; the seed goes with its VM", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE.replace("    memory: 512\n    nics:\n      - net: lago\n    disks:", "    memory: 512\n    root-password: hunter2\n    nics:\n      - net: lago\n    disks:"));
    const env = { LAGO_BOOTSTRAP: "cloud-init" };
    const r = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(launches(r.stdout), {});
    const w = sb.world();
    const seeds = Object.keys(w.seeds ?? {}).map((p) => path.relative(sb.work, p)).sort();
    assert.deepEqual(seeds, [".lago/default/vms/vm01/cidata.iso", ".lago/default/vms/vm02/cidata.iso"]);
    const vm01Seed = Object.entries(w.seeds ?? {}).find(([p]) => p.includes("/vm01/"))?.[1];
    const publicKey = String(sb.state().resources.keypair?.outputs.publicKey).trim();
    assert.ok(vm01Seed?.userData.includes(`  - ${JSON.stringify(publicKey)}\n`));
    assert.match(String(vm01Seed?.userData), /hostname: "vm01"\n[\s\S]*password: "hunter2"/);
    assert.match(String(vm01Seed?.metaData), /local-hostname: "vm01"/);
    const vm01 = Object.entries(w.domains).find(([n]) => n.endsWith("-vm01"))?.[1];
    assert.deepEqual(
      vm01?.def.disks.map((d) => [d.dev, d.device, d.bus]),
      [
        ["vda", "disk", "virtio"],
        ["hdc", "cdrom", "ide"],
      ],
    );
    assert.equal(w.customized.length, 0, "no libguestfs: the build runs in the guest");
    const vm02Seed = Object.entries(w.seeds ?? {}).find(([p]) => p.includes("/vm02/"))?.[1];
    assert.match(String(vm02Seed?.userData), /\nbootcmd:\n  - "# lago first-boot build [0-9a-f]{16}: 1 step\(s\), once\\n[\s\S]*\\ntouch -- '\/root\/built'\\n/);
    assert.doesNotMatch(String(vm01Seed?.userData), /bootcmd/);
    for (const [address, r] of Object.entries(sb.state().resources)) assert.doesNotMatch(JSON.stringify(r.outputs), /hunter2/, `${address} outputs`);
    // A change of bootstrap (the root password) is a fresh disk and VM.
    sb.init(BASE.replace("    memory: 512\n    nics:\n      - net: lago\n    disks:", "    memory: 512\n    root-password: other\n    nics:\n      - net: lago\n    disks:"));
    const plan = await sb.lago(["plan", "--json"], { env });
    assert.deepEqual(actions(plan.stdout), { "disk.vm01.root": "replace", "domain.vm01": "replace" });
    const d = await sb.lago(["destroy", "--auto-approve"], { env });
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(Object.keys(sb.world().seeds ?? {}), []);
  } finally {
    sb.cleanup();
  }
});

test("ssh: a template that publishes a root password is bootstrapped over a first login, once", async () => {
  const sb = makeSandbox();
  try {
    writeFileSync(path.join(sb.root, "repo", "tiny-v2.img.metadata"), JSON.stringify({ distro: "fake", "root-password": "123456" }));
    sb.init(BASE.replace("    memory: 512\n    nics:\n      - net: lago\n    disks:", "    memory: 512\n    root-password: hunter2\n    nics:\n      - net: lago\n    disks:"));
    const r = await sb.lago(["apply", "--auto-approve", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(launches(r.stdout), { "build.vm02.root": 1 });
    const logins = sb.world().firstLogins ?? {};
    const vm01 = Object.entries(logins).find(([n]) => n.endsWith("-vm01"))?.[1];
    assert.equal(vm01?.length, 1);
    assert.match(String(vm01?.[0]?.command), /^# lago bootstrap\n[\s\S]*host='vm01'/);
    assert.equal(vm01?.[0]?.input, "(secret)", "the password went to stdin");
    assert.doesNotMatch(String(vm01?.[0]?.command), /hunter2/);
    assert.equal(Object.entries(logins).find(([n]) => n.endsWith("-vm02"))?.[1]?.[0]?.input, undefined);
    assert.deepEqual(sb.world().seeds ?? {}, {});
    // A restart does not bootstrap again.
    sb.init(edit(BASE, "  vm01:\n    memory: 512", "  vm01:\n    memory: 1024").replace("    memory: 1024\n    nics:", "    memory: 1024\n    root-password: hunter2\n    nics:"));
    const restarted = await sb.lago(["apply", "--auto-approve", "--restart"]);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.equal(Object.entries(sb.world().firstLogins ?? {}).find(([n]) => n.endsWith("-vm01"))?.[1]?.length, 1);
  } finally {
    sb.cleanup();
  }
});

test("ssh forced on a template that publishes no password fails clearly, naming the VM and what to do", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"], { env: { LAGO_BOOTSTRAP: "ssh" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /domain\.vm01: cannot bootstrap over SSH: the template publishes no root-password in \S+test-repo:tiny:v2\.metadata/);
    assert.match(r.stderr, /set \[lago\] bootstrap \(LAGO_BOOTSTRAP\) to cloud-init or virt-customize/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    sb.cleanup();
  }
});

test("identical builds share one layer: one launch for the first VM, none for the next, none for a re-create; plan says cached", async () => {
  const sb = makeSandbox();
  try {
    const env = { LAGO_BOOTSTRAP: "cloud-init", LAGO_BUILD: "offline" };
    const built = VM03.replace("        dev: vda\n", "        dev: vda\n        build:\n          - virt-customize:\n              touch: /root/built\n");
    sb.init(BASE);
    const first = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(launches(first.stdout), { "build.vm02.root": 1 });
    sb.init(edit(BASE, "nets:", built));
    const plan = JSON.parse((await sb.lago(["plan", "--json"], { env })).stdout) as { resource_changes: { address: string; note?: string }[] };
    assert.match(String(plan.resource_changes.find((c) => c.address === "build.vm03.root")?.note), /^cached: layer [0-9a-f]{12} is in the store, no libguestfs launch$/);
    const human = await sb.lago(["plan"], { env });
    assert.match(human.stdout, /\+ build\.vm03\.root will be created \(cached: layer [0-9a-f]{12} is in the store, no libguestfs launch\)/);
    const second = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(launches(second.stdout), {});
    const state = sb.state().resources;
    assert.equal(state["build.vm03.root"]?.outputs.path, state["build.vm02.root"]?.outputs.path);
    assert.equal(state["build.vm03.root"]?.outputs.cached, true);
    const layerDir = path.join(sb.root, "store", "layers");
    assert.deepEqual(readdirSync(layerDir).filter((f) => f.endsWith(".json")).length, 1);
    // Destroy and re-apply: the layer stays in the store, nothing is built again.
    assert.equal((await sb.lago(["destroy", "--auto-approve"], { env })).code, 0);
    const again = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(launches(again.stdout), {});
    // Changing the steps makes a new layer (one launch) and replaces the disk and VM on it.
    sb.init(edit(BASE, "nets:", built.replace("touch: /root/built", "touch: /root/built-v2")));
    const changed = await sb.lago(["plan", "--json"], { env });
    assert.deepEqual(actions(changed.stdout), { "build.vm03.root": "replace", "disk.vm03.root": "replace", "domain.vm03": "replace" });
    const rebuilt = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.deepEqual(launches(rebuilt.stdout), { "build.vm03.root": 1 });
  } finally {
    sb.cleanup();
  }
});
