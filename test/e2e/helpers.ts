/**
 * Helpers for the end-to-end suite: it runs inside the test bed
 * (scripts/testbed.sh run …), against the real libvirt, qemu-img,
 * virt-customize and SSH, with the tiny test template repository.
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../helpers/sandbox.ts";

export interface Cmd {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], env?: Record<string, string>): Promise<Cmd> {
  return new Promise((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, LC_ALL: "C", ...env };
    // Set by node --test for this file: a `node --test` run from here would skip its files as "recursive".
    delete childEnv.NODE_TEST_CONTEXT;
    const child = execFile(cmd, args, { env: childEnv, maxBuffer: 64 * 1024 * 1024 }, (_e, stdout, stderr) =>
      resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
    );
  });
}

export const virsh = (...args: string[]): Promise<Cmd> => sh("virsh", ["-c", "qemu:///system", "-q", ...args]);

export function requireTestbed(): { repo: string; repoHttp: string } {
  const repo = process.env.LAGO_TEST_TEMPLATE_REPO;
  const repoHttp = process.env.LAGO_TEST_TEMPLATE_REPO_HTTP;
  if (!repo || !repoHttp || !process.env.LAGO_TEST_NETNS) {
    throw new Error("the e2e suite runs inside the test bed: npm run test:e2e (scripts/testbed.sh run …)");
  }
  return { repo, repoHttp };
}

/**
 * A template of the test repository that scripts/build-test-template.sh wrote (its one version): the store key
 * (`lago-test:NAME:VERSION`), the version and the image's file name. Read from the repository, so that a new
 * TEMPLATE_VERSION there needs no edit here.
 */
export function testTemplate(name = "lago-tiny"): { key: string; version: string; handle: string } {
  const meta = JSON.parse(readFileSync(requireTestbed().repo, "utf8")) as { name: string; templates: Record<string, { versions: Record<string, { handle: string }> } | undefined> };
  const versions = Object.entries(meta.templates[name]?.versions ?? {});
  const [only] = versions;
  if (!only || versions.length !== 1) throw new Error(`the test repository should publish ${name} under exactly one version, not ${versions.length}`);
  return { key: `${meta.name}:${name}:${only[0]}`, version: only[0], handle: only[1].handle };
}

/** `text` as a regular expression that matches it literally. */
export const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A fresh directory that libvirt's qemu user may search (but not list), as a
 * user's project directory must be: qemu runs as that user, not as root, and
 * mkdtemp makes directories 0700.
 */
export function reachableTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}

/** Shared stores for every environment of the suite (like /var/lib/lago on a real machine). */
const shared = reachableTempDir("lago-e2e-shared-");

export interface Env {
  dir: string;
  init(text: string): void;
  lago(args: string[], extraEnv?: Record<string, string>): Promise<Cmd>;
  state(): { resources: Record<string, { kind: string; attrs: Record<string, unknown>; outputs: Record<string, unknown> }> };
}

export const SHARED = { store: path.join(shared, "store"), leases: path.join(shared, "leases") };

export function makeEnv(name: string, repoPath: string): Env {
  const dir = reachableTempDir(`lago-e2e-${name}-`);
  mkdirSync(path.join(dir, "home"), { recursive: true });
  const env = {
    HOME: path.join(dir, "home"),
    XDG_CONFIG_DIRS: path.join(dir, "no-xdg"),
    NO_COLOR: "1",
    LAGO__INIT__TEMPLATE_REPO_PATH: repoPath,
    LAGO__INIT__TEMPLATE_STORE: SHARED.store,
    LAGO_LEASE_DIR: SHARED.leases,
    LAGO_DOMAIN_TYPE: "qemu",
    LAGO_BOOT_TIMEOUT: "180",
    LAGO_SHUTDOWN_TIMEOUT: "30",
  };
  return {
    dir,
    init(text) {
      writeFileSync(path.join(dir, "LagoInitFile"), text);
    },
    lago(args, extraEnv = {}) {
      return new Promise((resolve) => {
        const child = execFile(process.execPath, [path.join(REPO_ROOT, "bin", "lago.js"), ...args], { cwd: dir, env: { ...process.env, ...env, ...extraEnv }, maxBuffer: 64 * 1024 * 1024 }, (_e, stdout, stderr) =>
          resolve({ code: child.exitCode, signal: child.signalCode, stdout, stderr }),
        );
      });
    },
    state() {
      const file = path.join(dir, ".lago", "default", "state.json");
      return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { resources: {} };
    },
  };
}

/**
 * Counts real libguestfs launches: a `virt-customize` first on PATH that logs each run, then
 * execs the real one. `env()` gives the variables to run lago with; `count()` the runs so far.
 */
export function launchCounter(): { env: () => Record<string, string>; count: () => number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-e2e-shim-"));
  const log = path.join(dir, "launches.log");
  const real = ["/usr/bin/virt-customize", "/usr/local/bin/virt-customize"].find((p) => existsSync(p)) ?? "virt-customize";
  writeFileSync(path.join(dir, "virt-customize"), `#!/bin/sh
echo "$$" >> '${log}'
exec '${real}' "$@"
`);
  chmodSync(path.join(dir, "virt-customize"), 0o755);
  return {
    env: () => ({ PATH: `${dir}:${process.env.PATH ?? "/usr/bin:/bin"}` }),
    count: () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean).length : 0),
  };
}

export { reportedLaunches } from "../helpers/launches.ts";

export function planActions(json: string): Record<string, string> {
  const plan = JSON.parse(json) as { resource_changes: { address: string; action: string }[] };
  return Object.fromEntries(plan.resource_changes.filter((c) => c.action !== "no-op").map((c) => [c.address, c.action]));
}

export const EXAMPLE = readFileSync(path.join(REPO_ROOT, "examples", "two-vms", "LagoInitFile"), "utf8");
