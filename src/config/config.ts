/**
 * lago configuration, Lago-compatible: INI files (`/etc/lago/lago.conf`, then the
 * XDG config dirs, system first, user last), then environment variables
 * (`LAGO_KEY` for the `[lago]` section, `LAGO__SECTION__KEY` for others), then
 * CLI flags. The last occurrence wins.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { ConfigError, UsageError } from "../errors.ts";

export interface LagoConfig {
  /** Subnet lease store (Lago's `lease_dir`). */
  leaseDir: string;
  /** Third octets of the /24s the lease store hands out, inclusive. */
  leaseRange: { first: number; last: number };
  /** Shared template store (Lago's `[init] template_store`). */
  templateStore: string;
  /** repo.metadata path or URL (Lago's `[init] template_repo_path`). */
  templateRepoPath: string | undefined;
  /** libvirt domain type: `kvm`, or `qemu` where KVM is not usable. */
  domainType: "kvm" | "qemu";
  /**
   * Whose identity qemu runs with, resolved from `qemu_user` (see
   * {@link resolveQemuUser}): `libvirt` (libvirt's configured qemu user, e.g.
   * Debian's `libvirt-qemu`, with libvirt's DAC relabelling of the VM's images)
   * or `invoking` (the user running lago, files not relabelled).
   */
  qemuUser: "invoking" | "libvirt";
  /** libvirt connection URI. */
  libvirtUri: string;
  /** Seconds to wait for a VM to answer SSH after start. */
  bootTimeout: number;
  /** Seconds to wait for a graceful (ACPI) shutdown before powering off. */
  shutdownTimeout: number;
  /** Build steps may read host files outside the init file's directory (`allow_outside_paths`). */
  allowOutsidePaths: boolean;
  /** Disk and template images may lie in system directories (`allow_system_paths`). */
  allowSystemPaths: boolean;
  /**
   * How Lago's bootstrap (the environment's key, the host name, `root-password`) reaches a new VM:
   * `auto` (what the template's metadata declares; see resources/bootstrap.ts), or one method for all.
   */
  bootstrap: "auto" | "cloud-init" | "ssh" | "virt-customize";
  /**
   * Where a boot disk's build steps run: `auto` (in the guest at its first boot, from its cloud-init seed,
   * when the VM gets one and every step can; see resources/first-boot.ts), or `offline` (virt-customize, into a layer).
   */
  build: "auto" | "offline";
  /** Where the values came from, for `lago config`. */
  sources: string[];
}

type Sections = Map<string, Map<string, string>>;

const DEFAULTS: Record<string, Record<string, string>> = {
  lago: {
    lease_dir: "/var/lib/lago/subnets",
    lease_range: "200-255",
    domain_type: "kvm",
    qemu_user: "auto",
    libvirt_uri: "qemu:///system",
    boot_timeout: "600",
    shutdown_timeout: "60",
    allow_outside_paths: "no",
    allow_system_paths: "no",
    bootstrap: "auto",
    build: "auto",
  },
  init: {
    template_store: "/var/lib/lago/store",
  },
};

/**
 * The `qemu_user` setting resolved for a process with effective uid `euid`.
 * `auto` (the default) never runs qemu as root: libvirt's own qemu user when
 * lago runs as root, else the invoking (unprivileged) user. `invoking` and
 * `libvirt` are taken as they are (`invoking` as root runs qemu as root, on
 * request only). Undefined for any other value. Pure.
 */
export function resolveQemuUser(value: string | undefined, euid: number): "invoking" | "libvirt" | undefined {
  if (value === "auto") return euid === 0 ? "libvirt" : "invoking";
  return value === "invoking" || value === "libvirt" ? value : undefined;
}

/**
 * Parse an INI document (Lago's lago.conf, Python configparser style: `[section]`,
 * `key = value` or `key: value`, `#` and `;` comment lines; a repeated section
 * adds to the earlier one). Pure.
 *
 * Hand-written on purpose: no maintained INI library for Node 20 reads this
 * format with file:line errors. `ini` (npm's own; 5+ needs Node 22) knows only
 * `=` and turns a malformed line into `line = true` silently; `js-ini` takes a
 * single delimiter; `configparser` (npm) uses the same two regular expressions
 * as this function but reports 0-based line numbers inside a message string,
 * replaces a repeated section's earlier keys, and depends on mkdirp 0.5.
 *
 * @throws ConfigError with the file and line of the first malformed line.
 */
export function parseIni(text: string, file: string): Sections {
  const sections: Sections = new Map();
  let current: Map<string, string> | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header?.[1]) {
      const name = header[1].trim().toLowerCase();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      return;
    }
    const kv = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(line);
    if (!kv?.[1] || kv[2] === undefined || !current) {
      throw new ConfigError([
        { pos: { file, line: i + 1, col: 1 }, pointer: "", message: current ? "expected `key = value`" : "a setting before any [section]" },
      ]);
    }
    current.set(kv[1].trim().toLowerCase().replaceAll("-", "_"), kv[2].trim());
  });
  return sections;
}

/** Lago's config file look-up order: /etc, then XDG dirs (system, reversed), then the user's. */
export function configPaths(env: NodeJS.ProcessEnv): string[] {
  const xdgDirs = (env.XDG_CONFIG_DIRS || "/etc/xdg").split(":").filter(Boolean).reverse();
  const home = env.XDG_CONFIG_HOME || path.join(env.HOME || os.homedir(), ".config");
  return ["/etc/lago/lago.conf", ...xdgDirs.map((d) => path.join(d, "lago", "lago.conf")), path.join(home, "lago", "lago.conf")];
}

function merge(into: Sections, from: Sections, origin: Map<string, string>, source: string): void {
  for (const [section, values] of from) {
    const target = into.get(section) ?? new Map<string, string>();
    for (const [k, v] of values) {
      target.set(k, v);
      origin.set(`${section}.${k}`, source);
    }
    into.set(section, target);
  }
}

/** `LAGO_KEY` → [lago] key; `LAGO__SECTION__KEY` → [section] key. */
export function envSections(env: NodeJS.ProcessEnv): Sections {
  const out: Sections = new Map();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith("LAGO")) continue;
    let section: string;
    let key: string;
    const nested = /^LAGO__([A-Z0-9_]+?)__([A-Z0-9_]+)$/.exec(name);
    if (nested?.[1] && nested[2]) {
      section = nested[1].toLowerCase();
      key = nested[2].toLowerCase();
    } else if (/^LAGO_[A-Z0-9][A-Z0-9_]*$/.test(name) && !name.startsWith("LAGO__") && !name.startsWith("LAGO_TEST_")) {
      section = "lago";
      key = name.slice(5).toLowerCase();
    } else continue;
    const m = out.get(section) ?? new Map<string, string>();
    m.set(key, value);
    out.set(section, m);
  }
  return out;
}

export interface ConfigOverrides {
  [sectionDotKey: string]: string | undefined;
}

/**
 * Resolve the configuration. `overrides` are CLI flags as `section.key` → value.
 * Reads files; throws ConfigError with file:line for a bad file or value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: ConfigOverrides = {}, files = configPaths(env)): LagoConfig {
  const merged: Sections = new Map();
  for (const [section, values] of Object.entries(DEFAULTS)) merged.set(section, new Map(Object.entries(values)));
  const sources = ["defaults"];
  const origin = new Map<string, string>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    merge(merged, parseIni(text, file), origin, file);
    sources.push(file);
  }
  const fromEnv = envSections(env);
  if (fromEnv.size) sources.push("environment");
  merge(merged, fromEnv, origin, "the environment (LAGO_… variables)");
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const [section = "lago", key = ""] = k.split(".");
    const m = merged.get(section) ?? new Map<string, string>();
    m.set(key, v);
    merged.set(section, m);
    origin.set(`${section}.${key}`, "the command line");
    if (!sources.includes("command line")) sources.push("command line");
  }
  const get = (section: string, key: string): string | undefined => merged.get(section)?.get(key);
  const bad = (key: string, message: string): never => {
    throw new UsageError(`configuration ${key} (set by ${origin.get(key) ?? "the defaults"}): ${message}`);
  };
  const int = (section: string, key: string): number => {
    const raw = get(section, key) ?? "";
    if (!/^\d+$/.test(raw)) bad(`${section}.${key}`, `expected a whole number, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  // Python configparser's getboolean() spellings.
  const bool = (section: string, key: string): boolean => {
    const raw = (get(section, key) ?? "").toLowerCase();
    if (["1", "yes", "true", "on"].includes(raw)) return true;
    if (["0", "no", "false", "off"].includes(raw)) return false;
    return bad(`${section}.${key}`, `expected yes or no, got ${JSON.stringify(get(section, key))}`);
  };
  const range = /^(\d{1,3})-(\d{1,3})$/.exec(get("lago", "lease_range") ?? "");
  const first = Number(range?.[1]);
  const last = Number(range?.[2]);
  if (!range || first > last || last > 255) bad("lago.lease_range", "expected FIRST-LAST third octets within 0-255, e.g. 200-255");
  const domainType = get("lago", "domain_type");
  if (domainType !== "kvm" && domainType !== "qemu") bad("lago.domain_type", `expected kvm or qemu, got ${JSON.stringify(domainType)}`);
  const qemuUser = resolveQemuUser(get("lago", "qemu_user"), process.geteuid?.() ?? 0);
  if (qemuUser === undefined) bad("lago.qemu_user", `expected auto, libvirt or invoking, got ${JSON.stringify(get("lago", "qemu_user"))}`);
  const bootstrap = get("lago", "bootstrap");
  if (bootstrap !== "auto" && bootstrap !== "cloud-init" && bootstrap !== "ssh" && bootstrap !== "virt-customize") {
    bad("lago.bootstrap", `expected auto, cloud-init, ssh or virt-customize, got ${JSON.stringify(bootstrap)}`);
  }
  const build = get("lago", "build");
  if (build !== "auto" && build !== "offline") bad("lago.build", `expected auto or offline, got ${JSON.stringify(build)}`);
  const repo = get("init", "template_repo_path");
  return {
    leaseDir: path.resolve(get("lago", "lease_dir") ?? ""),
    leaseRange: { first, last },
    templateStore: path.resolve(get("init", "template_store") ?? ""),
    templateRepoPath: repo ? repo : undefined,
    domainType: domainType as "kvm" | "qemu",
    qemuUser: qemuUser as "invoking" | "libvirt",
    libvirtUri: get("lago", "libvirt_uri") ?? "qemu:///system",
    bootTimeout: int("lago", "boot_timeout"),
    shutdownTimeout: int("lago", "shutdown_timeout"),
    allowOutsidePaths: bool("lago", "allow_outside_paths"),
    allowSystemPaths: bool("lago", "allow_system_paths"),
    bootstrap: bootstrap as LagoConfig["bootstrap"],
    build: build as LagoConfig["build"],
    sources,
  };
}
