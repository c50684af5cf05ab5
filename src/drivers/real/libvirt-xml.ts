/**
 * libvirt XML for domains and networks, built from typed definitions (pure),
 * and the few facts lago reads back from libvirt's XML. lago never diffs raw
 * libvirt XML: what it needs is stored in `<metadata>` under its own namespace.
 */
import { XMLParser } from "fast-xml-parser";
import type { DnsHostDef, DomainCpuDef, DomainDef, DomainDiskDef, DomainNicDef, DomainView, NetworkDef, NetworkEdit, NetworkHostDef, NetworkInfo } from "../types.ts";
import { el, renderXml, type XmlElement, type XmlNode } from "../../util/xml.ts";

export const LAGO_NS = "https://lago.dev/xmlns/libvirt/1";

function metadataElement(metadata: string): XmlElement {
  return el("metadata", undefined, el("lago:resource", { "xmlns:lago": LAGO_NS }, Buffer.from(metadata).toString("base64")));
}

export function diskXml(d: DomainDiskDef): XmlElement {
  return el(
    "disk",
    { type: "file", device: d.device },
    el("driver", { name: "qemu", type: d.format, discard: d.device === "disk" ? "unmap" : undefined }),
    el("source", { file: d.path }),
    el("target", { dev: d.dev, bus: d.bus }),
    d.device === "cdrom" && el("readonly"),
  );
}

/** A NIC without an option ROM: lago VMs never boot from the network, and loading iPXE costs boot time. */
export function nicXml(n: DomainNicDef): XmlElement {
  return el(
    "interface",
    { type: "network" },
    el("source", { network: n.network }),
    el("mac", { address: n.mac }),
    el("model", { type: "virtio" }),
    n.mtu !== undefined && el("mtu", { size: n.mtu }),
    el("rom", { enabled: "no" }),
  );
}

/** Lago's `cpu_custom`: YAML with `@attr` keys and `#text`, turned into XML. */
function customToXml(name: string, value: unknown): XmlElement[] {
  if (Array.isArray(value)) return value.flatMap((v) => customToXml(name, v));
  if (value === null || typeof value !== "object") return [el(name, undefined, String(value))];
  const attrs: Record<string, string> = {};
  const children: XmlNode[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.startsWith("@")) attrs[k.slice(1)] = String(v);
    else if (k === "#text") children.push(String(v));
    else children.push(...customToXml(k, v));
  }
  return [el(name, attrs, ...children)];
}

function cpuXml(cpu: DomainCpuDef, vcpu: number, type: "kvm" | "qemu"): XmlElement | undefined {
  const topology = el("topology", { sockets: vcpu, cores: 1, threads: 1 });
  if (cpu.mode === "model") return el("cpu", { mode: "custom", match: "exact" }, el("model", { fallback: "allow" }, cpu.model), topology);
  if (cpu.mode === "custom") {
    const [root] = customToXml("cpu", cpu.custom);
    if (!root) return undefined;
    const kids = root.children ?? [];
    if (!kids.some((c) => typeof c === "object" && c && c.name === "topology")) kids.push(topology);
    return { ...root, children: kids };
  }
  // host-passthrough needs KVM; under TCG qemu picks its default model.
  return type === "kvm" ? el("cpu", { mode: "host-passthrough" }, topology) : undefined;
}

/** `uuid`: the existing domain's, when redefining it (libvirt refuses a new one under the same name). */
export function domainXml(def: DomainDef, uuid?: string): string {
  const scsi = def.disks.some((d) => d.bus === "scsi");
  return `${renderXml(
    el(
      "domain",
      { type: def.type },
      el("name", undefined, def.name),
      uuid && el("uuid", undefined, uuid),
      metadataElement(def.metadata),
      el("memory", { unit: "MiB" }, String(def.memoryMiB)),
      el("vcpu", undefined, String(def.vcpu)),
      // Boot from the first disk only, without a boot menu (and its delay).
      el("os", undefined, el("type", { arch: "x86_64", machine: "pc" }, "hvm"), el("boot", { dev: "hd" }), el("bootmenu", { enable: "no" })),
      el("features", undefined, el("acpi"), el("apic")),
      cpuXml(def.cpu, def.vcpu, def.type),
      el("clock", { offset: "utc" }),
      el("on_poweroff", undefined, "destroy"),
      el("on_reboot", undefined, "restart"),
      el("on_crash", undefined, "destroy"),
      el(
        "devices",
        undefined,
        ...def.disks.map(diskXml),
        scsi && el("controller", { type: "scsi", model: "virtio-scsi" }),
        ...def.nics.map(nicXml),
        el("serial", { type: "pty" }, el("log", { file: def.consoleLog, append: "on" }), el("target", { port: 0 })),
        el("console", { type: "pty" }, el("target", { type: "serial", port: 0 })),
        el("rng", { model: "virtio" }, el("backend", { model: "random" }, "/dev/urandom")),
        // Without these, libvirt adds a USB controller (its probe costs the guest kernel about
        // 0.3 s under TCG) and a balloon device: lago VMs have neither a USB device nor ballooning.
        el("controller", { type: "usb", model: "none" }),
        el("memballoon", { model: "none" }),
      ),
      def.runAs && el("seclabel", { type: "static", model: "dac", relabel: "no" }, el("label", undefined, `+${def.runAs.uid}:+${def.runAs.gid}`)),
    ),
  )}\n`;
}

export function dhcpHostXml(h: NetworkHostDef): string {
  return renderXml(el("host", { mac: h.mac, name: h.name, ip: h.ip }));
}

export function dnsHostXml(h: DnsHostDef): string {
  return renderXml(el("host", { ip: h.ip }, ...h.names.map((n) => el("hostname", undefined, n))));
}

export function rangeXml(r: { start: string; end: string }): string {
  return renderXml(el("range", { start: r.start, end: r.end }));
}

/** What a network's in-place edits work on. */
export type NetworkEntries = Pick<NetworkInfo, "hosts" | "dnsHosts" | "dhcp">;

/** One `virsh net-update`: its command, its section and the element. */
export interface NetUpdate {
  command: "add" | "delete";
  section: "ip-dhcp-host" | "dns-host" | "ip-dhcp-range";
  xml: string;
}

/**
 * The `net-update`s that take a network from `current` through `edits`, in order, skipping what is
 * already in place (libvirt refuses a duplicate), and the entries it has after them. An added host
 * replaces one with its MAC or its address; an added DNS entry, one with its address. Pure.
 */
export function planNetworkEdits(current: NetworkEntries, edits: readonly NetworkEdit[]): { updates: NetUpdate[]; after: NetworkEntries } {
  let { hosts, dnsHosts, dhcp } = current;
  const updates: NetUpdate[] = [];
  /** `list` with `same` (the entry in place, if any) replaced by `added` (none: removed); the updates that takes. */
  const replace = <T>(list: T[], section: NetUpdate["section"], xmlOf: (e: T) => string, same: T | undefined, added: T | undefined, equal: (a: T, b: T) => boolean): T[] => {
    if (same && added && equal(same, added)) return list;
    if (same) updates.push({ command: "delete", section, xml: xmlOf(same) });
    if (added) updates.push({ command: "add", section, xml: xmlOf(added) });
    return [...list.filter((e) => e !== same), ...(added ? [added] : [])];
  };
  for (const e of edits) {
    if (e.op === "add-host" || e.op === "remove-host") {
      const added = e.op === "add-host" ? { ...e.host, mac: e.host.mac.toLowerCase() } : undefined;
      const same = hosts.find((h) => h.mac === e.host.mac.toLowerCase() || h.ip === added?.ip);
      hosts = replace(hosts, "ip-dhcp-host", dhcpHostXml, same, added, (a, b) => a.mac === b.mac && a.ip === b.ip && a.name === b.name);
    } else if (e.op === "add-dns" || e.op === "remove-dns") {
      const same = dnsHosts.find((h) => h.ip === e.host.ip);
      dnsHosts = replace(dnsHosts, "dns-host", dnsHostXml, same, e.op === "add-dns" ? e.host : undefined, (a, b) => namesKey(a) === namesKey(b));
    } else {
      dhcp = replace(dhcp ? [dhcp] : [], "ip-dhcp-range", rangeXml, dhcp, e.range, (a, b) => a.start === b.start && a.end === b.end)[0];
    }
  }
  return { updates, after: { hosts, dnsHosts, dhcp } };
}

/** A DNS entry's names, in any order. Pure. */
const namesKey = (h: DnsHostDef): string => [...h.names].sort().join(",");

/** Whether two networks have the same hosts, DNS entries and DHCP range (in any order). Pure. */
export function sameNetworkEntries(a: NetworkEntries, b: NetworkEntries): boolean {
  const key = (n: NetworkEntries): string =>
    JSON.stringify([
      n.hosts.map((h) => `${h.mac.toLowerCase()}|${h.ip}|${h.name}`).sort(),
      n.dnsHosts.map((h) => `${h.ip}|${namesKey(h)}`).sort(),
      n.dhcp ? `${n.dhcp.start}-${n.dhcp.end}` : null,
    ]);
  return key(a) === key(b);
}

/** `uuid`: the existing network's, when redefining it (libvirt refuses a definition of that name with another). */
export function networkXml(def: NetworkDef, uuid?: string): string {
  // An isolated bridge has no gateway: no <ip> element (an empty string would render as a blank line).
  const ip =
    def.gateway !== "" &&
    el(
      "ip",
      { address: def.gateway, prefix: def.prefix },
      (def.dhcp || def.hosts.length > 0) &&
        el(
          "dhcp",
          undefined,
          def.dhcp && el("range", { start: def.dhcp.start, end: def.dhcp.end }),
          ...def.hosts.map((h) => el("host", { mac: h.mac, name: h.name, ip: h.ip })),
        ),
    );
  return `${renderXml(
    el(
      "network",
      undefined,
      el("name", undefined, def.name),
      uuid !== undefined && el("uuid", undefined, uuid),
      metadataElement(def.metadata),
      def.mode === "nat" && el("forward", { mode: "nat" }),
      // No STP: the bridge holds only the VMs' tap devices, so it cannot be part of a loop, and with STP on
      // the kernel keeps every new port blocked for twice its minimum forward delay (2 × 2 s), so a
      // guest's first DHCP discover is lost and it retries seconds later.
      el("bridge", { name: def.bridge, stp: "off", delay: 0 }),
      def.mtu !== undefined && el("mtu", { size: def.mtu }),
      def.domain !== undefined && def.domain !== "" && el("domain", { name: def.domain, localOnly: "yes" }),
      el(
        "dns",
        { enable: def.mode === "nat" ? "yes" : "no" },
        def.dnsForwarder && el("forwarder", { addr: def.dnsForwarder }),
        ...def.dnsHosts.map((h) => el("host", { ip: h.ip }, ...h.names.map((n) => el("hostname", undefined, n)))),
      ),
      ip,
    ),
  )}\n`;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: "@",
  isArray: (name) => ["disk", "interface", "host", "hostname", "range", "ip", "forwarder"].includes(name),
  parseAttributeValue: false,
  parseTagValue: false,
});

type X = Record<string, unknown>;
const asObj = (v: unknown): X => (v && typeof v === "object" && !Array.isArray(v) ? (v as X) : {});
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const text = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : String(asObj(v)["#text"] ?? ""));

function readMetadata(root: X): string | undefined {
  const meta = asObj(root.metadata);
  for (const [k, v] of Object.entries(meta)) {
    if (k.endsWith(":resource") && asObj(v)[`@xmlns:${k.split(":")[0]}`] === LAGO_NS) return Buffer.from(text(v), "base64").toString("utf8");
  }
  return undefined;
}

const KIB_PER: Record<string, number> = { b: 1 / 1024, bytes: 1 / 1024, k: 1, kib: 1, kb: 1000 / 1024, m: 1024, mib: 1024, mb: 1e6 / 1024, g: 1024 * 1024, gib: 1024 * 1024 };

function domainView(root: X): DomainView {
  const mem = asObj(root.memory);
  const unit = String(mem["@unit"] ?? "KiB").toLowerCase();
  const kib = Number(text(root.memory)) * (KIB_PER[unit] ?? 1);
  const devices = asObj(root.devices);
  const cpu = asObj(root.cpu);
  const hasCpu = root.cpu !== undefined;
  const mtu = (v: unknown): number | undefined => {
    const size = asObj(v)["@size"];
    return size === undefined ? undefined : Number(size);
  };
  return {
    memoryMiB: Math.round(kib / 1024),
    vcpu: Number(text(root.vcpu)),
    cpu: { mode: hasCpu ? String(cpu["@mode"] ?? "custom") : "none", model: cpu.model === undefined ? undefined : text(cpu.model) || undefined },
    nics: asArr(devices.interface).map((i) => {
      const nic = asObj(i);
      const network = asObj(nic.source)["@network"];
      return { mac: String(asObj(nic.mac)["@address"] ?? "").toLowerCase(), network: network === undefined ? undefined : String(network), mtu: mtu(nic.mtu) };
    }),
    disks: asArr(devices.disk).map((d) => {
      const disk = asObj(d);
      const source = asObj(disk.source);
      const file = source["@file"] ?? source["@dev"];
      const driver = asObj(disk.driver)["@type"];
      const bus = asObj(disk.target)["@bus"];
      return {
        dev: String(asObj(disk.target)["@dev"] ?? ""),
        path: file === undefined ? undefined : String(file),
        format: driver === undefined ? undefined : String(driver),
        bus: bus === undefined ? undefined : String(bus),
        device: String(disk["@device"] ?? "disk"),
      };
    }),
  };
}

/** Facts from a domain's XML (live or inactive): name, lago's metadata and what lago manages. */
export function parseDomainXml(xml: string): { name: string; metadata: string | undefined; view: DomainView } {
  const root = asObj(parser.parse(xml).domain);
  return { name: text(root.name), metadata: readMetadata(root), view: domainView(root) };
}

/** Facts from a network's XML. */
export function parseNetworkXml(xml: string): Omit<NetworkInfo, "active"> {
  const root = asObj(parser.parse(xml).network);
  const ip = asObj(asArr(root.ip)[0]);
  const dhcp = asObj(ip.dhcp);
  const range = asObj(asArr(dhcp.range)[0]);
  const dns = asObj(root.dns);
  const forwarder = asArr(dns.forwarder).map((f) => asObj(f)["@addr"]).find((a) => a !== undefined);
  const mtu = asObj(root.mtu)["@size"];
  const domain = asObj(root.domain)["@name"];
  return {
    name: text(root.name),
    bridge: String(asObj(root.bridge)["@name"] ?? ""),
    metadata: readMetadata(root),
    mode: root.forward === undefined ? "isolated" : String(asObj(root.forward)["@mode"] ?? "nat"),
    gateway: ip["@address"] === undefined ? undefined : String(ip["@address"]),
    mtu: mtu === undefined ? undefined : Number(mtu),
    domain: domain === undefined ? undefined : String(domain),
    forwarder: forwarder === undefined ? undefined : String(forwarder),
    dhcp: range["@start"] ? { start: String(range["@start"]), end: String(range["@end"]) } : undefined,
    hosts: asArr(dhcp.host).map((h) => ({ mac: String(asObj(h)["@mac"] ?? "").toLowerCase(), ip: String(asObj(h)["@ip"] ?? ""), name: String(asObj(h)["@name"] ?? "") })),
    dnsHosts: asArr(dns.host).map((h) => ({ ip: String(asObj(h)["@ip"] ?? ""), names: asArr(asObj(h).hostname).map(text) })),
  };
}

/** Replace the lago metadata element of a domain or network XML document. */
export function withMetadata(xml: string, metadata: string): string {
  const ours = renderXml(el("lago:resource", { "xmlns:lago": LAGO_NS }, Buffer.from(metadata).toString("base64")));
  // Only lago's own element is replaced; other tools' metadata stays.
  const ns = LAGO_NS.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const mine = new RegExp(`<(\\w+):resource xmlns:\\1=["']${ns}["']>[^<]*</\\1:resource>`);
  if (mine.test(xml)) return xml.replace(mine, ours);
  if (/<metadata>/.test(xml)) return xml.replace(/<metadata>/, `<metadata>\n    ${ours}`);
  if (/<metadata\/>/.test(xml)) return xml.replace(/<metadata\/>/, `<metadata>\n    ${ours}\n  </metadata>`);
  return xml.replace(/(<name>[^<]*<\/name>)/, `$1\n  ${renderXml(metadataElement(metadata))}`);
}
