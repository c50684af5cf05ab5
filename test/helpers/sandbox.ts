/**
 * A throw-away world for engine tests: a template repository (file source,
 * tiny placeholder images), shared stores, a working directory and a fake
 * world file; `lago()` runs the real CLI in a child process against them.
 */
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { WorldData } from "../../src/drivers/fake/world.ts";
import { loadState } from "../../src/state/store.ts";
import { serializeState } from "../../src/state/state.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = path.join(REPO_ROOT, "bin", "lago.js");

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  root: string;
  work: string;
  worldFile: string;
  repoMetadata: string;
  /** The environment `lago()` runs with, plus `extra` (for tests that spawn lago themselves). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Run `lago ARGS` in the work dir. */
  lago(args: string[], opts?: { env?: Record<string, string>; input?: string }): Promise<RunResult>;
  /** Write the init file. */
  init(yaml: string): void;
  world(): WorldData;
  state(): { serial: number; lineage: string; resources: Record<string, { kind: string; attrs: Record<string, unknown>; outputs: Record<string, unknown>; status: string }> };
  cleanup(): void;
}

function image(dir: string, handle: string, content: string): string {
  writeFileSync(path.join(dir, handle), content);
  const sha1 = createHash("sha1").update(content).digest("hex");
  writeFileSync(path.join(dir, `${handle}.hash`), sha1);
  writeFileSync(path.join(dir, `${handle}.metadata`), JSON.stringify({ distro: "fake" }));
  return sha1;
}

/** The test template repository in `dir`: two templates, v1/v2 of one of them, and `extra` ones (v1 only). Returns its metadata file. */
export function makeTestRepo(dir: string, extra: readonly string[] = []): string {
  mkdirSync(dir, { recursive: true });
  image(dir, "tiny-v1.img", "tiny image, version 1");
  image(dir, "tiny-v2.img", "tiny image, version 2");
  image(dir, "other-v1.img", "another image");
  for (const name of extra) image(dir, `${name}-v1.img`, `template ${name}`);
  const metadata = path.join(dir, "repo.metadata");
  writeFileSync(
    metadata,
    JSON.stringify({
      name: "test-repo",
      sources: { local: { type: "file", args: { root: dir } } },
      templates: {
        tiny: { versions: { v1: { source: "local", handle: "tiny-v1.img", timestamp: 1000 }, v2: { source: "local", handle: "tiny-v2.img", timestamp: 2000 } } },
        other: { versions: { v1: { source: "local", handle: "other-v1.img", timestamp: 1000 } } },
        ...Object.fromEntries(extra.map((name) => [name, { versions: { v1: { source: "local", handle: `${name}-v1.img`, timestamp: 1000 } } }])),
      },
    }),
  );
  return metadata;
}

export function makeSandbox(): Sandbox {
  const root = mkdtempSync(path.join(os.tmpdir(), "lago-test-"));
  const repo = path.join(root, "repo");
  const work = path.join(root, "work");
  for (const d of [repo, work, path.join(root, "home")]) mkdirSync(d, { recursive: true });
  const repoMetadata = makeTestRepo(repo);
  const worldFile = path.join(root, "world.json");
  const baseEnv: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: path.join(root, "home"),
    XDG_CONFIG_HOME: path.join(root, "home", ".config"),
    XDG_CONFIG_DIRS: path.join(root, "no-xdg"),
    NO_COLOR: "1",
    LAGO_DRIVER: `fake:${worldFile}`,
    LAGO_LEASE_DIR: path.join(root, "leases"),
    LAGO__INIT__TEMPLATE_STORE: path.join(root, "store"),
    LAGO__INIT__TEMPLATE_REPO_PATH: repoMetadata,
  };
  return {
    root,
    work,
    worldFile,
    repoMetadata,
    env(extra = {}) {
      return { ...baseEnv, ...extra };
    },
    lago(args, opts = {}) {
      return new Promise((resolve) => {
        const child = execFile(process.execPath, [BIN, ...args], { cwd: work, env: { ...baseEnv, ...opts.env }, maxBuffer: 64 * 1024 * 1024 }, (_error, stdout, stderr) => {
          resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr });
        });
        if (opts.input !== undefined) child.stdin?.end(opts.input);
        else child.stdin?.end();
      });
    },
    init(yaml) {
      writeFileSync(path.join(work, "LagoInitFile"), yaml);
    },
    world() {
      try {
        return JSON.parse(readFileSync(worldFile, "utf8")) as WorldData;
      } catch {
        return { domains: {}, networks: {}, images: {}, customized: [], calls: [], nextId: 1 };
      }
    },
    state() {
      // The state is the checkpoint plus the journal of a run in progress (or killed).
      const dir = path.join(work, ".lago", "default");
      const { state } = loadState({ state: path.join(dir, "state.json"), journal: path.join(dir, "journal.jsonl") });
      return JSON.parse(serializeState(state));
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** `lago plan --json` → address → action, for the resources that change. */
export function actions(planJson: string): Record<string, string> {
  const plan = JSON.parse(planJson) as { resource_changes: { address: string; action: string }[] };
  return Object.fromEntries(plan.resource_changes.filter((c) => c.action !== "no-op").map((c) => [c.address, c.action]));
}
