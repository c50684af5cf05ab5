import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions, type Sandbox } from "../helpers/sandbox.ts";
import { BASE, VM03, edit } from "./fixtures.ts";

let sb: Sandbox;
before(() => {
  sb = makeSandbox();
});
after(() => sb.cleanup());

async function planActions(): Promise<Record<string, string>> {
  const r = await sb.lago(["plan", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return actions(r.stdout);
}

async function apply(extra: string[] = []): Promise<void> {
  const r = await sb.lago(["apply", "--auto-approve", ...extra]);
  assert.equal(r.code, 0, `apply failed:\n${r.stdout}\n${r.stderr}`);
  const after = await planActions();
  assert.deepEqual(after, {}, "a plan right after apply must be empty");
}

function domainIds(): Record<string, number | null> {
  const w = sb.world();
  return Object.fromEntries(Object.entries(w.domains).map(([n, d]) => [n.replace(/^lago-[0-9a-f]+-/, ""), d.id]));
}

const TEMPLATE_V2 = "template.test-repo:tiny:v2";

test("apply from empty creates every resource in order and converges", async () => {
  sb.init(BASE);
  assert.deepEqual(await planActions(), {
    "build.vm02.root": "create",
    "disk.vm01.root": "create",
    "disk.vm02.extra": "create",
    "disk.vm02.root": "create",
    "domain.vm01": "create",
    "domain.vm02": "create",
    keypair: "create",
    "lease.data": "create",
    "lease.lago": "create",
    "network.data": "create",
    "network.lago": "create",
    [TEMPLATE_V2]: "create",
  });
  const r = await sb.lago(["apply", "--auto-approve"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /domain\.vm01: Creation complete after/);
  assert.match(r.stdout, /Apply complete! Resources: 12 added, 0 changed, 0 replaced, 0 destroyed\./);
  const w = sb.world();
  assert.equal(Object.values(w.domains).filter((d) => d.running).length, 2);
  assert.equal(Object.keys(w.networks).length, 2);
  // vm02's build steps made a layer in the store, which its disk overlays; the template publishes
  // neither cloud-init nor a root password, so each VM's bootstrap falls back to virt-customize
  // on its own new disk, before the disk gets its final name.
  const layer = w.customized.find((c) => c.disk.includes("/store/layers/"));
  assert.deepEqual(layer?.args, ["--touch", "/root/built"]);
  const vm02Disk = String(sb.state().resources["disk.vm02.root"]?.outputs.path);
  assert.equal(w.images[vm02Disk]?.backingFile, String(sb.state().resources["build.vm02.root"]?.outputs.path));
  assert.equal(w.images[String(sb.state().resources["disk.vm01.root"]?.outputs.path)]?.backingFile, path.join(sb.root, "store", "test-repo:tiny:v2"));
  const vm02 = w.customized.find((c) => c.disk === `${vm02Disk}.bootstrap.tmp`);
  assert.deepEqual(vm02?.args.filter((a) => !a.includes("/ssh/")), ["--no-network", "--ssh-inject", "--write", "/etc/hostname:vm02"]);
  assert.equal(w.customized.length, 3);
  assert.deepEqual(readdirSync(path.join(sb.root, "leases")).filter((f) => f.endsWith(".lease")).sort(), ["200.lease", "201.lease"]);
  const plan = await sb.lago(["plan", "--detailed-exitcode"]);
  assert.equal(plan.code, 0);
  assert.match(plan.stdout, /No changes\./);
});

test("adding a VM touches only its resources and the net's DHCP/DNS entries", async () => {
  const ids = domainIds();
  sb.init(edit(BASE, "nets:", VM03));
  assert.deepEqual(await planActions(), {
    "disk.vm03.root": "create",
    "domain.vm03": "create",
    "network.lago": "update",
  });
  await apply();
  const now = domainIds();
  assert.equal(now.vm01, ids.vm01, "vm01 kept running (same domain id)");
  assert.equal(now.vm02, ids.vm02, "vm02 kept running (same domain id)");
  const net = Object.values(sb.world().networks).find((n) => n.def.domain === "lago.local");
  assert.deepEqual(net?.def.dnsHosts.map((h) => h.names[0]).sort(), ["vm01", "vm02", "vm03"]);
});

test("raising memory updates in place and waits for --restart", async () => {
  sb.init(edit(edit(BASE, "nets:", VM03), "  vm01:\n    memory: 512", "  vm01:\n    memory: 1024"));
  const r = await sb.lago(["plan", "--json"]);
  const plan = JSON.parse(r.stdout);
  const change = plan.resource_changes.find((c: { address: string }) => c.address === "domain.vm01");
  assert.equal(change.action, "update");
  assert.equal(change.requires_restart, true);
  assert.deepEqual(change.changes, [{ path: "/memory", before: 512, after: 1024, forces_replacement: false, requires_restart: true }]);
  const human = await sb.lago(["plan"]);
  assert.match(human.stdout, /~ domain\.vm01 will be updated in place \(takes effect after restart: lago apply --restart\)\n {6}memory: 512 → 1024 {3}# takes effect after restart/);
  const boots = Object.entries(sb.world().domains).find(([n]) => n.endsWith("-vm01"))?.[1].boots;
  await apply();
  const dom = Object.entries(sb.world().domains).find(([n]) => n.endsWith("-vm01"))?.[1];
  assert.equal(dom?.def.memoryMiB, 1024);
  assert.equal(dom?.live?.memoryMiB, 512, "the running VM keeps its memory until restarted");
  assert.equal(dom?.boots, boots);
  const pending = await sb.lago(["plan"]);
  assert.match(pending.stdout, /Waiting for a restart to take effect: domain\.vm01/);
  const restart = await sb.lago(["apply", "--auto-approve", "--restart"]);
  assert.equal(restart.code, 0, restart.stderr);
  const after = Object.entries(sb.world().domains).find(([n]) => n.endsWith("-vm01"))?.[1];
  assert.equal(after?.live?.memoryMiB, 1024);
  assert.equal(after?.boots, (boots ?? 0) + 1);
  assert.doesNotMatch((await sb.lago(["plan"])).stdout, /Waiting for a restart/);
});

const STEP3 = edit(edit(BASE, "nets:", VM03), "  vm01:\n    memory: 512", "  vm01:\n    memory: 1024");

test("adding a NIC attaches it and adds the net's DHCP entry, nothing else", async () => {
  const ids = domainIds();
  const next = edit(STEP3, "    memory: 1024\n    nics:\n      - net: lago\n", "    memory: 1024\n    nics:\n      - net: lago\n      - net: data\n");
  sb.init(next);
  assert.deepEqual(await planActions(), { "domain.vm01": "update", "network.data": "update" });
  await apply();
  assert.deepEqual(domainIds(), ids);
  const vm01 = Object.entries(sb.world().domains).find(([n]) => n.endsWith("-vm01"))?.[1];
  assert.equal(vm01?.def.nics.length, 2);
  assert.equal(vm01?.live?.nics.length, 2, "hot-plugged into the running VM");
});

const STEP4 = edit(STEP3, "    memory: 1024\n    nics:\n      - net: lago\n", "    memory: 1024\n    nics:\n      - net: lago\n      - net: data\n");

test("adding a data disk creates it and attaches it", async () => {
  const next = edit(STEP4, "        format: qcow2\n  vm02:", "        format: qcow2\n      - name: data\n        type: empty\n        size: 2G\n        dev: vdb\n  vm02:");
  sb.init(next);
  assert.deepEqual(await planActions(), { "disk.vm01.data": "create", "domain.vm01": "update" });
  await apply();
  const vm01 = Object.entries(sb.world().domains).find(([n]) => n.endsWith("-vm01"))?.[1];
  assert.deepEqual(vm01?.def.disks.map((d) => d.dev), ["vda", "vdb"]);
});

const STEP5 = edit(STEP4, "        format: qcow2\n  vm02:", "        format: qcow2\n      - name: data\n        type: empty\n        size: 2G\n        dev: vdb\n  vm02:");

test("changing a disk's template replaces the disk and the domain, saying why", async () => {
  const next = edit(STEP5, "      - template_name: tiny\n        type: template\n        name: root\n        dev: vda\n        format: qcow2", "      - template_name: other\n        type: template\n        name: root\n        dev: vda\n        format: qcow2");
  sb.init(next);
  assert.deepEqual(await planActions(), {
    "disk.vm01.root": "replace",
    "domain.vm01": "replace",
    "template.test-repo:other:v1": "create",
  });
  const human = await sb.lago(["plan"]);
  assert.match(human.stdout, /-\/\+ disk\.vm01\.root must be replaced\n {6}template: "template\.test-repo:tiny:v2" → "template\.test-repo:other:v1" {3}# forces replacement: the template changes: a fresh overlay is needed/);
  assert.match(human.stdout, /-\/\+ domain\.vm01 must be replaced\n(.*\n)*? {6}# replaced because its disk disk\.vm01\.root is replaced/);
  await apply();
});

const STEP6 = edit(STEP5, "      - template_name: tiny\n        type: template\n        name: root\n        dev: vda\n        format: qcow2", "      - template_name: other\n        type: template\n        name: root\n        dev: vda\n        format: qcow2");

test("changing a net's DHCP range updates the network in place", async () => {
  sb.init(edit(STEP6, "      start: 100\n      end: 254", "      start: 50\n      end: 99"));
  assert.deepEqual(await planActions(), { "network.lago": "update" });
  await apply();
  const net = Object.values(sb.world().networks).find((n) => n.def.domain === "lago.local");
  const subnet = String(sb.state().resources["lease.lago"]?.outputs.subnet).replace(/\.0$/, "");
  assert.deepEqual(net?.def.dhcp, { start: `${subnet}.50`, end: `${subnet}.99` });
});

const STEP7 = edit(STEP6, "      start: 100\n      end: 254", "      start: 50\n      end: 99");

test("renaming a net moves its lease, network and the NICs on it", async () => {
  const next = STEP7.replaceAll("net: data", "net: storage").replace("  data:\n    type: nat", "  storage:\n    type: nat");
  sb.init(next);
  assert.deepEqual(await planActions(), {
    "domain.vm01": "update",
    "domain.vm02": "update",
    "lease.data": "delete",
    "lease.storage": "create",
    "network.data": "delete",
    "network.storage": "create",
  });
  await apply();
  assert.equal(Object.keys(sb.world().networks).length, 2);
});

const STEP8 = STEP7.replaceAll("net: data", "net: storage").replace("  data:\n    type: nat", "  storage:\n    type: nat");

test("removing a VM deletes its domain, disks and DHCP/DNS entries only", async () => {
  const start = STEP8.indexOf("  vm02:");
  const end = STEP8.indexOf("  vm03:");
  sb.init(STEP8.slice(0, start) + STEP8.slice(end));
  assert.deepEqual(await planActions(), {
    "build.vm02.root": "delete",
    "disk.vm02.extra": "delete",
    "disk.vm02.root": "delete",
    "domain.vm02": "delete",
    "network.lago": "update",
    "network.storage": "update",
  });
  await apply();
  assert.equal(Object.keys(sb.world().domains).length, 2);
});

test("a domain deleted behind lago's back is reported as drift and recreated", async () => {
  const w = sb.world();
  const name = Object.keys(w.domains).find((n) => n.endsWith("-vm03")) ?? "";
  const { writeFileSync } = await import("node:fs");
  delete w.domains[name];
  writeFileSync(sb.worldFile, JSON.stringify(w));
  const r = await sb.lago(["plan"]);
  assert.match(r.stdout, /Changes outside lago \(found by refresh\):\n\n {2}! domain\.vm03 was deleted outside lago/);
  assert.deepEqual(await planActions(), { "domain.vm03": "create" });
  await apply();
});

test("destroy deletes everything and releases the leases", async () => {
  const refused = await sb.lago(["destroy"]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /refusing to change anything without confirmation/);
  const r = await sb.lago(["destroy", "--auto-approve"]);
  assert.equal(r.code, 0, r.stderr);
  const w = sb.world();
  assert.deepEqual(Object.keys(w.domains), []);
  assert.deepEqual(Object.keys(w.networks), []);
  // Only build layers stay, in the shared store, for re-creates and other environments.
  assert.deepEqual(Object.keys(w.images).filter((p) => !p.startsWith(path.join(sb.root, "store", "layers") + path.sep)), []);
  assert.deepEqual(readdirSync(path.join(sb.root, "leases")).filter((f) => f.endsWith(".lease")), []);
  assert.equal(existsSync(path.join(sb.work, ".lago", "default")), false, "no environment file is left");
  // The shared template store keeps its images.
  assert.ok(readdirSync(path.join(sb.root, "store")).includes("test-repo:tiny:v2"));
});
