/**
 * A persistent libvirt network per net: NAT (with DHCP hosts, and DNS on the
 * management net) or an isolated bridge. DHCP hosts, DNS hosts and the DHCP
 * range are edited live (`virsh net-update`); what libvirt cannot change live
 * (MTU, gateway, DNS domain, DNS forwarding, a new subnet) is changed in place
 * by redefining and restarting the network, which interrupts the VMs attached
 * to it: they let go of it first and re-attach after (see `disruptiveOn`).
 * Only a change of kind replaces it.
 */
import { bridgeName, libvirtName } from "../env/context.ts";
import type { DnsHostDef, NetworkDef, NetworkEdit, NetworkHostDef, NetworkInfo } from "../drivers/types.ts";
import { dependency, inventoryOf, ipIn, macForIp, obj, str } from "./common.ts";
import type { Attrs, Json, ReconcileContext, ResourceKind } from "./types.ts";

interface HostEntry {
  key: string;
  vm: string;
  ip: string;
  mac: string;
}

function subnetFor(ctx: ReconcileContext, attrs: Attrs, outputs?: Attrs): string | undefined {
  if (attrs.type !== "nat") return undefined;
  const lease = ctx.deps.get(`lease.${str(attrs.net, "net")}`);
  const fromLease = lease?.outputs.subnet;
  if (typeof fromLease === "string") return fromLease;
  return typeof outputs?.subnet === "string" ? outputs.subnet : undefined;
}

function hostEntries(attrs: Attrs, subnet: string | undefined): HostEntry[] {
  if (!subnet) return [];
  return Object.entries(obj(attrs.hosts)).map(([key, v]) => {
    const h = obj(v);
    const ip = ipIn(subnet, Number(h.host));
    return { key, vm: String(h.vm), ip, mac: macForIp(ip) };
  });
}

function dhcpHost(h: HostEntry): NetworkHostDef {
  return { mac: h.mac, ip: h.ip, name: h.vm };
}

/** The address a `dns` key stands for: `h<n>` is host n of the subnet, anything else a literal address. */
function dnsAddress(key: string, subnet: string | undefined): string | undefined {
  const host = /^h(\d+)$/.exec(key)?.[1];
  if (host === undefined) return key;
  return subnet ? ipIn(subnet, Number(host)) : undefined;
}

/** The DNS host table of `attrs` as libvirt wants it: one entry per address, names sorted. */
function dnsHosts(attrs: Attrs, subnet: string | undefined): DnsHostDef[] {
  const byIp = new Map<string, Set<string>>();
  for (const [key, names] of Object.entries(obj(attrs.dns))) {
    const ip = dnsAddress(key, subnet);
    if (!ip || !Array.isArray(names)) continue;
    const set = byIp.get(ip) ?? new Set<string>();
    for (const n of names) set.add(String(n));
    byIp.set(ip, set);
  }
  return [...byIp].map(([ip, names]) => ({ ip, names: [...names].sort() })).sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

/** The management net's gateway address, when this net forwards DNS to it. */
function forwarderOf(ctx: ReconcileContext, attrs: Attrs): string | undefined {
  const forward = attrs.dns_forward ? obj(attrs.dns_forward) : undefined;
  if (!forward) return undefined;
  const subnet = dependency(ctx, `lease.${str(forward.net, "dns_forward.net")}`).outputs.subnet;
  return typeof subnet === "string" ? ipIn(subnet, Number(forward.gateway ?? 1)) : undefined;
}

function metadataOf(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): string {
  return JSON.stringify({ address: ctx.address, env: ctx.env.id, dir: ctx.env.dir, attrs, subnet: subnet ?? null });
}

function bridgeOf(ctx: ReconcileContext, attrs: Attrs): string {
  return bridgeName(ctx.env, Number(attrs.bridge_index ?? 0));
}

function definition(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): NetworkDef {
  const net = str(attrs.net, "net");
  const dhcp = obj(attrs.dhcp);
  return {
    name: libvirtName(ctx.env, net),
    bridge: bridgeOf(ctx, attrs),
    mode: attrs.type === "nat" ? "nat" : "isolated",
    gateway: subnet ? ipIn(subnet, Number(attrs.gateway ?? 1)) : "",
    prefix: 24,
    dhcp: subnet && attrs.dhcp ? { start: ipIn(subnet, Number(dhcp.start)), end: ipIn(subnet, Number(dhcp.end)) } : undefined,
    hosts: hostEntries(attrs, subnet).map(dhcpHost),
    domain: typeof attrs.dns_domain === "string" ? attrs.dns_domain : undefined,
    dnsHosts: dnsHosts(attrs, subnet),
    dnsForwarder: forwarderOf(ctx, attrs),
    mtu: typeof attrs.mtu === "number" ? attrs.mtu : undefined,
    metadata: metadataOf(ctx, attrs, subnet),
  };
}

function outputsOf(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): Attrs {
  const net = str(attrs.net, "net");
  return { libvirt_name: libvirtName(ctx.env, net), bridge: bridgeOf(ctx, attrs), subnet: subnet ?? null };
}

/** Host number of `ip` in `subnet`, or undefined when it lies outside. */
function hostIn(subnet: string | undefined, ip: string | undefined): number | undefined {
  if (!subnet || !ip) return undefined;
  const prefix = subnet.split(".").slice(0, 3).join(".");
  return ip.startsWith(`${prefix}.`) ? Number(ip.slice(prefix.length + 1)) : undefined;
}

/**
 * The attributes reality shows, in the recorded attributes' shape: whatever
 * libvirt reports differently from what `recorded` implies shows as a change
 * at the attribute it comes from; libvirt's own spellings (MAC case, order of
 * hosts and names) do not.
 */
function observedAttrs(ctx: ReconcileContext, recorded: Attrs, info: NetworkInfo, subnet: string | undefined): Attrs {
  const attrs: Attrs = { ...recorded, active: info.active, type: info.mode === "nat" ? "nat" : info.mode === "isolated" ? "bridge" : info.mode, mtu: info.mtu ?? null };
  if (recorded.type !== "nat") return attrs;
  attrs.gateway = hostIn(subnet, info.gateway) ?? (info.gateway ?? null);
  const start = hostIn(subnet, info.dhcp?.start);
  const end = hostIn(subnet, info.dhcp?.end);
  attrs.dhcp = info.dhcp ? { start: start ?? info.dhcp.start, end: end ?? info.dhcp.end } : null;
  attrs.dns_domain = info.domain ?? null;
  let expectedForwarder: string | undefined;
  try {
    expectedForwarder = forwarderOf(ctx, recorded);
  } catch {
    expectedForwarder = undefined;
  }
  if ((info.forwarder ?? undefined) !== expectedForwarder) attrs.dns_forward = info.forwarder ? { addr: info.forwarder } : null;
  // DHCP hosts, matched to their keys by address and MAC; unknown ones under their MAC.
  const recordedHosts = obj(recorded.hosts);
  const byEntry = new Map(hostEntries(recorded, subnet).map((h) => [`${h.mac}|${h.ip}`, h]));
  const hosts: { [k: string]: Json } = {};
  for (const h of info.hosts) {
    const known = byEntry.get(`${h.mac.toLowerCase()}|${h.ip}`);
    if (known) {
      const entry = obj(recordedHosts[known.key]);
      hosts[known.key] = h.name === known.vm ? entry : { ...entry, vm: h.name };
    } else hosts[`~${h.mac.toLowerCase()}`] = { vm: h.name, host: hostIn(subnet, h.ip) ?? h.ip };
  }
  attrs.hosts = hosts;
  // DNS hosts: each name goes back to the key that asked for it at that address.
  const dns: Record<string, string[]> = {};
  const recordedDns = Object.entries(obj(recorded.dns)).map(([key, names]) => ({ key, ip: dnsAddress(key, subnet), names: Array.isArray(names) ? names.map(String) : [] }));
  for (const h of info.dnsHosts) {
    for (const name of h.names) {
      const key = recordedDns.find((d) => d.ip === h.ip && d.names.includes(name))?.key ?? h.ip;
      dns[key] = [...(dns[key] ?? []), name].sort();
    }
  }
  attrs.dns = dns;
  return attrs;
}

/** Whether two JSON values are equal. */
const same = (a: Json | undefined, b: Json | undefined): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export const networkKind: ResourceKind = {
  kind: "network",
  // Mostly libvirt setting up the firewall rules of a started network.
  typicalMs: 500,
  replaceOn: [
    { path: "/net", reason: "the net is renamed" },
    { path: "/type", reason: "the network type changes" },
    { path: "/bridge_index", reason: "the bridge changes" },
  ],
  disruptiveOn: [
    { path: "/mtu", reason: "the network restarts for its new MTU" },
    { path: "/gateway", reason: "the network restarts for its new gateway" },
    { path: "/dns_domain", reason: "the network restarts for its new DNS domain" },
    { path: "/dns_forward", reason: "the network restarts for its new DNS forwarding" },
    { path: "/active", reason: "the network is started again" },
  ],
  onDependencyDisrupted: (dep, self) => {
    if (dep.kind !== "lease") return undefined;
    return dep.address === `lease.${String(self.net)}`
      ? { action: "restart", reason: `its subnet lease ${dep.address} is replaced: the network restarts in its new subnet` }
      : { action: "restart", reason: `the management net's subnet (${dep.address}) changes: the network restarts to forward DNS there` };
  },
  // Letting go of a lease (or of the management net's lease it forwards DNS to): the network stops.
  withoutDependency: (attrs, dep) => (dep.startsWith("lease.") ? { ...attrs, active: false } : attrs),
  async read(ctx, current) {
    const name = libvirtName(ctx.env, str(current.attrs.net, "net"));
    const info = (await inventoryOf(ctx)).networks.get(name);
    if (!info) return undefined;
    const subnet = subnetFor(ctx, current.attrs, current.outputs);
    return { attrs: observedAttrs(ctx, current.attrs, info, subnet), outputs: outputsOf(ctx, current.attrs, subnet), healthy: true };
  },
  async create(ctx, desired) {
    const subnet = subnetFor(ctx, desired);
    if (desired.type === "nat") dependency(ctx, `lease.${str(desired.net, "net")}`);
    await ctx.drivers.libvirt.createNetwork(definition(ctx, desired, subnet), { signal: ctx.signal });
    return outputsOf(ctx, desired, subnet);
  },
  async update(ctx, desired, prior, changes) {
    const opts = { signal: ctx.signal };
    const lv = ctx.drivers.libvirt;
    const subnet = subnetFor(ctx, desired, prior.outputs);
    const name = libvirtName(ctx.env, str(desired.net, "net"));
    if (desired.active === false) {
      await lv.stopNetwork(name, opts);
      return outputsOf(ctx, prior.attrs, typeof prior.outputs.subnet === "string" ? prior.outputs.subnet : undefined);
    }
    const restart =
      subnet !== (typeof prior.outputs.subnet === "string" ? prior.outputs.subnet : undefined) ||
      changes.some((c) => c.path.startsWith("(dependency)") || networkKind.disruptiveOn?.some((r) => c.path === r.path || c.path.startsWith(`${r.path}/`)));
    if (restart) {
      ctx.progress("restarting the network with its new definition");
      await lv.redefineNetwork(definition(ctx, desired, subnet), opts);
      return outputsOf(ctx, desired, subnet);
    }
    // Live edits: hosts, DNS names and the DHCP range, then the metadata, at once.
    const edits: NetworkEdit[] = [];
    const before = hostEntries(prior.attrs, subnet);
    const after = hostEntries(desired, subnet);
    const sig = (h: HostEntry): string => `${h.mac}|${h.ip}|${h.vm}`;
    const afterSigs = new Set(after.map(sig));
    const beforeSigs = new Set(before.map(sig));
    for (const h of before) if (!afterSigs.has(sig(h))) edits.push({ op: "remove-host", host: dhcpHost(h) });
    // Hosts reality has that lago did not put there (unless the init file wants them: an interrupted
    // apply may have added them before it could record it).
    for (const [key, v] of Object.entries(obj(prior.attrs.hosts))) {
      if (!key.startsWith("~") || !subnet) continue;
      const host = obj(v).host;
      const ip = typeof host === "number" ? ipIn(subnet, host) : String(host);
      if (afterSigs.has(`${key.slice(1)}|${ip}|${String(obj(v).vm)}`)) continue;
      edits.push({ op: "remove-host", host: { mac: key.slice(1), ip, name: String(obj(v).vm) } });
    }
    for (const h of after) if (!beforeSigs.has(sig(h))) edits.push({ op: "add-host", host: dhcpHost(h) });
    const dnsKey = (d: DnsHostDef): string => `${d.ip}|${d.names.join(",")}`;
    const dnsBefore = dnsHosts(prior.attrs, subnet);
    const dnsAfter = dnsHosts(desired, subnet);
    const dnsAfterKeys = new Set(dnsAfter.map(dnsKey));
    const dnsBeforeKeys = new Set(dnsBefore.map(dnsKey));
    const afterIps = new Set(dnsAfter.map((d) => d.ip));
    for (const d of dnsBefore) if (!dnsAfterKeys.has(dnsKey(d)) && !afterIps.has(d.ip)) edits.push({ op: "remove-dns", host: d });
    for (const d of dnsAfter) if (!dnsBeforeKeys.has(dnsKey(d))) edits.push({ op: "add-dns", host: d });
    if (!same(prior.attrs.dhcp, desired.dhcp) && subnet && desired.dhcp) {
      const a = obj(desired.dhcp);
      edits.push({ op: "set-range", range: { start: ipIn(subnet, Number(a.start)), end: ipIn(subnet, Number(a.end)) } });
    }
    await lv.editNetwork(name, edits, metadataOf(ctx, desired, subnet), opts);
    return outputsOf(ctx, desired, subnet);
  },
  async delete(ctx, prior) {
    await ctx.drivers.libvirt.deleteNetwork(libvirtName(ctx.env, str(prior.attrs.net, "net")), { signal: ctx.signal });
  },
};
