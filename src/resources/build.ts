/**
 * A disk's `build` steps on a template, made once as a content-addressed layer in the
 * shared store (see drivers/real/layer-store.ts) and overlaid by the VM's disk. The
 * layer's key hashes everything that makes its bytes: the template's digest, the
 * canonical steps, the contents of the host files they read and, when a step injects
 * the environment's key, that key. Identical builds — other VMs, re-creates, other
 * environments — reuse the layer: no libguestfs launch. Never re-run on a used layer:
 * any change is a new layer, and a new disk on it.
 */
import { stringify } from "safe-stable-stringify";
import { ProviderError } from "../errors.ts";
import { envPaths } from "../env/context.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { sha256 } from "../util/hash.ts";
import { LIBGUESTFS_LAUNCH, shownArgs } from "../drivers/customize-args.ts";
import type { CustomizeArg, TemplateRef } from "../drivers/types.ts";
import { BUILD_OPERATIONS, withResolvedHostPaths } from "../spec/build-ops.ts";
import { dependency, obj, str } from "./common.ts";
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
  const layer = await ctx.drivers.layers.lookup(found.key);
  return layer ? `cached: layer ${found.key.slice(0, 12)} is in the store, no libguestfs launch` : undefined;
}

export const buildKind: ResourceKind = {
  kind: "build",
  replaceOn: [
    { path: "/template", reason: "the template changes: the steps run again on it, into a fresh layer" },
    { path: "", reason: "build steps run once, into a fresh layer" },
  ],
  onDependencyDisrupted: (dep) =>
    dep.kind === "template" ? { action: "replace", reason: `its template ${dep.address} is replaced` } : dep.kind === "keypair" ? { action: "replace", reason: "the environment's key changed" } : undefined,
  planNote: buildPlanNote,
  async read(ctx, current) {
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
  async update(ctx) {
    throw new ProviderError(ctx.address, "a build cannot be updated in place; it is replaced, with its disk");
  },
  async delete(ctx, prior) {
    // The layer stays in the store for re-creates and other environments until pruned.
    const key = typeof prior.outputs?.key === "string" ? prior.outputs.key : (await layerKey(ctx, prior.attrs).catch(() => undefined))?.key;
    if (key) await ctx.drivers.layers.release(key, userOf(ctx, prior.attrs));
  },
};
