/**
 * Where an init file may make lago read on the host. An init file is untrusted
 * input: its build steps may read host files only inside the init file's
 * directory (`..` and symlinks out are refused), and its disk images may not
 * lie in system directories or be devices, unless the user says otherwise
 * (`--allow-outside-paths` / `[lago] allow_outside_paths`, `--allow-system-paths`
 * / `[lago] allow_system_paths`).
 */
import { realpathSync, statSync, type Stats } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { ProviderError } from "../errors.ts";

/** Directories holding the system, its devices and libvirt's own images: no disk image of an environment lives there. */
export const SYSTEM_DIRS: readonly string[] = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/proc",
  "/run",
  "/sbin",
  "/sys",
  "/usr",
  "/var/lib/libvirt",
  "/var/run",
];

/** Whether `p` (absolute, normalized) is `dir` or lies below it. Pure. */
export function isWithin(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/** Below a system directory, but scratch space anyone may use (a tmpfs, like /tmp). */
const SCRATCH_DIRS = ["/dev/shm"];

/** The system directory `p` (absolute) lies in, if any. Pure. */
export function systemDirOf(p: string): string | undefined {
  if (SCRATCH_DIRS.some((dir) => isWithin(dir, p))) return undefined;
  return SYSTEM_DIRS.find((dir) => isWithin(dir, p));
}

function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

export type HostPathCheck = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Resolves a host path a build step reads (`written`, relative to `dir`, the
 * init file's directory) and checks that it exists and — unless
 * `allowOutside` — stays inside `dir`, also after following symlinks. Returns
 * the resolved real path. Reads the file system (realpath), never writes.
 */
export function checkBuildHostPath(dir: string, written: string, allowOutside: boolean): HostPathCheck {
  if (written === "") return { ok: false, reason: "the host path is empty" };
  if (written.includes("\0")) return { ok: false, reason: "the host path contains a NUL character" };
  const resolved = path.resolve(dir, written);
  if (!allowOutside && !isWithin(dir, resolved)) {
    return { ok: false, reason: `\`${written}\` is outside the init file's directory ${dir}` };
  }
  const real = realpathOrUndefined(resolved);
  if (real === undefined) return { ok: false, reason: `\`${written}\` does not exist (relative paths are relative to the init file's directory ${dir})` };
  if (!allowOutside) {
    const realDir = realpathOrUndefined(dir) ?? dir;
    if (!isWithin(realDir, real)) return { ok: false, reason: `\`${written}\` leads through a symlink to ${real}, outside the init file's directory ${dir}` };
  }
  return { ok: true, path: real };
}

function deviceKind(stats: Stats): string | undefined {
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isFIFO()) return "a FIFO";
  if (stats.isSocket()) return "a socket";
  if (stats.isDirectory()) return "a directory";
  return undefined;
}

/**
 * Checks a disk or template image path (absolute, `$VARS` expanded) at
 * validate time: it may not lie in a system directory (unless `allowSystem`),
 * nor be, or lead through a symlink to, a device. A path that does not exist
 * yet passes (a file disk may be created). Reads the file system, never writes.
 * Returns the reason it is refused, or undefined.
 */
export function imagePathProblem(p: string, allowSystem: boolean): string | undefined {
  const real = realpathOrUndefined(p);
  if (!allowSystem) {
    const dir = systemDirOf(p) ?? (real === undefined ? undefined : systemDirOf(real));
    if (dir !== undefined) {
      const via = systemDirOf(p) === undefined ? ` (through a symlink to ${real})` : "";
      return `${p} lies in the system directory ${dir}${via}; lago refuses images there unless run with --allow-system-paths`;
    }
  }
  if (real !== undefined) {
    let stats: Stats;
    try {
      stats = statSync(real);
    } catch {
      return undefined;
    }
    const kind = deviceKind(stats);
    if (kind !== undefined) return `${p} is ${kind}, not a disk image file`;
  }
  return undefined;
}

/**
 * Apply-time guard for reconcilers that open an image by path: resolves
 * symlinks and refuses anything but a regular file (block and character
 * devices, FIFOs, sockets, directories), so that a file swapped for a device
 * after `plan` is never handed to qemu. Idempotent, read-only.
 *
 * @throws ProviderError naming `address` and what the path is.
 */
export async function assertImageFile(address: string, p: string): Promise<void> {
  let stats: Stats;
  try {
    stats = await stat(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ProviderError(address, `cannot use image ${p}: ${code === "ENOENT" ? "no such file" : String(code ?? err)}`, { cause: err });
  }
  const kind = deviceKind(stats);
  if (kind !== undefined) {
    throw new ProviderError(address, `refusing image ${p}: it is ${kind}, not a disk image file`, {
      hint: "point `path` at a qcow2 or raw image file",
    });
  }
}
