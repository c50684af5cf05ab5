/**
 * The everyday verbs against real VMs: one environment of two tiny VMs,
 * brought up once, every verb run against it in turn (status, ssh, the
 * OpenSSH client, a shell and the serial console on a terminal, copies,
 * deploy scripts, artifacts, Ansible, snapshots, power, export, templates,
 * environments, doctor), then the SDK's example (the built package, imported
 * as a user does) brings the exported VM up as a new environment.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../helpers/sandbox.ts";
import { SHARED, literal, makeEnv, planActions, requireTestbed, sh, testTemplate, virsh, type Env } from "./helpers.ts";

const { repo } = requireTestbed();
const TINY = testTemplate();
const STORE_IMAGE = path.join(SHARED.store, TINY.key);
const PTY_RUN = path.join(REPO_ROOT, "test", "e2e", "pty-run.py");

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
    groups: [front, web]
    artifacts: [/root/marker]
    metadata:
      deploy-scripts: [scripts/ok.sh]
  vm02:
    memory: 256
    vcpu: 1
    vm-type: special
    nics:
      - net: lago
      - net: backend
    disks:
      - template_name: lago-tiny
        type: template
        name: root
        dev: vda
        format: qcow2
        build:
          - virt-customize:
              write: /etc/motd:built by lago
      - name: data
        type: empty
        size: 64M
        dev: vdb
        format: qcow2
    groups: [backend]
    artifacts: [/var/log, /etc/hostname, /no/such/file]
    metadata:
      deploy-scripts:
        - $LAGO_INITFILE_PATH/scripts/ok.sh
        - scripts/fail.sh
        - scripts/never.sh
nets:
  lago:
    type: nat
    management: true
    dhcp: {start: 100, end: 254}
    dns_domain_name: lago.local
  backend:
    type: nat
`;

let env: Env;

async function ok(e: Env, args: string[], extra: Record<string, string> = {}): Promise<string> {
  const r = await e.lago(args, extra);
  assert.equal(r.code, 0, `lago ${args.join(" ")} failed (${String(r.code)}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function ssh(vm: string, command: string): Promise<string> {
  return ok(env, ["ssh", vm, command]);
}

function sha1(file: string): string {
  return createHash("sha1").update(readFileSync(file)).digest("hex");
}

async function pty(rows: number, cols: number, steps: unknown[], args: string[]): Promise<{ code: number | null; out: string }> {
  const script = path.join(env.dir, `pty-${Date.now()}.json`);
  writeFileSync(script, JSON.stringify(steps));
  const r = await sh("python3", [PTY_RUN, String(rows), String(cols), script, "--", process.execPath, path.join(REPO_ROOT, "bin", "lago.js"), "--workdir", env.dir, ...args], {
    HOME: path.join(env.dir, "home"),
    XDG_CONFIG_DIRS: path.join(env.dir, "no-xdg"),
    NO_COLOR: "1",
    LAGO__INIT__TEMPLATE_STORE: SHARED.store,
    LAGO_LEASE_DIR: SHARED.leases,
    LAGO_DOMAIN_TYPE: "qemu",
  });
  return { code: r.code, out: r.stdout };
}

before(async () => {
  env = makeEnv("ops", repo);
  env.init(INIT);
  mkdirSync(path.join(env.dir, "scripts"));
  writeFileSync(path.join(env.dir, "scripts", "ok.sh"), '#!/bin/sh\necho "deployed on $(hostname)"\necho "to stderr" >&2\necho marker > /root/marker\n');
  writeFileSync(path.join(env.dir, "scripts", "fail.sh"), "echo failing; exit 4\n");
  writeFileSync(path.join(env.dir, "scripts", "never.sh"), "touch /root/never\n");
  // vm02's build offline: the template tests below list and prune its layer (real.test.ts covers first-boot builds).
  const r = await env.lago(["apply", "--auto-approve"], { LAGO_BUILD: "offline" });
  assert.equal(r.code, 0, `apply failed:\n${r.stdout}\n${r.stderr}`);
});

after(async () => {
  if (!env) return;
  const names = Object.values(env.state().resources)
    .filter((r) => r.kind === "domain")
    .map((r) => String(r.outputs.libvirt_name));
  const r = await env.lago(["destroy", "--auto-approve"]);
  assert.equal(r.code, 0, r.stderr);
  for (const n of names) assert.notEqual((await virsh("snapshot-list", n)).code, 0, `${n} and its snapshots are gone`);
  assert.equal(sha1(STORE_IMAGE), readFileSync(`${STORE_IMAGE}.hash`, "utf8").trim(), "the shared template image was never written");
});

test("status: each VM running with its addresses and SSH answering, nets with subnet and bridge, templates in use", async () => {
  const s = JSON.parse(await ok(env, ["status", "--json"]));
  assert.deepEqual(s.vms.map((v: { name: string; state: string; sshAnswers: boolean }) => [v.name, v.state, v.sshAnswers]), [["vm01", "running", true], ["vm02", "running", true]]);
  const vm02 = s.vms[1];
  assert.deepEqual(vm02.nics.map((n: { net: string; device: string }) => [n.net, n.device]), [["lago", "eth0"], ["backend", "eth1"]]);
  assert.match(await ssh("vm02", "ip -o -4 addr show eth1"), new RegExp(`inet ${vm02.nics[1].ip.replaceAll(".", "\\.")}/24`));
  const lago = s.nets.find((n: { name: string }) => n.name === "lago");
  assert.match(lago.subnet, /^192\.168\.\d+\.0\/24$/);
  assert.equal(lago.state, "active");
  assert.match((await virsh("net-dumpxml", `lago-${String(vm02.libvirtName).split("-")[1]}-lago`)).stdout, new RegExp(`bridge name='${lago.bridge}'`));
  assert.deepEqual(s.templates, [{ address: `template.${TINY.key}`, path: STORE_IMAGE }]);
  const human = await ok(env, ["status"]);
  assert.match(human, /vm02\s+running\s+ssh: answers\s+lago: 192\.168\.\d+\.\d+ \(eth0\), backend: 192\.168\.\d+\.\d+ \(eth1\)/);
});

test("ssh: output and exit code passed through, arguments kept as given, --json", async () => {
  assert.equal(await ok(env, ["ssh", "vm01", "--", "printf", "<%s>\\n", "a b", "$HOME", `it's "quoted"`, ""]), `<a b>\n<$HOME>\n<it's "quoted">\n<>\n`);
  assert.equal(await ssh("vm01", 'echo "$HOME" | tr a-z A-Z'), "/ROOT\n");
  const failing = await env.lago(["ssh", "vm01", "echo out; echo err >&2; exit 3"]);
  assert.deepEqual([failing.code, failing.stdout, failing.stderr], [3, "out\n", "err\n"]);
  const j = await env.lago(["ssh", "--json", "vm02", "--", "sh", "-c", "cat /etc/motd; echo e >&2; exit 5"]);
  assert.equal(j.code, 5);
  assert.deepEqual(JSON.parse(j.stdout), { code: 5, stdout: "built by lago", stderr: "e\n" });
  const unknown = await env.lago(["ssh", "vm09", "true"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no VM vm09 in environment default\nhint: its VMs: vm01, vm02/);
});

test("ssh-config: the OpenSSH client reaches every VM with the pinned host key, and refuses another key", async () => {
  const file = (await ok(env, ["ssh-config", "--path"])).trim();
  for (const vm of ["vm01", "vm02"]) {
    const r = await sh("ssh", ["-F", file, "-o", "BatchMode=yes", vm, "hostname"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${vm}\n`);
  }
  const text = await ok(env, ["ssh-config"]);
  assert.match(text, /^Host vm01\n {2}HostName 192\.168\.\d+\.\d+\n {2}Port 22\n {2}User root\n {2}IdentityFile .*\/ssh\/id_ed25519\n/m);
  // A VM answering with another host key is refused.
  const known = path.join(path.dirname(file), "known_hosts");
  const alias = String(env.state().resources["domain.vm01"]?.outputs.libvirt_name);
  const forged = readFileSync(known, "utf8")
    .split("\n")
    .map((l) => (l.startsWith(`${alias} `) ? `${alias} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcGx0Ywc2Y4Qj3uEbHVg1fVR2z2rKkBqYbS9sJ7m0bL` : l));
  const forgedFile = path.join(env.dir, "forged-config");
  writeFileSync(path.join(env.dir, "forged_known_hosts"), forged.join("\n"));
  writeFileSync(forgedFile, readFileSync(file, "utf8").replaceAll(known, path.join(env.dir, "forged_known_hosts")));
  const refused = await sh("ssh", ["-F", forgedFile, "-o", "BatchMode=yes", "vm01", "hostname"]);
  assert.equal(refused.code, 255);
  assert.match(refused.stderr, /verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i);
});

test("shell: a real terminal of the caller's size that follows resizes; the exit code comes back", async () => {
  const r = await pty(40, 120, [{ wait: "# " }, { send: "stty size; tty; echo mark-$((6*7))\r" }, { wait: "mark-42" }, { resize: [33, 101] }, { sleep: 1 }, { send: "stty size; exit 7\r" }], ["shell", "vm01"]);
  assert.match(r.out, /40 120\r*\n\/dev\/pts\/\d+\r*\nmark-42/);
  assert.match(r.out, /33 101/);
  assert.match(r.out, /EXIT 7\n$/);
});

test("console: the serial console answers and Ctrl-] leaves it", async () => {
  const r = await pty(40, 120, [{ wait: "Escape character" }, { send: "\r" }, { sleep: 1 }, { send: "echo con-$((6*7))\r" }, { wait: "con-42" }, { send: "\u001d" }], ["console", "vm02"]);
  assert.match(r.out, /con-42/);
  assert.match(r.out, /EXIT 0\n$/);
});

test("copy-to-vm and copy-from-vm: trees with odd names, modes and times kept", async () => {
  const src = path.join(env.dir, "tree");
  mkdirSync(path.join(src, "sub dir"), { recursive: true });
  writeFileSync(path.join(src, "a file 'x' $y.txt"), "content\n");
  chmodSync(path.join(src, "a file 'x' $y.txt"), 0o640);
  writeFileSync(path.join(src, "sub dir", "run.sh"), "#!/bin/sh\necho ran\n");
  chmodSync(path.join(src, "sub dir", "run.sh"), 0o755);
  chmodSync(path.join(src, "sub dir"), 0o750);
  const up = JSON.parse(await ok(env, ["copy-to-vm", "--json", "vm01", src, "/root"]));
  assert.deepEqual([up.destination, up.files, up.directories], ["/root/tree", 2, 2]);
  assert.equal(
    await ok(env, ["ssh", "vm01", "--", "stat", "-c", "%a %n", "/root/tree/a file 'x' $y.txt", "/root/tree/sub dir", "/root/tree/sub dir/run.sh"]),
    "640 /root/tree/a file 'x' $y.txt\n750 /root/tree/sub dir\n755 /root/tree/sub dir/run.sh\n",
  );
  assert.equal(await ssh("vm01", "'/root/tree/sub dir/run.sh'"), "ran\n");
  const down = path.join(env.dir, "down");
  mkdirSync(down);
  await ok(env, ["copy-from-vm", "vm01", "/root/tree", down]);
  const file = path.join(down, "tree", "a file 'x' $y.txt");
  assert.equal(readFileSync(file, "utf8"), "content\n");
  assert.equal(statSync(file).mode & 0o777, 0o640);
  assert.equal(statSync(path.join(down, "tree", "sub dir")).mode & 0o777, 0o750);
  assert.equal(statSync(path.join(down, "tree", "sub dir", "run.sh")).mode & 0o777, 0o755);
  // SFTP carries times in whole seconds.
  assert.equal(Math.floor(statSync(file).mtimeMs / 1000), Math.floor(statSync(path.join(src, "a file 'x' $y.txt")).mtimeMs / 1000));
  // A remote symbolic link comes back as a link, never followed.
  await ssh("vm01", "ln -s /etc/shadow /root/tree/link");
  await ok(env, ["copy-from-vm", "vm01", "/root/tree/link", path.join(down, "link")]);
  assert.ok(lstatSync(path.join(down, "link")).isSymbolicLink());
  const missing = await env.lago(["copy-from-vm", "vm01", "/no/such", down]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/no\/such: no such file or directory/);
});

test("deploy: each VM's scripts in order, output prefixed with its name; the first failure stops that VM", async () => {
  const r = await env.lago(["deploy"]);
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /^vm01 \| deployed on vm01$/m);
  assert.match(r.stdout, /^vm02 \| deployed on vm02$/m);
  assert.match(r.stdout, /^vm02 \| failing$/m);
  assert.match(r.stderr, /^vm01 \| to stderr$/m);
  assert.match(r.stderr, /deploy failed on vm02:\n {2}vm02: .*scripts\/fail\.sh exited with code 4; the scripts after it did not run/);
  assert.equal((await env.lago(["ssh", "vm02", "test -e /root/never"])).code, 1, "the script after the failing one did not run");
  const one = JSON.parse(await ok(env, ["deploy", "--json", "vm01"]));
  assert.deepEqual(one.map((x: { vm: string; runs: { code: number }[] }) => [x.vm, x.runs.map((y) => y.code)]), [["vm01", [0]]]);
});

test("collect: artifacts mirrored under OUTPUT/<vm>/; a missing one is reported, or fails with --strict", async () => {
  const out = path.join(env.dir, "collected");
  const r = await env.lago(["collect", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: vm02: artifact \/no\/such\/file does not exist on the VM: skipped/);
  assert.equal(readFileSync(path.join(out, "vm02", "etc", "hostname"), "utf8").trim(), "vm02");
  assert.equal(readFileSync(path.join(out, "vm01", "root", "marker"), "utf8"), "marker\n");
  assert.ok(statSync(path.join(out, "vm02", "var", "log")).isDirectory());
  const strict = await env.lago(["collect", "--strict", "--output", path.join(env.dir, "strict"), "vm02"]);
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, /collect failed on vm02:\n {2}vm02: missing \/no\/such\/file/);
});

test("ansible_hosts: the real ansible runs a module on the VMs, from the INI inventory and as an inventory script", async () => {
  const ini = await ok(env, ["ansible_hosts"]);
  assert.match(ini, /^\[front\]\nvm01 ansible_host=192\.168\.\d+\.\d+ ansible_user=root ansible_ssh_private_key_file=\S+\/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile=/m);
  assert.match(ini, /^\[vm-type=special\]\nvm02 /m);
  assert.match(ini, /^\[groups=backend\]\nvm02 /m);
  writeFileSync(path.join(env.dir, "hosts"), ini);
  const ansibleEnv = { LC_ALL: "C.UTF-8", ANSIBLE_LOCAL_TEMP: path.join(env.dir, "ansible-tmp"), ANSIBLE_HOME: path.join(env.dir, "ansible-home"), ANSIBLE_NOCOLOR: "1" };
  const all = await sh("ansible", ["-i", path.join(env.dir, "hosts"), "all", "-m", "raw", "-a", "hostname"], ansibleEnv);
  assert.equal(all.code, 0, all.stdout + all.stderr);
  assert.match(all.stdout, /vm01 \| CHANGED \| rc=0 >>\nvm01/);
  assert.match(all.stdout, /vm02 \| CHANGED \| rc=0 >>\nvm02/);
  const keyed = await ok(env, ["ansible-hosts", "-k", "vm-type", "disks/0/metadata/distro"]);
  assert.deepEqual(keyed.match(/^\[.*\]$/gm), ["[backend]", "[disks/0/metadata/distro=lagotiny]", "[front]", "[vm-type=default]", "[vm-type=special]", "[web]"]);
  const script = path.join(env.dir, "inventory.sh");
  writeFileSync(script, `#!/bin/sh\ncd ${JSON.stringify(env.dir)} && exec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO_ROOT, "bin", "lago.js"))} ansible-hosts "$@"\n`, { mode: 0o755 });
  const front = await sh("ansible", ["-i", script, "front", "-m", "raw", "-a", "cat /etc/hostname"], {
    ...ansibleEnv,
    HOME: path.join(env.dir, "home"),
    XDG_CONFIG_DIRS: path.join(env.dir, "no-xdg"),
    LAGO__INIT__TEMPLATE_STORE: SHARED.store,
    LAGO_LEASE_DIR: SHARED.leases,
  });
  assert.equal(front.code, 0, front.stdout + front.stderr);
  assert.match(front.stdout, /vm01 \| CHANGED \| rc=0 >>\nvm01/);
  assert.doesNotMatch(front.stdout, /vm02/);
});

test("snapshot and revert: consistent, with memory (no reboot), recorded in the state; plans know; the shared image is never written", async () => {
  // /tmp is a tmpfs in the guest: what is there lives in memory only.
  await ssh("vm01", "echo before > /tmp/in-memory");
  const taken = JSON.parse(await ok(env, ["snapshot", "--json", "clean"]));
  assert.deepEqual(taken.vms, [{ vm: "vm01", state: "running" }, { vm: "vm02", state: "running" }]);
  const list = JSON.parse(await ok(env, ["snapshot", "--list", "--json"]));
  assert.deepEqual(list.snapshots.map((s: { name: string; vms: unknown[] }) => [s.name, s.vms.length]), [["clean", 2]]);
  assert.deepEqual(list.lost, []);
  const dup = await env.lago(["snapshot", "clean"]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /already has a snapshot clean/);
  await ssh("vm01", "echo dirty > /root/dirty");
  await ssh("vm02", "echo dirty > /root/dirty");
  await ssh("vm01", "echo after > /tmp/in-memory");
  await ok(env, ["revert", "clean"]);
  assert.equal((await env.lago(["ssh", "vm01", "test -e /root/dirty"])).code, 1, "vm01's disk reverted");
  assert.equal((await env.lago(["ssh", "vm02", "test -e /root/dirty"])).code, 1, "vm02's disk reverted");
  assert.equal(await ssh("vm01", "cat /tmp/in-memory"), "before\n", "memory restored, not rebooted");
  const plan = await env.lago(["plan", "--json"]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.deepEqual(planActions(plan.stdout), {}, (await env.lago(["plan"])).stdout);
  const replacing = JSON.parse(await ok(env, ["plan", "--json", "--replace", "domain.vm01"]));
  assert.deepEqual(replacing.snapshots_lost, [{ address: "domain.vm01", snapshots: ["clean"] }]);
  assert.match(await ok(env, ["plan", "--replace", "disk.vm02.data"]), /domain\.vm02 loses its snapshots: clean/);
  assert.equal(sha1(STORE_IMAGE), readFileSync(`${STORE_IMAGE}.hash`, "utf8").trim());
});

test("stop, start, shutdown: a VM stopped on purpose is not drift; plan says so and apply keeps it stopped", async () => {
  assert.match(await ok(env, ["stop", "vm02"]), /^vm02: powered off$/m);
  assert.equal(JSON.parse(await ok(env, ["status", "--json"])).vms[1].state, "shut off");
  const unreachable = await env.lago(["ssh", "vm02", "true"]);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /VM vm02 is shut off: SSH cannot reach it\nhint: start it with: lago start vm02/);
  const collect = await env.lago(["collect", "--output", path.join(env.dir, "collect-stopped"), "vm02"]);
  assert.equal(collect.code, 1);
  assert.match(collect.stderr, /vm02: VM vm02 is shut off: SSH cannot reach it \(start it with: lago start vm02\)/);
  const plan = JSON.parse(await ok(env, ["plan", "--json"]));
  assert.equal(planActions(JSON.stringify(plan))["domain.vm02"], undefined, (await env.lago(["plan"])).stdout);
  assert.deepEqual(plan.stopped, ["domain.vm02"]);
  assert.match(await ok(env, ["plan"]), /Stopped on purpose, kept stopped: domain\.vm02/);
  await ok(env, ["apply", "--auto-approve"]);
  assert.equal(JSON.parse(await ok(env, ["status", "--json"])).vms[1].state, "shut off", "apply left it stopped");
  assert.match(await ok(env, ["start", "vm02"]), /^vm02: started$/m);
  assert.equal(await ssh("vm02", "cat /etc/motd"), "built by lago");
  assert.equal(JSON.parse(await ok(env, ["plan", "--json"])).stopped, undefined);
  // A paused VM (libvirt's `start` answers "already active"): `lago start` resumes it.
  const vm01 = String(JSON.parse(await ok(env, ["status", "--json"])).vms[0].libvirtName);
  assert.equal((await virsh("suspend", vm01)).code, 0);
  assert.match(await ok(env, ["start", "vm01"]), /^vm01: resumed$/m);
  assert.equal((await virsh("domstate", vm01)).stdout.trim(), "running");
  assert.match(await ok(env, ["shutdown", "vm01"]), /^vm01: shut down$/m);
  assert.deepEqual(JSON.parse(await ok(env, ["plan", "--json"])).stopped, ["domain.vm01"]);
});

test("export: shut-off VMs as layers on the store template or standalone, with an init file", async () => {
  const running = await env.lago(["export", "--output", path.join(env.dir, "nope"), "vm02"]);
  assert.equal(running.code, 1);
  assert.match(running.stderr, /cannot export running VMs: vm02\nhint: shut them down first: lago shutdown vm02/);
  const layered = path.join(env.dir, "export-layered");
  const standalone = path.join(env.dir, "export-standalone");
  const l = JSON.parse(await ok(env, ["export", "--json", "--output", layered, "vm01"]));
  assert.deepEqual(l.disks, [{ vm: "vm01", disk: "root", file: path.join(layered, "vm01", "root.qcow2"), backing: STORE_IMAGE }]);
  await ok(env, ["export", "--standalone", "--output", standalone, "vm01"]);
  const backing = async (f: string): Promise<unknown> => (JSON.parse((await sh("qemu-img", ["info", "--output=json", f])).stdout) as Record<string, unknown>)["backing-filename"];
  assert.equal(await backing(path.join(layered, "vm01", "root.qcow2")), STORE_IMAGE);
  assert.equal(await backing(path.join(standalone, "vm01", "root.qcow2")), undefined);
  const same = await sh("qemu-img", ["compare", path.join(layered, "vm01", "root.qcow2"), path.join(standalone, "vm01", "root.qcow2")]);
  assert.equal(same.code, 0, same.stdout + same.stderr);
  const initFile = readFileSync(path.join(layered, "LagoInitFile"), "utf8");
  assert.match(initFile, /^ {6}- name: root\n {8}dev: vda\n {8}type: template\n {8}template_type: qcow2\n {8}format: qcow2\n {8}path: vm01\/root\.qcow2$/m);
  assert.match(initFile, /artifacts:\n {6}- \/root\/marker/);
  assert.doesNotMatch(initFile, /backend|vm02/);
  const again = await env.lago(["export", "--output", layered, "vm01"]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exists; lago export does not overwrite files/);
  assert.match(await ok(env, ["shutdown", "--reboot", "vm01"]), /^vm01: rebooted$/m);
  assert.equal((await ssh("vm01", "hostname")).trim(), "vm01");
});

test("template list, fetch, prune: an unused image is removed, one in use never", async () => {
  const listed = JSON.parse(await ok(env, ["template", "list", "--json"]));
  const tiny = listed.images.find((i: { key: string }) => i.key === TINY.key);
  assert.equal(tiny.inUse, true);
  assert.ok(tiny.liveUsers.includes(path.join(env.dir, ".lago", "default")));
  assert.ok(tiny.liveUsers.includes(path.join(env.dir, "export-layered", "vm01", "root.qcow2")), "an exported layer keeps its template");
  assert.deepEqual(listed.repository.templates.find((t: { name: string }) => t.name === "lago-tiny").versions, [{ version: TINY.version, key: TINY.key, stored: true }]);
  // vm02's build layer: in use by its disk, so prune keeps it (and the template under it).
  const layer = String(env.state().resources["build.vm02.root"]?.outputs.path);
  const vm02Disk = String(env.state().resources["disk.vm02.root"]?.outputs.path);
  const listedLayer = listed.layers.find((l: { path: string }) => l.path === layer);
  assert.deepEqual([listedLayer?.inUse, listedLayer?.liveUsers, listedLayer?.template], [true, [vm02Disk], STORE_IMAGE]);
  assert.ok(tiny.liveUsers.includes(layer), "the layer keeps its template");
  assert.match(await ok(env, ["template", "list"]), new RegExp(`^Build layers \\(.*\\):\n(?:.*\n)*  ${listedLayer.key.slice(0, 12)}  on ${literal(TINY.key)}  [0-9.]+ MiB  in use by ${vm02Disk}$`, "m"));
  const kept = JSON.parse(await ok(env, ["template", "prune", "--json"]));
  assert.deepEqual(kept.removed.filter((i: { key: string }) => i.key === TINY.key), []);
  assert.deepEqual(kept.layers.removed.filter((l: { path: string }) => l.path === layer), []);
  assert.ok(existsSync(layer));
  assert.ok(existsSync(STORE_IMAGE));
  const store = path.join(env.dir, "other-store");
  const fetched = await ok(env, ["--template-store", store, "template", "fetch", `lago-tiny:${TINY.version}`]);
  assert.match(fetched, new RegExp(`${literal(TINY.key)} is in the store: `));
  const other = JSON.parse(await ok(env, ["--template-store", store, "template", "list", "--json"]));
  assert.deepEqual(other.images.map((i: { key: string; inUse: boolean }) => [i.key, i.inUse]), [[TINY.key, false]]);
  const pruned = JSON.parse(await ok(env, ["--template-store", store, "template", "prune", "--json"]));
  assert.deepEqual(pruned.removed.map((i: { key: string }) => i.key), [TINY.key]);
  assert.deepEqual(readdirSync(store), []);
});

test("env list and env select (Lago's set-current): commands without --env use the selected one", async () => {
  await ok(env, ["--env", "second", "apply", "--auto-approve", "--target", "network.backend"]);
  try {
    const listed = JSON.parse(await ok(env, ["env", "list", "--json"]));
    assert.deepEqual(listed.envs.map((e: { name: string; current: boolean }) => [e.name, e.current]), [["default", true], ["second", false]]);
    await ok(env, ["env", "select", "second"]);
    assert.equal(JSON.parse(await ok(env, ["status", "--json"])).env, "second");
    assert.match(await ok(env, ["env", "list"]), /^\* second/m);
    const bad = await env.lago(["env", "select", "third"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no environment third in .*\nhint: its environments: default, second/);
  } finally {
    await ok(env, ["env", "select", "default"]);
    await ok(env, ["--env", "second", "destroy", "--auto-approve"]);
  }
  assert.equal(JSON.parse(await ok(env, ["status", "--json"])).env, "default");
});

test("doctor: every check passes in the test bed", async () => {
  const checks = JSON.parse(await ok(env, ["doctor", "--json"]));
  assert.deepEqual(
    checks.map((c: { name: string }) => c.name),
    ["libvirt", "kvm", "qemu-img", "virt-customize", "template store", "lease directory", "workdir", "free disk (template store)", "free disk (workdir)"],
  );
  assert.deepEqual(checks.filter((c: { status: string }) => c.status === "fail"), []);
  const broken = await env.lago(["doctor"], { LAGO_LIBVIRT_URI: "qemu+unix:///system?socket=/nonexistent" });
  assert.equal(broken.code, 1);
  assert.match(broken.stdout, /FAIL {2}libvirt: cannot reach .*\n {6}→ start libvirtd/);
});

test("the SDK example (node:test, the built package) brings the exported VM up as a new environment, checks it, destroys it", async () => {
  const project = mkdtempSync(path.join(os.tmpdir(), "lago-sdk-example-"));
  mkdirSync(path.join(project, "node_modules"));
  symlinkSync(REPO_ROOT, path.join(project, "node_modules", "lago"));
  cpSync(path.join(REPO_ROOT, "examples", "sdk", "environment.test.mjs"), path.join(project, "environment.test.mjs"));
  const exported = path.join(env.dir, "export-layered");
  const r = await sh("sh", ["-c", `cd "$1" && exec "$2" --test "$3"`, "sh", exported, process.execPath, path.join(project, "environment.test.mjs")], {
    HOME: path.join(env.dir, "home"),
    XDG_CONFIG_DIRS: path.join(env.dir, "no-xdg"),
    LAGO__INIT__TEMPLATE_STORE: SHARED.store,
    LAGO_LEASE_DIR: SHARED.leases,
    LAGO_DOMAIN_TYPE: "qemu",
    LAGO_BOOT_TIMEOUT: "180",
  });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# pass 3\n# fail 0/);
  // destroy removes the environment's directory, and the workdir's .lago when nothing else is left in it.
  const left = existsSync(path.join(exported, ".lago")) ? readdirSync(path.join(exported, ".lago")) : [];
  assert.deepEqual(left.filter((f) => !f.endsWith(".lock-holder.json") && !f.includes(".lock")), [], "the example destroyed its environment");
});
