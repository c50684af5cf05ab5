/**
 * Which drivers a command uses. The real ones by default; `LAGO_DRIVER=fake:<world.json>`
 * selects the file-backed fake world (engine tests only): libvirt, qemu-img,
 * virt-customize and SSH are simulated, the lease, template and key stores stay real.
 */
import type { Drivers } from "./types.ts";
import type { EnvContext } from "../env/context.ts";
import { FakeWorld } from "./fake/world.ts";
import { FsTemplateStore } from "./real/template-store.ts";
import { FsLeaseStore } from "./real/lease-store.ts";
import { FsKeyStore } from "./real/key-store.ts";
import { QemuImg } from "./real/qemu-img.ts";
import { VirtCustomize, shouldForceTcg } from "./real/virt-customize.ts";
import { Ssh2Client } from "./real/ssh.ts";
import { VirshLibvirt } from "./real/libvirt.ts";
import { libvirtQemuIdentity, staticIdentity } from "./real/qemu-access.ts";
import { UsageError } from "../errors.ts";

export function createDrivers(env: EnvContext, selector = process.env.LAGO_DRIVER): Drivers {
  const config = env.config;
  if (selector?.startsWith("fake:")) {
    const world = new FakeWorld(selector.slice("fake:".length)).drivers();
    return {
      ...world,
      templates: new FsTemplateStore(config.templateStore, world.images),
      leases: new FsLeaseStore(config.leaseDir, config.leaseRange),
      keys: new FsKeyStore(),
    };
  }
  if (selector && selector !== "real") throw new UsageError(`unknown LAGO_DRIVER ${JSON.stringify(selector)}: use "real" or "fake:<world.json>"`);
  const images = new QemuImg();
  return {
    libvirt: new VirshLibvirt(config.libvirtUri, {
      // Must agree with the domain's seclabel (src/resources/domain.ts): libvirt's qemu user, or the invoking user.
      identity: async () =>
        config.qemuUser === "invoking" ? staticIdentity(process.getuid?.() ?? 0, process.getgid?.() ?? 0) : /^qemu(\+unix)?:\/\/\/system/.test(config.libvirtUri) ? libvirtQemuIdentity() : undefined,
      roots: { workdir: env.workdir, stores: [config.templateStore] },
    }),
    images,
    customize: new VirtCustomize({ forceTcg: shouldForceTcg(config.domainType) }),
    ssh: new Ssh2Client(),
    templates: new FsTemplateStore(config.templateStore, images),
    leases: new FsLeaseStore(config.leaseDir, config.leaseRange),
    keys: new FsKeyStore(),
  };
}
