/**
 * The workdir's current environment, Lago's way: a symbolic link `current`
 * in the workdir pointing at the environment's directory (`lago env select`,
 * Lago's `set-current`). Commands use it when no `--env` is given.
 */
import { readlinkSync } from "node:fs";
import path from "node:path";

/** The name of the environment `<workdir>/current` points at, if any. */
export function currentEnvName(workdir: string): string | undefined {
  try {
    const target = readlinkSync(path.join(workdir, "current"));
    const name = path.basename(target);
    return name && name !== "." && name !== ".." ? name : undefined;
  } catch {
    return undefined;
  }
}
