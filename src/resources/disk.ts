/**
 * A VM disk: a qcow2 overlay on a template in the store (or on its build layer,
 * when the disk has build steps), a thin `empty`/`file` disk, or an existing image
 * named by `path` (used as is, never deleted). A fresh overlay holds no data: it
 * costs the host a few hundred KiB whatever the template's size.
 *
 * The first disk of a VM with Lago's bootstrap also decides how the bootstrap
 * reaches the guest (resources/bootstrap.ts), from the template's metadata, and
 * records it (`bootstrap_method`) for the domain, with the build its VM runs at
 * first boot (`first_boot_build`), if any. The `virt-customize` fallback
 * happens here: the overlay is made and customized under a temporary name, then
 * renamed, so a disk under its final name is always bootstrapped.
 */
import { envPaths, libvirtName } from "../env/context.ts";
import { ProviderError } from "../errors.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { LIBGUESTFS_LAUNCH } from "../drivers/customize-args.ts";
import { bootstrapCustomizeArgs, bootstrapMethod, bootstrapSpec, type BootstrapMethod } from "./bootstrap.ts";
import { dependency, diskAddress, str } from "./common.ts";
import type { Attrs, ReconcileContext, ResourceKind } from "./types.ts";

export function diskPath(ctx: ReconcileContext, attrs: Attrs): string {
  if (typeof attrs.path === "string") return attrs.path;
  return envPaths.disk(ctx.env, str(attrs.vm, "vm"), str(attrs.name, "name"), str(attrs.format, "format"));
}

const external = (attrs: Attrs): boolean => typeof attrs.path === "string";

/** Where the virt-customize bootstrap works on a new disk before it is renamed into place. */
const bootstrapTmp = (path: string): string => `${path}.bootstrap.tmp`;

/** This disk's build, if it has build steps: the layer it overlays, or the script its VM runs at first boot. */
function buildOf(ctx: ReconcileContext, attrs: Attrs): { layer: string } | { firstBoot: { script: string; id: string } } | undefined {
  const dep = ctx.deps.get(diskAddress(str(attrs.vm, "vm"), str(attrs.name, "name"), "build"));
  if (!dep) return undefined;
  if (dep.outputs.mode === "first-boot") return { firstBoot: { script: str(dep.outputs.script, "first-boot script"), id: str(dep.outputs.id, "first-boot id") } };
  return { layer: str(dep.outputs.path, "build layer path") };
}

/** The layer the disk overlays, if any. */
function layerOf(ctx: ReconcileContext, attrs: Attrs): string | undefined {
  const build = buildOf(ctx, attrs);
  return build && "layer" in build ? build.layer : undefined;
}

/** What the disk tells its domain about a build that runs at first boot (null: none). */
function firstBootOf(ctx: ReconcileContext, attrs: Attrs): Attrs | null {
  const build = buildOf(ctx, attrs);
  return build && "firstBoot" in build ? build.firstBoot : null;
}

/** How this disk's VM is bootstrapped: undefined without bootstrap; the template's metadata decides. */
async function methodOf(ctx: ReconcileContext, attrs: Attrs, templateImage: string): Promise<BootstrapMethod | undefined> {
  if (!bootstrapSpec(attrs.bootstrap)) return undefined;
  try {
    return bootstrapMethod(await ctx.drivers.templates.metadataOf(templateImage), ctx.env.config.bootstrap);
  } catch (err) {
    throw new ProviderError(ctx.address, `cannot tell how to bootstrap the VM: ${(err as Error).message}`, { cause: err });
  }
}

export const diskKind: ResourceKind = {
  kind: "disk",
  typicalMs: 50,
  replaceOn: [
    { path: "/vm", reason: "the disk moves to another VM" },
    { path: "/name", reason: "the disk is renamed" },
    { path: "/type", reason: "the disk type changes" },
    { path: "/format", reason: "the disk format changes" },
    { path: "/template", reason: "the template changes: a fresh overlay is needed" },
    { path: "/path", reason: "the image path changes" },
    { path: "/build_sha256", reason: "its build steps change: a fresh disk on a fresh layer is needed" },
    { path: "/bootstrap", reason: "Lago's bootstrap runs once, on a fresh disk" },
  ],
  sensitive: ["/bootstrap/root_password"],
  onDependencyDisrupted: (dep, self) => {
    if (dep.kind === "template") return { action: "replace", reason: `its template ${dep.address} is replaced` };
    if (dep.kind === "build") return { action: "replace", reason: `its build layer ${dep.address} is redone` };
    if (dep.kind === "keypair" && self.bootstrap) return { action: "replace", reason: "the environment's key changed: a fresh bootstrap is needed" };
    return undefined;
  },
  async read(ctx, current) {
    const path = diskPath(ctx, current.attrs);
    const info = await ctx.drivers.images.info(path, { signal: ctx.signal, expectFormat: external(current.attrs) ? undefined : String(current.attrs.format) });
    if (!info) {
      // A virt-customize bootstrap interrupted before its rename: replaced (the delete removes the leftover).
      const leftover = external(current.attrs) ? undefined : await ctx.drivers.images.info(bootstrapTmp(path), { signal: ctx.signal });
      return leftover ? { attrs: current.attrs, outputs: { path, virtual_size: 0 }, healthy: false, reason: `${bootstrapTmp(path)} is an interrupted bootstrap` } : undefined;
    }
    const outputs: Attrs = { ...(current.outputs ?? {}), path, virtual_size: info.virtualSize };
    if (typeof current.attrs.template === "string") {
      // Its base: the build layer it overlays when it has build steps, else the template itself.
      const base = layerOf(ctx, current.attrs) ?? ctx.deps.get(current.attrs.template)?.outputs.path;
      if (!info.backingFile) return { attrs: current.attrs, outputs, healthy: false, reason: `${path} has lost its backing template` };
      if (typeof base === "string" && info.backingFile !== base) {
        return { attrs: current.attrs, outputs, healthy: false, reason: `${path} is backed by ${info.backingFile}, not by ${base}` };
      }
      if (current.outputs?.bootstrap_method === undefined && ctx.deps.has(current.attrs.template)) {
        // An interrupted create left a complete disk (it is renamed into place last): tell the domain how to bootstrap.
        const templateImage = str(dependency(ctx, current.attrs.template).outputs.path, "template path");
        outputs.template_image = templateImage;
        outputs.bootstrap_method = (await methodOf(ctx, current.attrs, templateImage)) ?? null;
        outputs.first_boot_build = firstBootOf(ctx, current.attrs);
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
    if (typeof desired.template !== "string") {
      if (size === undefined) throw new ProviderError(ctx.address, "a blank disk needs a size");
      await images.createBlank(path, desired.format === "raw" ? "raw" : "qcow2", size, opts);
      const info = await images.info(path, opts);
      return { path, virtual_size: info?.virtualSize ?? size };
    }
    const template = dependency(ctx, desired.template).outputs;
    const templateImage = str(template.path, "template path");
    const layer = layerOf(ctx, desired);
    const base = layer ? { path: layer, format: "qcow2" } : { path: templateImage, format: str(template.format, "template format") };
    const method = await methodOf(ctx, desired, templateImage);
    const boot = bootstrapSpec(desired.bootstrap);
    const firstBoot = firstBootOf(ctx, desired);
    if (firstBoot && method !== "cloud-init") {
      // The build chose the first boot for a cloud-init seed that this VM no longer gets (the configuration changed between).
      throw new ProviderError(ctx.address, `its build steps wait for the VM's cloud-init seed, but the VM is now bootstrapped by ${method ?? "nothing"}`, {
        hint: `run: lago apply --replace ${diskAddress(str(desired.vm, "vm"), str(desired.name, "name"), "build")}`,
      });
    }
    if (method === "virt-customize" && boot) {
      const tmp = bootstrapTmp(path);
      const keys = dependency(ctx, KEYPAIR).outputs;
      const args = bootstrapCustomizeArgs(boot, str(keys.publicKeyPath, "publicKeyPath"));
      await images.createOverlay(tmp, base.path, base.format, size, opts);
      try {
        ctx.progress(`${LIBGUESTFS_LAUNCH} virt-customize bootstrap (key, host name${boot.root_password === null ? "" : ", root password"})`);
        await ctx.drivers.customize.run(tmp, args, { signal: ctx.signal, progress: ctx.progress });
        await images.rename(tmp, path, opts);
      } catch (err) {
        await images.remove(tmp).catch(() => undefined);
        throw err;
      }
    } else {
      await images.createOverlay(path, base.path, base.format, size, opts);
    }
    const info = await images.info(path, opts);
    return { path, virtual_size: info?.virtualSize ?? size ?? 0, template_image: templateImage, bootstrap_method: method ?? null, first_boot_build: firstBoot };
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
    const path = diskPath(ctx, prior.attrs);
    await ctx.drivers.images.remove(bootstrapTmp(path), { signal: ctx.signal });
    await ctx.drivers.images.remove(path, { signal: ctx.signal });
  },
};
