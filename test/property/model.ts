/**
 * The abstract environment the property tests generate and edit: what a
 * LagoInitFile means, before it is written as text (see `render.ts`). Edits
 * act on this model; {@link repair} keeps it valid under Lago's rules (one
 * management NIC per VM, DNS settings only on the management net, static IPs
 * unique in their net's /24, disk names and devices unique, …), so that every
 * generated file validates.
 */

export const TEMPLATES = { tiny: ["v1", "v2"], other: ["v1"] } as const;
export type TemplateName = keyof typeof TEMPLATES;

/** Bytes of a MiB and a GiB. */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface NetModel {
  type: "nat" | "bridge";
  /** `management: true` written explicitly (at most one net has it, see {@link repair}). */
  management: boolean;
  /**
   * Third octet of the /24 this net asks for when it has a `gw` or static IPs
   * (unique in the sequence: allocated when the net is created, kept when it is renamed).
   */
  octet: number;
  /** Host number of `gw` (192.168.<octet>.<gw>), if written. */
  gw: number | undefined;
  /** The `dhcp` mapping as written (either bound may be left to its default). */
  dhcp: { start: number | undefined; end: number | undefined } | undefined;
  /** `dns_domain_name` (management net only). */
  dnsDomain: string | undefined;
  /** `dns_records`: name → address (management net only). */
  dnsRecords: Record<string, string>;
  mtu: number | undefined;
}

export interface NicModel {
  net: string;
  /** Host number of a static `ip` in the net's /24. */
  host: number | undefined;
  mtu: number | undefined;
}

export type BuildStep = Record<string, string | string[]>;

export interface DiskModel {
  name: string;
  dev: string;
  type: "template" | "empty" | "file";
  /** Template disks: from the repository, or a local image (`path`: a file of the test's images). */
  template: { name: TemplateName; version: string | undefined } | { image: number } | undefined;
  /** `format` as written (undefined: not written, qcow2). */
  format: "qcow2" | "raw" | "iso" | undefined;
  /** Size in bytes, if written. */
  size: number | undefined;
  /** File disks: an existing image, by number (`images/f<n>.img` beside the init file). */
  image: number | undefined;
  build: BuildStep[];
}

export interface DomainModel {
  memory: number | undefined;
  vcpu: number | undefined;
  cpu: { model: string } | { custom: string } | undefined;
  groups: string | string[] | undefined;
  artifacts: string[] | undefined;
  /** Inert fields (metadata, distro): the engine must ignore them. */
  distro: string | undefined;
  metadata: Record<string, string> | undefined;
  bootstrap: boolean | undefined;
  nics: NicModel[];
  disks: DiskModel[];
}

export interface EnvModel {
  nets: Record<string, NetModel>;
  domains: Record<string, DomainModel>;
  /** The next /24 third octet to hand to a new net (counts down: dynamic leases take the lowest). */
  nextOctet: number;
}

export const VM_NAMES = ["vm01", "vm02", "web-1", "db_2", "a", "a_b", "A", "node.lago", "x-very-long-name-of-a-virtual-machine-0123456789abcdef", "b"] as const;
export const NET_NAMES = ["lago", "mgmt", "data", "back_end", "a", "n-2", "store.net"] as const;
export const DISK_NAMES = ["root", "data", "d_1", "scratch-2", "c", "b_c", "logs"] as const;
export const CPU_MODELS = ["Westmere", "Haswell", "qemu64"] as const;
export const MTUS = [1280, 1400, 1500, 9000] as const;
/** Lowest third octet for requested subnets: dynamic leases (from 200 up) never reach it. */
export const REQUESTED_FLOOR = 216;
export const FIRST_OCTET = 255;

/** Lago's management net of a model: the explicit one, else the first by name. */
export function managementNet(m: EnvModel): string | undefined {
  const names = Object.keys(m.nets).sort(byName);
  return names.find((n) => m.nets[n]?.management) ?? names[0];
}

export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

function devName(prefix: string, i: number): string {
  return `${prefix}${String.fromCharCode(97 + (i % 26))}`;
}

/**
 * Make `m` valid under Lago's rules, changing as little as possible. Pure
 * (returns a new model). Every generated and edited model goes through it.
 */
export function repair(input: EnvModel): EnvModel {
  const m = clone(input);
  if (!Object.keys(m.nets).length) m.nets.lago = { type: "nat", management: true, octet: takeOctet(m), gw: undefined, dhcp: undefined, dnsDomain: undefined, dnsRecords: {}, mtu: undefined };
  if (!Object.keys(m.domains).length) m.domains.vm01 = emptyDomain();
  // At most one explicit management net; DNS settings only there.
  let explicit = false;
  for (const name of Object.keys(m.nets).sort(byName)) {
    const n = m.nets[name];
    if (!n) continue;
    if (n.management && explicit) n.management = false;
    if (n.management) explicit = true;
  }
  const mgmt = managementNet(m) ?? "";
  for (const [name, n] of Object.entries(m.nets)) {
    if (name !== mgmt) {
      n.dnsDomain = undefined;
      n.dnsRecords = {};
    }
    if (n.dhcp && n.dhcp.start !== undefined && n.dhcp.end !== undefined && n.dhcp.start > n.dhcp.end) n.dhcp = { start: n.dhcp.end, end: n.dhcp.start };
    if (n.dhcp?.start !== undefined && n.dhcp.end === undefined && n.dhcp.start > 254) n.dhcp.start = 254;
    if (n.dhcp?.end !== undefined && n.dhcp.start === undefined && n.dhcp.end < 100) n.dhcp.start = n.dhcp.end;
    if (n.gw !== undefined && (n.gw < 1 || n.gw > 254)) n.gw = 1;
  }
  const nets = new Set(Object.keys(m.nets));
  for (const d of Object.values(m.domains)) {
    d.nics = d.nics.filter((nic) => nets.has(nic.net));
    // Exactly one NIC on the management net.
    const onMgmt = d.nics.filter((n) => n.net === mgmt);
    if (!onMgmt.length) d.nics.unshift({ net: mgmt, host: undefined, mtu: undefined });
    else if (onMgmt.length > 1) {
      let seen = false;
      d.nics = d.nics.filter((n) => {
        if (n.net !== mgmt) return true;
        if (seen) return false;
        seen = true;
        return true;
      });
    }
    repairDisks(d);
  }
  // A file disk's image belongs to one disk (two VMs writing one image is not a test environment).
  const images = new Set<number>();
  for (const name of Object.keys(m.domains).sort(byName)) {
    for (const disk of m.domains[name]?.disks ?? []) {
      if (disk.image === undefined) continue;
      let n = disk.image % IMAGE_COUNT;
      for (let i = 0; i < IMAGE_COUNT && images.has(n); i++) n = (n + 1) % IMAGE_COUNT;
      if (images.has(n)) {
        disk.image = undefined;
        disk.size ??= GiB;
        if (disk.format === "iso") disk.format = "raw";
      } else {
        disk.image = n;
        images.add(n);
      }
    }
  }
  // Static IPs: host numbers 2..254, unique per net, not the gateway.
  const used = new Map<string, Set<number>>();
  for (const name of Object.keys(m.domains).sort(byName)) {
    for (const nic of m.domains[name]?.nics ?? []) {
      if (nic.host === undefined) continue;
      const n = m.nets[nic.net];
      const set = used.get(nic.net) ?? new Set<number>();
      used.set(nic.net, set);
      if (nic.host < 2 || nic.host > 254 || set.has(nic.host) || (n?.gw !== undefined && n.gw === nic.host)) nic.host = undefined;
      else set.add(nic.host);
    }
  }
  return m;
}

function repairDisks(d: DomainModel): void {
  const names = new Set<string>();
  const devs = new Set<string>();
  for (const disk of d.disks) {
    if (names.has(disk.name)) disk.name = DISK_NAMES.find((n) => !names.has(n)) ?? `disk${names.size}`;
    names.add(disk.name);
    if (disk.type === "template") {
      disk.template ??= { name: "tiny", version: undefined };
      if ("image" in disk.template) disk.template = { image: disk.template.image % BASE_IMAGE_COUNT };
      else if (disk.template.version !== undefined && !(TEMPLATES[disk.template.name] as readonly string[]).includes(disk.template.version)) disk.template.version = undefined;
      disk.image = undefined;
      if (disk.format === "iso") disk.format = undefined;
    } else {
      disk.template = undefined;
      disk.build = [];
      if (disk.type === "empty") {
        disk.image = undefined;
        if (disk.format === "iso") disk.format = undefined;
        disk.size ??= GiB;
      } else if (disk.image === undefined) {
        if (disk.format === "iso") disk.format = "raw";
        disk.size ??= GiB;
      }
    }
    // An ISO is a CD-ROM: never on a virtio device.
    if (disk.format === "iso" && disk.dev.startsWith("vd")) disk.dev = `sd${disk.dev.slice(2)}`;
    if (disk.size !== undefined && disk.size < MiB) disk.size = MiB;
    // An overlay is never smaller than its base: lago refuses that when it creates the disk.
    if (disk.template && "image" in disk.template && disk.size !== undefined && disk.size < IMAGE_SIZE) disk.size = IMAGE_SIZE;
    if (devs.has(disk.dev)) {
      const prefix = disk.dev.slice(0, 2);
      for (let i = 0; i < 26; i++) {
        if (!devs.has(devName(prefix, i))) {
          disk.dev = devName(prefix, i);
          break;
        }
      }
    }
    devs.add(disk.dev);
  }
}

export function emptyDomain(): DomainModel {
  return {
    memory: undefined,
    vcpu: undefined,
    cpu: undefined,
    groups: undefined,
    artifacts: undefined,
    distro: undefined,
    metadata: undefined,
    bootstrap: undefined,
    nics: [],
    disks: [{ name: "root", dev: "vda", type: "template", template: { name: "tiny", version: undefined }, format: undefined, size: undefined, image: undefined, build: [] }],
  };
}

/** Hand out the next requested /24 (never reused within a sequence). */
export function takeOctet(m: EnvModel): number {
  const octet = m.nextOctet;
  m.nextOctet = Math.max(REQUESTED_FLOOR, octet - 1);
  return octet;
}

/** A disk keeps its identity (is updated in place, not replaced) between two models. */
export function sameDiskIdentity(a: DiskModel, b: DiskModel): boolean {
  return (
    a.type === b.type &&
    (a.format ?? "qcow2") === (b.format ?? "qcow2") &&
    JSON.stringify(a.template) === JSON.stringify(b.template) &&
    a.image === b.image &&
    JSON.stringify(a.build) === JSON.stringify(b.build)
  );
}

/**
 * Sizes never shrink under a disk that is kept: lago refuses that at plan
 * time (a test of its own); `grown` is `next` with such a disk grown back
 * instead, and `shrunk` whether `next` shrinks one (lago must refuse it).
 * Disks are identified by (VM, disk name) as lago does.
 */
export function shrinks(prev: EnvModel, next: EnvModel): { grown: EnvModel; shrunk: boolean } {
  let shrunk = false;
  const out = clone(next);
  for (const [vm, d] of Object.entries(out.domains)) {
    const before = prev.domains[vm];
    if (!before) continue;
    for (const disk of d.disks) {
      const old = before.disks.find((x) => x.name === disk.name);
      // The size beside a file disk's existing image does not apply (fixture 106): lago never resizes it.
      if (!old || !sameDiskIdentity(old, disk) || old.size === undefined || (disk.type === "file" && disk.image !== undefined)) continue;
      if (disk.size !== undefined && disk.size < old.size) {
        disk.size = old.size;
        shrunk = true;
      }
    }
  }
  return { grown: out, shrunk };
}

/** The canonical meaning of a model as an init-file document (JSON). */
export function toDocument(m: EnvModel): { domains: Record<string, unknown>; nets: Record<string, unknown> } {
  const nets: Record<string, unknown> = {};
  for (const name of Object.keys(m.nets).sort(byName)) {
    const n = m.nets[name];
    if (!n) continue;
    const net: Record<string, unknown> = { type: n.type };
    if (n.management) net.management = true;
    if (n.gw !== undefined) net.gw = `192.168.${n.octet}.${n.gw}`;
    if (n.dhcp) net.dhcp = { ...(n.dhcp.start !== undefined ? { start: n.dhcp.start } : {}), ...(n.dhcp.end !== undefined ? { end: n.dhcp.end } : {}) };
    if (n.dnsDomain !== undefined) net.dns_domain_name = n.dnsDomain;
    if (Object.keys(n.dnsRecords).length) net.dns_records = { ...n.dnsRecords };
    if (n.mtu !== undefined) net.mtu = n.mtu;
    nets[name] = net;
  }
  const domains: Record<string, unknown> = {};
  for (const name of Object.keys(m.domains).sort(byName)) {
    const d = m.domains[name];
    if (!d) continue;
    const dom: Record<string, unknown> = {};
    if (d.memory !== undefined) dom.memory = d.memory;
    if (d.vcpu !== undefined) dom.vcpu = d.vcpu;
    if (d.cpu && "model" in d.cpu) dom.cpu_model = d.cpu.model;
    if (d.cpu && "custom" in d.cpu) dom.cpu_custom = { model: { "#text": d.cpu.custom, "@fallback": "allow" }, "@match": "exact" };
    if (d.groups !== undefined) dom.groups = d.groups;
    if (d.artifacts !== undefined) dom.artifacts = d.artifacts;
    if (d.distro !== undefined) dom.distro = d.distro;
    if (d.metadata !== undefined) dom.metadata = d.metadata;
    if (d.bootstrap !== undefined) dom.bootstrap = d.bootstrap;
    dom.nics = d.nics.map((nic) => {
      const out: Record<string, unknown> = { net: nic.net };
      const net = m.nets[nic.net];
      if (nic.host !== undefined && net) out.ip = `192.168.${net.octet}.${nic.host}`;
      if (nic.mtu !== undefined) out.mtu = nic.mtu;
      return out;
    });
    dom.disks = d.disks.map((disk) => {
      const out: Record<string, unknown> = { name: disk.name, dev: disk.dev, type: disk.type };
      if (disk.template && "name" in disk.template) {
        out.template_name = disk.template.name;
        if (disk.template.version !== undefined) out.template_version = disk.template.version;
      }
      if (disk.template && "image" in disk.template) out.path = baseImagePath(disk.template.image);
      if (disk.image !== undefined) out.path = imagePath(disk.image);
      if (disk.format !== undefined) out.format = disk.format;
      if (disk.size !== undefined) out.size = disk.size;
      if (disk.build.length) out.build = disk.build.map((step) => ({ "virt-customize": step }));
      return out;
    });
    domains[name] = dom;
  }
  return { domains, nets };
}

/** The init file's relative path of file-disk image number `n` (files made by the runner beside the init file). */
export function imagePath(n: number): string {
  return `images/f${n}.img`;
}

/** A local template image (read-only base of overlays; may be shared). */
export function baseImagePath(n: number): string {
  return `images/base${n}.img`;
}

/** Test images: how many of each, and their size (sparse files). */
export const IMAGE_COUNT = 6;
export const BASE_IMAGE_COUNT = 2;
export const IMAGE_SIZE = 2 * MiB;
