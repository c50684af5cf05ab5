/**
 * A template image in the shared store (Lago's `<repo>:<name>:<version>`), or a
 * local image named by path. Immutable: a new version is a new resource.
 */
import { existsSync } from "node:fs";
import nodePath from "node:path";
import { ProviderError } from "../errors.ts";
import type { TemplateRef } from "../drivers/types.ts";
import { obj, str } from "./common.ts";
import type { Attrs, ReconcileContext, ResourceKind } from "./types.ts";

/** The repository template a template resource's attributes name; undefined for a local image. */
export function templateRefOf(attrs: Attrs): TemplateRef | undefined {
  if (typeof attrs.path === "string") return undefined;
  const source = obj(attrs.source);
  return {
    repo: str(attrs.repo, "repo"),
    name: str(attrs.name, "name"),
    version: str(attrs.version, "version"),
    handle: str(attrs.handle, "handle"),
    source: { type: source.type === "http" ? "http" : "file", location: str(source.location, "source.location") },
  };
}

/**
 * A backing file lago can trust: a complete image of the shared template store
 * that has no backing file itself (the layers `lago export` writes).
 */
async function isStoreTemplate(ctx: ReconcileContext, backing: string): Promise<boolean> {
  const store = nodePath.resolve(ctx.env.config.templateStore);
  const file = nodePath.resolve(backing);
  if (nodePath.dirname(file) !== store || !existsSync(`${file}.hash`)) return false;
  const info = await ctx.drivers.images.info(file, { signal: ctx.signal });
  return info !== undefined && !info.backingFile;
}

async function localImage(ctx: ReconcileContext, attrs: Attrs): Promise<Attrs | undefined> {
  const path = str(attrs.path, "path");
  const info = await ctx.drivers.images.info(path, { signal: ctx.signal });
  if (!info) return undefined;
  if (info.backingFile && !(await isStoreTemplate(ctx, info.backingFile))) {
    throw new ProviderError(ctx.address, `image ${path} names a backing file ${info.backingFile}: it could read files of the host; refusing`, {
      hint: `only a template of the store ${ctx.env.config.templateStore} may back an image (as in a layered \`lago export\`)`,
    });
  }
  return { path, format: info.format };
}

export const templateKind: ResourceKind = {
  kind: "template",
  // Warm: the store holds it (a download otherwise).
  typicalMs: 100,
  replaceOn: [{ path: "", reason: "a template version is immutable" }],
  async read(ctx, current) {
    const ref = templateRefOf(current.attrs);
    if (!ref) {
      const outputs = await localImage(ctx, current.attrs);
      return outputs ? { attrs: current.attrs, outputs, healthy: true } : undefined;
    }
    const stored = await ctx.drivers.templates.lookup(ref);
    return stored ? { attrs: current.attrs, outputs: { ...stored }, healthy: true } : undefined;
  },
  async create(ctx, desired) {
    const ref = templateRefOf(desired);
    if (!ref) {
      const outputs = await localImage(ctx, desired);
      if (!outputs) throw new ProviderError(ctx.address, `image ${String(desired.path)} does not exist`);
      return outputs;
    }
    return { ...(await ctx.drivers.templates.ensure(ref, ctx.env.dir, { signal: ctx.signal, progress: ctx.progress })) };
  },
  async update(ctx, desired) {
    return templateKind.create(ctx, desired);
  },
  async delete(ctx, prior) {
    const ref = templateRefOf(prior.attrs);
    if (ref) await ctx.drivers.templates.release(ref, ctx.env.dir);
  },
};
