/**
 * What qemu may reach, with the least it needs. qemu runs as libvirt's qemu
 * user (Debian: `libvirt-qemu`), not root; libvirt's DAC driver hands it the
 * VM's images (chown while the VM runs, original owner restored after), but
 * every directory above an image must let that user search it. lago makes its
 * own directories (the workdir `.lago/…` and the template store) searchable by
 * the qemu user's group only (0710, group = qemu's group), tightens the images
 * it owns (disks 0600, templates without access for others), and refuses,
 * naming the directory and the fix, when a directory that is not lago's (a
 * 0700 home, a private mkdtemp) keeps qemu out — instead of qemu's own
 * "Permission denied" from deep inside `virsh start`.
 */
import { readFileSync } from "node:fs";
import { chmod, chown, stat } from "node:fs/promises";
import path from "node:path";
import { LagoError } from "../../errors.ts";
import { run } from "./exec.ts";

/** The identity qemu runs with. */
export interface QemuIdentity {
  /** User name, for messages (`+<uid>` when unknown). */
  user: string;
  uid: number;
  gid: number;
  /** Every group the process has (primary and supplementary). */
  groups: number[];
}

/** Where lago may change modes: its workdir tree and its template store. */
export interface ManagedRoots {
  workdir: string;
  stores: string[];
}

/** `user = "…"` and `group = "…"` of libvirt's qemu.conf (uncommented), if set. Pure. */
export function parseQemuConf(text: string): { user?: string; group?: string } {
  const out: { user?: string; group?: string } = {};
  for (const line of text.split("\n")) {
    const m = /^\s*(user|group)\s*=\s*"([^"]*)"\s*(?:#.*)?$/.exec(line);
    if (m?.[1] === "user" && m[2]) out.user = m[2];
    if (m?.[1] === "group" && m[2]) out.group = m[2];
  }
  return out;
}

/** May a process with identity `id` search (x) a directory with this owner, group and mode? Mode bits only. Pure. */
export function canSearch(dir: { uid: number; gid: number; mode: number }, id: { uid: number; groups: number[] }): boolean {
  if (id.uid === 0) return true;
  if (dir.uid === id.uid) return (dir.mode & 0o100) !== 0;
  if (id.groups.includes(dir.gid)) return (dir.mode & 0o010) !== 0;
  return (dir.mode & 0o001) !== 0;
}

async function idOf(args: string[]): Promise<string | undefined> {
  try {
    return (await run("id", args, { timeoutMs: 10_000 })).stdout.trim();
  } catch {
    return undefined;
  }
}

/** qemu.conf's numeric form of a user or group (`+107`, or `107`) as a number; undefined for a name. Pure. */
function numericId(s: string): number | undefined {
  return /^\+?\d+$/.test(s) ? Number(s.replace("+", "")) : undefined;
}

async function getentGroup(name: string): Promise<number | undefined> {
  const numeric = numericId(name);
  if (numeric !== undefined) return numeric;
  try {
    const line = (await run("getent", ["group", name], { timeoutMs: 10_000 })).stdout.trim();
    const gid = Number(line.split(":")[2]);
    return Number.isInteger(gid) ? gid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A user as the local account files tell (passwd(5) and group(5) text): its uid; as gid, that of the group
 * `groupName` (a name or `+gid`), else of the group named like the user, else its primary group; and every
 * group it has (that gid, its primary group and those listing it as a member, as `id -G` says). Undefined when
 * the files do not settle it: no such user, or no group `groupName`. Pure.
 */
export function accountFromFiles(name: string, passwd: string, group: string, groupName?: string): Omit<QemuIdentity, "user"> | undefined {
  const fields = (text: string): string[][] => text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  const entry = fields(passwd).find((f) => f[0] === name);
  if (!entry || !/^\d+$/.test(entry[2] ?? "") || !/^\d+$/.test(entry[3] ?? "")) return undefined;
  const uid = Number(entry[2]);
  const primary = Number(entry[3]);
  const groups = fields(group).filter((f) => /^\d+$/.test(f[2] ?? ""));
  const wanted = groupName ?? name;
  const listed = groups.find((f) => f[0] === wanted)?.[2];
  const named = numericId(wanted) ?? (listed === undefined ? undefined : Number(listed));
  if (groupName !== undefined && named === undefined) return undefined;
  const gid = named ?? primary;
  const members = groups.filter((f) => (f[3] ?? "").split(",").includes(name)).map((f) => Number(f[2]));
  return { uid, gid, groups: [...new Set([gid, primary, ...members])] };
}

/**
 * libvirt's qemu user for `qemu:///system`: `user`/`group` from qemu.conf,
 * else the packaged default (Debian `libvirt-qemu`, Fedora `qemu`, group of
 * the same name). Undefined when no such user exists on this host. Read from
 * /etc/passwd and /etc/group (no process on the way to a boot); `id` and
 * `getent` for a user only the name service knows.
 */
export async function libvirtQemuIdentity(confFile = "/etc/libvirt/qemu.conf", accountFiles = { passwd: "/etc/passwd", group: "/etc/group" }): Promise<QemuIdentity | undefined> {
  let conf: { user?: string; group?: string } = {};
  try {
    conf = parseQemuConf(readFileSync(confFile, "utf8"));
  } catch {
    // No qemu.conf: libvirt's built-in defaults.
  }
  let files: { passwd: string; group: string } | undefined;
  try {
    files = { passwd: readFileSync(accountFiles.passwd, "utf8"), group: readFileSync(accountFiles.group, "utf8") };
  } catch {
    // Unreadable: the name service alone decides, below.
  }
  const candidates = conf.user ? [conf.user] : ["libvirt-qemu", "qemu"];
  if (files) {
    for (const user of candidates) {
      const local = numericId(user) === undefined ? accountFromFiles(user, files.passwd, files.group, conf.group) : undefined;
      if (local) return { user, ...local };
    }
  }
  for (const user of candidates) {
    const name = user.replace(/^\+/, "");
    const uidText = await idOf(["-u", name]);
    if (uidText === undefined || !/^\d+$/.test(uidText)) {
      const uid = numericId(user);
      if (uid !== undefined) return { user, uid, gid: (await getentGroup(conf.group ?? name)) ?? uid, groups: [] };
      continue;
    }
    const gid = (await getentGroup(conf.group ?? name)) ?? Number(await idOf(["-g", name]));
    const groups = ((await idOf(["-G", name])) ?? "").split(/\s+/).filter(Boolean).map(Number);
    return { user: name, uid: Number(uidText), gid, groups: [...new Set([gid, ...groups])] };
  }
  return undefined;
}

/** The identity of a static DAC label `+uid:+gid` (the invoking user), with that user's groups. */
export async function staticIdentity(uid: number, gid: number): Promise<QemuIdentity> {
  const groups = ((await idOf(["-G", String(uid)])) ?? "").split(/\s+/).filter(Boolean).map(Number);
  return { user: `+${uid}`, uid, gid, groups: [...new Set([gid, ...groups])] };
}

function within(p: string, root: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

async function confirmSearch(dir: string, id: QemuIdentity): Promise<boolean> {
  // ACLs may grant what the mode bits do not show: ask the kernel, as that user.
  if (process.geteuid?.() !== 0) return false;
  try {
    await run("setpriv", [`--reuid=${id.uid}`, `--regid=${id.gid}`, `--groups=${id.groups.join(",") || id.gid}`, "--", "test", "-x", dir], { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * Make `images` (a domain's disks with their backing chains) and the
 * directories above them reachable by `id`, with the tightest modes lago can
 * set: directories inside `roots` become group-searchable by qemu's group
 * (0710); images lago owns lose access for others (disks in the workdir 0600,
 * store images 0640 at most). Directories outside `roots` are never changed:
 * one qemu cannot search is an error naming it and the fix. Idempotent.
 */
export async function grantQemuAccess(images: string[], extraDirs: string[], id: QemuIdentity, roots: ManagedRoots): Promise<void> {
  const euid = process.geteuid?.() ?? 0;
  if (id.uid === 0 || id.uid === euid) return;
  const workdir = path.resolve(roots.workdir);
  const stores = roots.stores.map((s) => path.resolve(s));
  const dirs = new Set<string>();
  const files = new Set(images.map((f) => path.resolve(f)));
  for (const start of [...[...files].map((f) => path.dirname(f)), ...extraDirs.map((d) => path.resolve(d))]) {
    for (let d = start; ; d = path.dirname(d)) {
      dirs.add(d);
      if (d === path.dirname(d)) break;
    }
  }
  // Shallowest first: the first directory that keeps qemu out is the one to name.
  for (const dir of [...dirs].sort((a, b) => a.length - b.length)) {
    const st = await stat(dir);
    const inWorkdir = within(dir, workdir);
    const inStore = stores.some((s) => within(dir, s));
    if ((inWorkdir || inStore) && st.uid === euid) {
      if (st.gid === id.gid || st.gid === (process.getegid?.() ?? 0) || st.gid === 0) {
        // Ours: only the owner and qemu's group, which may only search.
        if (st.gid !== id.gid) await chown(dir, st.uid, id.gid);
        const mode = (st.mode & 0o7700) | 0o010;
        if ((st.mode & 0o7777) !== mode) await chmod(dir, mode);
        continue;
      }
      // A store shared through a group of its own (Lago's setgid `lago` group): add search, change nothing else.
      if (!canSearch(st, id)) await chmod(dir, (st.mode & 0o7777) | (id.groups.includes(st.gid) ? 0o010 : 0o001));
      continue;
    }
    if (canSearch(st, id) || (await confirmSearch(dir, id))) continue;
    const file = [...files].find((f) => within(f, dir)) ?? dir;
    throw new LagoError(
      "QEMU_ACCESS",
      `qemu runs as ${id.user} (uid ${id.uid}), which cannot reach ${file}: ${dir} (mode ${octal(st.mode)}, owner uid ${st.uid}, group gid ${st.gid}) does not let it search`,
      {
        hint: `let it search that directory (\`chmod o+x ${dir}\`, or \`setfacl -m u:${id.user}:x ${dir}\`), or keep environments and the template store where it can reach them (e.g. --workdir under /var/lib/lago); qemu_user=invoking in lago.conf runs qemu as you instead`,
      },
    );
  }
  for (const file of files) {
    let st;
    try {
      st = await stat(file);
    } catch {
      continue;
    }
    if (!st.isFile() || st.uid !== euid) continue;
    const inWorkdir = within(file, workdir);
    const inStore = stores.some((s) => within(file, s));
    const mode = inWorkdir ? st.mode & 0o7600 : inStore ? st.mode & 0o7640 : st.mode & 0o7777;
    if ((st.mode & 0o7777) !== mode) await chmod(file, mode);
  }
}
