/**
 * Counting libguestfs launches of a lago command, two ways, without changing
 * lago: a qemu wrapper given to libguestfs as its hypervisor (LIBGUESTFS_HV),
 * which logs every appliance launch (a qemu started with `-kernel`; capability
 * probes are not launches), and wrappers first on PATH for the libguestfs
 * tools (virt-customize, guestfish, …), which log each run. Both append to the
 * file named by LAGO_BENCH_GUESTFS_LOG and exec the real program. When lago
 * itself reports a count in its `--json` event stream (a numeric field whose
 * name mentions guestfs), that count is preferred.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

/** libguestfs-tools' and guestfish's programs that can launch an appliance. */
const TOOLS = [
  "guestfish", "guestmount", "virt-alignment-scan", "virt-builder", "virt-cat", "virt-copy-in", "virt-copy-out",
  "virt-customize", "virt-df", "virt-dib", "virt-diff", "virt-edit", "virt-filesystems", "virt-format",
  "virt-get-kernel", "virt-inspector", "virt-log", "virt-ls", "virt-make-fs", "virt-rescue", "virt-resize",
  "virt-sparsify", "virt-sysprep", "virt-tail", "virt-tar-in", "virt-tar-out", "virt-win-reg",
] as const;

const QEMU = "/usr/bin/qemu-system-x86_64";

function writeIfChanged(file: string, text: string): void {
  // An unchanged wrapper keeps its mtime, so libguestfs's cache of qemu's capabilities stays valid.
  if (existsSync(file) && readFileSync(file, "utf8") === text) return;
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

export interface GuestfsCounter {
  /** Environment for the measured command: PATH, LIBGUESTFS_HV, LAGO_BENCH_GUESTFS_LOG. */
  env(basePath: string): Record<string, string>;
  /** Forget what was logged so far. */
  reset(): void;
  /** Appliance launches and tool runs logged since the last reset. */
  read(): { launches: number; tools: Record<string, number> };
}

/** Installs the wrappers in `dir` (idempotent) and logs to `logFile`. */
export function guestfsCounter(dir: string, logFile: string): GuestfsCounter {
  mkdirSync(dir, { recursive: true });
  const hv = path.join(dir, "qemu-system-x86_64");
  writeIfChanged(
    hv,
    [
      "#!/bin/bash",
      "# lago bench: counts libguestfs appliance launches (qemu with -kernel), then runs qemu.",
      'if [[ -n ${LAGO_BENCH_GUESTFS_LOG:-} ]]; then',
      '  for a in "$@"; do',
      '    if [[ $a == -kernel ]]; then printf \'launch\\n\' >>"$LAGO_BENCH_GUESTFS_LOG"; break; fi',
      "  done",
      "fi",
      `exec ${QEMU} "$@"`,
      "",
    ].join("\n"),
  );
  const bin = path.join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  for (const tool of TOOLS) {
    const real = path.join("/usr/bin", tool);
    if (!existsSync(real)) continue;
    writeIfChanged(
      path.join(bin, tool),
      ["#!/bin/bash", "# lago bench: counts runs of this libguestfs tool, then runs it.", `if [[ -n \${LAGO_BENCH_GUESTFS_LOG:-} ]]; then printf 'tool ${tool}\\n' >>"$LAGO_BENCH_GUESTFS_LOG"; fi`, `exec ${real} "$@"`, ""].join("\n"),
    );
  }
  return {
    env(basePath) {
      return { PATH: `${bin}:${basePath}`, LIBGUESTFS_HV: hv, LAGO_BENCH_GUESTFS_LOG: logFile };
    },
    reset() {
      rmSync(logFile, { force: true });
    },
    read() {
      const lines = existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").filter(Boolean) : [];
      const tools: Record<string, number> = {};
      let launches = 0;
      for (const l of lines) {
        if (l === "launch") launches++;
        else if (l.startsWith("tool ")) tools[l.slice(5)] = (tools[l.slice(5)] ?? 0) + 1;
      }
      return { launches, tools };
    },
  };
}
