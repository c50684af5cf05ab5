/**
 * A persistent libvirt network per net: NAT (with DHCP hosts, and DNS on the
 * management net) or an isolated bridge. NIC additions and removals are edited
 * in place (`virsh net-update`); only a change of subnet or kind replaces it.
 */
import { bridgeName, libvirtName, libvirtPrefix } from "../env/context.ts";
import type { NetworkDef, NetworkHostDef } from "../drivers/types.ts";
import { dependency, ipIn, macForIp, memo, obj, str } from "./common.ts";
import type { Attrs, Json, ReconcileContext, RecordedResource, ResourceKind } from "./types.ts";

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

/** DNS names: on the management net, each VM's first NIC answers to the VM's name; plus `dns_records`. */
function dnsHosts(attrs: Attrs, hosts: HostEntry[]): { ip: string; names: string[] }[] {
  const byIp = new Map<string, string[]>();
  if (attrs.management === true) {
    // Keys are `<vm>#<net>#<n>`: the VM's first NIC on this net carries its name.
    for (const h of hosts) if (h.key.split("#")[2] === "0") byIp.set(h.ip, [...(byIp.get(h.ip) ?? []), h.vm]);
  }
  for (const [name, ip] of Object.entries(obj(attrs.dns_records))) byIp.set(String(ip), [...(byIp.get(String(ip)) ?? []), name]);
  return [...byIp].map(([ip, names]) => ({ ip, names: [...new Set(names)].sort() })).sort((a, b) => (a.ip < b.ip ? -1 : 1));
}

/** The management net's gateway, when this net forwards DNS to it. */
function forwarderOf(ctx: ReconcileContext, attrs: Attrs): string | undefined {
  const forward = attrs.dns_forward ? obj(attrs.dns_forward) : undefined;
  if (!forward) return undefined;
  const subnet = dependency(ctx, `lease.${str(forward.net, "dns_forward.net")}`).outputs.subnet;
  return typeof subnet === "string" ? ipIn(subnet, Number(forward.gateway ?? 1)) : undefined;
}

function metadataOf(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): string {
  return JSON.stringify({ address: ctx.address, env: ctx.env.id, attrs, subnet: subnet ?? null });
}

function definition(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): NetworkDef {
  const net = str(attrs.net, "net");
  const hosts = hostEntries(attrs, subnet);
  const dhcp = obj(attrs.dhcp);
  return {
    name: libvirtName(ctx.env, net),
    bridge: bridgeName(ctx.env, net),
    mode: attrs.type === "nat" ? "nat" : "isolated",
    gateway: subnet ? ipIn(subnet, Number(attrs.gateway ?? 1)) : "",
    prefix: 24,
    dhcp: subnet && attrs.dhcp ? { start: ipIn(subnet, Number(dhcp.start)), end: ipIn(subnet, Number(dhcp.end)) } : undefined,
    hosts: hosts.map(dhcpHost),
    domain: typeof attrs.dns_domain === "string" ? attrs.dns_domain : undefined,
    dnsHosts: dnsHosts(attrs, hosts),
    dnsForwarder: forwarderOf(ctx, attrs),
    mtu: typeof attrs.mtu === "number" ? attrs.mtu : undefined,
    metadata: metadataOf(ctx, attrs, subnet),
  };
}

function outputsOf(ctx: ReconcileContext, attrs: Attrs, subnet: string | undefined): Attrs {
  const net = str(attrs.net, "net");
  return { libvirt_name: libvirtName(ctx.env, net), bridge: bridgeName(ctx.env, net), subnet: subnet ?? null };
}

export const networkKind: ResourceKind = {
  kind: "network",
  replaceOn: [
    { path: "/net", reason: "the net is renamed" },
    { path: "/type", reason: "the network type changes" },
    { path: "/gateway", reason: "the gateway changes" },
    { path: "/management", reason: "the management role changes (DNS)" },
    { path: "/dns_domain", reason: "the DNS domain changes" },
    { path: "/dns_forward", reason: "the DNS forwarding to the management net changes" },
    { path: "/mtu", reason: "the MTU changes" },
  ],
  onDependencyReplaced: (dep, self) => {
    if (dep.kind !== "lease") return undefined;
    return dep.address === `lease.${String(self.net)}`
      ? { action: "replace", reason: `its subnet lease ${dep.address} is replaced` }
      : { action: "replace", reason: `the management net's subnet (${dep.address}) changes: DNS forwarding is redone` };
  },
  async read(ctx, current) {
    const name = libvirtName(ctx.env, str(current.attrs.net, "net"));
    const all = await memo(ctx, `networks:${libvirtPrefix(ctx.env)}`, () => ctx.drivers.libvirt.listNetworks(libvirtPrefix(ctx.env), { signal: ctx.signal }));
    const info = all.find((n) => n.name === name);
    if (!info) return undefined;
    const subnet = subnetFor(ctx, current.attrs, current.outputs);
    // Reality's DHCP host entries, mapped back to keys by address.
    const live = new Set(info.hosts.map((h) => `${h.mac}|${h.ip}`));
    const hosts: { [k: string]: Json } = {};
    for (const h of hostEntries(current.attrs, subnet)) if (live.has(`${h.mac}|${h.ip}`)) hosts[h.key] = obj(current.attrs.hosts)[h.key] ?? null;
    const attrs: Attrs = { ...current.attrs, active: info.active };
    if (current.attrs.type === "nat") attrs.hosts = hosts;
    return { attrs, outputs: outputsOf(ctx, current.attrs, subnet), healthy: true };
  },
  async create(ctx, desired) {
    const subnet = subnetFor(ctx, desired);
    if (desired.type === "nat") dependency(ctx, `lease.${str(desired.net, "net")}`);
    await ctx.drivers.libvirt.createNetwork(definition(ctx, desired, subnet), { signal: ctx.signal });
    return outputsOf(ctx, desired, subnet);
  },
  async update(ctx, desired, prior: RecordedResource) {
    const opts = { signal: ctx.signal };
    const lv = ctx.drivers.libvirt;
    const subnet = subnetFor(ctx, desired, prior.outputs);
    const name = libvirtName(ctx.env, str(desired.net, "net"));
    if (desired.active === true && prior.attrs.active !== true) await lv.startNetwork(name, opts);
    const before = hostEntries(prior.attrs, subnet);
    const after = hostEntries(desired, subnet);
    const sig = (h: HostEntry): string => `${h.mac}|${h.ip}|${h.vm}`;
    const afterSigs = new Set(after.map(sig));
    const beforeSigs = new Set(before.map(sig));
    for (const h of before) if (!afterSigs.has(sig(h))) await lv.removeNetworkHost(name, dhcpHost(h), opts);
    for (const h of after) if (!beforeSigs.has(sig(h))) await lv.addNetworkHost(name, dhcpHost(h), opts);
    const dnsKey = (d: { ip: string; names: string[] }): string => `${d.ip}|${d.names.join(",")}`;
    const dnsBefore = dnsHosts(prior.attrs, before);
    const dnsAfter = dnsHosts(desired, after);
    const dnsAfterKeys = new Set(dnsAfter.map(dnsKey));
    const dnsBeforeKeys = new Set(dnsBefore.map(dnsKey));
    for (const d of dnsBefore) if (!dnsAfterKeys.has(dnsKey(d))) await lv.removeDnsHost(name, d, opts);
    for (const d of dnsAfter) if (!dnsBeforeKeys.has(dnsKey(d))) await lv.addDnsHost(name, d, opts);
    if (JSON.stringify(prior.attrs.dhcp) !== JSON.stringify(desired.dhcp) && subnet && desired.dhcp) {
      const b = obj(prior.attrs.dhcp);
      const a = obj(desired.dhcp);
      await lv.setDhcpRange(
        name,
        prior.attrs.dhcp ? { start: ipIn(subnet, Number(b.start)), end: ipIn(subnet, Number(b.end)) } : undefined,
        { start: ipIn(subnet, Number(a.start)), end: ipIn(subnet, Number(a.end)) },
        opts,
      );
    }
    await lv.setNetworkMetadata(name, metadataOf(ctx, desired, subnet), opts);
    return outputsOf(ctx, desired, subnet);
  },
  async delete(ctx, prior) {
    await ctx.drivers.libvirt.deleteNetwork(libvirtName(ctx.env, str(prior.attrs.net, "net")), { signal: ctx.signal });
  },
};
