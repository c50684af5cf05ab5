/**
 * Turns a validated init-file document into the normalized {@link EnvSpec}:
 * Lago's defaults applied, numbers parsed, `$VARS` expanded in paths, and
 * domains and nets sorted by name (disks and NICs keep file order). Pure: the
 * same document, file and environment always give the same spec.
 */
import path from "node:path";
import { byName, DEFAULT_DNS_DOMAIN, selectManagementNets } from "./management.ts";
import { isRecord, joinPointer } from "./pointer.ts";
import { parseSize } from "./size.ts";
import type { BuildStep, CustomizeOption, DiskSpec, DomainSpec, EnvSpec, Locator, NetSpec, NicSpec } from "./types.ts";
import { DHCP_DEFAULT } from "./validate.ts";

/** Lago's defaults for what a domain does not set. */
export const DOMAIN_DEFAULTS = {
  memory: 1024,
  vcpu: 2,
  sshUser: "root",
  vmType: "default",
  vmProvider: "local-libvirt",
} as const;

export interface NormalizeInput {
  /** The document after schema and semantic validation (no diagnostics). */
  doc: unknown;
  file: string;
  sha256: string;
  locate: Locator;
  /** Variables for `$VAR` expansion (`LAGO_INITFILE_PATH` is added). */
  env: Record<string, string | undefined>;
  /** Resolved host paths of build options, by the pointer of their argument (from `checkHostAccess`). */
  hostPaths?: ReadonlyMap<string, string[]>;
}

const VAR = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Python's `os.path.expandvars`: `$VAR` and `${VAR}`; unknown variables are
 * left as written, or replaced by what `unknown` returns (it may throw).
 */
export function expandVars(text: string, env: Record<string, string | undefined>, unknown?: (name: string) => string): string {
  return text.replace(VAR, (whole: string, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    const value = env[name];
    return value !== undefined ? value : unknown ? unknown(name) : whole;
  });
}

function str(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  return undefined;
}

function int(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string" && /^[0-9]+$/.test(v)) return Number(v);
  return undefined;
}

function record(v: unknown): Record<string, unknown> {
  return isRecord(v) ? v : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** Builds the {@link EnvSpec}; assumes the document passed validation. */
export function normalize(input: NormalizeInput): EnvSpec {
  const doc = record(input.doc);
  const netsIn = record(doc.nets);
  const domainsIn = record(doc.domains);
  const dir = path.dirname(input.file);
  const env = { ...input.env, LAGO_INITFILE_PATH: dir };
  const management = new Set(selectManagementNets(netsIn).names);

  const nets = Object.keys(netsIn)
    .sort(byName)
    .map((name) => normalizeNet(name, record(netsIn[name]), management.has(name)));
  const netMtu = new Map(nets.map((n) => [n.name, n.mtu]));

  const domains = Object.keys(domainsIn)
    .sort(byName)
    .map((name) => normalizeDomain(name, record(domainsIn[name]), { dir, env, netMtu, hostPaths: input.hostPaths ?? new Map() }));

  return { file: input.file, sha256: input.sha256, domains, nets, locate: input.locate };
}

function normalizeNet(name: string, net: Record<string, unknown>, management: boolean): NetSpec {
  const type = net.type === "bridge" ? "bridge" : "nat";
  const dhcpIn = net.dhcp;
  let dhcp: NetSpec["dhcp"];
  if (isRecord(dhcpIn)) {
    dhcp = { start: int(dhcpIn.start) ?? DHCP_DEFAULT.start, end: int(dhcpIn.end) ?? DHCP_DEFAULT.end };
  } else if (type === "nat") {
    dhcp = { start: DHCP_DEFAULT.start, end: DHCP_DEFAULT.end };
  }
  const dnsRecords: Record<string, string> = {};
  for (const [host, ip] of Object.entries(record(net.dns_records)).sort(([a], [b]) => byName(a, b))) {
    if (typeof ip === "string") Object.defineProperty(dnsRecords, host, { value: ip, enumerable: true, writable: true, configurable: true });
  }
  return {
    name,
    pointer: joinPointer("/nets", name),
    type,
    management,
    dhcp,
    gw: typeof net.gw === "string" ? net.gw : undefined,
    dnsDomainName: management ? (typeof net.dns_domain_name === "string" ? net.dns_domain_name : DEFAULT_DNS_DOMAIN) : undefined,
    dnsRecords,
    mtu: int(net.mtu),
  };
}

interface DomainContext {
  dir: string;
  env: Record<string, string | undefined>;
  netMtu: Map<string, number | undefined>;
  hostPaths: ReadonlyMap<string, string[]>;
}

function normalizeDomain(name: string, d: Record<string, unknown>, ctx: DomainContext): DomainSpec {
  const pointer = joinPointer("/domains", name);
  const groups = typeof d.groups === "string" ? [d.groups] : list(d.groups).filter((g): g is string => typeof g === "string");
  return {
    name,
    pointer,
    memory: int(d.memory) ?? DOMAIN_DEFAULTS.memory,
    vcpu: int(d.vcpu) ?? int(d.cpus) ?? int(d.cpu) ?? DOMAIN_DEFAULTS.vcpu,
    cpuModel: typeof d.cpu_model === "string" ? d.cpu_model : undefined,
    cpuCustom: isRecord(d.cpu_custom) ? d.cpu_custom : undefined,
    nics: list(d.nics).map((nic, i) => normalizeNic(record(nic), joinPointer(joinPointer(pointer, "nics"), i), ctx)),
    disks: list(d.disks).map((disk, i) => normalizeDisk(record(disk), joinPointer(joinPointer(pointer, "disks"), i), ctx)),
    bootstrap: typeof d.bootstrap === "boolean" ? d.bootstrap : true,
    sshUser: typeof d["ssh-user"] === "string" ? d["ssh-user"] : DOMAIN_DEFAULTS.sshUser,
    rootPassword: str(d["root-password"]),
    groups,
    artifacts: list(d.artifacts).filter((a): a is string => typeof a === "string"),
    vmType: typeof d["vm-type"] === "string" ? d["vm-type"] : DOMAIN_DEFAULTS.vmType,
    vmProvider: typeof d["vm-provider"] === "string" ? d["vm-provider"] : DOMAIN_DEFAULTS.vmProvider,
    serviceProvider: typeof d.service_provider === "string" ? d.service_provider : undefined,
    distro: typeof d.distro === "string" ? d.distro : undefined,
    metadata: d.metadata === undefined || d.metadata === null ? {} : d.metadata,
    sshPassword: str(d["ssh-password"]),
    ova:
      d.type === "ova"
        ? { url: typeof d.url === "string" ? expandVars(d.url, ctx.env) : undefined, bootTimeSec: int(d.boot_time_sec) }
        : undefined,
  };
}

function normalizeNic(nic: Record<string, unknown>, pointer: string, ctx: DomainContext): NicSpec {
  const net = typeof nic.net === "string" ? nic.net : "";
  return {
    net,
    pointer,
    ip: typeof nic.ip === "string" ? nic.ip : undefined,
    mtu: int(nic.mtu) ?? ctx.netMtu.get(net),
  };
}

/** Expands `$VARS`, then resolves a relative result against the init file's directory. */
function resolveImagePath(p: string, ctx: DomainContext): string {
  const expanded = expandVars(p, ctx.env);
  // A path still starting with an unknown `$VAR` is kept as written: resolving
  // it against the init file's directory would only hide the missing variable.
  if (expanded.startsWith("$")) return expanded;
  return path.resolve(ctx.dir, expanded);
}

function normalizeDisk(disk: Record<string, unknown>, pointer: string, ctx: DomainContext): DiskSpec {
  const type = disk.type === "file" || disk.type === "empty" ? disk.type : "template";
  const format = disk.format === "raw" || disk.format === "iso" ? disk.format : "qcow2";
  const dev = typeof disk.dev === "string" ? disk.dev : typeof disk.device === "string" ? disk.device : "";
  return {
    name: typeof disk.name === "string" ? disk.name : "",
    pointer,
    dev,
    type,
    format,
    templateName: typeof disk.template_name === "string" ? disk.template_name : undefined,
    templateVersion: str(disk.template_version),
    path: typeof disk.path === "string" ? resolveImagePath(disk.path, ctx) : undefined,
    size: parseSize(disk.size)?.bytes,
    build: list(disk.build).map((step, j) => normalizeBuildStep(record(step), joinPointer(joinPointer(joinPointer(pointer, "build"), j), "virt-customize"), ctx)),
    templateType: typeof disk.template_type === "string" ? disk.template_type : undefined,
    url: typeof disk.url === "string" ? expandVars(disk.url, ctx.env) : undefined,
  };
}

function normalizeBuildStep(step: Record<string, unknown>, pointer: string, ctx: DomainContext): BuildStep {
  const options: CustomizeOption[] = [];
  for (const [option, value] of Object.entries(record(step["virt-customize"]))) {
    const optionPointer = joinPointer(pointer, option);
    const args = Array.isArray(value) ? value.map((v, k) => [v, joinPointer(optionPointer, k)] as const) : [[value, optionPointer] as const];
    for (const [arg, argPointer] of args) {
      options.push({
        option,
        arg: arg === null || arg === undefined || arg === "" ? undefined : String(arg),
        hostPaths: ctx.hostPaths.get(argPointer) ?? [],
      });
    }
  }
  return { builder: "virt-customize", options };
}
