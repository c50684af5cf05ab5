/**
 * The host files a virt-customize operation reads: their contents go into the key of a
 * build layer, so that editing an uploaded script makes a new layer instead of reusing
 * a stale one. Pure.
 */
import path from "node:path";

/** Operations whose argument names a host file: how to find it in the argument. */
const READERS: Readonly<Record<string, (arg: string) => string | undefined>> = {
  upload: (arg) => before(arg, ":"),
  "copy-in": (arg) => before(arg, ":"),
  "commands-from-file": (arg) => arg,
  firstboot: (arg) => arg,
  run: (arg) => arg,
  "ssh-inject": (arg) => after(arg, ":file:"),
  "root-password": (arg) => (arg.startsWith("file:") ? arg.slice("file:".length) : undefined),
  password: (arg) => after(arg, ":file:"),
  "sm-credentials": (arg) => after(arg, ":file:"),
  "inject-qemu-ga": (arg) => arg,
  "inject-virtio-win": (arg) => arg,
  "inject-blnsvr": (arg) => arg,
};

function before(arg: string, sep: string): string | undefined {
  const i = arg.indexOf(sep);
  return i > 0 ? arg.slice(0, i) : undefined;
}

function after(arg: string, sep: string): string | undefined {
  const i = arg.indexOf(sep);
  return i >= 0 && i + sep.length < arg.length ? arg.slice(i + sep.length) : undefined;
}

/** The host path `option arg` reads, absolute (relative ones are taken from `baseDir`), or undefined. */
export function hostPathOf(option: string, arg: string | undefined, baseDir: string): string | undefined {
  if (arg === undefined || arg === "") return undefined;
  const found = READERS[option]?.(arg);
  return found ? path.resolve(baseDir, found) : undefined;
}
