/**
 * `lago env list` and `lago env select` (Lago's `set-current`): the
 * environments of a workdir (its subdirectories holding a state), and which
 * one commands use without `--env`.
 */
import { existsSync, readdirSync, renameSync, symlinkSync, rmSync } from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.ts";
import { currentEnvName } from "../env/current.ts";
import { readState } from "../state/state.ts";

export interface EnvEntry {
  name: string;
  current: boolean;
  /** VMs the state records. */
  vms: string[];
  resources: number;
}

/** The environments of `workdir`, sorted by name. */
export function listEnvs(workdir: string): EnvEntry[] {
  if (!existsSync(workdir)) return [];
  const current = currentEnvName(workdir) ?? "default";
  return readdirSync(workdir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(workdir, d.name, "state.json")))
    .map((d) => {
      const state = readState(path.join(workdir, d.name, "state.json"));
      const vms = [...state.resources.values()].filter((r) => r.kind === "domain").map((r) => String(r.attrs.name)).sort();
      return { name: d.name, current: d.name === current, vms, resources: state.resources.size };
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Make `name` the current environment of `workdir`: `current` → `name`, replaced atomically. */
export function selectEnv(workdir: string, name: string): void {
  const envs = listEnvs(workdir);
  if (!envs.some((e) => e.name === name)) {
    throw new UsageError(`no environment ${name} in ${workdir}`, { hint: envs.length ? `its environments: ${envs.map((e) => e.name).join(", ")}` : "create one with `lago apply --env NAME`" });
  }
  const link = path.join(workdir, "current");
  const tmp = path.join(workdir, `.current.${process.pid}.tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(name, tmp);
  renameSync(tmp, link);
}
