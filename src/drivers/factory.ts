/**
 * Which drivers a command uses. The real ones by default; `LAGO_DRIVER=fake:<world.json>`
 * selects the file-backed fake world (engine tests only), `LAGO_DRIVER=memory` the same world
 * in memory, lost when the process exits (the zero-latency driver of the engine bench): libvirt, qemu-img,
 * virt-customize, SSH and seed images are simulated, the lease, template, layer
 * and key stores stay real (layer images themselves live in the fake world).
 */
import type { Drivers } from "./types.ts";
import { envPaths, type EnvContext } from "../env/context.ts";
import { FakeWorld } from "./fake/world.ts";
import { FsTemplateStore } from "./real/template-store.ts";
import { FsLeaseStore } from "./real/lease-store.ts";
import { FsKeyStore } from "./real/key-store.ts";
import { QemuImg } from "./real/qemu-img.ts";
import { VirtCustomize, shouldForceTcg } from "./real/virt-customize.ts";
import { Ssh2Client } from "./real/ssh.ts";
import { GenisoimageSeeds } from "./real/seed-image.ts";
import { FsLayerStore } from "./real/layer-store.ts";
import { VirshLibvirt } from "./real/libvirt.ts";
import { libvirtQemuIdentity, staticIdentity } from "./real/qemu-access.ts";
import { UsageError } from "../errors.ts";

export function createDrivers(env: EnvContext, selector = process.env.LAGO_DRIVER): Drivers {
  const config = env.config;
  if (selector?.startsWith("fake:") || selector === "memory") {
    const world = new FakeWorld(selector === "memory" ? undefined : selector.slice("fake:".length)).drivers();
    const templates = new FsTemplateStore(config.templateStore, world.images);
    return {
      ...world,
      templates,
      layers: new FsLayerStore(config.templateStore, world.images, templates),
      leases: new FsLeaseStore(config.leaseDir, config.leaseRange),
      keys: new FsKeyStore(),
    };
  }
  if (selector && selector !== "real") throw new UsageError(`unknown LAGO_DRIVER ${JSON.stringify(selector)}: use "real", "fake:<world.json>" or "memory"`);
  const images = new QemuImg();
  const templates = new FsTemplateStore(config.templateStore, images);
  return {
    libvirt: new VirshLibvirt(config.libvirtUri, {
      // Must agree with the domain's seclabel (src/resources/domain.ts): libvirt's qemu user, or the invoking user.
      identity: async () =>
        config.qemuUser === "invoking" ? staticIdentity(process.getuid?.() ?? 0, process.getgid?.() ?? 0) : /^qemu(\+unix)?:\/\/\/system/.test(config.libvirtUri) ? libvirtQemuIdentity() : undefined,
      roots: { workdir: env.workdir, stores: [config.templateStore] },
    }, envPaths.parsedXmlCache(env)),
    images,
    customize: new VirtCustomize({ forceTcg: shouldForceTcg(config.domainType) }),
    ssh: new Ssh2Client(),
    templates,
    layers: new FsLayerStore(config.templateStore, images, templates),
    leases: new FsLeaseStore(config.leaseDir, config.leaseRange),
    keys: new FsKeyStore(),
    seeds: new GenisoimageSeeds(),
  };
}
