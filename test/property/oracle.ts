/**
 * The property tests' oracle: what the world must look like for an init file,
 * derived from its normalized spec (Lago's rules written out again here,
 * independently of the compiler) and from the few choices the state records
 * (the leased subnets, the host numbers of dynamic NICs), compared with the
 * fake world, the lease store and the template store. Every difference is
 * reported, not only the first.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { linked, readHead, type FakeDomain, type WorldData } from "../../src/drivers/fake/world.ts";
import { reportedCpu } from "../../src/drivers/cpu-report.ts";
import type { DomainNicDef } from "../../src/drivers/types.ts";
import { envPaths, type EnvContext } from "../../src/env/context.ts";
import { macForKey } from "../../src/resources/common.ts";
import type { DomainSpec, EnvSpec, NetSpec } from "../../src/spec/types.ts";
import type { State } from "../../src/state/state.ts";
import { stringify } from "safe-stable-stringify";

/** The test repository's templates: latest version and the stored image's size in bytes. */
export const REPO = {
  name: "test-repo",
  latest: { tiny: "v2", other: "v1" } as Record<string, string>,
  contents: { "tiny:v1": "tiny image, version 1", "tiny:v2": "tiny image, version 2", "other:v1": "another image" } as Record<string, string>,
};

export interface OracleInput {
  spec: EnvSpec;
  env: EnvContext;
  world: WorldData;
  state: State;
  /** The state before the apply: a disk without `template_version` keeps the version it records (lago's lock-file rule). */
  prior: State;
  /** Domains the plan after the apply lists as waiting for a restart. */
  pendingRestarts: string[];
}

/**
 * The template version a template disk must be on: its `template_version`;
 * else the version `prior` records for that disk of the same template (kept
 * until `--upgrade-templates`); else the repository's newest.
 */
function expectedVersion(prior: State, vm: string, k: { name: string; templateName?: string | undefined; templateVersion?: string | undefined }): string {
  const name = k.templateName ?? "";
  if (k.templateVersion !== undefined) return k.templateVersion;
  const address = prior.resources.get(`disk.${vm}.${k.name}`)?.attrs.template;
  const recorded = typeof address === "string" ? prior.resources.get(address)?.attrs : undefined;
  if (recorded && recorded.repo === REPO.name && recorded.name === name && typeof recorded.version === "string") return recorded.version;
  return REPO.latest[name] ?? "";
}

/** Lago's MAC for an address: 54:52 and the four octets in hex. */
export function macOfIp(ip: string): string {
  return `54:52:${ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join(":")}`;
}

const ipIn = (subnet: string, host: number): string => `${subnet.split(".").slice(0, 3).join(".")}.${host}`;
const hostOf = (ip: string): number => Number(ip.split(".")[3]);
const subnetOf = (ip: string): string => `${ip.split(".").slice(0, 3).join(".")}.0`;
const sectors = (bytes: number): number => Math.ceil(bytes / 512) * 512;
const show = (v: unknown): string => stringify(v) ?? "undefined";

/** The key of each NIC: its net and its position among the VM's NICs on that net. */
export function nicKeys(d: DomainSpec): string[] {
  const seen = new Map<string, number>();
  return d.nics.map((n) => {
    const i = seen.get(n.net) ?? 0;
    seen.set(n.net, i + 1);
    return `${n.net}#${i}`;
  });
}

interface ExpectedNic {
  vm: string;
  key: string;
  net: string;
  ip: string | undefined;
  mac: string;
  mtu: number | undefined;
}

/**
 * Compare the world with what `spec` describes. Returns the differences
 * (empty when the world is right).
 */
export function checkWorld(input: OracleInput): string[] {
  const { spec, env, world, state } = input;
  const problems: string[] = [];
  const fail = (msg: string): void => {
    problems.push(msg);
  };
  const prefix = `lago-${env.id}-`;
  const nets = new Map(spec.nets.map((n) => [n.name, n]));
  const mgmt = spec.nets.find((n) => n.management);
  const rec = (address: string) => state.resources.get(address);

  // ------------------------------------------------------------ subnets and NIC addresses
  const subnets = new Map<string, string>();
  for (const net of spec.nets) {
    if (net.type !== "nat") continue;
    const lease = rec(`lease.${net.name}`);
    const subnet = lease?.outputs.subnet;
    if (typeof subnet !== "string") {
      fail(`lease.${net.name}: not recorded with a subnet`);
      continue;
    }
    const fixed = net.gw ?? spec.domains.flatMap((d) => d.nics.filter((n) => n.net === net.name && n.ip).map((n) => n.ip)).find(Boolean);
    if (fixed && subnetOf(fixed) !== subnet) fail(`lease.${net.name}: subnet ${subnet}, but the net asks for ${subnetOf(fixed)}`);
    subnets.set(net.name, subnet);
  }
  const gatewayHost = (net: NetSpec): number => (net.gw ? hostOf(net.gw) : 1);
  const nics = new Map<string, ExpectedNic[]>();
  const hostsSeen = new Map<string, Map<number, string>>();
  for (const d of spec.domains) {
    const keys = nicKeys(d);
    const list: ExpectedNic[] = [];
    d.nics.forEach((nic, i) => {
      const key = keys[i] ?? "";
      const net = nets.get(nic.net);
      const subnet = subnets.get(nic.net);
      let ip: string | undefined;
      if (net?.type === "nat" && subnet) {
        const recorded = (rec(`network.${nic.net}`)?.attrs.hosts as Record<string, { host?: unknown }> | undefined)?.[`${d.name}#${key}`]?.host;
        const host = nic.ip ? hostOf(nic.ip) : typeof recorded === "number" ? recorded : undefined;
        if (nic.ip && recorded !== hostOf(nic.ip)) fail(`network.${nic.net}: records host ${show(recorded)} for ${d.name}'s static ${nic.ip}`);
        if (host === undefined) fail(`network.${nic.net}: no host number recorded for ${d.name}#${key}`);
        else {
          if (host < 2 || host > 254 || host === gatewayHost(net)) fail(`${d.name}#${key}: host number ${host} is not a usable address of ${nic.net}`);
          const seen = hostsSeen.get(nic.net) ?? new Map<number, string>();
          hostsSeen.set(nic.net, seen);
          if (seen.has(host)) fail(`${nic.net}: host ${host} given to both ${seen.get(host)} and ${d.name}#${key}`);
          seen.set(host, `${d.name}#${key}`);
          ip = ipIn(subnet, host);
        }
      }
      list.push({ vm: d.name, key, net: nic.net, ip, mac: ip ? macOfIp(ip) : macForKey(env.id, d.name, key), mtu: nic.mtu });
    });
    nics.set(d.name, list);
  }

  // ------------------------------------------------------------ domains
  const expectedImages = new Set<string>();
  for (const d of spec.domains) {
    const name = `${prefix}${d.name}`;
    const dom = world.domains[name];
    if (!dom) {
      fail(`domain ${d.name}: missing`);
      continue;
    }
    const where = `domain ${d.name}`;
    if (!dom.running || dom.id === null || !dom.live) fail(`${where}: not running`);
    const def = dom.def;
    if (def.type !== "qemu") fail(`${where}: type ${def.type}`);
    if (def.memoryMiB !== d.memory) fail(`${where}: memory ${def.memoryMiB}, want ${d.memory}`);
    if (def.vcpu !== d.vcpu) fail(`${where}: vcpu ${def.vcpu}, want ${d.vcpu}`);
    const cpu = d.cpuCustom ? { mode: "custom", custom: d.cpuCustom } : d.cpuModel ? { mode: "model", model: d.cpuModel } : { mode: "host-passthrough" };
    if (show(def.cpu) !== show(cpu)) fail(`${where}: cpu ${show(def.cpu)}, want ${show(cpu)}`);
    // NICs: the persistent definition in the spec's order; live, the same set, each linked to its network.
    const want = (nics.get(d.name) ?? []).map((n) => ({ mac: n.mac, network: `${prefix}${n.net}`, mtu: n.mtu }));
    const got = def.nics.map((n) => ({ mac: n.mac.toLowerCase(), network: n.network, mtu: n.mtu }));
    if (show(got) !== show(want)) fail(`${where}: NICs ${show(got)}, want ${show(want)}`);
    if (dom.live) {
      const bySet = (l: DomainNicDef[]): string => show(l.map((n) => `${n.mac.toLowerCase()} ${n.network} ${n.mtu ?? ""}`).sort());
      if (bySet(dom.live.nics) !== bySet(def.nics)) fail(`${where}: live NICs ${bySet(dom.live.nics)} differ from the definition's ${bySet(def.nics)}`);
      for (const nic of dom.live.nics) if (!linked(world, dom, nic)) fail(`${where}: NIC ${nic.mac} is not linked to ${nic.network}`);
    }
    // Disks, by device.
    const wantDisks = d.disks.map((k) => {
      const file = diskFile(env, d, k);
      if (!(k.type === "file" && k.path)) expectedImages.add(file);
      return {
        dev: k.dev,
        bus: k.dev.startsWith("sd") ? "scsi" : k.dev.startsWith("hd") ? "ide" : "virtio",
        path: file,
        format: k.type === "template" ? "qcow2" : k.format === "iso" ? "raw" : k.format,
        device: k.format === "iso" ? "cdrom" : "disk",
      };
    });
    // A VM bootstrapped by cloud-init also has its seed CD-ROM (vms/<vm>/cidata.iso), an image of the environment.
    const seed = path.join(envPaths.vmDir(env, d.name), "cidata.iso");
    if (def.disks.some((k) => k.path === seed)) {
      expectedImages.add(seed);
      const cd = def.disks.find((k) => k.path === seed);
      if (cd?.device !== "cdrom" || cd.bus !== "ide") fail(`${where}: the cloud-init seed is not an IDE CD-ROM: ${show(cd)}`);
    }
    const diskSet = (l: typeof wantDisks): string =>
      show(
        l
          .filter((k) => k.path !== seed)
          .map((k) => ({ dev: k.dev, bus: k.bus, path: k.path, format: k.format, device: k.device }))
          .sort((a, b) => (a.dev < b.dev ? -1 : 1)),
      );
    if (diskSet(def.disks) !== diskSet(wantDisks)) fail(`${where}: disks ${diskSet(def.disks)}, want ${diskSet(wantDisks)}`);
    // Pending restarts: the running instance differs from the definition exactly where the plan says so.
    // IDE disks (the seed CD-ROM among them) cannot be plugged into a running VM: they wait for a restart.
    const pending = pendingOf(dom);
    if (dom.live && !pending.includes("disks") && diskSet(dom.live.disks) !== diskSet(def.disks)) fail(`${where}: live disks ${diskSet(dom.live.disks)} differ from the definition's`);
    if (dom.live && pending.includes("disks") && diskSet(dom.live.disks.filter((k) => k.bus !== "ide")) !== diskSet(def.disks.filter((k) => k.bus !== "ide"))) {
      fail(`${where}: live disks other than IDE ${diskSet(dom.live.disks)} differ from the definition's`);
    }
    if (def.disks[0] && wantDisks[0] && def.disks[0].dev !== wantDisks[0].dev) fail(`${where}: boots from ${def.disks[0].dev}, want ${wantDisks[0].dev}`);
    const listed = input.pendingRestarts.includes(`domain.${d.name}`);
    if (pending.length > 0 !== listed) fail(`${where}: live config differs in [${pending.join(", ")}] but the plan ${listed ? "lists" : "does not list"} it as waiting for a restart`);
    for (const k of d.disks) checkImage(fail, world, env, input.prior, state, d, k);
  }

  // ------------------------------------------------------------ networks
  const bridges = new Map<string, string>();
  for (const net of spec.nets) {
    const name = `${prefix}${net.name}`;
    const n = world.networks[name];
    const where = `network ${net.name}`;
    if (!n) {
      fail(`${where}: missing`);
      continue;
    }
    if (!n.active) fail(`${where}: not active`);
    const def = n.def;
    if (def.mode !== (net.type === "nat" ? "nat" : "isolated")) fail(`${where}: mode ${def.mode}`);
    const other = bridges.get(def.bridge);
    if (other) fail(`${where}: bridge ${def.bridge} also used by ${other}`);
    bridges.set(def.bridge, net.name);
    if ((def.mtu ?? null) !== (net.mtu ?? null)) fail(`${where}: mtu ${show(def.mtu)}, want ${show(net.mtu)}`);
    const subnet = subnets.get(net.name);
    const onNet = [...nics.values()].flat().filter((x) => x.net === net.name);
    if (net.type === "nat" && subnet) {
      if (def.gateway !== ipIn(subnet, gatewayHost(net))) fail(`${where}: gateway ${def.gateway}, want ${ipIn(subnet, gatewayHost(net))}`);
      const dhcp = { start: ipIn(subnet, net.dhcp?.start ?? 100), end: ipIn(subnet, net.dhcp?.end ?? 254) };
      if (show(def.dhcp) !== show(dhcp)) fail(`${where}: DHCP range ${show(def.dhcp)}, want ${show(dhcp)}`);
      const domain = net.management ? (net.dnsDomainName ?? "lago.local") : undefined;
      if (def.domain !== domain) fail(`${where}: DNS domain ${show(def.domain)}, want ${show(domain)}`);
      const mgmtSubnet = mgmt ? subnets.get(mgmt.name) : undefined;
      const forwarder = !net.management && mgmt?.type === "nat" && mgmtSubnet ? ipIn(mgmtSubnet, gatewayHost(mgmt)) : undefined;
      if (def.dnsForwarder !== forwarder) fail(`${where}: DNS forwarder ${show(def.dnsForwarder)}, want ${show(forwarder)}`);
      const hosts = onNet.filter((x) => x.ip).map((x) => ({ mac: x.mac, ip: x.ip, name: x.vm }));
      const got = def.hosts.map((h) => ({ mac: h.mac.toLowerCase(), ip: h.ip, name: h.name }));
      const sorted = (l: { mac: string }[]): string => show([...l].sort((a, b) => (a.mac < b.mac ? -1 : 1)));
      if (sorted(got) !== sorted(hosts)) fail(`${where}: DHCP hosts ${sorted(got)}, want ${sorted(hosts)}`);
    } else {
      if (def.gateway) fail(`${where}: a bridge with an address ${def.gateway}`);
      if (def.dhcp) fail(`${where}: a bridge with DHCP ${show(def.dhcp)}`);
      if (def.hosts.length) fail(`${where}: a bridge with DHCP hosts ${show(def.hosts)}`);
      if (def.domain !== undefined || def.dnsForwarder !== undefined) fail(`${where}: a bridge with DNS settings ${show({ domain: def.domain, forwarder: def.dnsForwarder })}`);
    }
    // DNS: on the management net, each VM's NIC there answers to its name; and the records.
    const dns = new Map<string, Set<string>>();
    const addDns = (ip: string, host: string): void => {
      dns.set(ip, (dns.get(ip) ?? new Set()).add(host));
    };
    if (net.management && net.type === "nat") for (const x of onNet) if (x.ip && x.key.endsWith("#0")) addDns(x.ip, x.vm);
    for (const [host, ip] of Object.entries(net.dnsRecords)) addDns(ip, host);
    const wantDns = show([...dns].map(([ip, names]) => ({ ip, names: [...names].sort() })).sort((a, b) => (a.ip < b.ip ? -1 : 1)));
    const gotDns = show(def.dnsHosts.map((h) => ({ ip: h.ip, names: [...h.names].sort() })).sort((a, b) => (a.ip < b.ip ? -1 : 1)));
    if (gotDns !== wantDns) fail(`${where}: DNS hosts ${gotDns}, want ${wantDns}`);
  }

  // ------------------------------------------------------------ nothing the spec does not describe
  const wantDomains = spec.domains.map((d) => `${prefix}${d.name}`).sort();
  const gotDomains = Object.keys(world.domains).sort();
  if (show(gotDomains) !== show(wantDomains)) fail(`domains in the world ${show(gotDomains)}, want ${show(wantDomains)}`);
  const wantNets = spec.nets.map((n) => `${prefix}${n.name}`).sort();
  const gotNets = Object.keys(world.networks).sort();
  if (show(gotNets) !== show(wantNets)) fail(`networks in the world ${show(gotNets)}, want ${show(wantNets)}`);
  const ownImages = Object.keys(world.images)
    .filter((p) => p.startsWith(`${env.dir}/`))
    .sort();
  if (show(ownImages) !== show([...expectedImages].sort())) fail(`the environment's images ${show(ownImages)}, want ${show([...expectedImages].sort())}`);
  checkLeases(fail, spec, env, subnets);
  checkTemplateUsers(fail, spec, env, input.prior);
  checkState(fail, spec, state, input.prior);
  return problems;
}

/** The file a disk lives in: its own image (`path`) or the environment's `vms/<vm>/disks/<disk>.<format>`. */
function diskFile(env: EnvContext, d: DomainSpec, k: DomainSpec["disks"][number]): string {
  if (k.type === "file" && k.path) return k.path;
  return envPaths.disk(env, d.name, k.name, k.type === "template" ? "qcow2" : k.format);
}

/** What the running instance waits for a restart to take (as lago reads it from libvirt). */
export function pendingOf(dom: FakeDomain): string[] {
  const live = dom.live;
  if (!dom.running || !live) return [];
  const out: string[] = [];
  if (live.memoryMiB !== dom.def.memoryMiB) out.push("memory");
  if (live.vcpu !== dom.def.vcpu) out.push("vcpu");
  if (show(cpuReport(live)) !== show(cpuReport(dom.def))) out.push("cpu");
  const disks = (l: typeof live.disks): string => show(l.map((k) => `${k.dev}=${k.path}:${k.device}:${k.format}:${k.bus}`).sort());
  if (disks(live.disks) !== disks(dom.def.disks)) out.push("disks");
  return out;
}

/**
 * The CPU as libvirt reports it (`<cpu mode=… ><model>…`): a `cpu_model` and a
 * `cpu_custom` naming the same model are the same CPU.
 */
export function cpuReport(def: { cpu: FakeDomain["def"]["cpu"]; type: "kvm" | "qemu" }): { mode: string; model: string | undefined } {
  return reportedCpu(def.cpu, def.type);
}

/** The backing chain of an image: the world's images, or a real file's `BACKING=` header. */
function backingChain(world: WorldData, file: string): string[] {
  const chain: string[] = [];
  let next: string | undefined = world.images[file]?.backingFile;
  while (next && chain.length < 8) {
    chain.push(next);
    const known = world.images[next];
    if (known) next = known.backingFile;
    else if (existsSync(next)) next = /BACKING=(\S+)/.exec(readHead(next))?.[1];
    else next = undefined;
  }
  return chain;
}

function checkImage(fail: (m: string) => void, world: WorldData, env: EnvContext, prior: State, state: State, d: DomainSpec, k: DomainSpec["disks"][number]): void {
  const file = diskFile(env, d, k);
  const where = `disk ${d.name}.${k.name} (${file})`;
  if (k.type === "file" && k.path) {
    if (!existsSync(k.path)) fail(`${where}: the image is gone`);
    return;
  }
  const img = world.images[file];
  if (!img) {
    fail(`${where}: missing`);
    return;
  }
  if (k.type === "template") {
    if (img.format !== "qcow2") fail(`${where}: format ${img.format}, want qcow2`);
    let base: string;
    let baseSize: number;
    if (k.templateName) {
      const version = expectedVersion(prior, d.name, k);
      base = path.join(env.config.templateStore, `${REPO.name}:${k.templateName}:${version}`);
      baseSize = (REPO.contents[`${k.templateName}:${version}`] ?? "").length;
    } else {
      base = k.path ?? "";
      baseSize = existsSync(base) ? statSync(base).size : 0;
    }
    const chain = backingChain(world, file);
    if (!chain.includes(base)) fail(`${where}: backing chain ${show(chain)} does not reach its template ${base}`);
    // Build steps: the disk overlays a layer of the store, itself an overlay on the template, registering the disk as its user.
    const layers = path.join(env.config.templateStore, "layers");
    const layer = chain[0];
    const build = state.resources.get(`build.${d.name}.${k.name}`);
    if (k.build.length > 0 && build?.outputs.mode === "first-boot") {
      // Run by the guest at its first boot: no layer; the VM's seed carries the script, so the VM must get one.
      if (layer !== base) fail(`${where}: its build runs at first boot, but it overlays ${show(layer)}, not its template ${base}`);
      const seed = world.seeds?.[path.join(envPaths.vmDir(env, d.name), "cidata.iso")];
      if (!seed?.userData.includes(`lago first-boot build ${String(build.outputs.id)}`)) fail(`${where}: its build runs at first boot, but the VM's seed does not carry it`);
      if (d.disks[0] !== k || !d.bootstrap) fail(`${where}: its build runs at first boot, on a disk that gets no seed`);
      if (!existsSync(String(build.outputs.script))) fail(`${where}: its first-boot script ${String(build.outputs.script)} is missing`);
    } else if (k.build.length > 0) {
      if (!layer || path.dirname(layer) !== layers || !/^[0-9a-f]{64}\.qcow2$/.test(path.basename(layer))) fail(`${where}: has build steps but overlays ${show(layer)}, not a layer of ${layers}`);
      else {
        if (chain[1] !== base) fail(`${where}: its layer ${layer} overlays ${show(chain[1])}, not its template ${base}`);
        const users = layer.replace(/\.qcow2$/, ".users");
        const doc = existsSync(users) ? (JSON.parse(readFileSync(users, "utf8")) as { users?: Record<string, unknown> }) : {};
        const registered = envPaths.disk(env, d.name, k.name, "qcow2");
        if (!Object.hasOwn(doc.users ?? {}, registered)) fail(`${where}: not registered as a user of its layer ${layer}`);
      }
    } else if (layer !== base) fail(`${where}: has no build steps but overlays ${show(layer)}, not its template ${base}`);
    if (k.size !== undefined ? img.virtualSize !== Math.max(baseSize, sectors(k.size)) : img.virtualSize < baseSize) {
      fail(`${where}: virtual size ${img.virtualSize}, want ${k.size !== undefined ? Math.max(baseSize, sectors(k.size)) : `at least ${baseSize}`}`);
    }
    return;
  }
  if (img.format !== k.format) fail(`${where}: format ${img.format}, want ${k.format}`);
  if (img.backingFile) fail(`${where}: a blank disk with a backing file ${img.backingFile}`);
  if (k.size !== undefined && img.virtualSize !== sectors(k.size)) fail(`${where}: virtual size ${img.virtualSize}, want ${sectors(k.size)}`);
}

function checkLeases(fail: (m: string) => void, spec: EnvSpec, env: EnvContext, subnets: Map<string, string>): void {
  const dir = env.config.leaseDir;
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".lease")) : [];
  const want = new Map<string, string>();
  for (const net of spec.nets) {
    const subnet = subnets.get(net.name);
    if (net.type === "nat" && subnet) want.set(`${subnet.split(".")[2] ?? ""}.lease`, net.name);
  }
  if (show(files.sort()) !== show([...want.keys()].sort())) fail(`lease files ${show(files.sort())}, want ${show([...want.keys()].sort())}`);
  for (const [file, net] of want) {
    const lease = path.join(dir, file);
    if (!existsSync(lease)) continue;
    const [owner, uuid] = JSON.parse(readFileSync(lease, "utf8")) as [string, string];
    const expectedOwner = envPaths.leaseOwner(env, net);
    if (owner !== expectedOwner) fail(`${file}: owned by ${owner}, want ${expectedOwner}`);
    else if (!existsSync(owner) || readFileSync(owner, "utf8") !== uuid) fail(`${file}: its owner file does not hold its uuid (the lease is stale)`);
  }
  const ownerDir = path.join(env.dir, "leases");
  const owners = existsSync(ownerDir) ? readdirSync(ownerDir).filter((f) => f.endsWith(".uuid")).sort() : [];
  const wantOwners = [...want.values()].map((n) => `${n}.uuid`).sort();
  if (show(owners) !== show(wantOwners)) fail(`lease owner files ${show(owners)}, want ${show(wantOwners)}`);
}

function checkTemplateUsers(fail: (m: string) => void, spec: EnvSpec, env: EnvContext, prior: State): void {
  const store = env.config.templateStore;
  const used = new Set<string>();
  for (const d of spec.domains) for (const k of d.disks) if (k.type === "template" && k.templateName) used.add(`${REPO.name}:${k.templateName}:${expectedVersion(prior, d.name, k)}`);
  for (const key of Object.keys(REPO.contents).map((k) => `${REPO.name}:${k}`)) {
    const file = path.join(store, `${key}.users`);
    let users: string[] = [];
    if (existsSync(file)) {
      const doc = JSON.parse(readFileSync(file, "utf8")) as { users?: Record<string, unknown> } | string[];
      users = Array.isArray(doc) ? doc : Object.keys(doc.users ?? {});
    }
    const registered = users.includes(env.dir);
    if (registered !== used.has(key)) fail(`template ${key}: the environment is ${registered ? "" : "not "}registered as a user, but it ${used.has(key) ? "uses" : "does not use"} it`);
  }
}

function checkState(fail: (m: string) => void, spec: EnvSpec, state: State, prior: State): void {
  const want = new Set<string>(["keypair"]);
  const builds = new Set<string>();
  for (const net of spec.nets) {
    want.add(`network.${net.name}`);
    if (net.type === "nat") want.add(`lease.${net.name}`);
  }
  let templates = 0;
  const seenTemplates = new Set<string>();
  for (const d of spec.domains) {
    want.add(`domain.${d.name}`);
    for (const k of d.disks) {
      want.add(`disk.${d.name}.${k.name}`);
      if (k.type === "template") {
        // A build exists for a template disk with build steps only (Lago's bootstrap is not a build).
        if (k.build.length > 0) builds.add(`build.${d.name}.${k.name}`);
        const t = k.templateName ? `${k.templateName}:${expectedVersion(prior, d.name, k)}` : `path:${k.path ?? ""}:${k.format === "raw" ? "raw" : "qcow2"}`;
        if (!seenTemplates.has(t)) templates += 1;
        seenTemplates.add(t);
      }
    }
  }
  const recorded = [...state.resources.values()];
  for (const r of recorded) {
    if (r.status !== "ready") fail(`${r.address}: recorded as ${r.status}${r.reason ? ` (${r.reason})` : ""}`);
    if (r.kind === "template" || r.kind === "build") continue;
    if (!want.has(r.address)) fail(`${r.address}: recorded, but the spec does not describe it`);
  }
  for (const a of [...want, ...builds]) if (!state.resources.has(a)) fail(`${a}: not recorded`);
  for (const r of recorded) if (r.kind === "build" && !builds.has(r.address)) fail(`${r.address}: a build recorded for no template disk with build steps`);
  const recordedTemplates = recorded.filter((r) => r.kind === "template").length;
  if (recordedTemplates !== templates) fail(`${recordedTemplates} templates recorded, want ${templates}`);
}
