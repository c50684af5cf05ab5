/**
 * `lago export`: the disks of shut-off VMs plus an init file that recreates
 * them, as Lago's export does. Each disk becomes `<output>/<vm>/<disk>.qcow2`:
 * by default a layer holding only what the VM changed on its template (its
 * backing file is the template in the shared store, which must be there
 * wherever the export is used: `lago template fetch`), with `standalone` one
 * flattened image. The init file names each image by `path` as a template
 * disk, so a new environment gets overlays on the exported images (they are
 * only read) and its own key and hostname; build steps are already in the
 * images and are not repeated.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.ts";
import { envPaths, libvirtPrefix } from "../env/context.ts";
import { readState } from "../state/state.ts";
import type { DomainSpec, EnvSpec, NetSpec } from "../spec/types.ts";
import type { TemplateRef } from "../drivers/types.ts";
import { convertImage } from "../drivers/real/image-convert.ts";
import { obj } from "../resources/common.ts";
import type { Attrs } from "../resources/types.ts";
import type { OpsContext } from "./context.ts";
import { deployScriptsOf, resolveScripts } from "./deploy.ts";
import { envView, selectVms, type VmView } from "./view.ts";
import { yamlPackage } from "../spec/yaml-package.ts";

export interface ExportedDisk {
  vm: string;
  disk: string;
  file: string;
  /** The store template the layer is backed by; absent for a standalone image. */
  backing: string | undefined;
}

export interface ExportResult {
  initFile: string;
  disks: ExportedDisk[];
}

function netDocument(n: NetSpec): Record<string, unknown> {
  return {
    type: n.type,
    management: n.management,
    ...(n.dhcp ? { dhcp: { start: n.dhcp.start, end: n.dhcp.end } } : {}),
    ...(n.gw ? { gw: n.gw } : {}),
    ...(n.dnsDomainName ? { dns_domain_name: n.dnsDomainName } : {}),
    ...(Object.keys(n.dnsRecords).length ? { dns_records: { ...n.dnsRecords } } : {}),
    ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
  };
}

/** The init-file entry of an exported VM; `disks` are the exported images, relative to the init file. Pure. */
export function domainDocument(d: DomainSpec, disks: { name: string; dev: string; file: string }[], metadata: unknown): Record<string, unknown> {
  return {
    memory: d.memory,
    vcpu: d.vcpu,
    ...(d.cpuModel ? { cpu_model: d.cpuModel } : {}),
    ...(d.cpuCustom ? { cpu_custom: d.cpuCustom } : {}),
    nics: d.nics.map((n) => ({ net: n.net, ...(n.ip ? { ip: n.ip } : {}), ...(n.mtu !== undefined ? { mtu: n.mtu } : {}) })),
    disks: disks.map((k) => ({ name: k.name, dev: k.dev, type: "template", template_type: "qcow2", format: "qcow2", path: k.file })),
    ...(d.bootstrap ? {} : { bootstrap: false }),
    ...(d.sshUser !== "root" ? { "ssh-user": d.sshUser } : {}),
    ...(d.groups.length ? { groups: d.groups } : {}),
    ...(d.artifacts.length ? { artifacts: d.artifacts } : {}),
    ...(d.vmType !== "default" ? { "vm-type": d.vmType } : {}),
    ...(d.distro ? { distro: d.distro } : {}),
    ...(metadata && typeof metadata === "object" && Object.keys(metadata).length ? { metadata } : {}),
  };
}

function templateRefOf(attrs: Attrs): TemplateRef | undefined {
  if (typeof attrs.repo !== "string") return undefined;
  const source = obj(attrs.source);
  return {
    repo: attrs.repo,
    name: String(attrs.name),
    version: String(attrs.version),
    handle: String(attrs.handle),
    source: { type: source.type === "http" ? "http" : "file", location: String(source.location) },
  };
}

/**
 * Export the VMs named (all when none); they must be shut off (`lago
 * shutdown`), so that their disks are consistent. Refuses to overwrite files.
 */
export async function exportVms(ctx: OpsContext, spec: EnvSpec, output: string, names: readonly string[], opts: { standalone: boolean; initFileName: string }): Promise<ExportResult> {
  const state = readState(envPaths.state(ctx.env));
  const view = envView(ctx.env, state);
  const vms = selectVms(view, names);
  const specs = new Map(spec.domains.map((d) => [d.name, d]));
  const notInFile = vms.filter((v) => !specs.has(v.name));
  if (notInFile.length) throw new UsageError(`VM ${notInFile.map((v) => v.name).join(", ")} is not in ${spec.file}`);
  const states = await ctx.virsh.domainStates(libvirtPrefix(ctx.env));
  const running = vms.filter((v) => (states.get(v.libvirtName)?.state ?? "shut off") !== "shut off");
  if (running.length) {
    throw new UsageError(`cannot export running VMs: ${running.map((v) => v.name).join(", ")}`, { hint: `shut them down first: lago shutdown ${running.map((v) => v.name).join(" ")}` });
  }
  const out = path.resolve(output);
  if (/[\n\r]/.test(out)) throw new UsageError("the output directory's name cannot contain line breaks");
  const initFile = path.join(out, opts.initFileName);
  if (opts.initFileName.includes("/") || opts.initFileName === "." || opts.initFileName === "..") throw new UsageError(`--init-file-name must be a file name, got ${opts.initFileName}`);
  const planned = vms.flatMap((vm) => vm.disks.map((d) => ({ vm, disk: d, file: path.join(out, vm.name, `${d.name}.qcow2`) })));
  for (const f of [initFile, ...planned.map((p) => p.file)]) {
    if (existsSync(f)) throw new UsageError(`${f} exists; lago export does not overwrite files`, { hint: "choose another --output directory" });
  }
  mkdirSync(out, { recursive: true });
  const exported: ExportedDisk[] = [];
  for (const { vm, disk, file } of planned) {
    const template = disk.template ? state.resources.get(disk.template) : undefined;
    const templatePath = typeof template?.outputs.path === "string" ? template.outputs.path : undefined;
    const layered = !opts.standalone && templatePath !== undefined && templateRefOf(template?.attrs ?? {}) !== undefined;
    ctx.emit({ type: "vm", vm: vm.name, message: `exporting disk ${disk.name}${layered ? " as a layer" : ""}` });
    await convertImage(disk.path, file, {
      sourceFormat: disk.format,
      format: "qcow2",
      backing: layered && templatePath ? { path: templatePath, format: String(template?.outputs.format ?? "qcow2") } : undefined,
      signal: ctx.signal,
    });
    const ref = layered ? templateRefOf(template?.attrs ?? {}) : undefined;
    // The store must keep the template while the layer needs it: the layer is one of its users.
    if (ref) await ctx.drivers.templates.ensure(ref, file, { signal: ctx.signal });
    exported.push({ vm: vm.name, disk: disk.name, file, backing: layered ? templatePath : undefined });
  }
  const domains: Record<string, unknown> = {};
  const usedNets = new Set<string>();
  for (const vm of vms) {
    const d = specs.get(vm.name) as DomainSpec;
    d.nics.forEach((n) => usedNets.add(n.net));
    domains[vm.name] = domainDocument(d, orderedDisks(d, vm).map((k) => ({ ...k, file: `${vm.name}/${k.name}.qcow2` })), exportedMetadata(spec, d));
  }
  const nets: Record<string, unknown> = {};
  for (const n of spec.nets) if (usedNets.has(n.name)) nets[n.name] = netDocument(n);
  const header = [
    `# Exported by lago from environment ${ctx.env.name} (${spec.file}) on ${new Date().toISOString()}.`,
    opts.standalone ? "# Standalone disk images: no template is needed." : "# Layered disk images: each needs its template in the template store (lago template fetch NAME:VERSION).",
    "",
  ].join("\n");
  writeFileSync(initFile, `${header}${yamlPackage().stringify({ domains, nets }, { lineWidth: 0 })}`);
  return { initFile, disks: exported };
}

/** The VM's disks in the init file's order (the first one boots and is bootstrapped). */
function orderedDisks(d: DomainSpec, vm: VmView): { name: string; dev: string }[] {
  return d.disks.filter((k) => vm.disks.some((x) => x.name === k.name)).map((k) => ({ name: k.name, dev: k.dev }));
}

/** The VM's metadata, with its deploy scripts made absolute (the exported init file lives elsewhere). */
function exportedMetadata(spec: EnvSpec, d: DomainSpec): unknown {
  const scripts = deployScriptsOf(d.metadata);
  if (!scripts.length) return d.metadata;
  return { ...(d.metadata as Record<string, unknown>), "deploy-scripts": resolveScripts(spec, d.name, scripts, process.env) };
}
