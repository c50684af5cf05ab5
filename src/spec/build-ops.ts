/**
 * The virt-customize operations a build step may use, derived from
 * virt-customize(1) (guestfs-tools 1.48–1.52, "Customization options"), with
 * what each argument means to the host. Everything else is refused at validate
 * time: the general options that point virt-customize at other disk images or
 * hypervisors (`add`, `domain`, `connect`, `format`, `attach`, …) or change how
 * it runs (`dry-run`, `key`, …), and `edit`, whose Perl expression runs on the
 * host, not in the guest.
 */

/** How an operation's argument reads the host's files. */
export type HostRead =
  /** The argument is guest-side text only (a command, a guest path, a package list…). */
  | "none"
  /** The whole argument is a host path (`run SCRIPT`). */
  | "path"
  /** The host path is the part before the first `:` (`upload FILE:DEST`), as virt-customize splits it. */
  | "path-before-colon"
  /** A password selector: `file:FILENAME` reads a host file (`root-password SELECTOR`). */
  | "password-selector"
  /** `USER:SELECTOR`, the selector as for `root-password` (`password USER:SELECTOR`). */
  | "user-password-selector"
  /** `USER[:SELECTOR]`: `file:FILENAME` reads a host file; `USER` alone reads the invoking user's `~/.ssh/*.pub`. */
  | "ssh-selector"
  /** `USER:file:FILENAME` or `USER:password:PASSWORD` (subscription-manager credentials). */
  | "credentials-selector"
  /** `auto`, `pool:ID` or `file:FILENAME` (subscription-manager attach). */
  | "attach-selector"
  /** `osinfo`, `osinfo-fallback`, or a host path to a directory or ISO (driver injection). */
  | "inject-method";

export interface BuildOperation {
  /** Takes no argument (`update`, `selinux-relabel`). */
  flag: boolean;
  reads: HostRead;
}

const text = (): BuildOperation => ({ flag: false, reads: "none" });
const flag = (): BuildOperation => ({ flag: true, reads: "none" });
const reads = (how: HostRead): BuildOperation => ({ flag: false, reads: how });

/** The allow-list: option name (without `--`) → what it takes. */
export const BUILD_OPERATIONS: ReadonlyMap<string, BuildOperation> = new Map<string, BuildOperation>([
  ["append-line", text()],
  ["chmod", text()],
  ["chown", text()],
  ["commands-from-file", reads("path")],
  ["copy", text()],
  ["copy-in", reads("path-before-colon")],
  ["delete", text()],
  ["firstboot", reads("path")],
  ["firstboot-command", text()],
  ["firstboot-install", text()],
  ["hostname", text()],
  ["inject-qemu-ga", reads("inject-method")],
  ["inject-virtio-win", reads("inject-method")],
  ["install", text()],
  ["link", text()],
  ["mkdir", text()],
  ["move", text()],
  ["password", reads("user-password-selector")],
  ["root-password", reads("password-selector")],
  ["run", reads("path")],
  ["run-command", text()],
  ["scrub", text()],
  ["sm-attach", reads("attach-selector")],
  ["sm-credentials", reads("credentials-selector")],
  ["sm-register", flag()],
  ["sm-remove", flag()],
  ["sm-unregister", flag()],
  ["ssh-inject", reads("ssh-selector")],
  ["tar-in", reads("path-before-colon")],
  ["timezone", text()],
  ["touch", text()],
  ["truncate", text()],
  ["truncate-recursive", text()],
  ["uninstall", text()],
  ["update", flag()],
  ["upload", reads("path-before-colon")],
  ["write", text()],
  ["no-logfile", flag()],
  ["password-crypto", text()],
  ["selinux-relabel", flag()],
  ["no-selinux-relabel", flag()],
  // Appliance settings that touch nothing outside it.
  ["network", flag()],
  ["no-network", flag()],
  ["memsize", text()],
  ["smp", text()],
]);

/** Why a known virt-customize option that is not an operation is refused. */
export const REFUSED_OPTIONS: ReadonlyMap<string, string> = new Map([
  ["a", "points virt-customize at another disk image: lago runs each build on the disk it belongs to"],
  ["add", "points virt-customize at another disk image: lago runs each build on the disk it belongs to"],
  ["attach", "attaches another disk image to the build"],
  ["attach-format", "belongs to `attach`, which attaches another disk image"],
  ["d", "points virt-customize at a libvirt domain instead of the build's disk"],
  ["domain", "points virt-customize at a libvirt domain instead of the build's disk"],
  ["c", "points virt-customize at another hypervisor"],
  ["connect", "points virt-customize at another hypervisor"],
  ["format", "overrides the format of the disk lago hands to virt-customize"],
  ["n", "makes the build do nothing"],
  ["dry-run", "makes the build do nothing"],
  ["dryrun", "makes the build do nothing"],
  ["debug-gc", "is a debugging option of virt-customize itself"],
  ["key", "reads disk-encryption keys, possibly from host files"],
  ["keys-from-stdin", "reads disk-encryption keys from lago's standard input"],
  ["echo-keys", "belongs to the disk-encryption key options"],
  ["edit", "runs its Perl expression on the host, not in the guest (use `run-command: sed -i …` instead)"],
  ["machine-readable", "changes virt-customize's output, which lago reads"],
  ["color", "changes virt-customize's output, which lago reads"],
  ["colors", "changes virt-customize's output, which lago reads"],
  ["colour", "changes virt-customize's output, which lago reads"],
  ["colours", "changes virt-customize's output, which lago reads"],
  ["q", "changes virt-customize's output, which lago reads"],
  ["quiet", "changes virt-customize's output, which lago reads"],
  ["v", "changes virt-customize's output, which lago reads"],
  ["verbose", "changes virt-customize's output, which lago reads"],
  ["x", "changes virt-customize's output, which lago reads"],
  ["wrap", "changes virt-customize's output, which lago reads"],
  ["help", "is not an operation"],
  ["version", "is not an operation"],
  ["long-options", "is not an operation"],
  ["short-options", "is not an operation"],
]);

/**
 * The host paths an operation's argument reads, as written (relative paths
 * are relative to the init file's directory), or a string explaining a read
 * the containment check cannot see (`ssh-inject USER` reads `~/.ssh`).
 * Pure.
 */
export function hostPathsOf(op: BuildOperation, arg: string | undefined): { paths: string[]; outside?: string } {
  // Without an argument, `ssh-inject` injects the environment's key (lago's convention); the others take no path.
  if (arg === undefined) return { paths: [] };
  const afterPrefix = (value: string, prefix: string): string | undefined => (value.startsWith(prefix) ? value.slice(prefix.length) : undefined);
  switch (op.reads) {
    case "none":
      return { paths: [] };
    case "path":
      return { paths: [arg] };
    case "path-before-colon": {
      const colon = arg.indexOf(":");
      return { paths: [colon < 0 ? arg : arg.slice(0, colon)] };
    }
    case "password-selector": {
      const file = afterPrefix(arg, "file:");
      return { paths: file === undefined ? [] : [file] };
    }
    case "ssh-selector": {
      const colon = arg.indexOf(":");
      if (colon < 0) return { paths: [], outside: `the public keys in the invoking user's ~/.ssh` };
      const file = afterPrefix(arg.slice(colon + 1), "file:");
      return { paths: file === undefined ? [] : [file] };
    }
    case "user-password-selector":
    case "credentials-selector": {
      if (arg.indexOf(":") < 0) return { paths: [] };
      const file = afterPrefix(arg.slice(arg.indexOf(":") + 1), "file:");
      return { paths: file === undefined ? [] : [file] };
    }
    case "attach-selector": {
      const file = afterPrefix(arg, "file:");
      return { paths: file === undefined ? [] : [file] };
    }
    case "inject-method":
      return { paths: arg === "osinfo" || arg === "osinfo-fallback" ? [] : [arg] };
  }
}
