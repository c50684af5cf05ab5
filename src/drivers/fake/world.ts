/**
 * A fake world for engine tests: libvirt, qemu-img, virt-customize and SSH
 * simulated on a JSON file, so that it survives the process being killed.
 * Faults can be injected at a chosen call: `fail:<method>[@<substring>]` throws
 * a CommandError, `hang:<method>[@<substring>]` never returns (until aborted).
 * Set them with the `faults` option or `LAGO_FAKE_FAULTS` (comma-separated).
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { CommandError } from "../../errors.ts";
import { writeFileAtomic } from "../../util/fs-atomic.ts";
import { shownArgs } from "../customize-args.ts";
import type {
  CallOptions,
  CustomizeArg,
  CustomizeDriver,
  DomainDef,
  DomainDiskDef,
  DomainInfo,
  DomainNicDef,
  ImageDriver,
  ImageInfo,
  LibvirtDriver,
  NetworkDef,
  NetworkHostDef,
  NetworkInfo,
  SeedFiles,
  SeedImageDriver,
  SshDriver,
  SshLogin,
  SshTarget,
} from "../types.ts";

interface FakeDomain {
  def: DomainDef;
  running: boolean;
  id: number | null;
  /** The definition the running instance booted with. */
  live: DomainDef | null;
  boots: number;
}

interface FakeNetwork {
  def: NetworkDef;
  active: boolean;
}

export interface WorldData {
  domains: Record<string, FakeDomain>;
  networks: Record<string, FakeNetwork>;
  images: Record<string, ImageInfo>;
  customized: { disk: string; args: string[] }[];
  calls: string[];
  nextId: number;
  /** cloud-init seeds written, by path (their files as given; secrets included: a fake world is a test's). */
  seeds?: Record<string, SeedFiles>;
  /** Guests bootstrapped over a first SSH login, by libvirt name: what the bootstrap script received. */
  firstLogins?: Record<string, { command: string; input: string | undefined }[]>;
}

function emptyWorld(): WorldData {
  return { domains: {}, networks: {}, images: {}, customized: [], calls: [], nextId: 1, seeds: {}, firstLogins: {} };
}

export class FakeWorld {
  private readonly faults: string[];

  constructor(
    readonly file: string,
    options: { faults?: string[] } = {},
  ) {
    this.faults = options.faults ?? (process.env.LAGO_FAKE_FAULTS ?? "").split(",").filter(Boolean);
  }

  read(): WorldData {
    if (!existsSync(this.file)) return emptyWorld();
    return JSON.parse(readFileSync(this.file, "utf8")) as WorldData;
  }

  private write(data: WorldData): void {
    writeFileAtomic(this.file, JSON.stringify(data, null, 1));
  }

  /** Record the call, apply injected faults, then mutate the world. */
  async call<T>(method: string, detail: string, opts: CallOptions | undefined, fn: (w: WorldData) => T): Promise<T> {
    for (const fault of this.faults) {
      const [mode, spec = ""] = fault.split(":", 2);
      const [m, match] = spec.split("@", 2);
      if (m !== method || (match && !detail.includes(match))) continue;
      if (mode === "fail") throw new CommandError(["fake", method, detail], 1, `injected failure in ${method}`);
      if (mode === "hang") {
        await new Promise<never>((_resolve, reject) => {
          // A hung call keeps the process alive, as a stuck external command would.
          const keepAlive = setInterval(() => undefined, 60_000);
          opts?.signal?.addEventListener("abort", () => {
            clearInterval(keepAlive);
            reject(new CommandError(["fake", method, detail], undefined, "", "was cancelled"));
          });
        });
      }
    }
    const data = this.read();
    data.calls.push(`${method} ${detail}`);
    const result = fn(data);
    this.write(data);
    return result;
  }

  drivers(): { libvirt: LibvirtDriver; images: ImageDriver; customize: CustomizeDriver; ssh: SshDriver; seeds: SeedImageDriver } {
    return { libvirt: new FakeLibvirt(this), images: new FakeImages(this), customize: new FakeCustomize(this), ssh: new FakeSsh(this), seeds: new FakeSeeds(this) };
  }
}

function missing(what: string, name: string): never {
  throw new CommandError(["fake", what, name], 1, `error: failed to get ${what} '${name}'`);
}

class FakeLibvirt implements LibvirtDriver {
  constructor(private readonly w: FakeWorld) {}

  listDomains(prefix: string, opts?: CallOptions): Promise<DomainInfo[]> {
    return this.w.call("listDomains", prefix, opts, (d) =>
      Object.entries(d.domains)
        .filter(([name]) => name.startsWith(prefix))
        .map(([name, dom]) => ({
          name,
          id: dom.id ?? undefined,
          running: dom.running,
          metadata: dom.def.metadata,
          macs: dom.def.nics.map((n) => n.mac),
          devs: dom.def.disks.map((x) => x.dev),
          memoryMiB: dom.def.memoryMiB,
          vcpu: dom.def.vcpu,
        })),
    );
  }

  listNetworks(prefix: string, opts?: CallOptions): Promise<NetworkInfo[]> {
    return this.w.call("listNetworks", prefix, opts, (d) =>
      Object.entries(d.networks)
        .filter(([name]) => name.startsWith(prefix))
        .map(([name, n]) => ({
          name,
          active: n.active,
          bridge: n.def.bridge,
          metadata: n.def.metadata,
          dhcp: n.def.dhcp,
          hosts: n.def.hosts,
          dnsHosts: n.def.dnsHosts,
        })),
    );
  }

  defineDomain(def: DomainDef, opts?: CallOptions): Promise<void> {
    return this.w.call("defineDomain", def.name, opts, (d) => {
      for (const disk of def.disks) if (!d.images[disk.path] && !existsSync(disk.path)) throw new CommandError(["fake", "define", def.name], 1, `Cannot access storage file '${disk.path}'`);
      for (const nic of def.nics) if (!d.networks[nic.network]) missing("network", nic.network);
      const existing = d.domains[def.name];
      d.domains[def.name] = existing ? { ...existing, def } : { def, running: false, id: null, live: null, boots: 0 };
    });
  }

  startDomain(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("startDomain", name, opts, (d) => {
      const dom = d.domains[name] ?? missing("domain", name);
      if (dom.running) return;
      for (const nic of dom.def.nics) if (!d.networks[nic.network]?.active) throw new CommandError(["fake", "start", name], 1, `network '${nic.network}' is not active`);
      dom.running = true;
      dom.id = d.nextId++;
      dom.live = dom.def;
      dom.boots += 1;
    });
  }

  stopDomain(name: string, _timeoutMs: number, opts?: CallOptions): Promise<void> {
    return this.w.call("stopDomain", name, opts, (d) => {
      const dom = d.domains[name] ?? missing("domain", name);
      dom.running = false;
      dom.id = null;
      dom.live = null;
    });
  }

  deleteDomain(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("deleteDomain", name, opts, (d) => {
      delete d.domains[name];
    });
  }

  attachNic(domain: string, nic: DomainNicDef, opts?: CallOptions): Promise<void> {
    return this.w.call("attachNic", `${domain} ${nic.mac}`, opts, (d) => {
      const dom = d.domains[domain] ?? missing("domain", domain);
      if (!d.networks[nic.network]) missing("network", nic.network);
      if (!dom.def.nics.some((n) => n.mac === nic.mac)) dom.def = { ...dom.def, nics: [...dom.def.nics, nic] };
      if (dom.live && !dom.live.nics.some((n) => n.mac === nic.mac)) dom.live = { ...dom.live, nics: [...dom.live.nics, nic] };
    });
  }

  detachNic(domain: string, mac: string, opts?: CallOptions): Promise<void> {
    return this.w.call("detachNic", `${domain} ${mac}`, opts, (d) => {
      const dom = d.domains[domain] ?? missing("domain", domain);
      dom.def = { ...dom.def, nics: dom.def.nics.filter((n) => n.mac !== mac) };
      if (dom.live) dom.live = { ...dom.live, nics: dom.live.nics.filter((n) => n.mac !== mac) };
    });
  }

  attachDisk(domain: string, disk: DomainDiskDef, opts?: CallOptions): Promise<void> {
    return this.w.call("attachDisk", `${domain} ${disk.dev}`, opts, (d) => {
      const dom = d.domains[domain] ?? missing("domain", domain);
      if (!d.images[disk.path] && !existsSync(disk.path)) throw new CommandError(["fake", "attach-disk"], 1, `Cannot access storage file '${disk.path}'`);
      if (!dom.def.disks.some((x) => x.dev === disk.dev)) dom.def = { ...dom.def, disks: [...dom.def.disks, disk] };
      if (dom.live && !dom.live.disks.some((x) => x.dev === disk.dev)) dom.live = { ...dom.live, disks: [...dom.live.disks, disk] };
    });
  }

  detachDisk(domain: string, dev: string, opts?: CallOptions): Promise<void> {
    return this.w.call("detachDisk", `${domain} ${dev}`, opts, (d) => {
      const dom = d.domains[domain] ?? missing("domain", domain);
      dom.def = { ...dom.def, disks: dom.def.disks.filter((x) => x.dev !== dev) };
      if (dom.live) dom.live = { ...dom.live, disks: dom.live.disks.filter((x) => x.dev !== dev) };
    });
  }

  resizeDiskLive(domain: string, path: string, size: number, opts?: CallOptions): Promise<boolean> {
    return this.w.call("resizeDiskLive", `${domain} ${path}`, opts, (d) => {
      const dom = d.domains[domain];
      if (!dom?.running || !dom.live?.disks.some((x) => x.path === path)) return false;
      const img = d.images[path] ?? missing("image", path);
      img.virtualSize = size;
      return true;
    });
  }

  createNetwork(def: NetworkDef, opts?: CallOptions): Promise<void> {
    return this.w.call("createNetwork", def.name, opts, (d) => {
      for (const [name, n] of Object.entries(d.networks)) {
        if (name !== def.name && n.def.bridge === def.bridge) throw new CommandError(["fake", "net-start", def.name], 1, `bridge ${def.bridge} is in use`);
        if (name !== def.name && def.gateway && n.def.gateway === def.gateway) throw new CommandError(["fake", "net-start", def.name], 1, `address ${def.gateway} is in use by ${name}`);
      }
      d.networks[def.name] = { def, active: true };
    });
  }

  startNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("startNetwork", name, opts, (d) => {
      (d.networks[name] ?? missing("network", name)).active = true;
    });
  }

  deleteNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("deleteNetwork", name, opts, (d) => {
      delete d.networks[name];
    });
  }

  addNetworkHost(network: string, host: NetworkHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("addNetworkHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      if (!n.def.hosts.some((h) => h.mac === host.mac)) n.def = { ...n.def, hosts: [...n.def.hosts, host] };
    });
  }

  removeNetworkHost(network: string, host: NetworkHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("removeNetworkHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, hosts: n.def.hosts.filter((h) => h.mac !== host.mac) };
    });
  }

  addDnsHost(network: string, host: { ip: string; names: string[] }, opts?: CallOptions): Promise<void> {
    return this.w.call("addDnsHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      if (!n.def.dnsHosts.some((h) => h.ip === host.ip)) n.def = { ...n.def, dnsHosts: [...n.def.dnsHosts, host] };
    });
  }

  removeDnsHost(network: string, host: { ip: string; names: string[] }, opts?: CallOptions): Promise<void> {
    return this.w.call("removeDnsHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, dnsHosts: n.def.dnsHosts.filter((h) => h.ip !== host.ip) };
    });
  }

  setDhcpRange(network: string, _before: { start: string; end: string } | undefined, after: { start: string; end: string }, opts?: CallOptions): Promise<void> {
    return this.w.call("setDhcpRange", `${network} ${after.start}-${after.end}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, dhcp: after };
    });
  }

  setNetworkMetadata(network: string, metadata: string, opts?: CallOptions): Promise<void> {
    return this.w.call("setNetworkMetadata", network, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, metadata };
    });
  }
}

class FakeImages implements ImageDriver {
  constructor(private readonly w: FakeWorld) {}

  createOverlay(path: string, backing: string, backingFormat: string, size: number | undefined, opts?: CallOptions): Promise<void> {
    return this.w.call("createOverlay", path, opts, (d) => {
      if (!d.images[backing] && !existsSync(backing)) throw new CommandError(["fake", "qemu-img", "create", path], 1, `Could not open backing file '${backing}'`);
      const base = d.images[backing]?.virtualSize ?? 0;
      d.images[path] = { format: "qcow2", virtualSize: Math.max(base, size ?? 0), backingFile: backing, backingFormat };
    });
  }

  createBlank(path: string, format: "qcow2" | "raw", size: number, opts?: CallOptions): Promise<void> {
    return this.w.call("createBlank", path, opts, (d) => {
      d.images[path] = { format, virtualSize: size, backingFile: undefined, backingFormat: undefined };
    });
  }

  info(path: string, opts?: CallOptions): Promise<ImageInfo | undefined> {
    return this.w.call("imageInfo", path, opts, (d) => {
      const known = d.images[path];
      if (known) return known;
      if (existsSync(path)) {
        const head = readFileSync(path).subarray(0, 64).toString("latin1");
        const backing = /BACKING=(\S+)/.exec(head)?.[1];
        return { format: "qcow2", virtualSize: statSync(path).size, backingFile: backing, backingFormat: backing ? "raw" : undefined };
      }
      return undefined;
    });
  }

  resize(path: string, _format: string, size: number, opts?: CallOptions): Promise<void> {
    return this.w.call("resize", path, opts, (d) => {
      const img = d.images[path] ?? missing("image", path);
      img.virtualSize = size;
    });
  }

  remove(path: string, opts?: CallOptions): Promise<void> {
    return this.w.call("removeImage", path, opts, (d) => {
      delete d.images[path];
      rmSync(path, { force: true });
    });
  }

  rename(from: string, to: string, opts?: CallOptions): Promise<void> {
    return this.w.call("renameImage", `${from} ${to}`, opts, (d) => {
      const img = d.images[from];
      if (img) {
        d.images[to] = img;
        delete d.images[from];
      } else if (existsSync(from)) renameSync(from, to);
      else missing("image", from);
    });
  }
}

/** Seeds are files of the world: `defineDomain` finds them like images. */
class FakeSeeds implements SeedImageDriver {
  constructor(private readonly w: FakeWorld) {}

  write(path: string, files: SeedFiles, opts?: CallOptions): Promise<void> {
    return this.w.call("writeSeed", path, opts, (d) => {
      d.seeds = { ...d.seeds, [path]: files };
      d.images[path] = { format: "raw", virtualSize: 2048, backingFile: undefined, backingFormat: undefined };
    });
  }

  remove(path: string, opts?: CallOptions): Promise<void> {
    return this.w.call("removeSeed", path, opts, (d) => {
      if (d.seeds) delete d.seeds[path];
      delete d.images[path];
    });
  }
}

class FakeCustomize implements CustomizeDriver {
  constructor(private readonly w: FakeWorld) {}

  run(disk: string, args: CustomizeArg[], opts?: CallOptions): Promise<void> {
    // Secrets are recorded as the real driver would show them, never in the world file.
    const shown = shownArgs(args);
    return this.w.call("customize", `${disk} ${shown.join(" ")}`, opts, (d) => {
      if (!d.images[disk]) throw new CommandError(["virt-customize", "-a", disk], 1, `virt-customize: error: ${disk}: No such file or directory`);
      d.customized.push({ disk, args: shown });
    });
  }
}

/** The first line of lago's first-login bootstrap script (resources/bootstrap.ts). */
const FIRST_LOGIN_MARK = "# lago bootstrap";

/** SSH answers when a running domain has a NIC whose MAC matches the address (Lago's MAC scheme). */
class FakeSsh implements SshDriver {
  constructor(private readonly w: FakeWorld) {}

  private find(d: WorldData, host: string): string | undefined {
    const mac = `54:52:${host
      .split(".")
      .map((o) => Number(o).toString(16).padStart(2, "0"))
      .join(":")}`;
    return Object.entries(d.domains).find(([, dom]) => dom.running && dom.live?.nics.some((n) => n.mac === mac))?.[0];
  }

  waitReady(target: SshTarget, _timeoutMs: number, opts?: CallOptions): Promise<string> {
    return this.w.call("sshWaitReady", target.host, opts, (d) => {
      const name = this.find(d, target.host);
      if (!name) throw new CommandError(["ssh", target.host], 255, `connect to host ${target.host} port 22: No route to host`);
      const key = Buffer.from(`hostkey:${name}`).toString("base64");
      if (target.pinnedHostKey && target.pinnedHostKey !== key) throw new CommandError(["ssh", target.host], 255, "host key mismatch");
      return key;
    });
  }

  /**
   * The key logs in once the guest was bootstrapped (a seed attached at boot, a disk
   * customized with the key, or a first login done); before that, the first password does.
   */
  waitLogin(target: SshTarget, _timeoutMs: number, opts?: CallOptions): Promise<SshLogin> {
    return this.w.call("sshWaitLogin", target.host, opts, (d) => {
      const name = this.find(d, target.host);
      if (!name) throw new CommandError(["ssh", target.host], 255, `connect to host ${target.host} port 22: No route to host`);
      const hostKey = Buffer.from(`hostkey:${name}`).toString("base64");
      if (target.pinnedHostKey && target.pinnedHostKey !== hostKey) throw new CommandError(["ssh", target.host], 255, "host key mismatch");
      if (d.firstLogins?.[name]?.length || !target.passwords?.length) return { hostKey, credential: -1 };
      return { hostKey, credential: 0 };
    });
  }

  exec(target: SshTarget, command: string, opts?: CallOptions & { input?: string }): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.w.call("sshExec", `${target.host} ${command.split("\n")[0] ?? ""}`, opts, (d) => {
      const name = this.find(d, target.host);
      if (!name) throw new CommandError(["ssh", target.host], 255, "No route to host");
      if (command.startsWith(FIRST_LOGIN_MARK)) {
        d.firstLogins = { ...d.firstLogins, [name]: [...(d.firstLogins?.[name] ?? []), { command, input: opts?.input === undefined ? undefined : "(secret)" }] };
        return { code: 0, stdout: "", stderr: "" };
      }
      // Bootstrap sets the guest's hostname to the VM's name (the libvirt name without the environment prefix).
      return { code: 0, stdout: command === "hostname" ? `${name.replace(/^lago-[0-9a-f]+-/, "")}\n` : "", stderr: "" };
    });
  }
}
