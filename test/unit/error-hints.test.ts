/**
 * The next step for common failures. The stderr texts are what virsh, qemu and
 * libguestfs really print: captured on this project's test machines (Debian 12,
 * libvirt 9.0, QEMU 7.2), or run live here where that is harmless.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { CommandError, ProviderError } from "../../src/errors.ts";
import { hintFor, isEnvironmentError } from "../../src/error-hints.ts";
import { run } from "../../src/drivers/real/exec.ts";

const virshFailed = (args: string[], stderr: string): CommandError => new CommandError(["virsh", "-c", "qemu:///system", "-q", ...args], 1, stderr);
/** As the applier wraps it: the resource address in front, the command error as the cause. */
const wrapped = (err: CommandError): ProviderError => new ProviderError("domain.vm01", err.message, { cause: err });

const CAPTURED = {
  noDaemon: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n",
  refused: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused\n",
  socketDenied: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied\n",
  // A user outside the libvirt group on a socket that asks polkit, with no D-Bus (this machine) or no agent.
  polkitNoBus: "error: failed to connect to the hypervisor\nerror: internal error: Unable to get system bus connection: Could not connect: No such file or directory\n",
  polkitNoAgent: "error: failed to connect to the hypervisor\nerror: authentication unavailable: no polkit agent available to authenticate action 'org.libvirt.unix.manage'\n",
  // libvirt without /dev/kvm (src/qemu/qemu_process.c).
  noKvm:
    "error: Failed to start domain 'lago-1a2b3c4d-vm01'\nerror: unsupported configuration: Domain requires KVM, but it is not available. Check that virtualization is enabled in the host BIOS, and host configuration is setup to load the kvm modules.\n",
  // This machine: /dev/kvm exists, KVM aborts qemu.
  kvmMsr:
    "error: Failed to create domain from kvm2.xml\nerror: internal error: qemu unexpectedly closed the monitor: 2026-11-23T11:23:11.087608Z qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.\n",
  kvmDenied: "Could not access KVM kernel module: Permission denied\nqemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied\n",
  // The quickstart on a test machine where another environment's network (another lease directory) held the subnet.
  subnetTaken:
    "error: Failed to start network lago-e030c59b-lago\nerror: internal error: Network is already in use by interface lgof0b26894ef\n",
  noOs:
    "[   0.0] Examining the guest ...\nvirt-customize: error: no operating systems were found in the guest image\n\nIf reporting bugs, run virt-customize with debugging enabled and include the complete output:\n\n  virt-customize -v -x [...]\n",
};

test("libvirtd not running: how to start it", () => {
  for (const stderr of [CAPTURED.noDaemon, CAPTURED.refused]) {
    const hint = hintFor(wrapped(virshFailed(["list", "--all"], stderr)));
    assert.match(hint ?? "", /^libvirtd is not running \(nothing listens on \/var\/run\/libvirt\/libvirt-sock\): start it with `systemctl start libvirtd` \(without systemd: `virtlogd -d && libvirtd -d`/);
  }
  const modular = hintFor(virshFailed(["list"], CAPTURED.noDaemon.replace("libvirt-sock", "virtqemud-sock")));
  assert.match(modular ?? "", /^virtqemud is not running .*systemctl start virtqemud\.socket/);
});

test("no permission on libvirt: join the libvirt group", () => {
  for (const stderr of [CAPTURED.socketDenied, CAPTURED.polkitNoBus, CAPTURED.polkitNoAgent]) {
    assert.match(hintFor(virshFailed(["list"], stderr)) ?? "", /add yourself to the libvirt group \(`sudo usermod -aG libvirt \$USER`, then log in again\) or run lago as root/, stderr);
  }
});

test("KVM unusable: set the domain type to qemu", () => {
  for (const stderr of [CAPTURED.noKvm, CAPTURED.kvmMsr, CAPTURED.kvmDenied]) {
    assert.match(hintFor(wrapped(virshFailed(["start", "lago-1a2b3c4d-vm01"], stderr))) ?? "", /^KVM is not usable on this machine: set the domain type to qemu \(LAGO_DOMAIN_TYPE=qemu or --domain-type qemu/, stderr);
  }
});

test("a subnet already in use on the host: remove the other network or lease elsewhere", () => {
  assert.match(hintFor(wrapped(virshFailed(["net-start", "lago-e030c59b-lago"], CAPTURED.subnetTaken))) ?? "", /^another network on this host already uses the subnet lago leased \(interface lgof0b26894ef\).*LAGO_LEASE_RANGE=/);
});

test("virt-customize does not recognize the guest", () => {
  assert.match(hintFor(new CommandError(["virt-customize", "-a", "/x.qcow2"], 1, CAPTURED.noOs)) ?? "", /recognizes no operating system in the image/);
});

test("a missing tool keeps the hint naming its Debian package; unknown failures have none", () => {
  const missing = new CommandError(["qemu-img", "info"], undefined, "", "failed: qemu-img is not installed (Debian package qemu-utils)", { hint: "install it with: apt-get install qemu-utils" });
  assert.equal(hintFor(wrapped(missing)), "install it with: apt-get install qemu-utils");
  assert.equal(hintFor(virshFailed(["list"], "error: something else entirely\n")), undefined);
  assert.equal(hintFor(new Error("boom")), undefined);
});

test("permission denied and a full disk on the template store and the lease directory name the option to change", () => {
  const ctx = { templateStore: "/var/lib/lago/store", leaseDir: "/var/lib/lago/subnets" };
  const eacces = (p: string): Error => Object.assign(new Error(`EACCES: permission denied, open '${p}'`), { code: "EACCES", path: p, syscall: "open" });
  assert.match(hintFor(wrapped(new CommandError(["x"], 1, "")), ctx) ?? "none", /^none$/);
  assert.match(hintFor(eacces("/var/lib/lago/store/repo:tiny:v1.tmp"), ctx) ?? "", /^the template store \/var\/lib\/lago\/store is not writable for you: .*--template-store DIR/);
  assert.match(hintFor(new ProviderError("lease.lago", "x", { cause: eacces("/var/lib/lago/subnets/201.lease") }), ctx) ?? "", /^the subnet lease directory \/var\/lib\/lago\/subnets is not writable for you: .*--lease-dir DIR/);
  assert.match(hintFor(eacces("/srv/elsewhere"), ctx) ?? "", /^\/srv\/elsewhere is not writable for you/);
  const full = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  assert.match(hintFor(full, ctx) ?? "", /^the disk is full: free space/);
  assert.equal(isEnvironmentError(full), true);
  assert.equal(isEnvironmentError(new Error("x")), false);
});

test("live: real virsh against a socket nobody listens on gets the libvirtd hint", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-hints-"));
  try {
    const err = await run("virsh", ["-c", `qemu+unix:///system?socket=${dir}/none.sock`, "-q", "list", "--all"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError, String(err));
    assert.match(err.stderr, /Failed to connect socket to '.*none\.sock': No such file or directory/);
    assert.match(hintFor(wrapped(err)) ?? "", /^libvirtd is not running \(nothing listens on .*none\.sock\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("live: real virsh without permission on the socket, real qemu without access to /dev/kvm", { skip: process.getuid?.() !== 0 && "needs root to drop to another user" }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-hints-"));
  const server = net.createServer();
  try {
    chmodSync(dir, 0o755);
    const sock = path.join(dir, "root-only.sock");
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    chmodSync(sock, 0o600);
    const nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
    const capture = (cmd: string[]): string => {
      try {
        execFileSync(cmd[0] ?? "", cmd.slice(1), { env: { ...process.env, LC_ALL: "C", HOME: dir }, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
        return "";
      } catch (err) {
        return String((err as { stderr?: Buffer }).stderr ?? "");
      }
    };
    const denied = capture([...nobody, "virsh", "-c", `qemu+unix:///system?socket=${sock}`, "list"]);
    assert.match(denied, /Permission denied/);
    assert.match(hintFor(virshFailed(["list"], denied)) ?? "", /add yourself to the libvirt group/);
    const kvm = capture([...nobody, "qemu-system-x86_64", "-accel", "kvm", "-machine", "none", "-display", "none", "-nodefaults"]);
    assert.match(kvm, /kvm/i);
    assert.match(hintFor(new CommandError(["qemu-system-x86_64"], 1, kvm)) ?? "", /^KVM is not usable on this machine/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
