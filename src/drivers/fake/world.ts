/**
 * A fake world for engine tests: libvirt, qemu-img, virt-customize and SSH
 * simulated on plain data. Two modes:
 * - file-backed (`new FakeWorld(path)`): every call reads and rewrites a JSON
 *   file, so the world survives the process being killed (CLI tests);
 * - in memory (`new FakeWorld(undefined)`): zero latency, for in-process
 *   property tests and the engine benchmark.
 *
 * Faults can be injected at a chosen call: `fail:<method>[@<substring>]` throws
 * a CommandError, `hang:<method>[@<substring>]` never returns (until aborted).
 * Set them with the `faults` option or `LAGO_FAKE_FAULTS` (comma-separated).
 *
 * Crashes can be injected between any two driver calls, including two calls
 * of one reconciler (after `define`, before `start`): with `crash` in-process
 * (the world stops answering: every later call hangs, and `onCrash` tells the
 * test harness), or with `LAGO_FAKE_CRASH=<n>:before|after` in a child process
 * (SIGKILL before or after performing the n-th call).
 *
 * Like libvirt, the world rewrites what it is given: MACs come back in upper
 * case and lists in another order, so the engine must not mistake libvirt's
 * own rewrites for drift. Restarting a network drops the link of every
 * interface attached to it until the interface is re-attached, as libvirt does.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from "node:fs";
import { CommandError } from "../../errors.ts";
import { writeFileAtomic } from "../../util/fs-atomic.ts";
import { shownArgs } from "../customize-args.ts";
import { reportedCpu } from "../cpu-report.ts";
import type {
  CallOptions,
  CustomizeArg,
  CustomizeDriver,
  DefineOptions,
  DnsHostDef,
  DomainDef,
  DomainDiskDef,
  DomainInfo,
  DomainNicDef,
  DomainView,
  ImageDriver,
  ImageInfo,
  Inventory,
  LibvirtDriver,
  NetworkDef,
  NetworkEdit,
  NetworkHostDef,
  NetworkInfo,
  SeedFiles,
  SeedImageDriver,
  SshDriver,
  SshLogin,
  SshTarget,
} from "../types.ts";
import { FIRST_LOGIN_MARK } from "../types.ts";

export interface FakeDomain {
  def: DomainDef;
  running: boolean;
  id: number | null;
  /** The definition the running instance booted with (and live changes since). */
  live: DomainDef | null;
  boots: number;
  /** Live interfaces by MAC: the generation of the network they are linked to. */
  links: Record<string, number>;
}

export interface FakeNetwork {
  def: NetworkDef;
  active: boolean;
  /** Grows every time the network starts: links made before are broken. */
  generation: number;
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

export function emptyWorld(): WorldData {
  return { domains: {}, networks: {}, images: {}, customized: [], calls: [], nextId: 1, seeds: {}, firstLogins: {} };
}

export interface FakeWorldOptions {
  faults?: string[] | undefined;
  /** In-process crash: at the `at`-th call (1-based), before or after performing it. */
  crash?: { at: number; when: "before" | "after"; onCrash: () => void } | undefined;
  /** Keep the log of calls (default: true for a file-backed world, false in memory). */
  recordCalls?: boolean | undefined;
  /** In memory: start from (and share) this world, e.g. the one a crashed session left. */
  data?: WorldData | undefined;
}

/** The first bytes of a file (where a fake image names its backing file), without reading all of it. */
export function readHead(file: string): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(64);
    return buf.subarray(0, readSync(fd, buf, 0, 64, 0)).toString("latin1");
  } finally {
    closeSync(fd);
  }
}

/** A MAC as the world reports it back: libvirt's own spelling may differ from what lago wrote. */
const rewriteMac = (mac: string): string => mac.toUpperCase();

/** Whether a live interface is linked to its (active) network. */
export function linked(w: WorldData, dom: FakeDomain, nic: DomainNicDef): boolean {
  const net = w.networks[nic.network];
  return !!net?.active && dom.links[nic.mac.toLowerCase()] === net.generation;
}

export class FakeWorld {
  private readonly faults: string[];
  private readonly crash: FakeWorldOptions["crash"];
  private readonly crashEnv: { at: number; when: "before" | "after" } | undefined;
  private readonly recordCalls: boolean;
  private memory: WorldData | undefined;
  private count = 0;
  private dead = false;
  /** Running domains by live MAC (zero latency: no scan per SSH call); rebuilt when the world is replaced. */
  private macs: { data: WorldData; byMac: Map<string, Set<string>>; ofDomain: Map<string, string[]> } | undefined;
  private readonly touched = new Set<string>();

  /** `file`: the JSON file the world lives in; undefined: in memory. */
  constructor(
    readonly file: string | undefined,
    options: FakeWorldOptions = {},
  ) {
    this.faults = options.faults ?? (process.env.LAGO_FAKE_FAULTS ?? "").split(",").filter(Boolean);
    this.crash = options.crash;
    const env = /^(\d+):(before|after)$/.exec(process.env.LAGO_FAKE_CRASH ?? "");
    this.crashEnv = env ? { at: Number(env[1]), when: env[2] as "before" | "after" } : undefined;
    this.recordCalls = options.recordCalls ?? file !== undefined;
    if (file === undefined) this.memory = options.data ?? emptyWorld();
  }

  /** The world as it is now (the live object in memory mode: do not mutate). */
  read(): WorldData {
    if (this.memory) return this.memory;
    if (!this.file || !existsSync(this.file)) return emptyWorld();
    return JSON.parse(readFileSync(this.file, "utf8")) as WorldData;
  }

  /** Note that a domain's definition or run state may have changed (for the MAC index). */
  touch(domain: string): void {
    this.touched.add(domain);
  }

  /** Names of the running domains with a live interface of this MAC. */
  domainsWithMac(d: WorldData, mac: string): string[] {
    if (!this.macs || this.macs.data !== d || !this.memory) {
      this.macs = { data: d, byMac: new Map(), ofDomain: new Map() };
      this.touched.clear();
      for (const name of Object.keys(d.domains)) this.touched.add(name);
    }
    const { byMac, ofDomain } = this.macs;
    for (const name of this.touched) {
      for (const m of ofDomain.get(name) ?? []) byMac.get(m)?.delete(name);
      const dom = d.domains[name];
      const now = dom?.running ? (dom.live?.nics ?? []).map((n) => n.mac.toLowerCase()) : [];
      ofDomain.set(name, now);
      for (const m of now) byMac.set(m, (byMac.get(m) ?? new Set()).add(name));
    }
    this.touched.clear();
    return [...(byMac.get(mac) ?? [])];
  }

  /** Replace the world (tests simulate changes made outside lago this way). */
  write(data: WorldData): void {
    if (this.memory) this.memory = data;
    else if (this.file) writeFileAtomic(this.file, JSON.stringify(data, null, 1));
  }

  /** Number of driver calls made so far (through this object). */
  get calls(): number {
    return this.count;
  }

  private die(): Promise<never> {
    this.dead = true;
    this.crash?.onCrash();
    // A dead world never answers: the caller's promise chain is abandoned.
    return new Promise<never>(() => undefined);
  }

  /** Record the call, apply injected faults and crashes, then mutate the world. */
  async call<T>(method: string, detail: string, opts: CallOptions | undefined, fn: (w: WorldData) => T): Promise<T> {
    if (this.dead) return new Promise<never>(() => undefined);
    const n = ++this.count;
    const crashNow = (when: "before" | "after"): boolean => (this.crash?.at === n && this.crash.when === when) || (this.crashEnv?.at === n && this.crashEnv.when === when);
    if (crashNow("before")) {
      if (this.crashEnv) process.kill(process.pid, "SIGKILL");
      return this.die();
    }
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
    if (this.recordCalls) data.calls.push(`${method} ${detail}`);
    const result = fn(data);
    this.write(data);
    if (crashNow("after")) {
      if (this.crashEnv) process.kill(process.pid, "SIGKILL");
      return this.die();
    }
    return result;
  }

  drivers(): { libvirt: LibvirtDriver; images: ImageDriver; customize: CustomizeDriver; ssh: SshDriver; seeds: SeedImageDriver } {
    return { libvirt: new FakeLibvirt(this), images: new FakeImages(this), customize: new FakeCustomize(this), ssh: new FakeSsh(this), seeds: new FakeSeeds(this) };
  }
}

function missing(what: string, name: string): never {
  throw new CommandError(["fake", what, name], 1, `error: failed to get ${what} '${name}'`);
}

function view(def: DomainDef): DomainView {
  return {
    memoryMiB: def.memoryMiB,
    vcpu: def.vcpu,
    // libvirt's rewrites: a model's mode is `custom`; a TCG domain defined without a CPU gets `qemu64`.
    cpu: reportedCpu(def.cpu, def.type),
    // libvirt lists devices in its own order and spells MACs its own way.
    nics: [...def.nics].reverse().map((n) => ({ mac: rewriteMac(n.mac), network: n.network, mtu: n.mtu })),
    disks: [...def.disks].reverse().map((d) => ({ dev: d.dev, path: d.path, format: d.format, bus: d.bus, device: d.device })),
  };
}

function domainsOf(d: WorldData, prefix: string): DomainInfo[] {
  return Object.entries(d.domains)
    .filter(([name]) => name.startsWith(prefix))
    .map(([name, dom]) => ({
      name,
      id: dom.id ?? undefined,
      running: dom.running,
      metadata: dom.def.metadata,
      config: view(dom.def),
      live: dom.live ? view(dom.live) : undefined,
    }));
}

function networksOf(d: WorldData, prefix: string): NetworkInfo[] {
  return Object.entries(d.networks)
    .filter(([name]) => name.startsWith(prefix))
    .map(([name, n]) => ({
      name,
      active: n.active,
      bridge: n.def.bridge,
      metadata: n.def.metadata,
      mode: n.def.mode,
      gateway: n.def.gateway || undefined,
      mtu: n.def.mtu,
      domain: n.def.domain,
      forwarder: n.def.dnsForwarder,
      dhcp: n.def.dhcp,
      hosts: [...n.def.hosts].reverse().map((h) => ({ ...h, mac: rewriteMac(h.mac) })),
      dnsHosts: [...n.def.dnsHosts].reverse().map((h) => ({ ip: h.ip, names: [...h.names].reverse() })),
    }));
}

class FakeLibvirt implements LibvirtDriver {
  constructor(private readonly w: FakeWorld) {}

  warmUp(): void {}

  inventory(prefix: string, opts?: CallOptions): Promise<Inventory> {
    return this.w.call("inventory", prefix, opts, (d) => ({ domains: domainsOf(d, prefix), networks: networksOf(d, prefix) }));
  }

  listDomains(prefix: string, opts?: CallOptions): Promise<DomainInfo[]> {
    return this.w.call("listDomains", prefix, opts, (d) => domainsOf(d, prefix));
  }

  listNetworks(prefix: string, opts?: CallOptions): Promise<NetworkInfo[]> {
    return this.w.call("listNetworks", prefix, opts, (d) => networksOf(d, prefix));
  }

  defineDomain(def: DomainDef, opts?: DefineOptions): Promise<void> {
    return this.w.call("defineDomain", def.name, opts, (d) => {
      this.w.touch(def.name);
      for (const disk of def.disks) if (!d.images[disk.path] && !existsSync(disk.path)) throw new CommandError(["fake", "define", def.name], 1, `Cannot access storage file '${disk.path}'`);
      for (const nic of def.nics) if (!d.networks[nic.network]) missing("network", nic.network);
      const existing = d.domains[def.name];
      d.domains[def.name] = existing ? { ...existing, def } : { def, running: false, id: null, live: null, boots: 0, links: {} };
    });
  }

  startDomain(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("startDomain", name, opts, (d) => {
      this.w.touch(name);
      const dom = d.domains[name] ?? missing("domain", name);
      if (dom.running) return;
      for (const nic of dom.def.nics) if (!d.networks[nic.network]?.active) throw new CommandError(["fake", "start", name], 1, `network '${nic.network}' is not active`);
      for (const disk of dom.def.disks) if (!d.images[disk.path] && !existsSync(disk.path)) throw new CommandError(["fake", "start", name], 1, `Cannot access storage file '${disk.path}'`);
      dom.running = true;
      dom.id = d.nextId++;
      dom.live = dom.def;
      dom.boots += 1;
      dom.links = Object.fromEntries(dom.def.nics.map((n) => [n.mac.toLowerCase(), d.networks[n.network]?.generation ?? 0]));
    });
  }

  stopDomain(name: string, _timeoutMs: number, opts?: CallOptions): Promise<void> {
    return this.w.call("stopDomain", name, opts, (d) => {
      this.w.touch(name);
      const dom = d.domains[name] ?? missing("domain", name);
      dom.running = false;
      dom.id = null;
      dom.live = null;
      dom.links = {};
    });
  }

  deleteDomain(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("deleteDomain", name, opts, (d) => {
      this.w.touch(name);
      delete d.domains[name];
    });
  }

  attachNic(domain: string, nic: DomainNicDef, opts?: CallOptions): Promise<void> {
    return this.w.call("attachNic", `${domain} ${nic.mac}`, opts, (d) => {
      this.w.touch(domain);
      const dom = d.domains[domain] ?? missing("domain", domain);
      const net = d.networks[nic.network] ?? missing("network", nic.network);
      const same = (n: DomainNicDef): boolean => n.mac.toLowerCase() === nic.mac.toLowerCase();
      if (!dom.def.nics.some(same)) dom.def = { ...dom.def, nics: [...dom.def.nics, nic] };
      if (dom.live) {
        if (!net.active) throw new CommandError(["fake", "attach-device", domain], 1, `network '${nic.network}' is not active`);
        if (!dom.live.nics.some(same)) dom.live = { ...dom.live, nics: [...dom.live.nics, nic] };
        dom.links[nic.mac.toLowerCase()] = net.generation;
      }
    });
  }

  detachNic(domain: string, mac: string, opts?: CallOptions): Promise<void> {
    return this.w.call("detachNic", `${domain} ${mac}`, opts, (d) => {
      this.w.touch(domain);
      const dom = d.domains[domain] ?? missing("domain", domain);
      const other = (n: DomainNicDef): boolean => n.mac.toLowerCase() !== mac.toLowerCase();
      dom.def = { ...dom.def, nics: dom.def.nics.filter(other) };
      if (dom.live) dom.live = { ...dom.live, nics: dom.live.nics.filter(other) };
      delete dom.links[mac.toLowerCase()];
    });
  }

  attachDisk(domain: string, disk: DomainDiskDef, opts?: CallOptions): Promise<void> {
    return this.w.call("attachDisk", `${domain} ${disk.dev}`, opts, (d) => {
      this.w.touch(domain);
      const dom = d.domains[domain] ?? missing("domain", domain);
      if (dom.running && disk.bus === "ide") throw new CommandError(["fake", "attach-device", domain], 1, "Operation not supported: disk bus 'ide' cannot be hotplugged.");
      if (!d.images[disk.path] && !existsSync(disk.path)) throw new CommandError(["fake", "attach-disk"], 1, `Cannot access storage file '${disk.path}'`);
      if (!dom.def.disks.some((x) => x.dev === disk.dev)) dom.def = { ...dom.def, disks: [...dom.def.disks, disk] };
      if (dom.live && !dom.live.disks.some((x) => x.dev === disk.dev)) dom.live = { ...dom.live, disks: [...dom.live.disks, disk] };
    });
  }

  detachDisk(domain: string, dev: string, opts?: CallOptions): Promise<void> {
    return this.w.call("detachDisk", `${domain} ${dev}`, opts, (d) => {
      this.w.touch(domain);
      const dom = d.domains[domain] ?? missing("domain", domain);
      if (dom.running && dom.live?.disks.some((x) => x.dev === dev && x.bus === "ide")) throw new CommandError(["fake", "detach-disk", domain, dev], 1, "Operation not supported: disk bus 'ide' cannot be hotplugged.");
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

  private checkFree(d: WorldData, def: NetworkDef): void {
    for (const [name, n] of Object.entries(d.networks)) {
      if (name === def.name) continue;
      if (n.def.bridge === def.bridge) throw new CommandError(["fake", "net-start", def.name], 1, `bridge ${def.bridge} is in use`);
      // libvirt refuses a bridge name any defined network has, but an address only when an active one routes it.
      if (def.gateway && n.active && n.def.gateway === def.gateway) throw new CommandError(["fake", "net-start", def.name], 1, `address ${def.gateway} is in use by ${name}`);
    }
  }

  createNetwork(def: NetworkDef, opts?: CallOptions): Promise<void> {
    return this.w.call("createNetwork", def.name, opts, (d) => {
      const existing = d.networks[def.name];
      if (existing?.active) return;
      this.checkFree(d, def);
      d.networks[def.name] = { def: existing?.def ?? def, active: true, generation: (existing?.generation ?? 0) + 1 };
    });
  }

  redefineNetwork(def: NetworkDef, opts?: CallOptions): Promise<void> {
    return this.w.call("redefineNetwork", def.name, opts, (d) => {
      const existing = d.networks[def.name] ?? missing("network", def.name);
      this.checkFree(d, def);
      d.networks[def.name] = { def, active: true, generation: existing.generation + 1 };
    });
  }

  stopNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("stopNetwork", name, opts, (d) => {
      const n = d.networks[name];
      if (n) n.active = false;
    });
  }

  startNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("startNetwork", name, opts, (d) => {
      const n = d.networks[name] ?? missing("network", name);
      if (n.active) return;
      this.checkFree(d, n.def);
      n.active = true;
      n.generation += 1;
    });
  }

  deleteNetwork(name: string, opts?: CallOptions): Promise<void> {
    return this.w.call("deleteNetwork", name, opts, (d) => {
      delete d.networks[name];
    });
  }

  /** Edit by edit, each a call of its own (a fault can strike between two), then the metadata. */
  async editNetwork(network: string, edits: NetworkEdit[], metadata: string, opts?: CallOptions): Promise<void> {
    for (const e of edits) {
      if (e.op === "add-host") await this.addNetworkHost(network, e.host, opts);
      else if (e.op === "remove-host") await this.removeNetworkHost(network, e.host, opts);
      else if (e.op === "add-dns") await this.addDnsHost(network, e.host, opts);
      else if (e.op === "remove-dns") await this.removeDnsHost(network, e.host, opts);
      else await this.setDhcpRange(network, e.range, opts);
    }
    await this.setNetworkMetadata(network, metadata, opts);
  }

  private addNetworkHost(network: string, host: NetworkHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("addNetworkHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      const hosts = n.def.hosts.filter((h) => h.mac.toLowerCase() !== host.mac.toLowerCase() && h.ip !== host.ip);
      n.def = { ...n.def, hosts: [...hosts, host] };
    });
  }

  private removeNetworkHost(network: string, host: NetworkHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("removeNetworkHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, hosts: n.def.hosts.filter((h) => h.mac.toLowerCase() !== host.mac.toLowerCase()) };
    });
  }

  private addDnsHost(network: string, host: DnsHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("addDnsHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, dnsHosts: [...n.def.dnsHosts.filter((h) => h.ip !== host.ip), host] };
    });
  }

  private removeDnsHost(network: string, host: DnsHostDef, opts?: CallOptions): Promise<void> {
    return this.w.call("removeDnsHost", `${network} ${host.ip}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, dnsHosts: n.def.dnsHosts.filter((h) => h.ip !== host.ip) };
    });
  }

  private setDhcpRange(network: string, after: { start: string; end: string }, opts?: CallOptions): Promise<void> {
    return this.w.call("setDhcpRange", `${network} ${after.start}-${after.end}`, opts, (d) => {
      const n = d.networks[network] ?? missing("network", network);
      n.def = { ...n.def, dhcp: after };
    });
  }

  private setNetworkMetadata(network: string, metadata: string, opts?: CallOptions): Promise<void> {
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
      const base = d.images[backing]?.virtualSize ?? (existsSync(backing) ? statSync(backing).size : 0);
      if (size !== undefined && size < base) throw new CommandError(["fake", "qemu-img", "create", path], 1, `the overlay cannot be smaller than its backing image`);
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
      if (known) return { ...known };
      if (existsSync(path)) {
        const head = readHead(path);
        const backing = /BACKING=(\S+)/.exec(head)?.[1];
        return { format: "qcow2", virtualSize: statSync(path).size, backingFile: backing, backingFormat: backing ? "raw" : undefined };
      }
      return undefined;
    });
  }

  resize(path: string, _format: string, size: number, opts?: CallOptions): Promise<void> {
    return this.w.call("resize", path, opts, (d) => {
      const img = d.images[path] ?? missing("image", path);
      if (size < img.virtualSize) throw new CommandError(["fake", "qemu-img", "resize", path], 1, "shrinking is refused");
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

/** The MAC lago gives an address (Lago's scheme: 54:52 and the four octets). */
function macOf(host: string): string {
  return `54:52:${host
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join(":")}`;
}

/** SSH answers when a running domain has an interface with the address's MAC, linked to its network. */
class FakeSsh implements SshDriver {
  constructor(private readonly w: FakeWorld) {}

  private find(d: WorldData, host: string): string | undefined {
    const mac = macOf(host);
    return this.w.domainsWithMac(d, mac).find((name) => {
      const dom = d.domains[name];
      return !!dom?.live?.nics.some((n) => n.mac.toLowerCase() === mac && linked(d, dom, n));
    });
  }

  waitReady(target: SshTarget, _timeoutMs: number, opts?: CallOptions): Promise<string> {
    return this.w.call("sshWaitReady", target.host, opts, (d) => this.reach(d, target).hostKey);
  }

  /** The running domain answering at `target` and its host key (checked against the pinned one). */
  private reach(d: WorldData, target: SshTarget): { name: string; hostKey: string } {
    const name = this.find(d, target.host);
    if (!name) throw new CommandError(["ssh", target.host], 255, `connect to host ${target.host} port 22: No route to host`);
    const hostKey = Buffer.from(`hostkey:${name}`).toString("base64");
    if (target.pinnedHostKey && target.pinnedHostKey !== hostKey) throw new CommandError(["ssh", target.host], 255, "host key mismatch");
    return { name, hostKey };
  }

  /**
   * The key logs in once the guest was bootstrapped (a seed attached at boot, a disk
   * customized with the key, or a first login done); before that, the first password does.
   */
  waitLogin(target: SshTarget, _timeoutMs: number, opts?: CallOptions & { probe?: string }): Promise<SshLogin> {
    return this.w.call("sshWaitLogin", target.host, opts, (d) => {
      const { name, hostKey } = this.reach(d, target);
      const output = opts?.probe === undefined ? undefined : this.firstBootStatus(d, name, opts.probe);
      if (d.firstLogins?.[name]?.length || !target.passwords?.length) return { hostKey, credential: -1, output };
      return { hostKey, credential: 0, output };
    });
  }

  /**
   * What a first-boot build's status probe prints: `ok` when the seed the domain booted with carries that
   * build's script (the fake guest runs it, and every step succeeds), else `missing`.
   */
  private firstBootStatus(d: WorldData, name: string, probe: string): string {
    const id = /\/([0-9a-f]+)\.status/.exec(probe)?.[1];
    const seeds = (d.domains[name]?.live?.disks ?? d.domains[name]?.def.disks ?? []).map((disk) => d.seeds?.[disk.path]);
    return id !== undefined && seeds.some((seed) => seed?.userData.includes(`lago first-boot build ${id}`)) ? "ok\n" : "missing\n";
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
