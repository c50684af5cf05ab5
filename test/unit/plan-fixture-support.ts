/**
 * Support for the numbered plan fixtures in `test/fixtures/NNN-name/`: parse an
 * init file with a stable path and a fixed environment, resolve templates from
 * a hand-made table (no repository I/O), build a prior state from
 * `LagoInitFile.before` as if every resource had been applied, and plan.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TemplateRef } from "../../src/drivers/types.ts";
import { compile, type TemplateResolution } from "../../src/graph/compile.ts";
import { computePlan, type Plan } from "../../src/plan/plan.ts";
import type { Attrs, DesiredResource, RecordedResource } from "../../src/resources/types.ts";
import { parseSpec } from "../../src/spec/load.ts";
import type { EnvSpec } from "../../src/spec/types.ts";
import { emptyState, type State } from "../../src/state/state.ts";

export const FIXTURES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures");

/** The environment `$VARS` expand against: fixed, so the developer's shell never leaks into a plan. */
export const FIXTURE_ENV: Record<string, string> = { HOME: "/home/user", IMAGES: "/srv/images" };

export const FIXTURE_LINEAGE = "6f1c2a7e-3b9d-4c55-8e21-0a4b7d9c1e30";
export const FIXTURE_SERIAL = 7;

/** The template repository the fixtures resolve against: name → versions (the last is the newest). */
const REPO: Record<string, string[]> = {
  "el8-base": ["v1", "v2"],
  "el9-base": ["v1"],
  "debian-12": ["v20240101"],
};

export function fixtureRef(name: string, version: string | undefined): TemplateRef {
  const versions = REPO[name];
  if (!versions) throw new Error(`fixture template repository has no template ${name}`);
  const chosen = version ?? versions[versions.length - 1];
  if (chosen === undefined || !versions.includes(chosen)) throw new Error(`fixture template ${name} has no version ${String(version)}`);
  return {
    repo: "lago-ci",
    name,
    version: chosen,
    handle: `${name}-${chosen}`,
    source: { type: "file", location: "/srv/lago-templates" },
  };
}

/** Every template disk's resolution, by pointer, as the engine's resolver would give it. */
export function fixtureTemplates(spec: EnvSpec): Map<string, TemplateResolution> {
  const out = new Map<string, TemplateResolution>();
  for (const d of spec.domains) {
    for (const disk of d.disks) {
      if (disk.type !== "template") continue;
      if (disk.path) out.set(disk.pointer, { type: "path", path: disk.path, format: disk.format === "raw" ? "raw" : "qcow2" });
      else out.set(disk.pointer, { type: "repo", ref: fixtureRef(disk.templateName ?? "", disk.templateVersion) });
    }
  }
  return out;
}

export function listFixtures(): string[] {
  return readdirSync(FIXTURES_DIR, { withFileTypes: true })
    // Folders with a sequence.json are edit sequences, replayed by test/engine/properties-fixtures.test.ts.
    .filter((e) => e.isDirectory() && /^\d{3}-/.test(e.name) && !existsSync(path.join(FIXTURES_DIR, e.name, "sequence.json")))
    .map((e) => e.name)
    .sort();
}

/** Parse a fixture's init file as if it lived at `/fixtures/<folder>/LagoInitFile`. */
export function fixtureSpec(folder: string, fileName = "LagoInitFile"): EnvSpec {
  const text = readFileSync(path.join(FIXTURES_DIR, folder, fileName), "utf8");
  return parseSpec(text, `/fixtures/${folder}/LagoInitFile`, { env: FIXTURE_ENV });
}

export function compileFixture(spec: EnvSpec, prior: State): DesiredResource[] {
  return compile({ spec, templates: fixtureTemplates(spec), prior, domainType: "kvm" });
}

/** Plausible outputs of an applied resource (what its reconciler records). */
function outputsOf(r: DesiredResource, subnets: Map<string, string>): Attrs {
  const a = r.attrs;
  switch (r.kind) {
    case "keypair":
      return { privateKeyPath: "/work/.lago/default/ssh/id_ed25519", publicKeyPath: "/work/.lago/default/ssh/id_ed25519.pub" };
    case "template":
      return {
        path: `/var/lib/lago/store/${String(a.repo)}:${String(a.name)}:${String(a.version)}`,
        format: "qcow2",
        sha1: "0123456789abcdef0123456789abcdef01234567",
      };
    case "lease":
      return { subnet: subnets.get(String(a.net)) ?? "192.168.200.0" };
    case "network":
      return {
        libvirt_name: `lago-0a1b2c3d-${String(a.net)}`,
        bridge: `lgo0a1b2c3d${Number(a.bridge_index ?? 0).toString(36).padStart(4, "0")}`,
        subnet: a.type === "nat" ? (subnets.get(String(a.net)) ?? null) : null,
      };
    case "disk":
      return {
        path: typeof a.path === "string" ? a.path : `/work/.lago/default/vms/${String(a.vm)}/disks/${String(a.name)}.${String(a.format)}`,
        virtual_size: typeof a.size === "number" ? a.size : 10737418240,
      };
    case "build":
      return { ran: true };
    case "domain":
      return { libvirt_name: `lago-0a1b2c3d-${String(a.name)}`, ip: null, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixture", pendingRestart: [] };
  }
}

/** The state lago would record after applying `desired` completely. */
export function appliedState(desired: DesiredResource[], initFileSha256: string): State {
  const state = emptyState();
  state.lineage = FIXTURE_LINEAGE;
  state.serial = FIXTURE_SERIAL;
  state.initFileSha256 = initFileSha256;
  const subnets = new Map<string, string>();
  let octet = 200;
  for (const r of desired) {
    if (r.kind !== "lease") continue;
    const requested = typeof r.attrs.requested === "string" ? r.attrs.requested : undefined;
    subnets.set(String(r.attrs.net), requested ?? `192.168.${octet++}.0`);
  }
  for (const r of desired) {
    const rec: RecordedResource = {
      address: r.address,
      kind: r.kind,
      attrs: structuredClone(r.attrs),
      outputs: outputsOf(r, subnets),
      dependsOn: [...r.dependsOn],
      status: "ready",
    };
    state.resources.set(r.address, rec);
  }
  return state;
}

/** The prior state of a fixture: from `LagoInitFile.before` if present, else empty. */
export function fixturePriorState(folder: string): State {
  if (!existsSync(path.join(FIXTURES_DIR, folder, "LagoInitFile.before"))) return emptyState();
  const before = fixtureSpec(folder, "LagoInitFile.before");
  return appliedState(compileFixture(before, emptyState()), before.sha256);
}

export function planFixture(folder: string, prior: State): Plan {
  const spec = fixtureSpec(folder);
  const desired = compileFixture(spec, prior);
  return computePlan({ desired, state: prior, observed: undefined, initFileSha256: spec.sha256 });
}
