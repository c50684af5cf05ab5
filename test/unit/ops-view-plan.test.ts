import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDomainList, parseNetworkList } from "../../src/drivers/real/virsh-ops.ts";
import { envView, selectVms } from "../../src/ops/view.ts";
import { makeEnvContext } from "../../src/env/context.ts";
import { loadConfig } from "../../src/config/config.ts";
import { computePlan } from "../../src/plan/plan.ts";
import { planToJson } from "../../src/plan/json.ts";
import { renderPlan } from "../../src/plan/render.ts";
import { SNAPSHOTS, STOPPED_ON_PURPOSE } from "../../src/resources/domain-records.ts";
import type { State } from "../../src/state/state.ts";
import { appliedState, compileFixture, fixtureSpec } from "./plan-fixture-support.ts";

test("virsh tables: domains with id and state, networks active or not, only the environment's", () => {
  const domains = parseDomainList(" 3    lago-ab-vm01   running\n -    lago-ab-vm02   shut off\n 4    other-vm   running\n 5    lago-ab-vm03   in shutdown\n", "lago-ab-");
  assert.deepEqual([...domains.values()], [
    { name: "lago-ab-vm01", id: 3, state: "running" },
    { name: "lago-ab-vm02", id: undefined, state: "shut off" },
    { name: "lago-ab-vm03", id: 5, state: "in shutdown" },
  ]);
  const nets = parseNetworkList(" lago-ab-lago   active   no   yes\n lago-ab-wire   inactive   no   yes\n default   active   yes   yes\n", "lago-ab-");
  assert.deepEqual([...nets], [["lago-ab-lago", { active: true }], ["lago-ab-wire", { active: false }]]);
});

function fixtureState(): State {
  const spec = fixtureSpec("002-add-vm");
  const state = appliedState(compileFixture(spec, { formatVersion: 1, lineage: "", serial: 0, initFileSha256: null, resources: new Map() }), spec.sha256);
  return state;
}

const ENV = makeEnvContext("/work/.lago", "default", loadConfig({}, {}, []));

test("the environment view: VMs with NICs (addresses, MACs, eth order), disks, SSH target; nets; templates", () => {
  const view = envView(ENV, fixtureState());
  assert.deepEqual(view.vms.map((v) => v.name), ["vm01", "vm02"]);
  const vm01 = view.vms[0];
  assert.ok(vm01);
  assert.deepEqual(vm01.nics.map((n) => [n.net, n.index, n.ip, n.mac]), [["lago", 0, "192.168.200.2", "54:52:c0:a8:c8:02"]]);
  assert.deepEqual(vm01.ssh, { host: "192.168.200.2", port: 22, user: "root", privateKeyPath: "/work/.lago/default/ssh/id_ed25519", pinnedHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixture" });
  assert.deepEqual(vm01.disks.map((d) => [d.name, d.dev, d.format, d.template, d.external]), [["root", "vda", "qcow2", "template.lago-ci:el8-base:v2", false]]);
  assert.deepEqual(view.nets.map((n) => [n.name, n.subnet, n.gateway, n.management]), [["lago", "192.168.200.0/24", "192.168.200.1", true]]);
  assert.deepEqual(view.templates.map((t) => t.address), ["template.lago-ci:el8-base:v2"]);
  assert.throws(() => selectVms(view, ["vm01", "vm09"]), /no VM vm09 in environment default/);
  assert.deepEqual(selectVms(view, []).map((v) => v.name), ["vm01", "vm02"]);
});

test("a VM stopped on purpose compiles as stopped: no change, and the plan says so", () => {
  const spec = fixtureSpec("002-add-vm");
  const state = fixtureState();
  const rec = state.resources.get("domain.vm02");
  assert.ok(rec);
  rec.attrs = { ...rec.attrs, running: false, ready: false };
  rec.outputs = { ...rec.outputs, [STOPPED_ON_PURPOSE]: true };
  const desired = compileFixture(spec, state);
  assert.equal(desired.find((d) => d.address === "domain.vm02")?.attrs.running, false);
  assert.equal(desired.find((d) => d.address === "domain.vm01")?.attrs.running, true);
  const plan = computePlan({ desired, state, observed: undefined, initFileSha256: spec.sha256 });
  assert.deepEqual(plan.resourceChanges.filter((c) => c.action !== "no-op"), []);
  assert.deepEqual(plan.stopped, ["domain.vm02"]);
  assert.deepEqual(planToJson(plan).stopped, ["domain.vm02"]);
  assert.match(renderPlan(plan), /\nStopped on purpose, kept stopped: domain\.vm02 \(lago start VM starts it\)\n$/);
  // Without the mark, the same recorded state is drift to undo: the VM is started.
  delete rec.outputs[STOPPED_ON_PURPOSE];
  const again = computePlan({ desired: compileFixture(spec, state), state, observed: undefined, initFileSha256: spec.sha256 });
  assert.deepEqual(again.resourceChanges.filter((c) => c.action !== "no-op").map((c) => [c.address, c.action]), [["domain.vm02", "update"]]);
});

test("the plan names the snapshots it loses: a replaced or destroyed VM, or a disk of it", () => {
  const spec = fixtureSpec("002-add-vm");
  const state = fixtureState();
  const rec = state.resources.get("domain.vm01");
  assert.ok(rec);
  rec.outputs = { ...rec.outputs, [SNAPSHOTS]: { clean: { created: "2026-11-23T10:00:00.000Z", state: "running" }, b: { created: "2026-11-23T11:00:00.000Z", state: "shut off" } } };
  const desired = compileFixture(spec, state);
  const plan = (replace: string[]): ReturnType<typeof computePlan> => computePlan({ desired, state, observed: undefined, initFileSha256: spec.sha256, replace });
  assert.deepEqual(plan([]).snapshotsLost, []);
  assert.deepEqual(plan(["domain.vm01"]).snapshotsLost, [{ address: "domain.vm01", snapshots: ["b", "clean"] }]);
  assert.deepEqual(plan(["disk.vm01.root"]).snapshotsLost, [{ address: "domain.vm01", snapshots: ["b", "clean"] }]);
  assert.match(renderPlan(plan(["domain.vm01"])), /\ndomain\.vm01 loses its snapshots: b, clean\n$/);
  const destroy = computePlan({ desired: [], state, observed: undefined, initFileSha256: spec.sha256, destroy: true });
  assert.deepEqual(planToJson(destroy).snapshots_lost, [{ address: "domain.vm01", snapshots: ["b", "clean"] }]);
});
