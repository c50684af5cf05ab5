/**
 * A disk's `build` steps on a template, made once as a content-addressed layer in the
 * shared store (see drivers/real/layer-store.ts) and overlaid by the VM's disk. The
 * layer's key hashes everything that makes its bytes: the template's digest, the
 * canonical steps, the contents of the host files they read and, when a step injects
 * the environment's key, that key. Identical builds — other VMs, re-creates, other
 * environments — reuse the layer: no libguestfs launch. Never re-run on a used layer:
 * any change is a new layer, and a new disk on it.
 *
 * Or, for the boot disk of a VM that gets a cloud-init seed when every step can run in
 * the guest, no layer at all: the steps become a script (resources/first-boot.ts), frozen
 * in a file beside the VM's disks at create, that the seed carries and the guest runs at
 * its first boot. Which of the two is decided at create and recorded (`mode`).
 */
import { readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import { stringify } from "safe-stable-stringify";
import { ProviderError } from "../errors.ts";
import { envPaths } from "../env/context.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { sha256 } from "../util/hash.ts";
import { LIBGUESTFS_LAUNCH, shownArgs } from "../drivers/customize-args.ts";
import type { CustomizeArg, TemplateRef } from "../drivers/types.ts";
import { BUILD_OPERATIONS, withResolvedHostPaths } from "../spec/build-ops.ts";
import { writeFileAtomicAsync } from "../util/fs-atomic.ts";
import { bootstrapMethod } from "./bootstrap.ts";
import { dependency, obj, str } from "./common.ts";
import { firstBootBlocker, firstBootScript, type HostFile } from "./first-boot.ts";
import { templateRefOf } from "./template.ts";
import type { Attrs, DesiredResource, Json, ReconcileContext, ResourceKind } from "./types.ts";

/** The version of the key's recipe: bump it when what the key hashes changes meaning. */
const KEY_FORMAT = 1;

interface StepOption {
  option: string;
  arg: string | null;
  /** The host files the argument reads, resolved by the spec layer (CustomizeOption.hostPaths). */
  hostPaths: string[];
}

function options(attrs: Attrs): StepOption[] {
  const out: StepOption[] = [];
  for (const step of Array.isArray(attrs.steps) ? attrs.steps : []) {
    for (const o of Array.isArray(obj(step).options) ? (obj(step).options as Json[]) : []) {
      const { option, arg, host_paths } = obj(o);
      out.push({ option: str(option, "option"), arg: typeof arg === "string" ? arg : null, hostPaths: Array.isArray(host_paths) ? host_paths.map((p) => str(p, "host path")) : [] });
    }
  }
  return out;
}

/** Every host file the build's steps read (resolved, absolute), sorted: their contents are part of the layer's key. Pure. */
export function buildInputs(attrs: Attrs): string[] {
  return [...new Set(options(attrs).flatMap((o) => o.hostPaths))].sort();
}

/**
 * The virt-customize arguments for a build's steps, in order. `ssh-inject` without an
 * argument injects the environment's key for `inject_user`; passwords given inline
 * (`root-password password:…`, `password USER:password:…`) go through secret files,
 * never argv. Pure.
 */
export function buildArgs(attrs: Attrs, publicKeyPath: string | undefined): CustomizeArg[] {
  const args: CustomizeArg[] = [];
  const user = typeof attrs.inject_user === "string" ? attrs.inject_user : "root";
  for (const o of options(attrs)) {
    const { option } = o;
    // Host files are named by the paths the spec layer resolved and checked, never by the relative spelling.
    const op = BUILD_OPERATIONS.get(option);
    const arg = o.arg !== null && op && o.hostPaths.length ? withResolvedHostPaths(op, o.arg, o.hostPaths) : o.arg;
    if (option === "ssh-inject" && (arg === null || arg === "")) {
      if (!publicKeyPath) throw new Error("ssh-inject of the environment's key needs the key pair");
      args.push("--ssh-inject", `${user}:file:${publicKeyPath}`);
    } else if (option === "root-password" && arg?.startsWith("password:")) {
      args.push("--root-password", { secretFile: `${arg.slice("password:".length)}\n`, prefix: "file:" });
    } else if (option === "password" && arg && /^[^:]+:password:/.test(arg)) {
      const at = arg.indexOf(":password:");
      args.push("--password", { secretFile: `${arg.slice(at + ":password:".length)}\n`, prefix: `${arg.slice(0, at)}:file:` });
    } else if (arg === null) args.push(`--${option}`);
    else args.push(`--${option}`, arg);
  }
  return args;
}

/** The steps with inline secrets replaced, for the layer's manifest. Pure. */
function redactedSteps(attrs: Attrs): string[] {
  return shownArgs(buildArgs({ ...attrs }, "(the environment's key)"));
}

interface TemplateFacts {
  path: string;
  format: string;
  /** Digest for the key: a repository template's sha1, or a local image's identity. */
  digest: string;
  ref: TemplateRef | undefined;
}

/** The template as applied (its outputs), or as the store has it already (at plan time). */
async function templateFacts(ctx: ReconcileContext, attrs: Attrs, planned?: Attrs): Promise<TemplateFacts | undefined> {
  const address = str(attrs.template, "template");
  const dep = ctx.deps.get(address);
  const tattrs = dep?.attrs ?? planned;
  if (!tattrs) return undefined;
  const ref = templateRefOf(tattrs);
  if (ref) {
    const stored = dep?.outputs.sha1 !== undefined ? { path: str(dep.outputs.path, "path"), format: str(dep.outputs.format, "format"), sha1: str(dep.outputs.sha1, "sha1") } : await ctx.drivers.templates.lookup(ref);
    return stored ? { path: stored.path, format: stored.format, digest: `sha1:${stored.sha1}`, ref } : undefined;
  }
  const path = str(tattrs.path, "path");
  const info = dep ? { format: str(dep.outputs.format, "format") } : await ctx.drivers.images.info(path, { signal: ctx.signal });
  if (!info) return undefined;
  return { path, format: info.format, digest: `image:${path}:${await ctx.drivers.layers.imageIdentity(path)}`, ref: undefined };
}

/**
 * The layer's key and what it hashes; undefined when an input is not known yet
 * (at plan time: the template is not in the store, or the key pair not made).
 */
async function layerKey(ctx: ReconcileContext, attrs: Attrs, planned?: Attrs): Promise<{ key: string; template: TemplateFacts } | undefined> {
  const template = await templateFacts(ctx, attrs, planned);
  if (!template) return undefined;
  let inject: Json = null;
  if (typeof attrs.inject_user === "string") {
    const keys = ctx.deps.get(KEYPAIR)?.outputs;
    if (typeof keys?.publicKey !== "string") return undefined;
    inject = { user: attrs.inject_user, key: keys.publicKey.trim() };
  }
  const files = await ctx.drivers.layers.hashFiles(buildInputs(attrs));
  const recipe = { format: KEY_FORMAT, template: { digest: template.digest, format: template.format }, steps: attrs.steps ?? [], inject, files };
  return { key: sha256(stringify(recipe) ?? ""), template };
}

/**
 * Where the steps run: in the guest at its first boot (resources/first-boot.ts), or offline into a layer;
 * `why` says why not at first boot when the build could have. Reads the template's metadata and stats host files.
 */
async function modeOf(ctx: ReconcileContext, attrs: Attrs, template: TemplateFacts): Promise<{ firstBoot: boolean; why?: string }> {
  if (attrs.first_boot !== true) return { firstBoot: false };
  if (ctx.env.config.build === "offline") return { firstBoot: false, why: "[lago] build is offline" };
  const method = bootstrapMethod(await ctx.drivers.templates.metadataOf(template.path), ctx.env.config.bootstrap);
  if (method !== "cloud-init") return { firstBoot: false, why: `the VM is bootstrapped by ${method}, not by a cloud-init seed` };
  let bytes = 0;
  for (const file of buildInputs(attrs)) bytes += (await stat(file)).size;
  const why = firstBootBlocker(options(attrs), bytes);
  return why ? { firstBoot: false, why } : { firstBoot: true };
}

/** The first-boot script of a build: a file beside its VM's disks, named by its key. */
function scriptPath(ctx: ReconcileContext, attrs: Attrs, key: string): string {
  return path.join(envPaths.vmDir(ctx.env, str(attrs.vm, "vm")), `build-${str(attrs.disk, "disk")}-${key.slice(0, 12)}.sh`);
}

const exists = (file: string): Promise<boolean> => stat(file).then(
  () => true,
  () => false,
);

/** Write the first-boot script (host files read now: the build is frozen, as a layer is). */
async function writeFirstBootScript(ctx: ReconcileContext, attrs: Attrs, key: string): Promise<Attrs> {
  const files = new Map<string, HostFile>();
  // The host files the steps read are the ones they send into the guest (upload, run, key and password files).
  for (const file of buildInputs(attrs)) {
    const [data, st] = await Promise.all([readFile(file), stat(file)]);
    files.set(file, { data, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
  const publicKey = typeof attrs.inject_user === "string" ? str(dependency(ctx, KEYPAIR).outputs.publicKey, "publicKey") : undefined;
  const id = key.slice(0, 16);
  const script = firstBootScript(id, options(attrs), { publicKey, injectUser: typeof attrs.inject_user === "string" ? attrs.inject_user : "root", files });
  const file = scriptPath(ctx, attrs, key);
  await writeFileAtomicAsync(file, script, 0o600);
  return firstBootOutputs(ctx, attrs, key);
}

function firstBootOutputs(ctx: ReconcileContext, attrs: Attrs, key: string): Attrs {
  return { mode: "first-boot", key, id: key.slice(0, 16), script: scriptPath(ctx, attrs, key), cached: false };
}

/** The VM disk that overlays the layer: its registered user. */
function userOf(ctx: ReconcileContext, attrs: Attrs): string {
  return envPaths.disk(ctx.env, str(attrs.vm, "vm"), str(attrs.disk, "disk"), "qcow2");
}

/**
 * For the plan: "cached" when the layer this build would make is in the store already.
 * Reads only (the store, the recorded state, the host files the steps read).
 */
export async function buildPlanNote(ctx: ReconcileContext, desired: Attrs, graph: ReadonlyMap<string, DesiredResource>): Promise<string | undefined> {
  const planned = graph.get(str(desired.template, "template"))?.attrs;
  const found = await layerKey(ctx, desired, planned).catch(() => undefined);
  if (!found) return undefined;
  const mode = await modeOf(ctx, desired, found.template).catch(() => undefined);
  if (mode?.firstBoot) return "at first boot, in the guest (cloud-init seed): no libguestfs launch";
  const layer = await ctx.drivers.layers.lookup(found.key);
  if (layer) return `cached: layer ${found.key.slice(0, 12)} is in the store, no libguestfs launch`;
  return mode?.why ? `offline (virt-customize): ${mode.why}` : undefined;
}

export const buildKind: ResourceKind = {
  kind: "build",
  // A first-boot build writes a script; an offline one (a libguestfs launch, ~30 s) is the rare case.
  typicalMs: 100,
  // `first_boot` says where a new build may run: gaining it changes nothing (an offline build stays), losing it
  // replaces the build (the steps can no longer wait for a seed; an offline layer is found again in the store).
  replaceOn: [
    { path: "/template", reason: "the template changes: the steps run again on it, into a fresh layer" },
    ...["/vm", "/disk", "/steps", "/inject_user"].map((p) => ({ path: p, reason: "build steps run once, into a fresh layer" })),
    { path: "/first_boot", reason: "its VM no longer gets a cloud-init seed: the steps run offline", when: (c) => c.after === undefined },
  ],
  onDependencyDisrupted: (dep) =>
    dep.kind === "template" ? { action: "replace", reason: `its template ${dep.address} is replaced` } : dep.kind === "keypair" ? { action: "replace", reason: "the environment's key changed" } : undefined,
  planNote: buildPlanNote,
  async read(ctx, current) {
    if (current.outputs?.mode === "first-boot") {
      const script = str(current.outputs.script, "script");
      if (await exists(script)) return { attrs: current.attrs, outputs: current.outputs, healthy: true };
      return { attrs: current.attrs, outputs: current.outputs, healthy: false, reason: `its first-boot script ${script} is missing` };
    }
    if (current.outputs?.key === undefined) {
      // An interrupted create of a first-boot build: done when its script is in place (it is written atomically).
      const found = await layerKey(ctx, current.attrs);
      if (found && (await modeOf(ctx, current.attrs, found.template)).firstBoot) {
        return (await exists(scriptPath(ctx, current.attrs, found.key))) ? { attrs: current.attrs, outputs: firstBootOutputs(ctx, current.attrs, found.key), healthy: true } : undefined;
      }
    }
    let key = typeof current.outputs?.key === "string" ? current.outputs.key : undefined;
    key ??= (await layerKey(ctx, current.attrs))?.key;
    if (!key) return undefined;
    const layer = await ctx.drivers.layers.lookup(key);
    if (!layer) return undefined;
    // Reading back an interrupted create (nothing recorded yet): a layer this disk is not registered on was made
    // for another disk with the same steps, or the crash came before the registration. Not done, then: the
    // create registers the disk, from the store, without a launch (else a prune could remove a layer in use).
    if (current.outputs?.key === undefined && !layer.users.includes(userOf(ctx, current.attrs))) return undefined;
    return { attrs: current.attrs, outputs: { cached: true, ...(current.outputs ?? {}), key, path: layer.path, format: "qcow2" }, healthy: true };
  },
  async create(ctx, desired) {
    const found = await layerKey(ctx, desired);
    if (!found) throw new ProviderError(ctx.address, `its template ${String(desired.template)} is not in the store; apply it first`);
    if ((await modeOf(ctx, desired, found.template)).firstBoot) {
      ctx.progress("the steps run in the guest at its first boot, from its cloud-init seed: no libguestfs launch");
      return writeFirstBootScript(ctx, desired, found.key);
    }
    const needsKey = typeof desired.inject_user === "string";
    const publicKeyPath = needsKey ? str(dependency(ctx, KEYPAIR).outputs.publicKeyPath, "publicKeyPath") : undefined;
    const args = buildArgs(desired, publicKeyPath);
    const short = found.key.slice(0, 12);
    const layer = await ctx.drivers.layers.ensure(
      {
        key: found.key,
        template: { path: found.template.path, format: found.template.format },
        templateRef: found.template.ref,
        manifest: { template: str(desired.template, "template"), steps: redactedSteps(desired), inputs: buildInputs(desired) },
        user: userOf(ctx, desired),
        build: async (tmp) => {
          ctx.progress(`${LIBGUESTFS_LAUNCH} virt-customize ${shownArgs(args).filter((a) => a.startsWith("--")).join(" ")} (layer ${short})`);
          await ctx.drivers.customize.run(tmp, args, { signal: ctx.signal, progress: ctx.progress });
        },
      },
      { signal: ctx.signal, progress: ctx.progress },
    );
    if (layer.cached) ctx.progress(`layer ${short} is cached in the store: no libguestfs launch`);
    return { key: layer.key, path: layer.path, format: "qcow2", cached: layer.cached };
  },
  // Only gaining `first_boot` changes in place (every other change replaces): where the build ran is decided at create.
  async update(_ctx, _desired, prior) {
    return prior.outputs;
  },
  async delete(ctx, prior) {
    const key = typeof prior.outputs?.key === "string" ? prior.outputs.key : (await layerKey(ctx, prior.attrs).catch(() => undefined))?.key;
    if (!key) return;
    await rm(scriptPath(ctx, prior.attrs, key), { force: true });
    // The layer stays in the store for re-creates and other environments until pruned.
    if (prior.outputs?.mode !== "first-boot") await ctx.drivers.layers.release(key, userOf(ctx, prior.attrs));
  },
};
