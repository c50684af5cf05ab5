/**
 * Semantic validation of a LagoInitFile, after schema validation and after
 * prototypes are applied: the rules a JSON Schema cannot express (references
 * between nets and NICs, Lago's management-network rules, addresses,
 * uniqueness, safe names, what each disk type needs). Values of the wrong type
 * are skipped here: the schema already reported them.
 */
import type { DiagnosticSink } from "./diagnostics.ts";
import { didYouMean } from "./did-you-mean.ts";
import { hostNumber, isIpv4, subnet24 } from "./ipv4.ts";
import { selectManagementNets } from "./management.ts";
import { unsafeNameMessage } from "./names.ts";
import { isRecord, joinPointer, pointerLabel } from "./pointer.ts";
import { MIB, parseSize } from "./size.ts";

export const DHCP_DEFAULT = { start: 100, end: 254 } as const;

interface Context {
  doc: unknown;
  sink: DiagnosticSink;
  nets: Record<string, unknown>;
  management: Set<string>;
  /** Static IP → pointer of the NIC `ip` that uses it first. */
  staticIps: Map<string, string>;
  /** Net name → the /24 its static IPs must be in, and why. */
  subnets: Map<string, { subnet: string; because: string }>;
}

function tick(s: string): string {
  return `\`${s}\``;
}

const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** `cpu_custom` becomes libvirt CPU XML: every key must be an element name, `@attribute` or `#text`. */
function validateCpuCustom(ctx: Context, value: Record<string, unknown>, pointer: string): void {
  for (const [key, v] of Object.entries(value)) {
    const here = joinPointer(pointer, key);
    const name = key.startsWith("@") ? key.slice(1) : key;
    if (key !== "#text" && !XML_NAME.test(name)) {
      ctx.sink.atKey(here, `${tick(key)} cannot be a CPU XML ${key.startsWith("@") ? "attribute" : "element"} name: use letters, digits, \`_\`, \`-\` and \`.\` (\`@name\` for an attribute, \`#text\` for text)`);
    }
    const items = Array.isArray(v) ? v : [v];
    for (const item of items) if (isRecord(item)) validateCpuCustom(ctx, item, here);
  }
}

/** Reports every semantic problem of `doc` into `sink`. */
export function validateSemantics(doc: unknown, sink: DiagnosticSink): void {
  if (!isRecord(doc)) return;
  const domains = isRecord(doc.domains) ? doc.domains : {};
  const nets = isRecord(doc.nets) ? doc.nets : {};
  const selection = selectManagementNets(nets);
  const ctx: Context = {
    doc,
    sink,
    nets,
    management: new Set(selection.names),
    staticIps: new Map(),
    subnets: new Map(),
  };

  for (const [name, net] of Object.entries(nets)) {
    const pointer = joinPointer("/nets", name);
    const unsafe = unsafeNameMessage("net name", name);
    if (unsafe) sink.atKey(pointer, unsafe);
    if (isRecord(net)) validateNet(ctx, name, net, pointer, selection.implicit ? selection.names[0] : undefined);
  }
  for (const [name, domain] of Object.entries(domains)) {
    const pointer = joinPointer("/domains", name);
    const unsafe = unsafeNameMessage("domain name", name);
    if (unsafe) sink.atKey(pointer, unsafe);
    if (isRecord(domain)) validateDomain(ctx, name, domain, pointer);
  }
}

function validateNet(ctx: Context, name: string, net: Record<string, unknown>, pointer: string, implicitManagement: string | undefined): void {
  const { sink } = ctx;
  const dhcp = net.dhcp;
  if (isRecord(dhcp)) {
    const start = Number.isInteger(dhcp.start) ? Number(dhcp.start) : dhcp.start === undefined ? DHCP_DEFAULT.start : undefined;
    const end = Number.isInteger(dhcp.end) ? Number(dhcp.end) : dhcp.end === undefined ? DHCP_DEFAULT.end : undefined;
    if (start !== undefined && end !== undefined && start > end) {
      const which = joinPointer(joinPointer(pointer, "dhcp"), dhcp.start === undefined ? "end" : "start");
      const startText = dhcp.start === undefined ? `${start} (the default)` : String(start);
      const endText = dhcp.end === undefined ? `${end} (the default)` : String(end);
      sink.at(which, `DHCP range of net ${tick(name)} is empty: start ${startText} is greater than end ${endText}`);
    }
  }
  if (isIpv4(net.gw)) {
    const host = hostNumber(net.gw);
    if (host === 0 || host === 255) {
      sink.at(joinPointer(pointer, "gw"), `gw ${tick(net.gw)} of net ${tick(name)} must end in .1 to .254 (.0 is the network address, .255 the broadcast address)`);
    } else {
      ctx.subnets.set(name, { subnet: subnet24(net.gw), because: `from its gw ${net.gw}` });
    }
  }
  if (!ctx.management.has(name)) {
    const why =
      implicitManagement !== undefined
        ? ` (no net sets \`management: true\`, so the first net by name, ${tick(implicitManagement)}, is the management network)`
        : "";
    for (const key of ["dns_domain_name", "dns_records"]) {
      if (net[key] !== undefined) {
        sink.atKey(
          joinPointer(pointer, key),
          `net ${tick(name)} sets \`${key}\` but is not a management network: Lago serves DNS only on management networks${why}`,
        );
      }
    }
  }
}

function validateDomain(ctx: Context, name: string, domain: Record<string, unknown>, pointer: string): void {
  const { sink } = ctx;
  // An unresolved `based-on` (already reported) leaves the domain incomplete.
  if (Object.hasOwn(domain, "based-on")) return;
  validateNics(ctx, name, domain, pointer);

  if (domain.cpu_model !== undefined && domain.cpu_custom !== undefined) {
    sink.atKey(joinPointer(pointer, "cpu_custom"), `domain ${tick(name)} sets both \`cpu_model\` and \`cpu_custom\`; use one of them`);
  }
  if (isRecord(domain.cpu_custom)) validateCpuCustom(ctx, domain.cpu_custom, joinPointer(pointer, "cpu_custom"));
  for (const key of ["url", "boot_time_sec"]) {
    if (domain[key] !== undefined && domain.type !== "ova") {
      sink.atKey(joinPointer(pointer, key), `\`${key}\` only applies to OVA domains (\`type: ova\`)`);
    }
  }
  if (Array.isArray(domain.disks)) validateDisks(ctx, name, domain.disks, joinPointer(pointer, "disks"));
}

function validateNics(ctx: Context, name: string, domain: Record<string, unknown>, pointer: string): void {
  const { sink, nets } = ctx;
  const nicsPointer = joinPointer(pointer, "nics");
  const nics = domain.nics;
  if (nics === undefined || (Array.isArray(nics) && nics.length === 0)) {
    sink.at(
      nics === undefined ? pointer : nicsPointer,
      `domain ${tick(name)} has no NICs: it needs one on a management network, which Lago uses to reach the VM over SSH`,
    );
    return;
  }
  if (!Array.isArray(nics)) return;

  const onManagement: Array<{ net: string; pointer: string }> = [];
  let allKnown = true;
  nics.forEach((nic: unknown, i) => {
    if (!isRecord(nic)) return;
    const nicPointer = joinPointer(nicsPointer, i);
    const net = nic.net;
    if (typeof net !== "string") {
      allKnown = false;
      return;
    }
    if (!Object.hasOwn(nets, net)) {
      allKnown = false;
      const defined = Object.keys(nets);
      const hint = didYouMean(net, defined) || (defined.length > 0 ? ` (defined nets: ${defined.map(tick).join(", ")})` : "");
      sink.at(joinPointer(nicPointer, "net"), `NIC of domain ${tick(name)} is on net ${tick(net)}, which is not defined in \`nets\`${hint}`);
      return;
    }
    if (ctx.management.has(net)) onManagement.push({ net, pointer: joinPointer(nicPointer, "net") });
    if (isIpv4(nic.ip)) validateStaticIp(ctx, net, nic.ip, joinPointer(nicPointer, "ip"));
  });

  if (!allKnown) return;
  if (onManagement.length === 0) {
    // Built only here: with one management net per few domains, building it for every domain is quadratic.
    const mgmt = [...ctx.management].map(tick).join(", ");
    const which = ctx.management.size === 1 ? `the management network ${mgmt}` : `a management network (${mgmt})`;
    sink.at(nicsPointer, `domain ${tick(name)} has no NIC on ${which}: Lago reaches the VM over SSH through it`);
  } else if (onManagement.length > 1) {
    const second = onManagement[1];
    if (second) {
      sink.at(
        second.pointer,
        `domain ${tick(name)} has ${onManagement.length} NICs on management networks (${onManagement.map((n) => tick(n.net)).join(", ")}); it must have exactly one`,
      );
    }
  }
}

function validateStaticIp(ctx: Context, net: string, ip: string, pointer: string): void {
  const { sink } = ctx;
  const host = hostNumber(ip);
  if (host === 0 || host === 1 || host === 255) {
    const role = host === 0 ? "the network address" : host === 1 ? "the gateway address" : "the broadcast address";
    sink.at(pointer, `static IP ${tick(ip)} ends in .${host}, ${role} of its /24; static IPs must end in .2 to .254`);
    return;
  }
  const netSpec = ctx.nets[net];
  if (isRecord(netSpec) && netSpec.gw === ip) {
    sink.at(pointer, `static IP ${tick(ip)} is the gateway address (gw) of net ${tick(net)}`);
    return;
  }
  const first = ctx.staticIps.get(ip);
  if (first !== undefined) {
    sink.at(pointer, `static IP ${tick(ip)} is already used by ${tick(pointerLabel(first, ctx.doc))}; static IPs must be unique`);
    return;
  }
  ctx.staticIps.set(ip, pointer);
  const subnet = ctx.subnets.get(net);
  if (!subnet) {
    ctx.subnets.set(net, { subnet: subnet24(ip), because: `from its first static IP, ${ip} at ${tick(pointerLabel(pointer, ctx.doc))}` });
  } else if (subnet.subnet !== subnet24(ip)) {
    sink.at(pointer, `static IP ${tick(ip)} is outside net ${tick(net)}'s subnet ${subnet.subnet} (${subnet.because}); all static IPs of a net must be in one /24`);
  }
}

function validateDisks(ctx: Context, domainName: string, disks: unknown[], disksPointer: string): void {
  const { sink } = ctx;
  const names = new Map<string, string>();
  const devs = new Map<string, string>();
  disks.forEach((disk: unknown, i) => {
    if (!isRecord(disk)) return;
    const pointer = joinPointer(disksPointer, i);
    const label = typeof disk.name === "string" ? `disk ${tick(disk.name)} of domain ${tick(domainName)}` : `disk ${i} of domain ${tick(domainName)}`;

    if (typeof disk.name === "string") {
      const unsafe = unsafeNameMessage("disk name", disk.name);
      if (unsafe) sink.at(joinPointer(pointer, "name"), unsafe);
      // `disk.<vm>.<disk>` must name one disk: VM names may contain dots, so disk names may not.
      else if (disk.name.includes(".")) sink.at(joinPointer(pointer, "name"), `disk name ${tick(disk.name)} contains \`.\`: disk names may not (lago addresses disks as disk.<vm>.<disk>, and VM names may contain dots); use \`_\` or \`-\``);
      const first = names.get(disk.name);
      if (first !== undefined) {
        sink.at(joinPointer(pointer, "name"), `disk name ${tick(disk.name)} is used twice in domain ${tick(domainName)} (first by ${tick(pointerLabel(first, ctx.doc))}); disk names must be unique within a domain`);
      } else {
        names.set(disk.name, pointer);
      }
    }

    if (typeof disk.dev === "string" && typeof disk.device === "string" && disk.dev !== disk.device) {
      sink.atKey(joinPointer(pointer, "device"), `${label} sets both \`dev\` (${disk.dev}) and \`device\` (${disk.device}), which are the same setting; keep one`);
    }
    const devKey = typeof disk.dev === "string" ? "dev" : "device";
    const dev = disk[devKey];
    if (typeof dev === "string") {
      const first = devs.get(dev);
      if (first !== undefined) {
        sink.at(joinPointer(pointer, devKey), `device ${tick(dev)} is used by two disks of domain ${tick(domainName)} (${tick(pointerLabel(first, ctx.doc))} and ${tick(pointerLabel(pointer, ctx.doc))}); devices must be unique within a domain`);
      } else {
        devs.set(dev, pointer);
      }
    }

    for (const key of ["template_name", "template_version"]) {
      const v = disk[key];
      const text = typeof v === "number" ? String(v) : v;
      if (typeof text === "string") {
        const unsafe = unsafeNameMessage(key === "template_name" ? "template name" : "template version", text);
        if (unsafe) sink.at(joinPointer(pointer, key), unsafe);
      }
    }

    const type = disk.type ?? "template";
    const has = (k: string): boolean => disk[k] !== undefined && disk[k] !== null;
    if (type === "template" && !has("template_name") && !has("path")) {
      sink.at(pointer, `template ${label} needs \`template_name\` (a template from the repository) or \`path\` (a local image)`);
    } else if (type === "file" && !has("path") && !has("size") && !has("url")) {
      sink.at(pointer, `file ${label} needs \`path\` (an existing image), \`url\` (an image to download) or \`size\` (to create a new one)`);
    } else if (type === "empty" && !has("size")) {
      sink.at(pointer, `empty ${label} needs a \`size\`, like 10G`);
    }
    const devName = typeof disk.dev === "string" ? disk.dev : typeof disk.device === "string" ? disk.device : undefined;
    if (disk.format === "iso" && devName?.startsWith("vd")) {
      sink.at(joinPointer(pointer, typeof disk.dev === "string" ? "dev" : "device"), `${label} is an ISO image (a CD-ROM), which cannot sit on a virtio device like ${tick(devName)}: use an \`sd*\` (SCSI) or \`hd*\` (IDE) device`);
    }
    if (disk.format === "iso" && type !== "file") {
      sink.at(joinPointer(pointer, "format"), `format \`iso\` is only for \`file\` disks (an ISO image given by \`path\` or \`url\`), but ${label} is ${type === "empty" ? "an empty" : "a template"} disk`);
    }

    const size = parseSize(disk.size);
    if (size && size.bytes < MIB) {
      const written = typeof disk.size === "string" ? disk.size : String(disk.size);
      const hint = size.suffixed ? "" : ` — sizes are in bytes unless suffixed: did you mean ${size.amount}G?`;
      sink.at(joinPointer(pointer, "size"), `size ${tick(written)} of ${label} is under 1 MiB${hint}`);
    }
  });
}
