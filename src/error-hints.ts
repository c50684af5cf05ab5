/**
 * The next step for common failures, in one place: libvirtd not running, no
 * permission on libvirt's socket, KVM unusable, a missing tool, permission
 * denied on the template store or the lease directory, a full disk, a guest
 * virt-customize does not recognize. Matched on what the failing command
 * printed (virsh, qemu, libguestfs) and on Node's system errors, anywhere in an
 * error's `cause` chain. Pure.
 */
import { CommandError, LagoError } from "./errors.ts";

/** Where lago keeps shared files, for hints that name the option to change. */
export interface HintContext {
  templateStore?: string | undefined;
  leaseDir?: string | undefined;
  libvirtUri?: string | undefined;
}

interface Failure {
  command: string[] | undefined;
  text: string;
  /** Node's errno code (`EACCES`…) and the path it concerns. */
  errno: string | undefined;
  path: string | undefined;
}

function failures(err: unknown): Failure[] {
  const out: Failure[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && e !== null && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    if (typeof e !== "object") {
      out.push({ command: undefined, text: String(e), errno: undefined, path: undefined });
      continue;
    }
    const sys = e as { code?: unknown; path?: unknown; dest?: unknown; message?: unknown; stderr?: unknown };
    out.push({
      command: e instanceof CommandError ? e.command : undefined,
      text: [typeof sys.message === "string" ? sys.message : "", e instanceof CommandError ? e.stderr : ""].join("\n"),
      errno: typeof sys.code === "string" && /^E[A-Z]+$/.test(sys.code) ? sys.code : undefined,
      path: typeof sys.path === "string" ? sys.path : typeof sys.dest === "string" ? sys.dest : undefined,
    });
  }
  return out;
}

const within = (file: string | undefined, dir: string | undefined): boolean =>
  file !== undefined && dir !== undefined && dir !== "" && (file === dir || file.startsWith(dir.endsWith("/") ? dir : `${dir}/`));

const START_LIBVIRTD = "start it with `systemctl start libvirtd` (without systemd: `virtlogd -d && libvirtd -d`, as root)";
const KVM = "KVM is not usable on this machine: set the domain type to qemu (LAGO_DOMAIN_TYPE=qemu or --domain-type qemu, or domain_type = qemu in lago.conf); VMs run emulated, slower but anywhere";
const LIBVIRT_ACCESS =
  "you may not manage VMs through libvirt's system socket: add yourself to the libvirt group (`sudo usermod -aG libvirt $USER`, then log in again) or run lago as root";

type Rule = (f: Failure, ctx: HintContext) => string | undefined;

const RULES: Rule[] = [
  // virsh: "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory" (or Connection refused)
  (f) => {
    const m = /Failed to connect socket to '([^']+)': (No such file or directory|Connection refused)/.exec(f.text);
    if (!m) return undefined;
    const daemon = /virtqemud/.test(m[1] ?? "") ? "virtqemud" : "libvirtd";
    const start = daemon === "libvirtd" ? START_LIBVIRTD : "start it with `systemctl start virtqemud.socket`";
    return `${daemon} is not running (nothing listens on ${m[1]}): ${start}; \`lago doctor\` checks the setup`;
  },
  (f) => (/Failed to connect socket to '[^']+': Permission denied/.test(f.text) ? LIBVIRT_ACCESS : undefined),
  // polkit refuses (or cannot ask) on behalf of a user outside the libvirt group
  (f) =>
    /authentication unavailable: no polkit agent|access denied by policy|Unable to get system bus connection|authentication failed: .*polkit/.test(f.text)
      ? LIBVIRT_ACCESS
      : undefined,
  // libvirt without /dev/kvm, qemu without access to it, or a KVM that aborts qemu (MSR assertion)
  (f) =>
    /Domain requires KVM, but it is not available|does not support virt type 'kvm'|could not find capabilities for domaintype=kvm|Could not access KVM kernel module|failed to initialize kvm|kvm_buf_set_msrs: Assertion|failed to set MSR/.test(
      f.text,
    )
      ? KVM
      : undefined,
  // libvirt refuses a subnet that an interface on the host already has (made outside lago's lease store)
  (f) => {
    const m = /Network is already in use by interface (\S+)/.exec(f.text);
    return m
      ? `another network on this host already uses the subnet lago leased (interface ${m[1]}), one lago's lease store does not know of (another lease directory, or made by hand): remove that network, or lease from other subnets with lease_range in lago.conf (e.g. LAGO_LEASE_RANGE=230-250)`
      : undefined;
  },
  // libguestfs cannot read the host kernel (Debian keeps /boot/vmlinuz-* readable by root only)
  (f) =>
    /supermin: .*(Permission denied|failed to find a suitable kernel)|\/boot\/vmlinuz[^\s:']*'?:? Permission denied/.test(f.text)
      ? "libguestfs (virt-customize) needs to read the host kernel, which Debian keeps readable by root only: run lago as root, or `sudo chmod 0644 /boot/vmlinuz-*`"
      : undefined,
  (f) =>
    /no operating systems were found in the guest image/.test(f.text)
      ? "virt-customize recognizes no operating system in the image: build steps and bootstrap need a template with a Linux root filesystem libguestfs can inspect"
      : undefined,
  (f, ctx) => {
    if (f.errno !== "EACCES" && f.errno !== "EPERM" && f.errno !== "EROFS" && !/Permission denied|Read-only file system/.test(f.text)) return undefined;
    const file = f.path ?? /'(\/[^']+)'/.exec(f.text)?.[1];
    if (within(file, ctx.templateStore)) {
      return `the template store ${ctx.templateStore} is not writable for you: run lago as root, make it writable, or use another store with --template-store DIR ([init] template_store in lago.conf)`;
    }
    if (within(file, ctx.leaseDir)) {
      return `the subnet lease directory ${ctx.leaseDir} is not writable for you: run lago as root, make it writable, or use another with --lease-dir DIR (lease_dir in lago.conf)`;
    }
    if (f.errno && file) return `${file} is not writable for you: fix its permissions or run lago as root`;
    return undefined;
  },
  (f) =>
    f.errno === "ENOSPC" || /No space left on device/.test(f.text)
      ? `the disk is full${f.path ? ` (writing ${f.path})` : ""}: free space on that filesystem (\`lago template prune\` removes templates no environment uses)`
      : undefined,
];

/**
 * The next step for `err`, when lago recognizes the failure; else the hint
 * the error carries (e.g. the Debian package of a missing command).
 */
export function hintFor(err: unknown, ctx: HintContext = {}): string | undefined {
  for (const f of failures(err)) {
    for (const rule of RULES) {
      const hint = rule(f, ctx);
      if (hint) return hint;
    }
  }
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof LagoError && e.hint) return e.hint;
  return undefined;
}

/** A Node system error that the user's machine caused (permissions, full disk), not a bug in lago. */
export function isEnvironmentError(err: unknown): err is Error & { code: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === "string" && ["EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "EMFILE", "ENFILE"].includes(code);
}
