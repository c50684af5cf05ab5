/**
 * Where an environment lives and how its objects are named. A workdir is a
 * `.lago/` directory found from the current directory upwards, like git;
 * environments are subdirectories of it.
 */
import { existsSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { UsageError } from "../errors.ts";
import type { LagoConfig } from "../config/config.ts";

export interface EnvContext {
  /** The `.lago` directory. */
  workdir: string;
  name: string;
  /** `.lago/<env>`. */
  dir: string;
  /** Short stable id of this environment, part of every libvirt name. */
  id: string;
  config: LagoConfig;
}

const ENV_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;

/** Find `.lago` from `start` upwards; if none, `<start>/.lago` (created on first write). */
export function findWorkdir(start: string, explicit: string | undefined): string {
  if (explicit) {
    const abs = path.resolve(explicit);
    return path.basename(abs) === ".lago" ? abs : path.join(abs, ".lago");
  }
  let dir = path.resolve(start);
  for (;;) {
    const candidate = path.join(dir, ".lago");
    if (existsSync(candidate) && statSync(candidate).isDirectory()) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return path.join(path.resolve(start), ".lago");
    dir = parent;
  }
}

export function makeEnvContext(workdir: string, name: string, config: LagoConfig): EnvContext {
  if (!ENV_NAME.test(name) || name.includes("..")) {
    throw new UsageError(`invalid environment name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 32)`);
  }
  const dir = path.join(workdir, name);
  const id = createHash("sha256").update(dir).digest("hex").slice(0, 8);
  return { workdir, name, dir, id, config };
}

/** Name of a libvirt domain or network for `name` in this environment. */
export function libvirtName(env: EnvContext, name: string): string {
  return `lago-${env.id}-${name}`;
}

/** Prefix shared by every libvirt object of this environment. */
export function libvirtPrefix(env: EnvContext): string {
  return `lago-${env.id}-`;
}

/**
 * A Linux bridge name (at most 15 characters): `lgo`, the environment id and
 * the net's bridge index (base 36, allocated per environment, never reused
 * while recorded), so two nets never share a bridge.
 */
export function bridgeName(env: EnvContext, index: number): string {
  return `lgo${env.id}${index.toString(36).padStart(4, "0")}`;
}

/**
 * Files of an environment. Every name from the init file is one path segment
 * of its own (names never contain `/` and are never `.` or `..`), so two
 * different (vm, disk) or net names can never map to the same file.
 */
export const envPaths = {
  state: (env: EnvContext) => path.join(env.dir, "state.json"),
  journal: (env: EnvContext) => path.join(env.dir, "journal.jsonl"),
  keys: (env: EnvContext) => path.join(env.dir, "ssh"),
  vmDir: (env: EnvContext, vm: string) => path.join(env.dir, "vms", vm),
  disk: (env: EnvContext, vm: string, disk: string, format: string) => path.join(env.dir, "vms", vm, "disks", `${disk}.${format}`),
  consoleLog: (env: EnvContext, vm: string) => path.join(env.dir, "vms", vm, "console.log"),
  leaseOwner: (env: EnvContext, net: string) => path.join(env.dir, "leases", `${net}.uuid`),
  /** What libvirt's XML documents parsed to, by content (src/drivers/real/parsed-xml-cache.ts). */
  parsedXmlCache: (env: EnvContext) => path.join(env.dir, "libvirt-xml.cache.json"),
};
