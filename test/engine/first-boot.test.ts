/**
 * Build steps that run in the guest at its first boot (resources/first-boot.ts), through the
 * engine with the fake world: when a build runs there, what is recorded, how it is replaced,
 * and when it stays offline. The script itself runs under busybox in test/unit/first-boot.test.ts,
 * and in a real VM in test/e2e/real.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions } from "../helpers/sandbox.ts";
import { BASE, edit } from "./fixtures.ts";
import { reportedLaunches as launches } from "../helpers/launches.ts";

const env = { LAGO_BOOTSTRAP: "cloud-init" };

interface PlanChange {
  address: string;
  action: string;
  note?: string;
}
const changes = (stdout: string): PlanChange[] => (JSON.parse(stdout) as { resource_changes: PlanChange[] }).resource_changes;

test("first boot: the plan says so, the script lies beside the VM's disks, the disk overlays the template; a step change replaces build, disk and VM, still without libguestfs", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    // The template must be in the store for the plan to tell (its metadata decides the bootstrap).
    assert.equal((await sb.lago(["apply", "--auto-approve", "--target", "template.test-repo:tiny:v2"], { env })).code, 0);
    const plan = await sb.lago(["plan", "--json"], { env });
    assert.equal(changes(plan.stdout).find((c) => c.address === "build.vm02.root")?.note, "at first boot, in the guest (cloud-init seed): no libguestfs launch");
    const r = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(launches(r.stdout), {});
    const state = sb.state().resources;
    const build = state["build.vm02.root"]?.outputs ?? {};
    assert.equal(build.mode, "first-boot");
    const vmDir = path.join(sb.work, ".lago", "default", "vms", "vm02");
    assert.equal(build.script, path.join(vmDir, `build-root-${String(build.key).slice(0, 12)}.sh`));
    assert.match(readFileSync(String(build.script), "utf8"), /^# lago first-boot build [0-9a-f]{16}: 1 step\(s\), once\n/);
    assert.deepEqual(state["disk.vm02.root"]?.outputs.first_boot_build, { script: build.script, id: build.id });
    const disk = sb.world().images[String(state["disk.vm02.root"]?.outputs.path)];
    assert.equal(disk?.backingFile, state["template.test-repo:tiny:v2"]?.outputs.path, "no layer between the disk and its template");
    // No change: nothing to do.
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), {});
    // Another step: the build, its disk and its VM are made again, at first boot again.
    sb.init(edit(BASE, "touch: /root/built", "touch: /root/built\n              mkdir: /srv/x"));
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), { "build.vm02.root": "replace", "disk.vm02.root": "replace", "domain.vm02": "replace" });
    const again = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(launches(again.stdout), {});
    const rebuilt = sb.state().resources["build.vm02.root"]?.outputs ?? {};
    assert.notEqual(rebuilt.script, build.script);
    assert.equal(existsSync(String(build.script)), false, "the old script went with its build");
    assert.match(readFileSync(String(rebuilt.script), "utf8"), /mkdir -p -- '\/srv\/x'/);
    // Without Lago's bootstrap the VM gets no seed: the build is made again, offline (one launch), with its disk.
    const withSteps = edit(BASE, "touch: /root/built", "touch: /root/built\n              mkdir: /srv/x");
    sb.init(edit(withSteps, "  vm02:\n    memory: 512\n", "  vm02:\n    memory: 512\n    bootstrap: false\n"));
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), { "build.vm02.root": "replace", "disk.vm02.root": "replace", "domain.vm02": "replace" });
    const offline = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(launches(offline.stdout), { "build.vm02.root": 1 });
    assert.equal(sb.state().resources["build.vm02.root"]?.outputs.mode, undefined);
    assert.equal(existsSync(String(rebuilt.script)), false);
    // Back to the bootstrap: the offline build stays (where a build ran is decided when it is made).
    sb.init(withSteps);
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), { "build.vm02.root": "update", "disk.vm02.root": "replace", "domain.vm02": "replace" });
    const back = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual(launches(back.stdout), {});
    assert.equal((await sb.lago(["destroy", "--auto-approve"], { env })).code, 0);
  } finally {
    sb.cleanup();
  }
});

test("offline instead: a step with no in-guest equivalent, a VM not bootstrapped by a seed, [lago] build = offline; the plan says why", async () => {
  const sb = makeSandbox();
  try {
    sb.init(edit(BASE, "touch: /root/built", "touch: /root/built\n              install: nginx"));
    assert.equal((await sb.lago(["apply", "--auto-approve", "--target", "template.test-repo:tiny:v2"], { env })).code, 0);
    const note = async (extra: Record<string, string>): Promise<string | undefined> =>
      changes((await sb.lago(["plan", "--json"], { env: { ...env, ...extra } })).stdout).find((c) => c.address === "build.vm02.root")?.note;
    assert.equal(await note({}), "offline (virt-customize): `install` runs only in virt-customize's appliance");
    sb.init(BASE);
    assert.equal(await note({ LAGO_BUILD: "offline" }), "offline (virt-customize): [lago] build is offline");
    assert.equal(await note({ LAGO_BOOTSTRAP: "ssh" }), "offline (virt-customize): the VM is bootstrapped by ssh, not by a cloud-init seed");
    const r = await sb.lago(["apply", "--auto-approve", "--json"], { env: { ...env, LAGO_BUILD: "offline" } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(launches(r.stdout), { "build.vm02.root": 1 });
    assert.equal(sb.state().resources["disk.vm02.root"]?.outputs.first_boot_build, null);
    // Where a build ran is decided once: back to `auto`, the layer and the VM on it stay.
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), {});
  } finally {
    sb.cleanup();
  }
});

test("a build recorded before first-boot builds existed (no first_boot attribute) is updated in place: its disk and VM stay", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"], { env: { ...env, LAGO_BUILD: "offline" } });
    assert.equal(r.code, 0, r.stderr);
    const dir = path.join(sb.work, ".lago", "default");
    assert.equal(existsSync(path.join(dir, "journal.jsonl")) ? readFileSync(path.join(dir, "journal.jsonl"), "utf8") : "", "", "compacted into state.json");
    const file = path.join(dir, "state.json");
    const recorded = JSON.parse(readFileSync(file, "utf8")) as { resources: Record<string, { attrs: Record<string, unknown> }> };
    const build = recorded.resources["build.vm02.root"];
    assert.equal(build?.attrs.first_boot, true);
    delete build?.attrs.first_boot;
    writeFileSync(file, JSON.stringify(recorded));
    const plan = await sb.lago(["plan", "--json"], { env });
    assert.deepEqual(actions(plan.stdout), { "build.vm02.root": "update" });
    const applied = await sb.lago(["apply", "--auto-approve", "--json"], { env });
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual(launches(applied.stdout), {});
    assert.equal(sb.state().resources["build.vm02.root"]?.outputs.mode, undefined, "still the offline layer");
    assert.deepEqual(actions((await sb.lago(["plan", "--json"], { env })).stdout), {});
  } finally {
    sb.cleanup();
  }
});
