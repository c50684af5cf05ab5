/**
 * A VM disk: a qcow2 overlay on a template in the store, a thin `empty`/`file`
 * disk, or an existing image named by `path` (used as is, never deleted).
 */
import { envPaths, libvirtName } from "../env/context.ts";
import { ProviderError } from "../errors.ts";
import { dependency, str } from "./common.ts";
import type { Attrs, ReconcileContext, ResourceKind } from "./types.ts";

export function diskPath(ctx: ReconcileContext, attrs: Attrs): string {
  if (typeof attrs.path === "string") return attrs.path;
  return envPaths.disk(ctx.env, str(attrs.vm, "vm"), str(attrs.name, "name"), str(attrs.format, "format"));
}

const external = (attrs: Attrs): boolean => typeof attrs.path === "string";

export const diskKind: ResourceKind = {
  kind: "disk",
  replaceOn: [
    { path: "/vm", reason: "the disk moves to another VM" },
    { path: "/name", reason: "the disk is renamed" },
    { path: "/type", reason: "the disk type changes" },
    { path: "/format", reason: "the disk format changes" },
    { path: "/template", reason: "the template changes: a fresh overlay is needed" },
    { path: "/path", reason: "the image path changes" },
    { path: "/build_sha256", reason: "its build steps change: a fresh disk layer is needed" },
  ],
  onDependencyDisrupted: (dep) => (dep.kind === "template" ? { action: "replace", reason: `its template ${dep.address} is replaced` } : undefined),
  async read(ctx, current) {
    const path = diskPath(ctx, current.attrs);
    const info = await ctx.drivers.images.info(path, { signal: ctx.signal, expectFormat: external(current.attrs) ? undefined : String(current.attrs.format) });
    if (!info) return undefined;
    const outputs = { path, virtual_size: info.virtualSize };
    if (typeof current.attrs.template === "string") {
      const template = ctx.deps.get(current.attrs.template)?.outputs.path;
      if (!info.backingFile) return { attrs: current.attrs, outputs, healthy: false, reason: `${path} has lost its backing template` };
      if (typeof template === "string" && info.backingFile !== template) {
        return { attrs: current.attrs, outputs, healthy: false, reason: `${path} is backed by ${info.backingFile}, not by its template ${template}` };
      }
    }
    const attrs = { ...current.attrs };
    if (!external(attrs) && info.format !== attrs.format) attrs.format = info.format;
    // The size the disk has: a disk grown or shrunk outside lago shows as drift.
    if (typeof attrs.size === "number" && info.virtualSize !== attrs.size) attrs.size = info.virtualSize;
    return { attrs, outputs, healthy: true };
  },
  async create(ctx, desired) {
    const path = diskPath(ctx, desired);
    const images = ctx.drivers.images;
    const opts = { signal: ctx.signal };
    const size = typeof desired.size === "number" ? desired.size : undefined;
    if (external(desired)) {
      const info = await images.info(path, opts);
      if (!info) throw new ProviderError(ctx.address, `disk image ${path} does not exist`);
      return { path, virtual_size: info.virtualSize };
    }
    if (typeof desired.template === "string") {
      const template = dependency(ctx, desired.template).outputs;
      const templateFormat = str(template.format, "template format");
      await images.createOverlay(path, str(template.path, "template path"), templateFormat, size, opts);
    } else {
      if (size === undefined) throw new ProviderError(ctx.address, "a blank disk needs a size");
      await images.createBlank(path, desired.format === "raw" ? "raw" : "qcow2", size, opts);
    }
    const info = await images.info(path, opts);
    return { path, virtual_size: info?.virtualSize ?? size ?? 0 };
  },
  async update(ctx, desired, prior) {
    const path = diskPath(ctx, desired);
    const size = typeof desired.size === "number" ? desired.size : undefined;
    const info = await ctx.drivers.images.info(path, { signal: ctx.signal });
    if (!info) throw new ProviderError(ctx.address, `disk image ${path} is missing`);
    if (size !== undefined && size < info.virtualSize) {
      throw new ProviderError(ctx.address, `shrinking ${path} from ${info.virtualSize} to ${size} bytes is refused: it would destroy data`, {
        hint: `to start over with a smaller disk, run: lago apply --replace ${ctx.address}`,
      });
    }
    if (size !== undefined && size > info.virtualSize) {
      // A running VM holds the image's write lock: grow it through libvirt, which also tells the guest.
      const vm = libvirtName(ctx.env, str(desired.vm, "vm"));
      const live = await ctx.drivers.libvirt.resizeDiskLive(vm, path, size, { signal: ctx.signal });
      if (!live) await ctx.drivers.images.resize(path, info.format, size, { signal: ctx.signal });
    }
    return { ...prior.outputs, path, virtual_size: Math.max(size ?? 0, info.virtualSize) };
  },
  async delete(ctx, prior) {
    if (external(prior.attrs)) return;
    await ctx.drivers.images.remove(diskPath(ctx, prior.attrs), { signal: ctx.signal });
  },
};
