/**
 * Build steps run by the guest itself at its first boot, instead of by virt-customize
 * on an offline copy of the disk: one shell script in the `bootcmd` of the VM's
 * cloud-init seed. cloud-init runs `bootcmd` early in the first boot, before its `ssh`
 * module installs the environment's key and before sshd starts, so when lago first logs
 * in with the key the steps have run. No libguestfs appliance: under TCG that saves the
 * 30–40 s an appliance boot and OS inspection cost, for every cold build.
 *
 * Only for the VM's boot disk, when the VM is bootstrapped with a cloud-init seed and
 * every step has an exact in-guest equivalent (below); otherwise the build makes a
 * layer offline, as Lago does. `[lago] build = offline` (LAGO_BUILD) keeps every build
 * offline.
 *
 * The script runs once per disk: it records `ok` or the failing step in
 * /var/lib/lago/build/<id>.status (world-readable) and every step's output in
 * <id>.log (root only). lago's first SSH login reads the status: a failed step fails
 * the apply with the step and the end of its output.
 *
 * Everything here is pure: the build reconciler reads the host files.
 */
import { AUTHORIZE_KEY_LINES, ROOT_PASSWORD_LINES, USER_ENTRY_LINES, singleQuote } from "./bootstrap.ts";

/** A step option as the build holds it: host paths already resolved by the spec layer. */
export interface FirstBootOption {
  option: string;
  arg: string | null;
  hostPaths: string[];
}

/** A host file a step sends into the guest. */
export interface HostFile {
  data: Buffer;
  /** Permission bits (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
}

/** The virt-customize options with an exact in-guest equivalent. */
const IN_GUEST = new Set(["append-line", "chmod", "copy", "delete", "hostname", "link", "mkdir", "move", "root-password", "run", "run-command", "ssh-inject", "touch", "upload", "write"]);
/** Options that only configure virt-customize's appliance: nothing to do in the guest. */
const APPLIANCE_ONLY = new Set(["network", "no-network", "memsize", "smp", "no-logfile", "no-selinux-relabel"]);
/** Host files sent in the seed, at most (all steps together): beyond, the build runs offline. */
export const MAX_EMBEDDED_BYTES = 4 * 1024 * 1024;

const GLOB = /[*?[]/;

/**
 * Why these steps cannot run at first boot, or undefined when they can. Pure.
 * `embeddedBytes`: the size of the host files they send.
 */
export function firstBootBlocker(options: readonly FirstBootOption[], embeddedBytes = 0): string | undefined {
  for (const { option, arg } of options) {
    if (APPLIANCE_ONLY.has(option)) continue;
    if (!IN_GUEST.has(option)) return `\`${option}\` runs only in virt-customize's appliance`;
    if (option === "delete" && arg !== null && GLOB.test(arg)) return "`delete` with a glob pattern runs only in virt-customize's appliance";
    if (option === "root-password" && !(arg?.startsWith("password:") || arg?.startsWith("file:"))) return "`root-password` other than password: or file: runs only in virt-customize's appliance";
    if (option === "ssh-inject" && arg !== null && arg !== "" && !/^[^:]+:(file|string):/.test(arg)) return "`ssh-inject USER` reads the invoking user's ~/.ssh: it runs only in virt-customize's appliance";
  }
  if (embeddedBytes > MAX_EMBEDDED_BYTES) return `the host files the steps send (${embeddedBytes} bytes) exceed the seed's ${MAX_EMBEDDED_BYTES} bytes`;
  return undefined;
}

/** The part of `arg` before its first `:` and the rest (`FILE:CONTENT`); undefined without a colon. */
function splitOnce(arg: string): [string, string] | undefined {
  const at = arg.indexOf(":");
  return at < 0 ? undefined : [arg.slice(0, at), arg.slice(at + 1)];
}

/** virt-customize reads `chmod` permissions as C does (`0700` octal, `0x1c0` hex, else decimal). */
function permissions(text: string): string | undefined {
  const n = /^0[xX][0-9a-fA-F]+$/.test(text) ? Number.parseInt(text, 16) : /^0[0-7]*$/.test(text) ? Number.parseInt(text, 8) : /^[1-9][0-9]*$/.test(text) ? Number.parseInt(text, 10) : Number.NaN;
  return Number.isInteger(n) && n >= 0 && n <= 0o7777 ? n.toString(8).padStart(4, "0") : undefined;
}

/** A here-document that writes `data` (base64) into the file named by the shell word `dest`. */
function sendFile(data: Buffer, dest: string): string[] {
  const lines = data.toString("base64").match(/.{1,76}/g) ?? [];
  return [`base64 -d > ${dest} <<'LAGO_EOF'`, ...lines, "LAGO_EOF"];
}

/** The commands that add `key` to `user`'s authorized_keys, as virt-customize's `ssh-inject` does. */
function injectKey(user: string, key: string): string[] {
  return [`user=${singleQuote(user)}; key=${singleQuote(key.trim())}`, ...USER_ENTRY_LINES, ...AUTHORIZE_KEY_LINES];
}

export interface FirstBootInputs {
  /** The environment's public key, for `ssh-inject` without an argument. */
  publicKey: string | undefined;
  /** The user `ssh-inject` without an argument injects the key for. */
  injectUser: string;
  /** The host files the steps read, by resolved path. */
  files: ReadonlyMap<string, HostFile>;
}

/** The commands of one step; throws for a step {@link firstBootBlocker} refuses. */
function stepCommands(o: FirstBootOption, inputs: FirstBootInputs): string[] {
  const arg = o.arg ?? "";
  const file = (): HostFile => {
    const p = o.hostPaths[0];
    const f = p === undefined ? undefined : inputs.files.get(p);
    if (!f) throw new Error(`--${o.option} ${arg}: its host file was not read`);
    return f;
  };
  const pair = (what: string): [string, string] => {
    const parts = splitOnce(arg);
    if (!parts) throw new Error(`--${o.option} ${arg}: expected ${what}`);
    return parts;
  };
  const q = singleQuote;
  switch (o.option) {
    case "touch":
      return [`touch -- ${q(arg)}`];
    case "mkdir":
      return [`mkdir -p -- ${q(arg)}`];
    case "write": {
      const [path, content] = pair("FILE:CONTENT");
      return [`printf '%s' ${q(content)} > ${q(path)}`];
    }
    case "append-line": {
      const [path, line] = pair("FILE:LINE");
      // A newline first when the file does not end with one; the line gets its own.
      return [`f=${q(path)}`, `if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf '\\n' >> "$f"; fi`, `printf '%s\\n' ${q(line)} >> "$f"`];
    }
    case "chmod": {
      const [perm, path] = pair("PERMISSIONS:FILE");
      const octal = permissions(perm);
      if (!octal) throw new Error(`--chmod ${arg}: ${perm} is not a permission number`);
      return [`chmod ${octal} -- ${q(path)}`];
    }
    case "delete":
      return [`rm -rf -- ${q(arg)}`];
    case "link": {
      const [target, ...links] = arg.split(":");
      if (!links.length) throw new Error(`--link ${arg}: expected TARGET:LINK`);
      return links.map((l) => `ln -sf -- ${q(target ?? "")} ${q(l)}`);
    }
    case "copy": {
      const [from, to] = pair("SOURCE:DEST");
      return [`cp -a -- ${q(from)} ${q(to)}`];
    }
    case "move": {
      const [from, to] = pair("SOURCE:DEST");
      return [`mv -- ${q(from)} ${q(to)}`];
    }
    case "hostname":
      return [`printf '%s\\n' ${q(arg)} > /etc/hostname`, `hostname ${q(arg)} 2>/dev/null || true`];
    case "run-command":
      return [`sh -c ${q(arg)}`];
    case "run": {
      const f = file();
      return ["t=$(mktemp)", ...sendFile(f.data, '"$t"'), `chmod 755 "$t"; r=0; "$t" || r=$?; rm -f "$t"; exit $r`];
    }
    case "upload": {
      const f = file();
      const [, dest] = pair("FILE:DEST");
      const name = (o.hostPaths[0] ?? "").split("/").pop() ?? "";
      // Into DEST, or into the directory DEST under the file's own name; its mode and owner come along.
      return [`d=${q(dest)}`, `[ -d "$d" ] && d="$d/"${q(name)}`, ...sendFile(f.data, '"$d"'), `chmod ${(f.mode & 0o7777).toString(8).padStart(4, "0")} "$d"`, `chown ${f.uid}:${f.gid} "$d"`];
    }
    case "ssh-inject": {
      if (arg === "") {
        if (!inputs.publicKey) throw new Error("ssh-inject of the environment's key needs the key pair");
        return injectKey(inputs.injectUser, inputs.publicKey);
      }
      const [user, selector] = pair("USER:SELECTOR");
      const key = selector.startsWith("string:") ? selector.slice("string:".length) : (file().data.toString("utf8").split("\n")[0] ?? "");
      return injectKey(user, key);
    }
    case "root-password": {
      const pw = arg.startsWith("password:") ? arg.slice("password:".length) : (file().data.toString("utf8").split("\n")[0] ?? "");
      return [`pw=${q(pw)}`, ...ROOT_PASSWORD_LINES];
    }
    default:
      if (APPLIANCE_ONLY.has(o.option)) return [];
      throw new Error(`--${o.option} cannot run at first boot`);
  }
}

/** A step as the status line names it: one line, secrets hidden. */
function shown(o: FirstBootOption): string {
  const arg = o.option === "root-password" ? "(secret)" : (o.arg ?? "");
  const text = `--${o.option}${arg === "" ? "" : ` ${arg}`}`.replace(/[\r\n\t]+/g, " ");
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}

/** Where the guest keeps a build's status and log. */
const GUEST_BUILD_DIR = "/var/lib/lago/build";

/**
 * The script, run once by the guest at its first boot (POSIX sh, busybox is enough).
 * `id` names the build's status and log files. Deterministic. Pure.
 */
export function firstBootScript(id: string, options: readonly FirstBootOption[], inputs: FirstBootInputs): string {
  const steps = options.filter((o) => !APPLIANCE_ONLY.has(o.option));
  const out = [
    `# lago first-boot build ${id}: ${steps.length} step(s), once`,
    "(",
    `d=${GUEST_BUILD_DIR}; st=$d/${id}.status; log=$d/${id}.log`,
    `[ -e "$st" ] && exit 0`,
    `mkdir -p "$d" && chmod 755 "$d" && : >> "$log" && chmod 600 "$log" || exit 0`,
    `fin() { printf '%s\\n' "$*" > "$st.tmp" && chmod 644 "$st.tmp" && mv -f "$st.tmp" "$st"; sync; exit 0; }`,
    "umask 022",
  ];
  steps.forEach((o, i) => {
    const what = `step ${i + 1} of ${steps.length} (${shown(o)})`;
    // Not `( … ) || fin`: a shell ignores `set -e` inside the left side of `||`.
    out.push(`echo ${singleQuote(`== ${what}`)} >> "$log"`, "( set -e", ...stepCommands(o, inputs), `) >> "$log" 2>&1 < /dev/null`, `r=$?; [ $r -eq 0 ] || fin ${singleQuote(`failed: ${what} exited with`)} $r`);
  });
  out.push("fin ok", ")");
  return `${out.join("\n")}\n`;
}

/**
 * The command lago's first login runs: the status line, then (unless `ok`) the end of
 * the log, read with sudo when the login user is not root. Always exits 0. Pure.
 */
export function statusProbe(id: string): string {
  const st = `${GUEST_BUILD_DIR}/${id}.status`;
  const log = `${GUEST_BUILD_DIR}/${id}.log`;
  return `s=$(cat ${st} 2>/dev/null) || s=missing; printf '%s\\n' "$s"; [ "$s" = ok ] || tail -n 20 ${log} 2>/dev/null || sudo -n tail -n 20 ${log} 2>/dev/null; true`;
}

export type FirstBootStatus = { state: "ok" } | { state: "missing" } | { state: "failed"; message: string; log: string };

/** What {@link statusProbe} printed. Pure. */
export function parseStatus(output: string): FirstBootStatus {
  const [first = "", ...rest] = output.replace(/\n$/, "").split("\n");
  if (first === "ok") return { state: "ok" };
  if (first === "missing" || first === "") return { state: "missing" };
  return { state: "failed", message: first.replace(/^failed: /, ""), log: rest.join("\n") };
}
