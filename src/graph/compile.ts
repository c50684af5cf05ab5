/**
 * Compile a normalized spec into the desired resource graph. Pure and
 * deterministic: the same spec, template resolutions and prior state give the
 * same resources, byte for byte.
 */
import { sha256 } from "../util/hash.ts";
import { stringify } from "safe-stable-stringify";
import { ConfigError, type Diagnostic } from "../errors.ts";
import type { DomainSpec, EnvSpec, NetSpec } from "../spec/types.ts";
import type { TemplateRef } from "../drivers/types.ts";
import type { Attrs, DesiredResource, Json } from "../resources/types.ts";
import type { State } from "../state/state.ts";
import { diskAddress } from "../resources/common.ts";
import { isStoppedOnPurpose } from "../resources/domain-records.ts";

export type TemplateResolution = { type: "repo"; ref: TemplateRef } | { type: "path"; path: string; format: string };

export interface CompileInput {
  spec: EnvSpec;
  /** Resolved template of every template disk, by the disk's pointer. */
  templates: ReadonlyMap<string, TemplateResolution>;
  /** The recorded state: NIC addresses already handed out stay put. */
  prior: State;
  domainType: "kvm" | "qemu";
}

export const KEYPAIR = "keypair";

export function templateAddress(t: TemplateResolution): string {
  return t.type === "repo"
    ? `template.${t.ref.repo}:${t.ref.name}:${t.ref.version}`
    : // The image's format is part of its identity: two disks may read one file as different formats
      // (qcow2, the default, keeps the address it always had).
      `template.file:${t.path.split("/").pop() ?? "image"}@${sha256(t.format === "qcow2" ? t.path : `${t.path}\0${t.format}`).slice(0, 8)}`;
}

/** The key of a NIC: its net and its position among the VM's NICs on that net. */
export function nicKeys(domain: DomainSpec): string[] {
  const seen = new Map<string, number>();
  return domain.nics.map((nic) => {
    const n = seen.get(nic.net) ?? 0;
    seen.set(nic.net, n + 1);
    return `${nic.net}#${n}`;
  });
}

function hostOf(ip: string): number {
  return Number(ip.split(".")[3]);
}

function subnetOf(ip: string): string {
  return `${ip.split(".").slice(0, 3).join(".")}.0`;
}

/** Every NIC of the environment grouped by net, in domain order: `<vm>#<net>#<n>` keys. One pass. */
function nicsByNet(spec: EnvSpec): Map<string, { key: string; ip: string | undefined }[]> {
  const out = new Map<string, { key: string; ip: string | undefined }[]>();
  for (const d of spec.domains) {
    const keys = nicKeys(d);
    d.nics.forEach((nic, i) => {
      const list = out.get(nic.net) ?? [];
      list.push({ key: `${d.name}#${keys[i] ?? ""}`, ip: nic.ip });
      out.set(nic.net, list);
    });
  }
  return out;
}

/** The lowest host number from 2 in neither set (255 when there is none). */
function lowestFree(used: Set<number>, avoid: Set<number>): number {
  let n = 2;
  while (n <= 254 && (used.has(n) || avoid.has(n))) n++;
  return n;
}

/** Host number of a NAT net's gateway: its `gw`, else .1 as in Lago. */
function gatewayHost(net: NetSpec): number {
  return net.gw ? hostOf(net.gw) : 1;
}

/** The /24 a NAT net asks for: its gateway's, else its static IPs'. */
export function requestedSubnet(net: NetSpec, nics: { ip: string | undefined }[]): string | undefined {
  if (net.gw) return subnetOf(net.gw);
  const fixed = nics.find((n) => n.ip)?.ip;
  return fixed ? subnetOf(fixed) : undefined;
}

/**
 * Host numbers of every NIC on every NAT net, keyed `<net>` → `<vm>#<net>#<n>`.
 * Static IPs keep their host number; dynamic NICs keep the one recorded in the
 * prior state, and new ones take the lowest number from 2 that no NIC uses or
 * the prior state records (a freed number is reused by a later apply).
 */
function allocateHosts(spec: EnvSpec, prior: State, byNet: Map<string, { key: string; ip: string | undefined }[]>): Map<string, Map<string, number>> {
  const result = new Map<string, Map<string, number>>();
  for (const net of spec.nets) {
    if (net.type !== "nat") continue;
    const used = new Set<number>([0, gatewayHost(net), 255]);
    const hosts = new Map<string, number>();
    const dynamic: string[] = [];
    for (const { key, ip } of byNet.get(net.name) ?? []) {
      if (ip) {
        hosts.set(key, hostOf(ip));
        used.add(hostOf(ip));
      } else dynamic.push(key);
    }
    const recorded = prior.resources.get(`network.${net.name}`)?.attrs.hosts;
    const previous = new Map<string, number>();
    if (recorded && typeof recorded === "object" && !Array.isArray(recorded)) {
      for (const [key, value] of Object.entries(recorded)) {
        const host = value && typeof value === "object" && !Array.isArray(value) ? value.host : undefined;
        if (typeof host === "number") previous.set(key, host);
      }
    }
    const fresh: string[] = [];
    for (const key of dynamic) {
      const host = previous.get(key);
      if (host !== undefined && !used.has(host)) {
        hosts.set(key, host);
        used.add(host);
      } else fresh.push(key);
    }
    // A new NIC avoids every number the prior state still records: a VM deleted by this
    // apply may still be up with that address (and MAC) while the new one boots.
    const recordedHosts = new Set(previous.values());
    for (const key of fresh) {
      let host = lowestFree(used, recordedHosts);
      if (host > 254) host = lowestFree(used, new Set());
      if (host > 254) {
        throw new ConfigError([{ pos: spec.locate(net.pointer), pointer: net.pointer, message: `net ${net.name} has more NICs than addresses in its /24` }]);
      }
      hosts.set(key, host);
      used.add(host);
    }
    result.set(net.name, hosts);
  }
  return result;
}

/**
 * A bridge index per net, unique in the environment: kept from the prior
 * state, new nets take the lowest index no recorded net holds (so that a net
 * created while another is deleted never takes its bridge name).
 */
function allocateBridges(spec: EnvSpec, prior: State): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const r of prior.resources.values()) {
    if (r.kind === "network" && typeof r.attrs.bridge_index === "number") used.add(r.attrs.bridge_index);
  }
  const fresh: string[] = [];
  for (const net of spec.nets) {
    const index = prior.resources.get(`network.${net.name}`)?.attrs.bridge_index;
    if (typeof index === "number" && ![...out.values()].includes(index)) out.set(net.name, index);
    else fresh.push(net.name);
  }
  let next = 0;
  for (const name of fresh) {
    while (used.has(next) || [...out.values()].includes(next)) next++;
    out.set(name, next++);
  }
  return out;
}

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(o).sort()) Object.defineProperty(out, k, { value: o[k], enumerable: true, writable: true, configurable: true });
  return out;
}

/** qemu sizes images in 512-byte sectors: a size is rounded up to one, so that reality can match it. */
function sectorSize(bytes: number | undefined): number | null {
  return bytes === undefined ? null : Math.ceil(bytes / 512) * 512;
}

function cpuAttrs(d: DomainSpec): Attrs {
  if (d.cpuCustom) return { mode: "custom", custom: d.cpuCustom as Json };
  if (d.cpuModel) return { mode: "model", model: d.cpuModel };
  return { mode: "host-passthrough" };
}

function busOf(dev: string): "virtio" | "scsi" | "ide" {
  return dev.startsWith("sd") ? "scsi" : dev.startsWith("hd") ? "ide" : "virtio";
}

/** Compile; throws ConfigError (with positions) for what lago cannot build. */
export function compile(input: CompileInput): DesiredResource[] {
  const { spec } = input;
  const diagnostics: Diagnostic[] = [];
  const unsupported = (pointer: string, message: string): void => {
    diagnostics.push({ pos: spec.locate(pointer), pointer, message });
  };
  const out: DesiredResource[] = [];
  const add = (r: DesiredResource): void => {
    out.push({ ...r, dependsOn: [...new Set(r.dependsOn)].sort() });
  };

  add({ address: KEYPAIR, kind: "keypair", attrs: { algorithm: "ed25519" }, dependsOn: [], pointer: "" });

  const byNet = nicsByNet(spec);
  const hosts = allocateHosts(spec, input.prior, byNet);
  const mgmtNet = new Map<string, string>();
  // Lago: a non-management net forwards DNS to the (first) management net, so a
  // VM on several nets resolves the environment's names whichever DHCP answered last.
  const dnsHub = spec.nets.find((n) => n.management && n.type === "nat");
  const bridges = allocateBridges(spec, input.prior);
  for (const net of spec.nets) {
    const deps: string[] = [];
    const forward = dnsHub && net.type === "nat" && !net.management ? dnsHub : undefined;
    if (forward) deps.push(`lease.${forward.name}`);
    const requested = net.type === "nat" ? requestedSubnet(net, byNet.get(net.name) ?? []) : undefined;
    if (net.type === "nat") {
      add({ address: `lease.${net.name}`, kind: "lease", attrs: { net: net.name, requested: requested ?? null }, dependsOn: [], pointer: net.pointer });
      deps.push(`lease.${net.name}`);
    }
    const netHosts: Record<string, Json> = {};
    const dns: Record<string, string[]> = {};
    for (const [key, host] of [...(hosts.get(net.name) ?? new Map<string, number>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const vm = key.slice(0, key.indexOf("#"));
      netHosts[key] = { vm, host };
      // On the management net, a VM's first NIC there answers to the VM's name.
      if (net.management && key.endsWith("#0")) dns[`h${host}`] = [...(dns[`h${host}`] ?? []), vm].sort();
    }
    for (const [name, ip] of Object.entries(net.dnsRecords)) dns[ip] = [...(dns[ip] ?? []), name].sort();
    add({
      address: `network.${net.name}`,
      kind: "network",
      attrs: {
        net: net.name,
        type: net.type,
        management: net.management,
        bridge_index: bridges.get(net.name) ?? 0,
        gateway: net.type === "nat" ? gatewayHost(net) : null,
        dhcp: net.dhcp && net.type === "nat" ? { start: net.dhcp.start, end: net.dhcp.end } : null,
        dns_domain: net.type === "nat" ? (net.dnsDomainName ?? null) : null,
        dns: sortedObject(dns),
        dns_forward: forward ? { net: forward.name, gateway: gatewayHost(forward) } : null,
        mtu: net.mtu ?? null,
        hosts: netHosts,
        active: true,
      },
      dependsOn: deps,
      pointer: net.pointer,
    });
  }

  const templatesAdded = new Set<string>();
  const netsByName = new Map(spec.nets.map((n) => [n.name, n]));
  for (const d of spec.domains) {
    if (d.vmProvider !== "local-libvirt") {
      unsupported(`${d.pointer}/vm-provider`, `vm-provider ${JSON.stringify(d.vmProvider)} is not supported: lago manages local libvirt VMs only`);
      continue;
    }
    if (d.ova) {
      unsupported(`${d.pointer}/type`, `OVA domains (type: ova) are not supported by lago: convert the appliance to a qcow2 template and use a template disk`);
      continue;
    }
    const domainDeps = [KEYPAIR];
    const disks: Record<string, Json> = {};
    d.disks.forEach((disk, index) => {
      const address = diskAddress(d.name, disk.name);
      if (disk.url) {
        unsupported(`${disk.pointer}/url`, `disks downloaded from a url are not supported by lago: download the image and name it with path`);
        return;
      }
      let template: string | null = null;
      if (disk.type === "template") {
        const resolution = input.templates.get(disk.pointer);
        if (!resolution) {
          unsupported(`${disk.pointer}/template_name`, `template disk ${disk.name} has no resolved template`);
          return;
        }
        template = templateAddress(resolution);
        if (!templatesAdded.has(template)) {
          templatesAdded.add(template);
          add({
            address: template,
            kind: "template",
            attrs:
              resolution.type === "repo"
                ? {
                    repo: resolution.ref.repo,
                    name: resolution.ref.name,
                    version: resolution.ref.version,
                    handle: resolution.ref.handle,
                    source: { type: resolution.ref.source.type, location: resolution.ref.source.location },
                  }
                : { path: resolution.path, format: resolution.format },
            dependsOn: [],
            pointer: `${disk.pointer}/template_name`,
          });
        }
      }
      // Lago's bootstrap (key, host name, root password) on the first disk; build steps that set the
      // host name or the root password win, as they ran after it in Lago's one virt-customize run.
      const stepOptions = disk.build.flatMap((step) => step.options);
      const bootstrap: Attrs | null =
        index === 0 && disk.type === "template" && d.bootstrap
          ? {
              hostname: stepOptions.filter((o) => o.option === "hostname" && o.arg).pop()?.arg ?? d.name,
              ssh_user: d.sshUser,
              root_password: stepOptions.some((o) => o.option === "root-password") ? null : (d.rootPassword ?? null),
            }
          : null;
      const steps = disk.build.map((step) => ({
        builder: step.builder,
        // The host files an option reads, as the spec layer resolved and checked them.
        options: step.options.map((o) => ({ option: o.option, arg: o.arg ?? null, ...(o.hostPaths.length ? { host_paths: [...o.hostPaths] } : {}) })),
      }));
      const buildAttrs: Attrs | undefined =
        disk.type === "template" && template && disk.build.length > 0
          ? {
              vm: d.name,
              disk: disk.name,
              template,
              steps,
              inject_user: stepOptions.some((o) => o.option === "ssh-inject" && !o.arg) ? d.sshUser : null,
              // The boot disk of a bootstrapped VM: its steps may run in the guest at first boot (resources/first-boot.ts).
              // Present only then, so that builds recorded before it existed read back unchanged.
              ...(bootstrap ? { first_boot: true } : {}),
            }
          : undefined;
      const external = disk.type === "file" && disk.path !== undefined;
      const buildAddress = diskAddress(d.name, disk.name, "build");
      if (buildAttrs) {
        add({
          address: buildAddress,
          kind: "build",
          attrs: buildAttrs,
          dependsOn: [String(buildAttrs.template), ...(buildAttrs.inject_user ? [KEYPAIR] : [])],
          pointer: disk.pointer,
        });
      }
      add({
        address,
        kind: "disk",
        attrs: {
          vm: d.name,
          name: disk.name,
          type: disk.type,
          format: disk.type === "template" ? "qcow2" : disk.format,
          // An existing image (`file` with `path`) is used as it is: a `size` beside it does not apply.
          size: external ? null : sectorSize(disk.size),
          template,
          path: external ? (disk.path ?? null) : null,
          // The recipe of its build (the template is an attribute of its own).
          build_sha256: buildAttrs ? sha256(stringify({ steps: buildAttrs.steps, inject_user: buildAttrs.inject_user }) ?? "") : null,
          bootstrap,
        },
        dependsOn: [...(template ? [template] : []), ...(buildAttrs ? [buildAddress] : []), ...(bootstrap ? [KEYPAIR] : [])],
        pointer: disk.pointer,
      });
      domainDeps.push(address);
      disks[disk.name] = {
        dev: disk.dev,
        bus: busOf(disk.dev),
        format: disk.type === "template" ? "qcow2" : disk.format === "iso" ? "raw" : disk.format,
        device: disk.format === "iso" ? "cdrom" : "disk",
        boot: index === 0,
        kind: disk.type === "template" ? "template" : "data",
      };
    });

    const nics: Record<string, Json> = {};
    const keys = nicKeys(d);
    d.nics.forEach((nic, i) => {
      const key = keys[i] ?? `${nic.net}#0`;
      const net = netsByName.get(nic.net);
      if (!net) return;
      if (net.management) mgmtNet.set(d.name, key);
      nics[key] = {
        net: nic.net,
        index: i,
        host: hosts.get(nic.net)?.get(`${d.name}#${key}`) ?? null,
        mtu: nic.mtu ?? net.mtu ?? null,
      };
      domainDeps.push(`network.${nic.net}`);
    });
    // A VM the user stopped on purpose (`lago stop`) stays stopped until `lago start`.
    const wanted = !isStoppedOnPurpose(input.prior.resources.get(`domain.${d.name}`));
    add({
      address: `domain.${d.name}`,
      kind: "domain",
      attrs: {
        name: d.name,
        domain_type: input.domainType,
        memory: d.memory,
        vcpu: d.vcpu,
        cpu: cpuAttrs(d),
        disks,
        nics,
        management_nic: mgmtNet.get(d.name) ?? null,
        ssh_user: d.sshUser,
        running: wanted,
        ready: wanted,
      },
      dependsOn: domainDeps,
      pointer: d.pointer,
    });
  }
  if (diagnostics.length) throw new ConfigError(diagnostics);
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}
