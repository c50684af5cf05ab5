/**
 * The whole mission against the real stack: libvirt (in the test bed's network
 * namespace), qemu-img overlays on the shared template store and its build layers,
 * virt-customize, cloud-init seeds, dnsmasq DHCP/DNS and SSH into tiny VMs. Each
 * step asserts the exact plan before applying and the real state after, and the
 * libguestfs launches it cost (counted twice: lago's events and a virt-customize
 * on PATH that logs its runs). Each bootstrap path is covered: the cloud-init seed
 * (lago-tiny), a first SSH login with the template's password (lago-tiny-ssh) and
 * the virt-customize fallback (lago-tiny-vc); so are both places a build runs: in the
 * guest at first boot, from the seed (test 1, and a failing step in test 9), and
 * offline into a shared layer (test 8).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, existsSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";
import { generatePair } from "../../src/drivers/real/key-store.ts";
import { Ssh2Client } from "../../src/drivers/real/ssh.ts";
import { REPO_ROOT } from "../helpers/sandbox.ts";
import { EXAMPLE, SHARED, launchCounter, literal, makeEnv, planActions, reportedLaunches, requireTestbed, testTemplate, virsh, type Env } from "./helpers.ts";

const { repo, repoHttp } = requireTestbed();
const TINY = testTemplate();
const TEMPLATE = `template.${TINY.key}`;
const launches = launchCounter();
let env: Env;

async function expectPlan(e: Env, expected: Record<string, string>, file = "LagoInitFile"): Promise<void> {
  const r = await e.lago(["plan", "--json", "-f", file]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(planActions(r.stdout), expected);
}

async function apply(e: Env, extra: string[] = []): Promise<string> {
  const r = await e.lago(["apply", "--auto-approve", ...extra], launches.env());
  assert.equal(r.code, 0, `apply failed:\n${r.stdout}\n${r.stderr}`);
  await expectPlan(e, {});
  return r.stdout;
}

/** Apply with JSON events; asserts the libguestfs launches, as lago reports them and as virt-customize ran. */
async function applyLaunching(e: Env, expected: Record<string, number>): Promise<string> {
  const before = launches.count();
  const out = await apply(e, ["--json"]);
  assert.deepEqual(reportedLaunches(out), expected, "libguestfs launches lago reported");
  const total = Object.values(expected).reduce((a, b) => a + b, 0);
  assert.equal(launches.count() - before, total, "virt-customize processes that ran");
  return out;
}

function backingChain(file: string): string[] {
  return (qemuImgInfo(file, "--backing-chain") as unknown as { filename: string }[]).map((i) => i.filename);
}

/** The target devices and sources of a VM's CD-ROMs. */
async function cdroms(e: Env, vm: string): Promise<string[]> {
  const r = await virsh("domblklist", "--details", libvirtName(e, vm));
  return r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === "cdrom")
    .map((f) => `${f[2]} ${f[3]}`);
}

/** Logs in as root with a password only (the key offered first is one no guest knows). */
async function passwordWorks(host: string, password: string): Promise<boolean> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-e2e-pw-"));
  const key = path.join(dir, "id");
  writeFileSync(key, generatePair(ssh2).private, { mode: 0o600 });
  try {
    const r = await new Ssh2Client().exec({ host, port: 22, user: "root", privateKeyPath: key, pinnedHostKey: undefined, passwords: [password] }, "true", { timeoutMs: 60_000 });
    return r.code === 0;
  } catch (err) {
    if (/authentication/i.test(String((err as Error).message))) return false;
    throw err;
  }
}

function ipOf(e: Env, vm: string): string {
  return String(e.state().resources[`domain.${vm}`]?.outputs.ip);
}

async function ssh(e: Env, vm: string, command: string): Promise<string> {
  const r = await e.lago(["ssh", vm, command]);
  assert.equal(r.code, 0, `ssh ${vm} ${command}: ${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function libvirtName(e: Env, vm: string): string {
  return String(e.state().resources[`domain.${vm}`]?.outputs.libvirt_name);
}

async function domId(e: Env, vm: string): Promise<string> {
  const r = await virsh("domid", libvirtName(e, vm));
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** `qemu-img info` of an image (`-U`: a running VM holds its lock). */
function qemuImgInfo(file: string, ...options: string[]): Record<string, unknown> {
  return JSON.parse(execFileSync("qemu-img", ["info", "-U", ...options, "--output=json", file], { encoding: "utf8" })) as Record<string, unknown>;
}

async function uptime(e: Env, vm: string): Promise<number> {
  return Number((await ssh(e, vm, "cut -d' ' -f1 /proc/uptime")).trim());
}

/** Every libvirt object and disk file of the environment is in its state, and nothing else. */
async function noOrphans(e: Env): Promise<void> {
  const state = e.state();
  const recorded = Object.values(state.resources);
  const id = path.basename(String(recorded.find((r) => r.kind === "domain")?.outputs.libvirt_name ?? "lago-x-")).split("-")[1];
  const domains = (await virsh("list", "--all", "--name")).stdout.split("\n").filter((n) => n.startsWith(`lago-${id}-`)).sort();
  assert.deepEqual(domains, recorded.filter((r) => r.kind === "domain").map((r) => String(r.outputs.libvirt_name)).sort());
  const vmsDir = path.join(e.dir, ".lago", "default", "vms");
  const files = existsSync(vmsDir)
    ? readdirSync(vmsDir, { recursive: true, encoding: "utf8" })
        .filter((f) => f.split(path.sep)[1] === "disks" && f.split(path.sep).length === 3 && !f.endsWith(".tmp"))
        .map((f) => path.join(vmsDir, f))
        .sort()
    : [];
  assert.deepEqual(files, recorded.filter((r) => r.kind === "disk").map((r) => String(r.outputs.path)).sort());
}

const VM03 = `  vm03:
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

nets:`;
const VM03_VC = VM03.replace("template_name: lago-tiny\n", "template_name: lago-tiny-vc\n").replace("    vcpu: 1\n", "    vcpu: 1\n    root-password: pw-vc\n");
const WITH_VM03 = EXAMPLE.replace("\nnets:", `\n${VM03_VC}`);
// vm01 also gets an IDE disk on hdc, the slot its seed CD-ROM has: QEMU cannot plug IDE devices into a running
// VM, so the disk (and the seed, moving to hdd) wait for the restart.
const STEP3 = WITH_VM03.replace("  vm01:\n    memory: 256\n    vcpu: 1\n    nics:\n      - net: lago\n", "  vm01:\n    memory: 384\n    vcpu: 1\n    nics:\n      - net: lago\n      - net: backend\n")
  .replace("        size: 64M\n", "        size: 128M\n")
  .replace("        format: qcow2\n  vm02:", "        format: qcow2\n      - name: scratch\n        type: empty\n        size: 16M\n        dev: hdc\n        format: qcow2\n  vm02:");

// A data net's MTU and a data disk's format change under running VMs (issue 6's explicit scenarios).
const STEP3B = STEP3.replace("  backend:\n    type: nat\n    management: false", "  backend:\n    type: nat\n    management: false\n    mtu: 1400").replace(
  "        size: 128M\n        dev: vdb\n        format: qcow2",
  "        size: 128M\n        dev: vdb\n        format: raw",
);
const STEP4 = STEP3B.replace(`${VM03_VC.replace("\n\nnets:", "")}\n`, "");
const STEP6 = STEP4.replace("\nnets:", `\n${VM03.replaceAll("vm03", "vm04").replace("template_name: lago-tiny\n", "template_name: lago-tiny-ssh\n")}`);

before(() => {
  env = makeEnv("main", repoHttp);
});

after(async () => {
  if (env) await env.lago(["destroy", "--auto-approve"]);
});

test("1. the example: two VMs answer SSH, hostnames, build step run at first boot, extra disk, names resolve; no libguestfs launch", async () => {
  env.init(EXAMPLE);
  await expectPlan(env, {
    "build.vm02.root": "create",
    "disk.vm01.root": "create",
    "disk.vm02.data": "create",
    "disk.vm02.root": "create",
    "domain.vm01": "create",
    "domain.vm02": "create",
    keypair: "create",
    "lease.backend": "create",
    "lease.lago": "create",
    "network.backend": "create",
    "network.lago": "create",
    [TEMPLATE]: "create",
  });
  // lago-tiny declares cloud-init: both VMs boot with a seed; vm02's build steps run from it, in the guest, at first boot.
  const out = await applyLaunching(env, {});
  assert.match(out, new RegExp(`downloading ${literal(TINY.key)} from http://127\\.0\\.0\\.1:\\d+/${literal(TINY.handle)}\\.xz`), "the http source and its .xz variant were used");
  assert.equal((await ssh(env, "vm01", "hostname")).trim(), "vm01");
  assert.equal((await ssh(env, "vm02", "hostname")).trim(), "vm02");
  assert.equal((await ssh(env, "vm02", "cat /etc/motd")).trim(), "built by lago");
  await ssh(env, "vm02", "test -f /root/built-by-lago && test -b /dev/vdb");
  const build = env.state().resources["build.vm02.root"]?.outputs ?? {};
  assert.equal(build.mode, "first-boot");
  assert.equal((await ssh(env, "vm02", `cat /var/lib/lago/build/${String(build.id)}.status`)).trim(), "ok");
  assert.match(await ssh(env, "vm02", `cat /var/lib/lago/build/${String(build.id)}.log`), /^== step 1 of 2 \(--touch \/root\/built-by-lago\)\n== step 2 of 2 \(--write \/etc\/motd:built by lago\)\n$/);
  assert.match(await ssh(env, "vm01", "ping -c1 -W5 vm02"), /1 packets received/);
  assert.match(await ssh(env, "vm02", "ping -c1 -W5 vm01.lago.local"), /1 packets received/);
  // The disks are qcow2 overlays on the shared store's template (no build layer: vm02's build ran in the guest).
  const template = path.join(SHARED.store, TINY.key);
  for (const vm of ["vm01", "vm02"]) {
    const disk = String(env.state().resources[`disk.${vm}.root`]?.outputs.path);
    assert.deepEqual(backingChain(disk), [disk, template]);
  }
  // The seed is a cidata CD-ROM; NICs carry no option ROM and the BIOS boots from the disk without a menu.
  assert.deepEqual(await cdroms(env, "vm01"), [`hdc ${path.join(env.dir, ".lago", "default", "vms", "vm01", "cidata.iso")}`]);
  assert.match(execFileSync("isoinfo", ["-d", "-i", path.join(env.dir, ".lago", "default", "vms", "vm01", "cidata.iso")], { encoding: "utf8" }), /Volume id: cidata/);
  const xml = (await virsh("dumpxml", "--inactive", libvirtName(env, "vm02"))).stdout;
  assert.equal(xml.match(/<rom enabled='no'\/>/g)?.length, 2, "both NICs of vm02");
  assert.match(xml, /<bootmenu enable='no'\/>/);
  // lago's networks do not start with the host: a fresh definition never does, and lago leaves it so.
  const prefix = libvirtName(env, "vm01").replace(/-vm01$/, "");
  for (const net of ["lago", "backend"]) assert.match((await virsh("net-info", `${prefix}-${net}`)).stdout, /^Autostart:\s+no$/m, net);
  await noOrphans(env);
});

test("2. adding a VM: only its resources and the DHCP/DNS entries; the others keep running (virt-customize bootstrap)", async () => {
  const ids = [await domId(env, "vm01"), await domId(env, "vm02")];
  const up = await uptime(env, "vm01");
  env.init(WITH_VM03);
  await expectPlan(env, { "disk.vm03.root": "create", "domain.vm03": "create", "network.lago": "update", [`template.${testTemplate("lago-tiny-vc").key}`]: "create" });
  // lago-tiny-vc declares no cloud-init and publishes no password: its bootstrap falls back to virt-customize.
  await applyLaunching(env, { "disk.vm03.root": 1 });
  assert.deepEqual(await cdroms(env, "vm03"), [], "no seed");
  // virt-customize read the root password from a file, never from its command line.
  assert.equal(await passwordWorks(ipOf(env, "vm03"), "pw-vc"), true);
  assert.deepEqual([await domId(env, "vm01"), await domId(env, "vm02")], ids, "same libvirt domain ids");
  assert.ok((await uptime(env, "vm01")) > up, "uptime not reset");
  assert.equal((await ssh(env, "vm03", "hostname")).trim(), "vm03");
  assert.match(await ssh(env, "vm03", "ping -c1 -W5 vm01"), /1 packets received/);
});

test("3. more memory, a NIC and an IDE disk: updated in place, restart required, --restart applies it; a disk grows live", async () => {
  const vm02 = await domId(env, "vm02");
  assert.notEqual(STEP3.indexOf("name: scratch"), -1);
  env.init(STEP3);
  const plan = JSON.parse((await env.lago(["plan", "--json"])).stdout);
  assert.deepEqual(planActions(JSON.stringify(plan)), { "disk.vm01.scratch": "create", "disk.vm02.data": "update", "domain.vm01": "update", "network.backend": "update" });
  const change = plan.resource_changes.find((c: { address: string }) => c.address === "domain.vm01");
  assert.equal(change.requires_restart, true);
  await apply(env);
  assert.match((await virsh("dumpxml", "--inactive", libvirtName(env, "vm01"))).stdout, /<memory unit='KiB'>393216<\/memory>/);
  assert.match((await virsh("dominfo", libvirtName(env, "vm01"))).stdout, /Used memory:\s+262144 KiB/, "the running VM keeps its memory until restarted");
  const pending = await env.lago(["plan"]);
  assert.match(pending.stdout, /Waiting for a restart to take effect: domain\.vm01/);
  // The running VM keeps its seed on hdc until the restart; its definition has the disk there and the seed on hdd.
  const seed = path.join(env.dir, ".lago", "default", "vms", "vm01", "cidata.iso");
  assert.deepEqual(await cdroms(env, "vm01"), [`hdc ${seed}`]);
  assert.match((await virsh("dumpxml", "--inactive", libvirtName(env, "vm01"))).stdout, /<target dev='hdd' bus='ide'\/>/);
  const r = await env.lago(["apply", "--auto-approve", "--restart"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await cdroms(env, "vm01"), [`hdd ${seed}`]);
  assert.equal((await ssh(env, "vm01", "cat /sys/block/sda/size")).trim(), String((16 * 1024 * 1024) / 512), "the guest sees the IDE disk after the restart");
  assert.match((await virsh("dominfo", libvirtName(env, "vm01"))).stdout, /Used memory:\s+393216 KiB/);
  assert.match(await ssh(env, "vm01", "ip -o -4 addr show"), /eth1\s+inet 192\.168\.\d+\.\d+\/24/);
  assert.equal(await domId(env, "vm02"), vm02, "vm02 kept running");
  assert.equal((await ssh(env, "vm02", "cat /sys/block/vdb/size")).trim(), String((128 * 1024 * 1024) / 512), "the guest sees the grown disk");
  await expectPlan(env, {});
});

test("3b. a data net's MTU and a data disk's format change under running VMs: the net restarts, the disk is recreated, the VMs keep running", async () => {
  assert.notEqual(STEP3B, STEP3);
  const ids = { vm01: await domId(env, "vm01"), vm02: await domId(env, "vm02"), vm03: await domId(env, "vm03") };
  const oldDisk = String(env.state().resources["disk.vm02.data"]?.outputs.path);
  env.init(STEP3B);
  await expectPlan(env, { "disk.vm02.data": "replace", "domain.vm01": "update", "domain.vm02": "update", "network.backend": "update" });
  await apply(env);
  assert.deepEqual({ vm01: await domId(env, "vm01"), vm02: await domId(env, "vm02"), vm03: await domId(env, "vm03") }, ids, "no VM was restarted or recreated");
  const backend = String(env.state().resources["network.backend"]?.outputs.libvirt_name);
  assert.match((await virsh("net-dumpxml", backend)).stdout, /<mtu size='1400'\/>/);
  for (const vm of ["vm01", "vm02"]) {
    // The live definition: the NIC is back on the restarted network, with its MTU.
    const live = (await virsh("dumpxml", libvirtName(env, vm))).stdout;
    const nic = [...live.matchAll(/<interface type='network'>[\s\S]*?<\/interface>/g)].map((m) => m[0]).find((x) => x.includes(`network='${backend}'`));
    assert.ok(nic, `${vm} has a NIC on ${backend}`);
    assert.match(nic, /<mtu size='1400'\/>/);
    // The guest got the re-attached NIC back (hotplugged: DHCP again) with the net's MTU.
    const shown = await ssh(env, vm, "for i in $(seq 60); do [ $(ip -o -4 addr show | grep -c ' eth') -ge 2 ] && break; sleep 1; done; ip -o link show; ip -o -4 addr show");
    assert.equal(shown.match(/^\d+: eth\d+\s+inet /gm)?.length, 2, shown);
    assert.match(shown, /eth\d+: <[^>]*UP[^>]*> mtu 1400 /, shown);
  }
  const disk = String(env.state().resources["disk.vm02.data"]?.outputs.path);
  const info = qemuImgInfo(disk);
  assert.equal(info.format, "raw");
  assert.equal(info["virtual-size"], 128 * 1024 * 1024);
  if (disk !== oldDisk) assert.equal(existsSync(oldDisk), false, "the old image is gone");
  assert.match((await virsh("domblklist", libvirtName(env, "vm02"))).stdout, new RegExp(`vdb\\s+${disk.replaceAll(".", "\\.")}`));
  await noOrphans(env);
});

test("4. removing a VM removes its domain, disks and DHCP/DNS entries, nothing else", async () => {
  const vm02 = await domId(env, "vm02");
  const disk = String(env.state().resources["disk.vm03.root"]?.outputs.path);
  env.init(STEP4);
  await expectPlan(env, { "disk.vm03.root": "delete", "domain.vm03": "delete", "network.lago": "update", [`template.${testTemplate("lago-tiny-vc").key}`]: "delete" });
  await apply(env);
  assert.equal(existsSync(disk), false);
  const net = await virsh("net-dumpxml", String(env.state().resources["network.lago"]?.outputs.libvirt_name));
  assert.doesNotMatch(net.stdout, /vm03/);
  // Without STP, a VM's new port forwards at once (with it, the kernel blocks each new port for 4 s).
  const bridge = /<bridge name='([^']+)'/.exec(net.stdout)?.[1];
  assert.equal(readFileSync(`/sys/class/net/${bridge}/bridge/stp_state`, "utf8").trim(), "0");
  assert.equal(await domId(env, "vm02"), vm02);
  await noOrphans(env);
});

test("5. a definition changed and a VM deleted behind lago's back are reported as drift; the VM is recreated", async () => {
  const name = libvirtName(env, "vm02");
  // What refresh parsed is remembered by the XML's content: a definition changed outside lago is read afresh.
  await expectPlan(env, {});
  const cache = readFileSync(path.join(env.dir, ".lago", "default", "libvirt-xml.cache.json"), "utf8");
  assert.match(cache, new RegExp(`"name":"${name}"`));
  assert.equal((await virsh("setmaxmem", name, "300M", "--config")).code, 0);
  const drift = JSON.parse((await env.lago(["plan", "--json"])).stdout) as { drift: { address: string; changes: { path: string; after: unknown }[] }[] };
  assert.deepEqual(
    drift.drift.map((d) => [d.address, d.changes.map((c) => [c.path, c.after])]),
    [["domain.vm02", [["/memory", 300]]]],
  );
  assert.equal((await virsh("destroy", name)).code, 0);
  assert.equal((await virsh("undefine", name)).code, 0);
  const human = await env.lago(["plan"]);
  assert.match(human.stdout, /! domain\.vm02 was deleted outside lago/);
  await expectPlan(env, { "domain.vm02": "create" });
  await apply(env);
  assert.equal((await ssh(env, "vm02", "hostname")).trim(), "vm02");
});

test("6. SIGKILL while a VM waits for its first SSH login: the next apply bootstraps it, nothing orphaned", async () => {
  env.init(STEP6);
  const child = spawn(process.execPath, [path.join(REPO_ROOT, "bin", "lago.js"), "apply", "--auto-approve"], {
    cwd: env.dir,
    env: { ...process.env, HOME: path.join(env.dir, "home"), NO_COLOR: "1", LAGO__INIT__TEMPLATE_REPO_PATH: repoHttp, LAGO__INIT__TEMPLATE_STORE: SHARED.store, LAGO_LEASE_DIR: SHARED.leases, LAGO_DOMAIN_TYPE: "qemu" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const killed = await new Promise<boolean>((resolve) => {
    const timer = setInterval(() => {
      if (/domain\.vm04: waiting for SSH/.test(out)) {
        clearInterval(timer);
        child.kill("SIGKILL");
        resolve(true);
      }
    }, 50);
    child.on("exit", () => {
      clearInterval(timer);
      resolve(false);
    });
  });
  assert.ok(killed, `apply finished before it could be killed:\n${out}`);
  await new Promise((r) => child.on("exit", r));
  const plan = await env.lago(["plan"]);
  assert.equal(plan.code, 0, plan.stderr);
  // lago-tiny-ssh publishes only its root password: lago logs in with it and installs the key; no libguestfs.
  await applyLaunching(env, {});
  assert.equal((await ssh(env, "vm04", "hostname")).trim(), "vm04");
  assert.equal((await ssh(env, "vm04", "cat /etc/hostname")).trim(), "vm04");
  assert.deepEqual(await cdroms(env, "vm04"), [], "no seed");
  await noOrphans(env);
});

test("7. destroy leaves no domain, network, disk, lease or environment file; the template store stays", async () => {
  const state = env.state();
  const nets = Object.values(state.resources).filter((r) => r.kind === "network").map((r) => String(r.outputs.libvirt_name));
  const r = await env.lago(["destroy", "--auto-approve"]);
  assert.equal(r.code, 0, r.stderr);
  const id = nets[0]?.split("-")[1] ?? "none";
  assert.deepEqual((await virsh("list", "--all", "--name")).stdout.split("\n").filter((n) => n.includes(`lago-${id}-`)), []);
  assert.deepEqual((await virsh("net-list", "--all", "--name")).stdout.split("\n").filter((n) => n.includes(`lago-${id}-`)), []);
  assert.deepEqual(readdirSync(SHARED.leases).filter((f) => f.endsWith(".lease")), []);
  assert.deepEqual(readdirSync(path.join(env.dir, ".lago")).filter((f) => !f.startsWith("default.lock")), []);
  assert.ok(existsSync(path.join(SHARED.store, TINY.key)));
  // vm02's build ran in the guest: it left no layer in the store.
  assert.deepEqual(existsSync(path.join(SHARED.store, "layers")) ? readdirSync(path.join(SHARED.store, "layers")).filter((f) => f.endsWith(".qcow2")) : [], []);
});

test("8. two environments at once: different subnets; a first SSH login sets a root password; an offline build makes a shared read-only layer, then cached; a fresh disk < 1 MiB", async (t) => {
  const one = `domains:\n  solo:\n    memory: 256\n    vcpu: 1\n    nics:\n      - net: lago\n    disks:\n      - template_name: lago-tiny\n        name: root\n        dev: vda\nnets:\n  lago:\n    type: nat\n`;
  const a = makeEnv("a", repo);
  const b = makeEnv("b", repo);
  // a: lago-tiny-ssh (bootstrap over a first SSH login), a root password, and a Lago bridge net
  // (an isolated L2 segment, no addresses).
  a.init(
    one
      .replace("template_name: lago-tiny\n", "template_name: lago-tiny-ssh\n")
      .replace("    vcpu: 1\n", "    vcpu: 1\n    root-password: pw-a\n")
      .replace("      - net: lago\n", "      - net: lago\n      - net: wire\n")
      .replace("nets:\n", "nets:\n  wire:\n    type: bridge\n"),
  );
  // b: lago-tiny (cloud-init seed) with a root password and the same build steps as the example's vm02, built
  // offline ([lago] build = offline): one libguestfs launch makes the layer.
  const offline = { LAGO_BUILD: "offline" };
  b.init(
    one
      .replace("    vcpu: 1\n", "    vcpu: 1\n    root-password: \"pw-b: it's\"\n")
      .replace("        dev: vda\n", "        dev: vda\n        build:\n          - virt-customize:\n              touch: /root/built-by-lago\n              write: /etc/motd:built by lago\n"),
  );
  const buildNote = async (e: Env): Promise<string> => {
    const plan = JSON.parse((await e.lago(["plan", "--json"], offline)).stdout) as { resource_changes: { address: string; note?: string }[] };
    return String(plan.resource_changes.find((c) => c.address === "build.solo.root")?.note);
  };
  assert.equal(await buildNote(b), "offline (virt-customize): [lago] build is offline");
  try {
    const before = launches.count();
    const applyB = async (): Promise<{ code: number | null; stdout: string; stderr: string; diskBytes: number }> => {
      // The disk alone first: right after creation it costs the host almost nothing.
      const disk = await b.lago(["apply", "--auto-approve", "--json", "--target", "disk.solo.root"], { ...launches.env(), ...offline });
      assert.equal(disk.code, 0, disk.stderr);
      const diskBytes = statSync(String(b.state().resources["disk.solo.root"]?.outputs.path)).blocks * 512;
      const rest = await b.lago(["apply", "--auto-approve", "--json"], { ...launches.env(), ...offline });
      return { ...rest, stdout: `${disk.stdout}${rest.stdout}`, diskBytes };
    };
    const [ra, rb] = await Promise.all([a.lago(["apply", "--auto-approve", "--json"], launches.env()), applyB()]);
    assert.equal(ra.code, 0, ra.stderr);
    assert.equal(rb.code, 0, rb.stderr);
    assert.deepEqual({ ...reportedLaunches(ra.stdout), ...reportedLaunches(rb.stdout) }, { "build.solo.root": 1 });
    assert.equal(launches.count() - before, 1, "one virt-customize ran");
    t.diagnostic(`a VM disk right after creation: ${rb.diskBytes} bytes allocated on the host`);
    assert.ok(rb.diskBytes < 1024 * 1024, `a fresh disk costs ${rb.diskBytes} bytes`);
    const sa = a.state().resources["lease.lago"]?.outputs.subnet;
    const sb = b.state().resources["lease.lago"]?.outputs.subnet;
    assert.ok(sa && sb && sa !== sb, `different subnets: ${String(sa)} vs ${String(sb)}`);

    // a: bootstrapped over SSH: the key, the host name, and the VM's root password instead of the template's.
    assert.equal((await a.lago(["ssh", "solo", "hostname"])).stdout.trim(), "solo");
    assert.equal(await passwordWorks(ipOf(a, "solo"), "pw-a"), true);
    assert.equal(await passwordWorks(ipOf(a, "solo"), "lago-tiny"), false, "the template's published password was replaced");
    const wire = String(a.state().resources["network.wire"]?.outputs.libvirt_name);
    assert.match((await virsh("net-info", wire)).stdout, /Active:\s+yes/);
    assert.doesNotMatch((await virsh("net-dumpxml", wire)).stdout, /<forward|<ip /, "a bridge net has no NAT and no addresses");
    assert.match((await a.lago(["ssh", "solo", "ip -o link show eth1"])).stdout, /eth1/);

    // b: the seed delivered the key, the host name and the root password; the disk overlays the shared layer.
    assert.equal((await b.lago(["ssh", "solo", "hostname"])).stdout.trim(), "solo");
    assert.equal((await b.lago(["ssh", "solo", "cat /etc/motd"])).stdout.trim(), "built by lago");
    assert.equal(await passwordWorks(ipOf(b, "solo"), "pw-b: it's"), true);
    const layer = String(b.state().resources["build.solo.root"]?.outputs.path);
    assert.match(layer, new RegExp(`^${SHARED.store}/layers/[0-9a-f]{64}\\.qcow2$`));
    assert.equal(statSync(layer).mode & 0o222, 0, "a layer is read-only (qemu's access leaves it 0440)");
    assert.equal(b.state().resources["build.solo.root"]?.outputs.cached, false);
    // Another environment with the same build finds the layer in the store: no launch.
    const c = makeEnv("c", repo);
    c.init(readFileSync(path.join(b.dir, "LagoInitFile"), "utf8"));
    assert.match(await buildNote(c), /^cached: layer [0-9a-f]{12} is in the store, no libguestfs launch$/);
    const diskB = String(b.state().resources["disk.solo.root"]?.outputs.path);
    assert.deepEqual(backingChain(diskB), [diskB, layer, path.join(SHARED.store, TINY.key)]);
    const users = JSON.parse(execFileSync("cat", [layer.replace(/\.qcow2$/, ".users")], { encoding: "utf8" })) as { users: Record<string, string> };
    assert.ok(Object.keys(users.users).includes(diskB), "b's disk is a registered user of the layer");
    assert.equal(readdirSync(path.join(SHARED.store, "layers")).filter((f) => f.endsWith(".qcow2")).length, 1, "one layer for both");
  } finally {
    await Promise.all([a.lago(["destroy", "--auto-approve"]), b.lago(["destroy", "--auto-approve"])]);
  }
});

test("9. a build step that fails at first boot fails the apply: the step, its exit status and its output; fixing the step replaces the disk", async () => {
  const f = makeEnv("fail", repo);
  const spec = (command: string): string =>
    `domains:\n  solo:\n    memory: 256\n    vcpu: 1\n    nics: [{net: lago}]\n    disks:\n      - template_name: lago-tiny\n        name: root\n        dev: vda\n        build:\n          - virt-customize:\n              touch: /root/before\n              run-command: ${JSON.stringify(command)}\nnets:\n  lago:\n    type: nat\n`;
  f.init(spec("echo boom >&2; exit 3"));
  try {
    const r = await f.lago(["apply", "--auto-approve"], launches.env());
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stderr,
      /domain\.solo: its build failed at first boot, in the guest: step 2 of 2 \(--run-command echo boom >&2; exit 3\) exited with 3\n== step 1 of 2 \(--touch \/root\/before\)\n== step 2 of 2 \(--run-command echo boom >&2; exit 3\)\nboom/,
    );
    assert.match(r.stderr, /\[lago\] build = offline/);
    // The user fixes the step: the build, its disk and the VM are made again; the new build runs at first boot.
    f.init(spec("echo fixed > /root/after"));
    await expectPlan(f, { "build.solo.root": "replace", "disk.solo.root": "replace", "domain.solo": "replace" });
    await applyLaunching(f, {});
    assert.equal((await f.lago(["ssh", "solo", "cat /root/after"])).stdout.trim(), "fixed");
  } finally {
    await f.lago(["destroy", "--auto-approve"]);
  }
});

test("templates with a wrong hash or a backing file are refused, nothing half-written in the store", async () => {
  const bad = makeEnv("bad", repo);
  bad.init(
    `domains:\n  h:\n    nics: [{net: lago}]\n    disks: [{template_name: lago-tiny-badhash, name: root, dev: vda}]\n  b:\n    nics: [{net: lago}]\n    disks: [{template_name: lago-tiny-backed, name: root, dev: vda}]\nnets:\n  lago:\n    type: nat\n`,
  );
  try {
    const r = await bad.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`template\\.${literal(testTemplate("lago-tiny-badhash").key)}: .*hash`, "i"));
    assert.match(r.stderr, new RegExp(`template\\.${literal(testTemplate("lago-tiny-backed").key)}: .*backing file`));
    const stored = readdirSync(SHARED.store);
    assert.deepEqual(stored.filter((f) => f.includes("badhash") || f.includes("backed")).filter((f) => !f.endsWith(".lock")), []);
    assert.deepEqual(stored.filter((f) => f.endsWith(".tmp")), []);
  } finally {
    await bad.lago(["destroy", "--auto-approve"]);
  }
});
