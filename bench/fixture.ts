/**
 * On-disk fixtures for the whole-process benchmarks: a small local Lago
 * template repository (file source) holding bench/generate.ts's templates, an
 * environment directory per run, and the environment variables that point
 * lago at them (its own HOME, config, template store and lease store), so
 * nothing touches the user's lago configuration or /var/lib/lago.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TEMPLATES } from "./generate.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const LAGO_BIN = path.join(REPO_ROOT, "bin", "lago.js");

export interface TemplateRepo {
  dir: string;
  metadata: string;
}

function writeImage(dir: string, handle: string, bytes: Buffer | string): void {
  writeFileSync(path.join(dir, handle), bytes);
  writeFileSync(path.join(dir, `${handle}.hash`), createHash("sha1").update(bytes).digest("hex"));
  writeFileSync(path.join(dir, `${handle}.metadata`), JSON.stringify({ distro: "bench" }));
}

/**
 * A repository with `names` × versions v1, v2. `image(name, version)` gives
 * the bytes of each image (placeholders for plans and the fake drivers; a
 * real qcow2 where qemu-img must read it).
 */
export function makeTemplateRepo(root: string, names: readonly string[] = TEMPLATES, image: (name: string, version: string) => Buffer | string = (n, v) => `bench placeholder image ${n} ${v}\n`): TemplateRepo {
  const dir = path.join(root, "repo");
  mkdirSync(dir, { recursive: true });
  const templates: Record<string, unknown> = {};
  for (const name of names) {
    const versions: Record<string, unknown> = {};
    for (const [version, timestamp] of [["v1", 1_600_000_000], ["v2", 1_700_000_000]] as const) {
      const handle = `${name}-${version}.img`;
      writeImage(dir, handle, image(name, version));
      versions[version] = { source: "local", handle, timestamp };
    }
    templates[name] = { versions };
  }
  const metadata = path.join(dir, "repo.metadata");
  writeFileSync(metadata, JSON.stringify({ name: "bench-repo", sources: { local: { type: "file", args: { root: dir } } }, templates }, null, 1));
  return { dir, metadata };
}

export interface Workspace {
  root: string;
  /** The environment directory (lago runs with it as cwd; the init file is LagoInitFile there). */
  work: string;
  env: Record<string, string>;
  init(text: string): void;
}

/**
 * A fresh directory tree for one lago environment: work/, home/, store/,
 * leases/. `repoMetadata` is the template repository; `extraEnv` adds to the
 * variables (e.g. LAGO_DRIVER, LAGO_LEASE_RANGE).
 */
export function makeWorkspace(prefix: string, repoMetadata: string, extraEnv: Record<string, string> = {}, parent = os.tmpdir()): Workspace {
  mkdirSync(parent, { recursive: true });
  const root = mkdtempSync(path.join(parent, `lago-bench-${prefix}-`));
  // mkdtemp makes it 0700: qemu (not root) must search it to reach the disks and the store below.
  chmodSync(root, 0o711);
  const work = path.join(root, "work");
  for (const d of [work, path.join(root, "home")]) mkdirSync(d, { recursive: true });
  const env: Record<string, string> = {
    HOME: path.join(root, "home"),
    XDG_CONFIG_HOME: path.join(root, "home", ".config"),
    XDG_CONFIG_DIRS: path.join(root, "no-xdg"),
    NO_COLOR: "1",
    LAGO__INIT__TEMPLATE_REPO_PATH: repoMetadata,
    LAGO__INIT__TEMPLATE_STORE: path.join(root, "store"),
    LAGO_LEASE_DIR: path.join(root, "leases"),
    ...extraEnv,
  };
  return {
    root,
    work,
    env,
    init(text) {
      writeFileSync(path.join(work, "LagoInitFile"), text);
    },
  };
}
