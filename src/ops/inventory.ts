/**
 * `lago ansible_hosts`: an Ansible inventory of the environment, as Lago
 * makes it. Each VM is grouped by the value of each key path into its spec
 * (default `vm-type`, `groups`, `vm-provider`; nested paths such as
 * `disks/0/metadata/distro`, numbers index lists) as `KEY=VALUE`, and by each
 * of its `groups` by name. Host variables: `ansible_host`, `ansible_user`,
 * `ansible_ssh_private_key_file`, and SSH options that check the host key
 * lago pinned. Rendered as INI, or as Ansible's dynamic-inventory JSON.
 */
import { existsSync, readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";
import type { DomainSpec, EnvSpec } from "../spec/types.ts";
import type { OpsContext } from "./context.ts";
import { shellQuote } from "./command-line.ts";
import { knownHostsFile, sshConfig } from "./ssh-config.ts";
import { readView, type EnvView, type VmView } from "./view.ts";

export const DEFAULT_INVENTORY_KEYS: readonly string[] = ["vm-type", "groups", "vm-provider"];

export interface InventoryHost {
  name: string;
  vars: Record<string, string>;
}

export interface Inventory {
  /** Group name → host names (sorted). */
  groups: Map<string, string[]>;
  hosts: InventoryHost[];
}

/** Lago's `get_key`: follow `key` (`a/b/0/c`, a leading `/` allowed; `/` alone is the whole value) into `data`. Pure. */
export function getKey(key: string, data: unknown): unknown {
  if (key === "/") return data;
  const parts = key.split("/");
  if (parts[0] === "") parts.shift();
  let current: unknown = data;
  for (const part of parts) {
    if (Array.isArray(current)) {
      if (!/^-?\d+$/.test(part)) return undefined;
      const i = Number(part);
      current = current[i < 0 ? current.length + i : i];
    } else if (current && typeof current === "object") {
      current = Object.hasOwn(current, part) ? (current as Record<string, unknown>)[part] : undefined;
    } else return undefined;
    if (current === undefined) return undefined;
  }
  return current;
}

function scalar(v: unknown): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** Group the hosts by `keys` (see the module comment). Pure. */
export function groupHosts(hosts: { name: string; spec: unknown }[], keys: readonly string[]): Map<string, string[]> {
  const groups = new Map<string, Set<string>>();
  const add = (group: string, host: string): void => {
    const set = groups.get(group) ?? new Set<string>();
    set.add(host);
    groups.set(group, set);
  };
  for (const h of hosts) {
    for (const key of keys) {
      const value = getKey(key, h.spec);
      if (value === undefined || value === null) continue;
      for (const v of Array.isArray(value) ? value : [value]) add(`${key}=${scalar(v)}`, h.name);
    }
    const own = getKey("groups", h.spec);
    if (Array.isArray(own)) for (const g of own) add(scalar(g), h.name);
  }
  return new Map([...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([g, set]) => [g, [...set].sort()]));
}

/** The INI text. Pure. */
export function renderIni(inv: Inventory): string {
  const line = (h: InventoryHost): string => [h.name, ...Object.entries(h.vars).map(([k, v]) => `${k}=${shellQuote(v)}`)].join(" ");
  const byName = new Map(inv.hosts.map((h) => [h.name, h]));
  const out: string[] = [];
  for (const [group, names] of inv.groups) {
    out.push(`[${group}]`);
    for (const n of names) {
      const h = byName.get(n);
      if (h) out.push(line(h));
    }
  }
  const grouped = new Set([...inv.groups.values()].flat());
  const rest = inv.hosts.filter((h) => !grouped.has(h.name));
  if (rest.length) out.push("[ungrouped]", ...rest.map(line));
  return `${out.join("\n")}\n`;
}

/** Ansible's dynamic-inventory JSON (`--list`): groups with hosts, `all` with its children, `_meta.hostvars`. Pure. */
export function dynamicInventory(inv: Inventory): Record<string, unknown> {
  const grouped = new Set([...inv.groups.values()].flat());
  const ungrouped = inv.hosts.filter((h) => !grouped.has(h.name)).map((h) => h.name);
  const doc: Record<string, unknown> = {
    _meta: { hostvars: Object.fromEntries(inv.hosts.map((h) => [h.name, h.vars])) },
    all: { children: [...inv.groups.keys(), "ungrouped"] },
    ungrouped: { hosts: ungrouped },
  };
  for (const [g, hosts] of inv.groups) doc[g] = { hosts };
  return doc;
}

function templateMetadata(view: EnvView, templateAddress: string | undefined): unknown {
  const p = view.templates.find((t) => t.address === templateAddress)?.path;
  if (!p || !existsSync(`${p}.metadata`)) return {};
  try {
    return JSON.parse(readFileSync(`${p}.metadata`, "utf8")) as unknown;
  } catch {
    return {};
  }
}

/** A VM's spec as Lago's key paths see it: the init file's keys, disks carrying their template's metadata. */
export function vmSpecDocument(d: DomainSpec, vm: VmView | undefined, view: EnvView): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    memory: d.memory,
    vcpu: d.vcpu,
    nics: d.nics.map((n) => ({ net: n.net, ...(n.ip ? { ip: n.ip } : {}) })),
    disks: d.disks.map((k) => {
      const seen = vm?.disks.find((x) => x.name === k.name);
      return {
        name: k.name,
        dev: k.dev,
        type: k.type,
        format: k.format,
        ...(k.templateName ? { template_name: k.templateName } : {}),
        ...(k.templateVersion ? { template_version: k.templateVersion } : {}),
        ...(k.path ? { path: k.path } : {}),
        metadata: templateMetadata(view, seen?.template),
      };
    }),
    groups: d.groups,
    artifacts: d.artifacts,
    metadata: d.metadata,
    "vm-type": d.vmType,
    "vm-provider": d.vmProvider,
    "ssh-user": d.sshUser,
    bootstrap: d.bootstrap,
  };
  if (d.cpuModel) doc.cpu_model = d.cpuModel;
  if (d.distro) doc.distro = d.distro;
  if (d.serviceProvider) doc.service_provider = d.serviceProvider;
  return doc;
}

/**
 * The inventory of the VMs the state records and the init file describes.
 * Writes the pinned host keys to the environment's known_hosts file, which
 * the host variables point SSH at.
 */
export function ansibleInventory(ctx: OpsContext, spec: EnvSpec, keys: readonly string[] = DEFAULT_INVENTORY_KEYS): Inventory {
  const view = readView(ctx);
  sshConfig(ctx);
  const known = knownHostsFile(ctx);
  const hosts: (InventoryHost & { spec: unknown })[] = [];
  for (const d of spec.domains) {
    const vm = view.vms.find((v) => v.name === d.name);
    if (!vm?.ssh) continue;
    const opts = [`UserKnownHostsFile=${known}`, `HostKeyAlias=${vm.libvirtName}`, "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "GlobalKnownHostsFile=/dev/null"];
    hosts.push({
      name: d.name,
      vars: {
        ansible_host: vm.ssh.host,
        ansible_user: vm.ssh.user,
        ansible_ssh_private_key_file: vm.ssh.privateKeyPath,
        ansible_ssh_common_args: opts.map((o) => `-o ${shellQuote(o)}`).join(" "),
      },
      spec: vmSpecDocument(d, vm, view),
    });
  }
  if (!hosts.length) throw new UsageError(`environment ${ctx.env.name} has no VM of ${spec.file} that lago can reach`, { hint: "create them with `lago apply`" });
  return { groups: groupHosts(hosts, keys), hosts: hosts.map(({ name, vars }) => ({ name, vars })) };
}
