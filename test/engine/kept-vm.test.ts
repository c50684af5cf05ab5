/**
 * A VM that is kept while a network, or a data disk, it uses is replaced or
 * restarted comes through it: its NICs (or the disk) are detached first and
 * attached again after, the domain keeps its identity, MACs and other devices,
 * and the apply converges. These edits used to deadlock the applier (a cycle:
 * delete network → update domain → create network → delete network) and exit 0.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { makeSandbox, actions, type Sandbox } from "../helpers/sandbox.ts";
import { BASE, edit } from "./fixtures.ts";
import { linked } from "../../src/drivers/fake/world.ts";

let sb: Sandbox;
before(async () => {
  sb = makeSandbox();
  sb.init(BASE);
  const r = await sb.lago(["apply", "--auto-approve"]);
  assert.equal(r.code, 0, r.stderr);
});
after(() => sb.cleanup());

function domain(vm: string) {
  const entry = Object.entries(sb.world().domains).find(([n]) => n.endsWith(`-${vm}`));
  assert.ok(entry, `no domain ${vm}`);
  return entry[1];
}

/** Every NIC of every running VM is linked to its (active) network. */
function allLinked(): void {
  const w = sb.world();
  for (const [name, dom] of Object.entries(w.domains)) {
    for (const nic of dom.live?.nics ?? []) assert.ok(linked(w, dom, nic), `${name}'s NIC ${nic.mac} is not linked to ${nic.network}`);
  }
}

async function applyAndConverge(expected: Record<string, string>): Promise<string> {
  const plan = await sb.lago(["plan", "--json"]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.deepEqual(actions(plan.stdout), expected);
  const r = await sb.lago(["apply", "--auto-approve"]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Apply complete!/);
  const again = await sb.lago(["plan", "--json"]);
  assert.deepEqual(actions(again.stdout), {}, "a plan right after apply is empty");
  allLinked();
  return r.stdout;
}

test("an MTU change on a net restarts the network in place; the kept VM re-attaches its NIC, keeping id and MAC", async () => {
  const before = domain("vm02");
  const macs = before.def.nics.map((n) => n.mac).sort();
  const text = edit(BASE, "  data:\n    type: nat\n    management: false\n", "  data:\n    type: nat\n    management: false\n    mtu: 1400\n");
  sb.init(text);
  const human = await sb.lago(["plan"]);
  assert.match(human.stdout, /~ network\.data will be updated in place, interrupting what uses it: the network restarts for its new MTU/);
  assert.match(human.stdout, /~ domain\.vm02 will be updated in place\n(.*\n)*? {6}# its NICs on network\.data are detached while the network is restarted, then attached again \(same MACs\)/);
  await applyAndConverge({ "domain.vm02": "update", "network.data": "update" });
  const after = domain("vm02");
  assert.equal(after.id, before.id, "same libvirt domain id: not restarted");
  assert.equal(after.boots, before.boots);
  assert.deepEqual(after.def.nics.map((n) => n.mac).sort(), macs, "same MACs");
  assert.equal(after.def.nics.find((n) => n.network.endsWith("-data"))?.mtu, 1400);
  assert.equal(domain("vm01").id !== null, true);
});

test("a data disk's format change recreates the disk under the running VM, which re-attaches it", async () => {
  const before = domain("vm02");
  const text = edit(
    edit(BASE, "  data:\n    type: nat\n    management: false\n", "  data:\n    type: nat\n    management: false\n    mtu: 1400\n"),
    "      - name: extra\n        type: empty\n        size: 1G\n        dev: vdb\n",
    "      - name: extra\n        type: empty\n        size: 1G\n        dev: vdb\n        format: raw\n",
  );
  sb.init(text);
  await applyAndConverge({ "disk.vm02.extra": "replace", "domain.vm02": "update" });
  const after = domain("vm02");
  assert.equal(after.id, before.id);
  assert.deepEqual(
    after.live?.disks.map((d) => [d.dev, d.format]).sort(),
    [
      ["vda", "qcow2"],
      ["vdb", "raw"],
    ],
  );
  const disk = sb.state().resources["disk.vm02.extra"];
  assert.equal(sb.world().images[String(disk?.outputs.path)]?.format, "raw");
});

test("gateway, DNS domain and management changes restart networks in place, never deadlock", async () => {
  let text = edit(BASE, "  data:\n    type: nat\n    management: false\n", "  data:\n    type: nat\n    management: false\n    mtu: 1400\n");
  text = edit(text, "        size: 1G\n        dev: vdb\n", "        size: 1G\n        dev: vdb\n        format: raw\n");
  const ids = { vm01: domain("vm01").id, vm02: domain("vm02").id };
  for (const step of [
    (t: string) => edit(t, "    management: true\n    dhcp:", "    management: true\n    dns_domain_name: other.local\n    dhcp:"),
    (t: string) => edit(t, "    management: true\n", "    management: true\n    gw: 192.168.230.1\n"),
  ]) {
    text = step(text);
    sb.init(text);
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(actions((await sb.lago(["plan", "--json"])).stdout), {});
    allLinked();
  }
  assert.deepEqual({ vm01: domain("vm01").id, vm02: domain("vm02").id }, ids, "both VMs kept running through it");
});

test("a network deleted behind lago's back is recreated and the VMs on it re-attach", async () => {
  const w = sb.world();
  const name = Object.keys(w.networks).find((n) => n.endsWith("-data")) ?? "";
  delete w.networks[name];
  const { writeFileSync } = await import("node:fs");
  writeFileSync(sb.worldFile, JSON.stringify(w));
  const r = await sb.lago(["apply", "--auto-approve"]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(actions((await sb.lago(["plan", "--json"])).stdout), {});
  allLinked();
});
