import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { makeSandbox, actions, REPO_ROOT, type Sandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

async function converged(sb: Sandbox): Promise<void> {
  const plan = await sb.lago(["plan", "--json"]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.deepEqual(actions(plan.stdout), {});
}

/** Nothing leaked: what exists in the fake world is exactly what the state records. */
function noOrphans(sb: Sandbox): void {
  const w = sb.world();
  const state = sb.state();
  const recorded = Object.values(state.resources);
  const domains = recorded.filter((r) => r.kind === "domain").map((r) => r.outputs.libvirt_name).sort();
  assert.deepEqual(Object.keys(w.domains).sort(), domains);
  const nets = recorded.filter((r) => r.kind === "network").map((r) => r.outputs.libvirt_name).sort();
  assert.deepEqual(Object.keys(w.networks).sort(), nets);
  const disks = recorded.filter((r) => r.kind === "disk").map((r) => r.outputs.path).sort();
  assert.deepEqual(Object.keys(w.images).sort(), disks);
  const leases = readdirSync(path.join(sb.root, "leases")).filter((f) => f.endsWith(".lease"));
  assert.equal(leases.length, recorded.filter((r) => r.kind === "lease").length);
}

test("a failing resource stops its dependents only, names the command, and the next apply converges", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"], { env: { LAGO_FAKE_FAULTS: "fail:startDomain@vm02" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error: domain\.vm02: command `fake startDomain lago-[0-9a-f]+-vm02` exited with code 1:\n {2}injected failure in startDomain/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.match(r.stdout, /domain\.vm01: Creation complete/);
    const state = sb.state();
    assert.equal(state.resources["domain.vm01"]?.status, "ready");
    assert.equal(state.resources["domain.vm02"]?.status, "tainted", "the half-created VM is recorded, not forgotten");
    assert.deepEqual(actions((await sb.lago(["plan", "--json"])).stdout), { "domain.vm02": "replace" });
    const again = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(again.code, 0, again.stderr);
    await converged(sb);
    noOrphans(sb);
  } finally {
    sb.cleanup();
  }
});

test("a failure skips what depends on it and nothing else", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"], { env: { LAGO_FAKE_FAULTS: "fail:createNetwork@-data" } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /domain\.vm02: not created: network\.data did not create/);
    assert.match(r.stdout, /domain\.vm01: Creation complete/);
    const state = sb.state();
    assert.ok(!state.resources["network.data"]);
    assert.ok(!state.resources["domain.vm02"]);
    assert.ok(state.resources["disk.vm02.root"], "independent resources went ahead");
    const again = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(again.code, 0, again.stderr);
    noOrphans(sb);
  } finally {
    sb.cleanup();
  }
});

test("SIGKILL after every journal record: the next plan is right and the next apply converges with nothing leaked", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    // 13 resources: an intent and an outcome each.
    for (let n = 1; n <= 26; n++) {
      const killed = await sb.lago(["apply", "--auto-approve", "--parallelism", "1"], { env: { LAGO_TEST_CRASH_AFTER_JOURNAL: String(n) } });
      assert.equal(killed.signal, "SIGKILL", `apply should have been killed after journal record ${n}: ${killed.stderr}`);
      const plan = await sb.lago(["plan", "--json"]);
      assert.equal(plan.code, 0, `plan after kill #${n}: ${plan.stderr}`);
      const planned = actions(plan.stdout);
      const state = existsSync(path.join(sb.work, ".lago", "default", "state.json")) ? sb.state().resources : {};
      for (const address of Object.keys(planned)) {
        assert.ok(planned[address] !== "delete" || state[address], `kill #${n}: plan deletes ${address} it does not know`);
      }
      const done = await sb.lago(["apply", "--auto-approve"]);
      assert.equal(done.code, 0, `apply after kill #${n}: ${done.stdout}\n${done.stderr}`);
      await converged(sb);
      noOrphans(sb);
      const destroyed = await sb.lago(["destroy", "--auto-approve"]);
      assert.equal(destroyed.code, 0, destroyed.stderr);
      noOrphans(sb);
    }
  } finally {
    sb.cleanup();
  }
});

test("SIGKILL after every journal record of an edit that replaces, deletes, updates and creates", async () => {
  const sb = makeSandbox();
  // vm01 changes template (disk, build and domain replaced), vm02 loses its second NIC
  // and its data disk, vm03 appears, the data net's DHCP range changes.
  const edited = BASE.replace("      - template_name: tiny\n        type: template\n        name: root\n        dev: vda\n        format: qcow2", "      - template_name: other\n        type: template\n        name: root\n        dev: vda\n        format: qcow2")
    .replace("      - net: lago\n      - net: data\n", "      - net: lago\n")
    .replace("      - name: extra\n        type: empty\n        size: 1G\n        dev: vdb\n", "")
    .replace("\nnets:", "\n  vm03:\n    nics:\n      - net: data\n      - net: lago\n    disks:\n      - template_name: tiny\n        name: root\n        dev: vda\nnets:")
    .replace("  data:\n    type: nat\n    management: false\n", "  data:\n    type: nat\n    management: false\n    dhcp:\n      start: 20\n      end: 40\n");
  try {
    let n = 1;
    for (;;) {
      sb.init(BASE);
      const reset = await sb.lago(["apply", "--auto-approve"]);
      assert.equal(reset.code, 0, `back to the base after kill #${n - 1}:\n${reset.stdout}\n${reset.stderr}`);
      sb.init(edited);
      const killed = await sb.lago(["apply", "--auto-approve", "--parallelism", "2"], { env: { LAGO_TEST_CRASH_AFTER_JOURNAL: String(n) } });
      if (killed.signal !== "SIGKILL") {
        assert.equal(killed.code, 0, killed.stderr);
        assert.ok(n > 20, `the edit wrote only ${n - 1} journal records`);
        break;
      }
      const plan = await sb.lago(["plan", "--json"]);
      assert.equal(plan.code, 0, `plan after kill #${n}: ${plan.stderr}`);
      const done = await sb.lago(["apply", "--auto-approve"]);
      assert.equal(done.code, 0, `apply after kill #${n}: ${done.stdout}\n${done.stderr}`);
      await converged(sb);
      noOrphans(sb);
      n += 1;
    }
    await converged(sb);
    noOrphans(sb);
  } finally {
    sb.cleanup();
  }
});

test("SIGKILL during destroy: the next destroy finishes the job", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    for (let n = 1; n <= 26; n += 5) {
      const killed = await sb.lago(["destroy", "--auto-approve", "--parallelism", "1"], { env: { LAGO_TEST_CRASH_AFTER_JOURNAL: String(n) } });
      assert.equal(killed.signal, "SIGKILL");
      noOrphans(sb);
      assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
      noOrphans(sb);
    }
  } finally {
    sb.cleanup();
  }
});

test("a second apply on a locked environment fails at once naming the holder", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const holder = spawn(process.execPath, [path.join(REPO_ROOT, "bin", "lago.js"), "apply", "--auto-approve"], {
      cwd: sb.work,
      env: { ...process.env, HOME: path.join(sb.root, "home"), XDG_CONFIG_DIRS: path.join(sb.root, "none"), NO_COLOR: "1", LAGO_DRIVER: `fake:${sb.worldFile}`, LAGO_LEASE_DIR: path.join(sb.root, "leases"), LAGO__INIT__TEMPLATE_STORE: path.join(sb.root, "store"), LAGO__INIT__TEMPLATE_REPO_PATH: sb.repoMetadata, LAGO_FAKE_FAULTS: "hang:startDomain" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    holder.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 30_000;
    while (!/Creating\.\.\./.test(out) || !/domain\.vm0\d: Creating/.test(out)) {
      if (Date.now() > deadline) throw new Error(`the holder never started: ${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const started = Date.now();
    const second = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, new RegExp(`Error: environment default is locked by PID ${holder.pid} \\(lago apply\\) since \\d{4}-`));
    assert.ok(Date.now() - started < 10_000, "fails at once");
    const plan = await sb.lago(["plan"]);
    assert.match(plan.stderr, /is locked by PID/);
    holder.kill("SIGKILL");
    await new Promise((r) => holder.on("exit", r));
    // The holder is gone: the lock is taken over, and the interrupted apply recovered.
    const done = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(done.code, 0, done.stderr);
    noOrphans(sb);
  } finally {
    sb.cleanup();
  }
});

test("a saved plan is refused once the state or the init file changed", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["plan", "--out", "first.plan"])).code, 0);
    assert.equal((await sb.lago(["plan", "--out", "second.plan"])).code, 0);
    const ok = await sb.lago(["apply", "first.plan"]);
    assert.equal(ok.code, 0, ok.stderr);
    const stale = await sb.lago(["apply", "second.plan"]);
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /the saved plan is stale: the state changed since it was made \(serial 0 → \d+\)/);
    sb.init(BASE.replace("memory: 512", "memory: 768"));
    assert.equal((await sb.lago(["plan", "--out", "third.plan"])).code, 0);
    writeFileSync(path.join(sb.work, "LagoInitFile"), BASE);
    const edited = await sb.lago(["apply", "third.plan"]);
    assert.equal(edited.code, 1);
    assert.match(edited.stderr, /the saved plan is stale: .*LagoInitFile changed since it was made/);
  } finally {
    sb.cleanup();
  }
});

test("without a terminal and without --auto-approve, apply refuses and changes nothing", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to change anything without confirmation: standard input is not a terminal\nhint: pass --auto-approve/);
    assert.equal(existsSync(path.join(sb.work, ".lago", "default", "state.json")), false);
    assert.deepEqual(sb.world().calls.filter((c) => !c.startsWith("list")), []);
  } finally {
    sb.cleanup();
  }
});

test("an invalid init file: every problem with file:line:col, exit 1, nothing changed", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE.replace("    memory: 512\n    nics:\n      - net: lago\n    disks", "    memory: 512\n    vCpu: 2\n    nics:\n      - net: nowhere\n    disks"));
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /LagoInitFile:5:5: .*vCpu.*did you mean `vcpu`/);
    assert.match(r.stderr, /LagoInitFile:7:14: .*nowhere/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(existsSync(path.join(sb.work, ".lago", "default", "state.json")), false);
  } finally {
    sb.cleanup();
  }
});

test("--target plans only the target and what it depends on", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["plan", "--json", "--target", "domain.vm01"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(actions(r.stdout), {
      "build.vm01.root": "create",
      "disk.vm01.root": "create",
      "domain.vm01": "create",
      keypair: "create",
      "lease.lago": "create",
      "network.lago": "create",
      "template.test-repo:tiny:v2": "create",
    });
    const bad = await sb.lago(["plan", "--target", "domain.nope"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no resource domain\.nope in the configuration or the state/);
  } finally {
    sb.cleanup();
  }
});
