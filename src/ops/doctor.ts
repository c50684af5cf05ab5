/**
 * `lago doctor`: is this machine ready for lago? libvirt reachable, KVM usable
 * (or the domain type set to qemu), qemu-img and virt-customize installed,
 * the template store, lease directory and workdir writable, enough free disk.
 * Every failed check says what to do.
 */
import { accessSync, constants, existsSync, statfsSync } from "node:fs";
import path from "node:path";
import { CommandError, errorMessage } from "../errors.ts";
import { run } from "../drivers/real/exec.ts";
import type { OpsContext } from "./context.ts";

export interface Check {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  /** What to do about it. */
  fix?: string | undefined;
}

const MIN_FREE_BYTES = 2 * 1024 ** 3;

async function tool(cmd: string, args: string[]): Promise<{ ok: true; out: string } | { ok: false; err: unknown }> {
  try {
    const r = await run(cmd, args, { timeoutMs: 30_000 });
    return { ok: true, out: `${r.stdout}${r.stderr}`.trim() };
  } catch (err) {
    return { ok: false, err };
  }
}

function stderrOf(err: unknown): string {
  return (err instanceof CommandError ? err.stderr : errorMessage(err)).trim().split("\n").slice(-3).join(" ");
}

/** The nearest existing directory at or above `dir`. */
function existingAncestor(dir: string): string {
  let d = path.resolve(dir);
  while (!existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

function writable(name: string, dir: string, setting: string): Check {
  const at = existingAncestor(dir);
  try {
    accessSync(at, constants.W_OK | constants.X_OK);
    return { name, status: "ok", detail: existsSync(dir) ? `${dir} is writable` : `${dir} does not exist yet; ${at} is writable, so lago can create it` };
  } catch {
    return { name, status: "fail", detail: `${at} is not writable by this user`, fix: `make ${dir} writable for you, or point ${setting} elsewhere` };
  }
}

function freeDisk(name: string, dir: string): Check {
  const at = existingAncestor(dir);
  try {
    const fs = statfsSync(at);
    const free = fs.bavail * fs.bsize;
    const gib = (free / 1024 ** 3).toFixed(1);
    return free < MIN_FREE_BYTES
      ? { name, status: "warn", detail: `${gib} GiB free at ${at}`, fix: "free some space: templates and VM disks grow there" }
      : { name, status: "ok", detail: `${gib} GiB free at ${at}` };
  } catch (err) {
    return { name, status: "warn", detail: `cannot tell the free space at ${at}: ${errorMessage(err)}` };
  }
}

/** Run every check (at once where they are independent). Never throws: a check that cannot run fails. */
export async function doctor(ctx: OpsContext): Promise<Check[]> {
  const cfg = ctx.env.config;
  const [virsh, version, kvmCaps, qemuImg, customize] = await Promise.all([
    tool("virsh", ["--version"]),
    tool("virsh", ["-c", cfg.libvirtUri, "version"]),
    tool("virsh", ["-c", cfg.libvirtUri, "domcapabilities", "--virttype", "kvm"]),
    tool("qemu-img", ["--version"]),
    tool("virt-customize", ["--version"]),
  ]);
  const checks: Check[] = [];
  if (!virsh.ok) {
    checks.push({ name: "virsh", status: "fail", detail: "virsh is not installed", fix: "apt-get install libvirt-clients libvirt-daemon-system" });
  } else if (!version.ok) {
    const why = stderrOf(version.err);
    const denied = /permission denied|authentication/i.test(why);
    checks.push({
      name: "libvirt",
      status: "fail",
      detail: `cannot reach ${cfg.libvirtUri}: ${why}`,
      fix: denied
        ? "add yourself to the libvirt group (usermod -aG libvirt $USER, then log in again), or run lago as root"
        : "start libvirtd: systemctl start libvirtd (without systemd: virtlogd -d; libvirtd -d)",
    });
  } else {
    checks.push({ name: "libvirt", status: "ok", detail: `${cfg.libvirtUri} answers (${version.out.split("\n").find((l) => /running hypervisor/i.test(l))?.trim() ?? "libvirt running"})` });
  }
  const devKvm = existsSync("/dev/kvm");
  let kvmAccess = false;
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    kvmAccess = true;
  } catch {
    kvmAccess = false;
  }
  const libvirtKvm = kvmCaps.ok;
  if (cfg.domainType === "kvm") {
    if (!devKvm || !libvirtKvm) {
      checks.push({
        name: "kvm",
        status: "fail",
        detail: !devKvm ? "/dev/kvm does not exist: no hardware virtualization here" : `libvirt cannot use KVM: ${kvmCaps.ok ? "" : stderrOf(kvmCaps.err)}`,
        fix: "enable virtualization (VT-x/AMD-V, nested virtualization in a VM), or run VMs without KVM (slow): set domain_type = qemu under [lago] in lago.conf, LAGO_DOMAIN_TYPE=qemu, or --domain-type qemu",
      });
    } else {
      checks.push({
        name: "kvm",
        status: kvmAccess ? "ok" : "warn",
        detail: kvmAccess ? "/dev/kvm is usable; VMs run with domain type kvm" : "libvirt can use KVM, but /dev/kvm is not accessible by this user",
        fix: kvmAccess ? undefined : "add yourself to the kvm group if you run qemu yourself",
      });
    }
  } else {
    checks.push({
      name: "kvm",
      status: "ok",
      detail: `domain type qemu (emulation, no KVM)${devKvm && libvirtKvm ? "; libvirt reports KVM support: if it works on this machine, domain_type = kvm is much faster" : ""}`,
    });
  }
  checks.push(
    qemuImg.ok
      ? { name: "qemu-img", status: "ok", detail: qemuImg.out.split("\n")[0] ?? "installed" }
      : { name: "qemu-img", status: "fail", detail: "qemu-img is not installed", fix: "apt-get install qemu-utils" },
  );
  checks.push(
    customize.ok
      ? { name: "virt-customize", status: "ok", detail: customize.out.split("\n")[0] ?? "installed" }
      : { name: "virt-customize", status: "fail", detail: "virt-customize is not installed (needed for build steps and bootstrap)", fix: "apt-get install libguestfs-tools" },
  );
  checks.push(writable("template store", cfg.templateStore, "[init] template_store (--template-store)"));
  checks.push(writable("lease directory", cfg.leaseDir, "[lago] lease_dir (--lease-dir)"));
  checks.push(writable("workdir", ctx.env.workdir, "--workdir"));
  checks.push(freeDisk("free disk (template store)", cfg.templateStore));
  checks.push(freeDisk("free disk (workdir)", ctx.env.workdir));
  return checks;
}
