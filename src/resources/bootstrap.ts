/**
 * Lago's bootstrap — the environment's SSH key for `ssh-user`, the VM's name as its host
 * name, and `root-password` — delivered to a new VM by one of three methods:
 *
 * - `cloud-init`: a NoCloud seed (an ISO 9660 `cidata` image on a CD-ROM) read by the
 *   guest at first boot. Made in milliseconds; no libguestfs.
 * - `ssh`: a first SSH login as root with the template's published `root-password`
 *   (Lago's metadata key, what Lago's own SSH falls back to) runs a short idempotent
 *   script. No libguestfs.
 * - `virt-customize`: the fallback, an offline edit of the VM's disk before its first
 *   boot (one libguestfs launch per VM).
 *
 * Which one: the `[lago] bootstrap` setting when it names a method; otherwise the
 * template's metadata (`<image>.metadata`): its `bootstrap` key (a method or a list in
 * order of preference; the first lago knows wins), else `ssh` when it publishes a
 * non-empty `root-password`, else `virt-customize`.
 *
 * Everything here is pure: the reconcilers (disk, domain) do the I/O.
 */
import { sha256 } from "../util/hash.ts";
import { FIRST_LOGIN_MARK, type CustomizeArg, type SeedFiles } from "../drivers/types.ts";
import type { LagoConfig } from "../config/config.ts";
import type { Json } from "./types.ts";

export const BOOTSTRAP_METHODS = ["cloud-init", "ssh", "virt-customize"] as const;
export type BootstrapMethod = (typeof BOOTSTRAP_METHODS)[number];

/** What a VM's bootstrap delivers (the disk's `bootstrap` attribute). */
export interface BootstrapSpec {
  hostname: string;
  ssh_user: string;
  /** Set only when the init file gives one. Secret. */
  root_password: string | null;
}

function isMethod(v: unknown): v is BootstrapMethod {
  return typeof v === "string" && (BOOTSTRAP_METHODS as readonly string[]).includes(v);
}

/** The bootstrap attribute as a spec, or undefined. Pure. */
export function bootstrapSpec(v: Json | undefined): BootstrapSpec | undefined {
  if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
  if (typeof v.hostname !== "string" || typeof v.ssh_user !== "string") return undefined;
  return { hostname: v.hostname, ssh_user: v.ssh_user, root_password: typeof v.root_password === "string" ? v.root_password : null };
}

/** The method for a template with this metadata, under this configuration. Pure. */
export function bootstrapMethod(metadata: Record<string, unknown> | undefined, configured: LagoConfig["bootstrap"]): BootstrapMethod {
  if (configured !== "auto") return configured;
  const declared = metadata?.bootstrap;
  const list: unknown[] = typeof declared === "string" ? [declared] : Array.isArray(declared) ? declared : [];
  const known = list.find(isMethod);
  if (known) return known;
  return publishedRootPassword(metadata) !== undefined ? "ssh" : "virt-customize";
}

/** The template's published root password (Lago's `root-password` metadata), if any. Pure. */
export function publishedRootPassword(metadata: Record<string, unknown> | undefined): string | undefined {
  const password = metadata?.["root-password"];
  return typeof password === "string" && password !== "" ? password : undefined;
}

/** A YAML double-quoted scalar: JSON's string syntax is a subset of it. */
const q = (s: string): string => JSON.stringify(s);

/**
 * The NoCloud seed for a VM. Deterministic: the instance-id is a digest of everything
 * in the seed, so the same bootstrap always gives the same seed and cloud-init runs
 * its per-instance steps once. Root logs in with the key (`disable_root: false`); another
 * `ssh-user` is created with the key and password-less sudo. `bootcmd`: a script the
 * guest runs early in boot, before the key is installed (its build steps; resources/first-boot.ts). Pure.
 */
export function cloudInitSeed(b: BootstrapSpec, publicKey: string, bootcmd?: string): SeedFiles {
  const key = publicKey.trim();
  const lines = ["#cloud-config", `hostname: ${q(b.hostname)}`, "preserve_hostname: false", "disable_root: false", "ssh_authorized_keys:", `  - ${q(key)}`];
  if (b.ssh_user !== "root") {
    lines.push("users:", "  - default", `  - name: ${q(b.ssh_user)}`, "    ssh_authorized_keys:", `      - ${q(key)}`, `    sudo: ${q("ALL=(ALL) NOPASSWD:ALL")}`);
  }
  if (b.root_password !== null) {
    lines.push("chpasswd:", "  expire: false", "  users:", `    - name: ${q("root")}`, `      password: ${q(b.root_password)}`, `      type: ${q("text")}`);
  }
  if (bootcmd !== undefined) lines.push("bootcmd:", `  - ${q(bootcmd)}`);
  const userData = `${lines.join("\n")}\n`;
  const id = sha256(`${b.hostname}\0${userData}`).slice(0, 16);
  const metaData = `instance-id: ${q(`lago-${id}`)}\nlocal-hostname: ${q(b.hostname)}\n`;
  return { metaData, userData };
}

/**
 * Always single-quoted for a POSIX shell. Not ops/command-line's `shellQuote`, which leaves plain words bare for
 * people to read: this quoting is part of the scripts lago puts in seeds and first-boot disks, whose hash is a
 * VM's cloud-init instance-id; quoting the same text another way would make every existing VM a new instance
 * (its first-boot steps run again). Pure.
 */
export function singleQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** Shell lines that find `$user`'s home and group in /etc/passwd (`$home`, `$group`), or fail. */
export const USER_ENTRY_LINES: readonly string[] = [
  `entry=$(awk -F: -v u="$user" '$1 == u { print $6 ":" $4; exit }' /etc/passwd)`,
  `[ -n "$entry" ] || { echo "lago bootstrap: no user $user in /etc/passwd" >&2; exit 1; }`,
  `home=\${entry%:*}; group=\${entry##*:}`,
];

/** Shell lines that set root's password to `$pw`: `chpasswd`, or busybox `mkpasswd` and /etc/shadow. */
export const ROOT_PASSWORD_LINES: readonly string[] = [
  `if command -v chpasswd >/dev/null 2>&1; then printf 'root:%s\\n' "$pw" | chpasswd`,
  `else`,
  `  hash=$(printf '%s\\n' "$pw" | mkpasswd -m sha512)`,
  `  awk -F: -v OFS=: -v h="$hash" '$1 == "root" { $2 = h } { print }' /etc/shadow > /etc/shadow.lago`,
  `  chmod 600 /etc/shadow.lago && mv /etc/shadow.lago /etc/shadow`,
  `fi`,
];

/** Shell lines that add `$key` to `$user`'s authorized_keys (after {@link USER_ENTRY_LINES}), unless present. */
export const AUTHORIZE_KEY_LINES: readonly string[] = [
  `mkdir -p "$home/.ssh"`,
  `touch "$home/.ssh/authorized_keys"`,
  `grep -qxF "$key" "$home/.ssh/authorized_keys" || printf '%s\\n' "$key" >> "$home/.ssh/authorized_keys"`,
  `chmod 700 "$home/.ssh"; chmod 600 "$home/.ssh/authorized_keys"`,
  `chown -R "$user:$group" "$home/.ssh"`,
  `command -v restorecon >/dev/null 2>&1 && restorecon -R "$home/.ssh" || true`,
];

/**
 * The script a first SSH login as root runs (POSIX sh; busybox is enough), and its
 * stdin. Idempotent: the host name is written, the password set (read from stdin,
 * never from the command line: `chpasswd`, or busybox `mkpasswd` and /etc/shadow),
 * and the key appended unless present — last, so that once the key logs in,
 * everything before it was done. Pure.
 */
export function firstLoginScript(b: BootstrapSpec, publicKey: string): { command: string; input: string | undefined } {
  const script = [
    FIRST_LOGIN_MARK,
    "set -e",
    "umask 077",
    `user=${singleQuote(b.ssh_user)}`,
    `host=${singleQuote(b.hostname)}`,
    `key=${singleQuote(publicKey.trim())}`,
    ...USER_ENTRY_LINES,
    `printf '%s\\n' "$host" > /etc/hostname`,
    `chmod 644 /etc/hostname`,
    `hostname "$host" 2>/dev/null || true`,
  ];
  if (b.root_password !== null) script.push(`IFS= read -r pw`, ...ROOT_PASSWORD_LINES);
  script.push(...AUTHORIZE_KEY_LINES);
  return { command: `${script.join("\n")}\n`, input: b.root_password === null ? undefined : `${b.root_password}\n` };
}

/** virt-customize operations for the bootstrap alone (the fallback). Pure. */
export function bootstrapCustomizeArgs(b: BootstrapSpec, publicKeyPath: string): CustomizeArg[] {
  const args: CustomizeArg[] = ["--no-network", "--ssh-inject", `${b.ssh_user}:file:${publicKeyPath}`, "--write", `/etc/hostname:${b.hostname}`];
  if (b.root_password !== null) args.push("--root-password", { secretFile: `${b.root_password}\n`, prefix: "file:" });
  return args;
}
