/**
 * fast-check arbitraries: valid environments (through {@link repair}) and
 * edits. An edit names what it touches by index (taken modulo what exists),
 * so any edit applies to any model and sequences shrink well.
 */
import fc from "fast-check";
import {
  BASE_IMAGE_COUNT,
  CPU_MODELS,
  DISK_NAMES,
  FIRST_OCTET,
  GiB,
  IMAGE_COUNT,
  MTUS,
  MiB,
  NET_NAMES,
  TEMPLATES,
  VM_NAMES,
  byName,
  clone,
  managementNet,
  repair,
  takeOctet,
  type BuildStep,
  type DiskModel,
  type DomainModel,
  type EnvModel,
  type NetModel,
  type NicModel,
  type TemplateName,
} from "./model.ts";

const SIZES = [MiB, 64 * MiB, 512 * MiB, GiB, GiB + GiB / 2, 2 * GiB, 10 * GiB] as const;
/** `a` with probability `p`, else undefined (shrinks towards undefined). */
const opt = <T>(a: fc.Arbitrary<T>, p = 0.5): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: Math.round((1 - p) * 100), arbitrary: fc.constant(undefined) }, { weight: Math.round(p * 100), arbitrary: a });

const buildStep: fc.Arbitrary<BuildStep> = fc.oneof(
  fc.constantFrom("/root/a", "/root/b", "/etc/motd").map((f): BuildStep => ({ touch: f })),
  fc.constantFrom("/opt/x", "/srv/y").map((d): BuildStep => ({ mkdir: d, "run-command": "true" })),
  fc.constant<BuildStep>({ touch: ["/root/one", "/root/two"] }),
  fc.constant<BuildStep>({ "ssh-inject": "" }),
);

const templateRef = fc.oneof(
  { weight: 6, arbitrary: fc.record({ name: fc.constantFrom<TemplateName>("tiny", "other"), version: opt(fc.constantFrom("v1", "v2"), 0.4) }) },
  { weight: 1, arbitrary: fc.record({ image: fc.nat(BASE_IMAGE_COUNT - 1) }) },
);

export const diskArb = (first: boolean): fc.Arbitrary<DiskModel> =>
  fc.record({
    name: fc.constantFrom(...DISK_NAMES),
    dev: first ? fc.constant("vda") : fc.constantFrom("vdb", "vdc", "sda", "sdb", "hdc"),
    type: first ? fc.constantFrom<DiskModel["type"]>("template", "template", "template", "template", "empty") : fc.constantFrom<DiskModel["type"]>("empty", "file", "file", "template"),
    template: opt(templateRef, 0.85),
    format: opt(fc.constantFrom<"qcow2" | "raw" | "iso">("qcow2", "raw", "raw", "iso"), 0.4),
    size: opt(fc.constantFrom(...SIZES), 0.4),
    image: opt(fc.nat(IMAGE_COUNT - 1), 0.4),
    build: fc.array(buildStep, { maxLength: 2 }),
  });

const nicArb: fc.Arbitrary<Omit<NicModel, "net"> & { net: number }> = fc.record({
  net: fc.nat(7),
  host: opt(fc.integer({ min: 2, max: 99 }), 0.25),
  mtu: opt(fc.constantFrom(...MTUS), 0.1),
});

const domainArb = fc.record({
  memory: opt(fc.constantFrom(256, 512, 768, 1024, 2048), 0.6),
  vcpu: opt(fc.integer({ min: 1, max: 4 }), 0.5),
  cpu: opt(fc.oneof(fc.constantFrom(...CPU_MODELS).map((model) => ({ model })), fc.constantFrom(...CPU_MODELS).map((custom) => ({ custom }))), 0.3),
  groups: opt(fc.oneof(fc.constantFrom("web", "db"), fc.array(fc.constantFrom("web", "db", "all"), { minLength: 1, maxLength: 2 })), 0.3),
  artifacts: opt(fc.array(fc.constantFrom("/var/log/messages", "/etc/hosts"), { maxLength: 2 }), 0.3),
  distro: opt(fc.constantFrom("el7", "el8"), 0.2),
  metadata: opt(fc.constant({ "deploy-scripts": "x.sh" }), 0.2),
  bootstrap: opt(fc.boolean(), 0.2),
  nics: fc.array(nicArb, { minLength: 1, maxLength: 3 }),
  disks: fc.tuple(diskArb(true), fc.array(diskArb(false), { maxLength: 2 })).map(([a, rest]) => [a, ...rest]),
});

export type DomainDraft = typeof domainArb extends fc.Arbitrary<infer T> ? T : never;

const netArb = fc.record({
  type: fc.constantFrom<NetModel["type"]>("nat", "nat", "nat", "bridge"),
  management: fc.boolean(),
  gw: opt(fc.constantFrom(1, 1, 254, 100), 0.3),
  dhcp: opt(fc.record({ start: opt(fc.constantFrom(100, 120, 50), 0.7), end: opt(fc.constantFrom(254, 200, 150), 0.7) }), 0.4),
  dnsDomain: opt(fc.constantFrom("lago.local", "example.test", "env-1.lago"), 0.4),
  dnsRecords: opt(fc.dictionary(fc.constantFrom("www", "db.example", "api"), fc.integer({ min: 2, max: 250 }), { maxKeys: 2 }), 0.4),
  mtu: opt(fc.constantFrom(...MTUS), 0.3),
});
type NetDraft = typeof netArb extends fc.Arbitrary<infer T> ? T : never;

function netFrom(m: EnvModel, draft: NetDraft): NetModel {
  const octet = takeOctet(m);
  return {
    type: draft.type,
    management: draft.management,
    octet,
    gw: draft.gw,
    dhcp: draft.dhcp,
    dnsDomain: draft.dnsDomain,
    dnsRecords: Object.fromEntries(Object.entries(draft.dnsRecords ?? {}).map(([name, host]) => [name, host > 200 ? `10.1.2.${host - 200}` : `192.168.${octet}.${host}`])),
    mtu: draft.mtu,
  };
}

function domainFrom(m: EnvModel, draft: DomainDraft): DomainModel {
  const nets = Object.keys(m.nets).sort(byName);
  return {
    memory: draft.memory,
    vcpu: draft.vcpu,
    cpu: draft.cpu,
    groups: draft.groups,
    artifacts: draft.artifacts,
    distro: draft.distro,
    metadata: draft.metadata,
    bootstrap: draft.bootstrap,
    nics: draft.nics.map((n) => ({ net: nets[n.net % nets.length] ?? "", host: n.host, mtu: n.mtu })),
    disks: clone(draft.disks),
  };
}

/** A valid environment: 1–4 nets, 1–6 VMs. */
export const envArb: fc.Arbitrary<EnvModel> = fc
  .record({
    nets: fc.uniqueArray(fc.tuple(fc.constantFrom(...NET_NAMES), netArb), { minLength: 1, maxLength: 4, selector: ([n]) => n }),
    domains: fc.uniqueArray(fc.tuple(fc.constantFrom(...VM_NAMES), domainArb), { minLength: 1, maxLength: 6, selector: ([n]) => n }),
  })
  .map(({ nets, domains }) => {
    const m: EnvModel = { nets: {}, domains: {}, nextOctet: FIRST_OCTET };
    for (const [name, draft] of nets) m.nets[name] = netFrom(m, draft);
    for (const [name, draft] of domains) m.domains[name] = domainFrom(m, draft);
    return repair(m);
  });

/**
 * Edits lago is known to get wrong, each with its fixture (a `todo` in
 * sequence.json): the generator avoids an edit while its flag is false, and
 * generates it again once the bug is fixed and the flag set back to true.
 */
export const KNOWN_BUGS: Record<string, boolean> = {
  renamedNetKeepsSubnet: true,
};

/** An edit of an environment. Indices are taken modulo what exists. */
export type Edit =
  | { kind: "memory"; vm: number; value: number | undefined }
  | { kind: "vcpu"; vm: number; value: number | undefined }
  | { kind: "cpu"; vm: number; value: DomainModel["cpu"] }
  | { kind: "inert"; vm: number; groups: DomainModel["groups"]; artifacts: DomainModel["artifacts"]; distro: string | undefined }
  | { kind: "bootstrap"; vm: number; value: boolean | undefined }
  | { kind: "add-vm"; name: number; draft: DomainDraft }
  | { kind: "remove-vm"; vm: number }
  | { kind: "rename-vm"; vm: number; name: number }
  | { kind: "add-net"; name: number; draft: NetDraft; attach: number[] }
  | { kind: "remove-net"; net: number }
  | { kind: "rename-net"; net: number; name: number }
  | { kind: "net-mtu"; net: number; value: number | undefined }
  | { kind: "net-gw"; net: number; value: number | undefined }
  | { kind: "net-dhcp"; net: number; value: NetModel["dhcp"] }
  | { kind: "net-dns"; net: number; domain: string | undefined; records: number[] }
  | { kind: "net-type"; net: number }
  | { kind: "management"; net: number | undefined }
  | { kind: "add-nic"; vm: number; net: number; host: number | undefined; at: number }
  | { kind: "remove-nic"; vm: number; nic: number }
  | { kind: "reorder-nics"; vm: number; seed: number }
  | { kind: "nic-ip"; vm: number; nic: number; host: number | undefined }
  | { kind: "nic-mtu"; vm: number; nic: number; value: number | undefined }
  | { kind: "add-disk"; vm: number; disk: DiskModel; at: number }
  | { kind: "remove-disk"; vm: number; disk: number }
  | { kind: "rename-disk"; vm: number; disk: number; name: number }
  | { kind: "reorder-disks"; vm: number; seed: number }
  | { kind: "grow-disk"; vm: number; disk: number; by: number }
  | { kind: "shrink-disk"; vm: number; disk: number; by: number }
  | { kind: "disk-format"; vm: number; disk: number; value: DiskModel["format"] }
  | { kind: "disk-type"; vm: number; disk: number; value: DiskModel["type"] }
  | { kind: "template"; vm: number; disk: number; name: TemplateName; version: string | undefined }
  | { kind: "build"; vm: number; disk: number; steps: BuildStep[] };

const idx = fc.nat(11);
export const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("memory" as const), vm: idx, value: opt(fc.constantFrom(256, 512, 768, 1024, 2048, 4096), 0.9) }),
  fc.record({ kind: fc.constant("vcpu" as const), vm: idx, value: opt(fc.integer({ min: 1, max: 6 }), 0.9) }),
  fc.record({ kind: fc.constant("cpu" as const), vm: idx, value: opt(fc.oneof(fc.constantFrom(...CPU_MODELS).map((model) => ({ model })), fc.constantFrom(...CPU_MODELS).map((custom) => ({ custom }))), 0.6) }),
  fc.record({ kind: fc.constant("inert" as const), vm: idx, groups: opt(fc.constantFrom("web", "db")), artifacts: opt(fc.array(fc.constantFrom("/a", "/b"), { maxLength: 2 })), distro: opt(fc.constantFrom("el7", "el9")) }),
  fc.record({ kind: fc.constant("bootstrap" as const), vm: idx, value: opt(fc.boolean(), 0.5) }),
  fc.record({ kind: fc.constant("add-vm" as const), name: idx, draft: domainArb }),
  fc.record({ kind: fc.constant("remove-vm" as const), vm: idx }),
  fc.record({ kind: fc.constant("rename-vm" as const), vm: idx, name: idx }),
  fc.record({ kind: fc.constant("add-net" as const), name: idx, draft: netArb, attach: fc.array(idx, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant("remove-net" as const), net: idx }),
  fc.record({ kind: fc.constant("rename-net" as const), net: idx, name: idx }),
  fc.record({ kind: fc.constant("net-mtu" as const), net: idx, value: opt(fc.constantFrom(...MTUS), 0.6) }),
  fc.record({ kind: fc.constant("net-gw" as const), net: idx, value: opt(fc.constantFrom(1, 254, 100, 2), 0.6) }),
  fc.record({ kind: fc.constant("net-dhcp" as const), net: idx, value: opt(fc.record({ start: opt(fc.constantFrom(100, 110, 30), 0.7), end: opt(fc.constantFrom(254, 199, 180), 0.7) }), 0.6) }),
  fc.record({ kind: fc.constant("net-dns" as const), net: idx, domain: opt(fc.constantFrom("lago.local", "other.test"), 0.5), records: fc.array(fc.integer({ min: 2, max: 250 }), { maxLength: 2 }) }),
  fc.record({ kind: fc.constant("net-type" as const), net: idx }),
  fc.record({ kind: fc.constant("management" as const), net: opt(idx, 0.7) }),
  fc.record({ kind: fc.constant("add-nic" as const), vm: idx, net: idx, host: opt(fc.integer({ min: 2, max: 99 }), 0.4), at: idx }),
  fc.record({ kind: fc.constant("remove-nic" as const), vm: idx, nic: idx }),
  fc.record({ kind: fc.constant("reorder-nics" as const), vm: idx, seed: fc.nat() }),
  fc.record({ kind: fc.constant("nic-ip" as const), vm: idx, nic: idx, host: opt(fc.integer({ min: 2, max: 99 }), 0.5) }),
  fc.record({ kind: fc.constant("nic-mtu" as const), vm: idx, nic: idx, value: opt(fc.constantFrom(...MTUS), 0.5) }),
  fc.record({ kind: fc.constant("add-disk" as const), vm: idx, disk: diskArb(false), at: idx }),
  fc.record({ kind: fc.constant("remove-disk" as const), vm: idx, disk: idx }),
  fc.record({ kind: fc.constant("rename-disk" as const), vm: idx, disk: idx, name: idx }),
  fc.record({ kind: fc.constant("reorder-disks" as const), vm: idx, seed: fc.nat() }),
  fc.record({ kind: fc.constant("grow-disk" as const), vm: idx, disk: idx, by: fc.constantFrom(MiB, 512 * MiB, GiB) }),
  // lago refuses to shrink a kept disk: the sequence checks the refusal, then keeps the size (see sequenceSteps).
  fc.record({ kind: fc.constant("shrink-disk" as const), vm: idx, disk: idx, by: fc.constantFrom(MiB, 512 * MiB) }),
  fc.record({ kind: fc.constant("disk-format" as const), vm: idx, disk: idx, value: opt(fc.constantFrom<"qcow2" | "raw" | "iso">("qcow2", "raw", "iso"), 0.7) }),
  fc.record({ kind: fc.constant("disk-type" as const), vm: idx, disk: idx, value: fc.constantFrom<DiskModel["type"]>("template", "empty", "file") }),
  fc.record({ kind: fc.constant("template" as const), vm: idx, disk: idx, name: fc.constantFrom<TemplateName>("tiny", "other"), version: opt(fc.constantFrom("v1", "v2"), 0.5) }),
  fc.record({ kind: fc.constant("build" as const), vm: idx, disk: idx, steps: fc.array(buildStep, { maxLength: 2 }) }),
);

function at<T>(items: readonly T[], i: number): T | undefined {
  return items.length ? items[i % items.length] : undefined;
}

function freeName(pool: readonly string[], taken: Set<string>, i: number): string | undefined {
  for (let k = 0; k < pool.length; k++) {
    const name = pool[(i + k) % pool.length] as string;
    if (!taken.has(name)) return name;
  }
  return undefined;
}

function permute<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Apply `edit` to `m`; the result is repaired (valid). Pure. */
export function applyEdit(input: EnvModel, edit: Edit): EnvModel {
  const m = clone(input);
  const vms = Object.keys(m.domains).sort(byName);
  const nets = Object.keys(m.nets).sort(byName);
  const vmName = "vm" in edit ? at(vms, edit.vm) : undefined;
  const vm = vmName !== undefined ? m.domains[vmName] : undefined;
  const netName = "net" in edit && typeof edit.net === "number" && edit.kind !== "add-nic" ? at(nets, edit.net) : undefined;
  const net = netName !== undefined ? m.nets[netName] : undefined;
  const disk = vm && "disk" in edit && typeof edit.disk === "number" ? at(vm.disks, edit.disk) : undefined;
  switch (edit.kind) {
    case "memory":
      if (vm) vm.memory = edit.value;
      break;
    case "vcpu":
      if (vm) vm.vcpu = edit.value;
      break;
    case "cpu":
      if (vm) vm.cpu = edit.value;
      break;
    case "inert":
      if (vm) Object.assign(vm, { groups: edit.groups, artifacts: edit.artifacts, distro: edit.distro });
      break;
    case "bootstrap":
      if (vm) vm.bootstrap = edit.value;
      break;
    case "add-vm": {
      const name = freeName(VM_NAMES, new Set(vms), edit.name);
      if (name && vms.length < 6) m.domains[name] = domainFrom(m, edit.draft);
      break;
    }
    case "remove-vm":
      if (vmName !== undefined) delete m.domains[vmName];
      break;
    case "rename-vm": {
      const name = freeName(VM_NAMES, new Set(vms), edit.name);
      if (vm && vmName !== undefined && name) {
        delete m.domains[vmName];
        m.domains[name] = vm;
      }
      break;
    }
    case "add-net": {
      const name = freeName(NET_NAMES, new Set(nets), edit.name);
      if (!name || nets.length >= 4) break;
      m.nets[name] = netFrom(m, edit.draft);
      for (const i of edit.attach) at(Object.values(m.domains), i)?.nics.push({ net: name, host: undefined, mtu: undefined });
      break;
    }
    case "remove-net":
      if (netName !== undefined) delete m.nets[netName];
      break;
    case "rename-net": {
      const name = freeName(NET_NAMES, new Set(nets), edit.name);
      if (!net || netName === undefined || !name) break;
      delete m.nets[netName];
      m.nets[name] = net;
      // The renamed net keeps its gw and static IPs: its subnet passes from the old name to the new (fixture 102).
      if (!KNOWN_BUGS.renamedNetKeepsSubnet) net.octet = takeOctet(m);
      for (const d of Object.values(m.domains)) for (const nic of d.nics) if (nic.net === netName) nic.net = name;
      break;
    }
    case "net-mtu":
      if (net) net.mtu = edit.value;
      break;
    case "net-gw":
      if (net) net.gw = edit.value;
      break;
    case "net-dhcp":
      if (net) net.dhcp = edit.value;
      break;
    case "net-dns": {
      const target = net && netName === managementNet(m) ? net : m.nets[managementNet(m) ?? ""];
      if (!target) break;
      target.dnsDomain = edit.domain;
      target.dnsRecords = Object.fromEntries(edit.records.map((h, i) => [["www", "db.example", "api"][i] ?? "x", h > 200 ? `10.1.2.${h - 200}` : `192.168.${target.octet}.${h}`]));
      break;
    }
    case "net-type":
      if (net) net.type = net.type === "nat" ? "bridge" : "nat";
      break;
    case "management":
      for (const [name, n] of Object.entries(m.nets)) n.management = edit.net !== undefined && name === at(nets, edit.net);
      break;
    case "add-nic": {
      const target = at(nets, edit.net);
      if (vm && target && vm.nics.length < 4) vm.nics.splice(edit.at % (vm.nics.length + 1), 0, { net: target, host: edit.host, mtu: undefined });
      break;
    }
    case "remove-nic":
      if (vm && vm.nics.length) vm.nics.splice(edit.nic % vm.nics.length, 1);
      break;
    case "reorder-nics":
      if (vm) vm.nics = permute(vm.nics, edit.seed);
      break;
    case "nic-ip": {
      const nic = vm ? at(vm.nics, edit.nic) : undefined;
      if (nic) nic.host = edit.host;
      break;
    }
    case "nic-mtu": {
      const nic = vm ? at(vm.nics, edit.nic) : undefined;
      if (nic) nic.mtu = edit.value;
      break;
    }
    case "add-disk":
      if (vm && vm.disks.length < 4) vm.disks.splice(1 + (edit.at % vm.disks.length || 0), 0, clone(edit.disk));
      break;
    case "remove-disk":
      if (vm && disk) vm.disks = vm.disks.filter((d) => d !== disk);
      break;
    case "rename-disk": {
      const name = freeName(DISK_NAMES, new Set(vm?.disks.map((d) => d.name)), edit.name);
      if (disk && name) disk.name = name;
      break;
    }
    case "reorder-disks":
      if (vm) vm.disks = permute(vm.disks, edit.seed);
      break;
    case "grow-disk":
      if (disk) disk.size = (disk.size ?? (disk.type === "template" ? 0 : GiB)) + edit.by;
      break;
    case "shrink-disk":
      if (disk?.size !== undefined && disk.size - edit.by >= MiB) disk.size -= edit.by;
      break;
    case "disk-format":
      if (disk) disk.format = edit.value;
      break;
    case "disk-type":
      if (disk) disk.type = edit.value;
      break;
    case "template":
      if (disk?.type === "template") disk.template = { name: edit.name, version: edit.version !== undefined && (TEMPLATES[edit.name] as readonly string[]).includes(edit.version) ? edit.version : undefined };
      break;
    case "build":
      if (disk?.type === "template") disk.build = edit.steps;
      break;
  }
  return repair(m);
}

/** One step of a sequence: edits (none: a pure reformat), the text's style, and how the apply is disturbed. */
export interface Step {
  edits: Edit[];
  style: number;
  fault: Fault | undefined;
  /** `apply --restart` (pending restarts are applied). */
  restart: boolean;
  parallelism: number;
}

/**
 * `fail`: a driver call fails — mostly one of the methods the step's plan calls (`method` picks it),
 * sometimes any; `match` picks a VM or net name the call must concern. `crash`: the process dies
 * before or after its `at`-th driver call.
 */
export type Fault =
  | { type: "fail"; method: number; match: number | undefined }
  | { type: "crash"; at: number; when: "before" | "after" }
  /** As the harness takes it (what the two above resolve to for one step; fixtures record this). */
  | { type: "exact"; faults?: string[] | undefined; crash?: { at: number; when: "before" | "after" } | undefined };

/** Driver methods a fault may hit (the fake world's names). */
export const FAULT_METHODS = [
  "defineDomain",
  "startDomain",
  "deleteDomain",
  "attachNic",
  "detachNic",
  "attachDisk",
  "detachDisk",
  "createNetwork",
  "redefineNetwork",
  "deleteNetwork",
  "addNetworkHost",
  "removeNetworkHost",
  "addDnsHost",
  "removeDnsHost",
  "setDhcpRange",
  "createOverlay",
  "createBlank",
  "removeImage",
  "resize",
  "resizeDiskLive",
  "customize",
  "sshWaitReady",
  "stopNetwork",
  "stopDomain",
  "leases.acquire",
  "templates.ensure",
  "keys.ensure",
] as const;

export const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({ type: fc.constant("fail" as const), method: fc.nat(255), match: opt(idx, 0.6) }),
  fc.record({ type: fc.constant("crash" as const), at: fc.integer({ min: 1, max: 60 }), when: fc.constantFrom<"before" | "after">("before", "after") }),
);

export const stepArb = (faults: boolean): fc.Arbitrary<Step> =>
  fc.record({
    edits: fc.oneof({ weight: 1, arbitrary: fc.constant<Edit[]>([]) }, { weight: 8, arbitrary: fc.array(editArb, { minLength: 1, maxLength: 3 }) }),
    style: fc.nat(),
    fault: faults ? opt(faultArb, 0.5) : fc.constant(undefined),
    restart: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
    parallelism: fc.constantFrom(1, 2, 4, 4),
  });

/** A sequence: an initial environment and up to 5 edit steps (up to 6 applies). */
export interface Sequence {
  initial: EnvModel;
  initialStyle: number;
  initialFault: Fault | undefined;
  steps: Step[];
}

export const sequenceArb = (faults: boolean, maxSteps = 5): fc.Arbitrary<Sequence> =>
  fc.record({
    initial: envArb,
    initialStyle: fc.nat(),
    initialFault: faults ? opt(faultArb, 0.3) : fc.constant(undefined),
    steps: fc.array(stepArb(faults), { minLength: 0, maxLength: maxSteps }),
  });
