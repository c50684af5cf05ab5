/**
 * The normalized environment spec: what the compiler consumes. Produced by
 * `loadSpec` from a LagoInitFile after schema and semantic validation and after
 * Lago's defaults are applied. Every collection is sorted by name so the same
 * file always yields the same spec.
 */
import type { SourcePos } from "../errors.ts";

/** Maps a JSON pointer in the raw document to a source position. */
export type Locator = (pointer: string) => SourcePos;

export interface EnvSpec {
  /** Absolute path of the init file. */
  file: string;
  /** sha256 (hex) of the init file's bytes. */
  sha256: string;
  domains: DomainSpec[];
  nets: NetSpec[];
  locate: Locator;
  /** Present when the init file is a Jinja2 template: what its render read. */
  template?: TemplateInfo;
}

/** What rendering a templated init file depended on (recorded in saved plans). */
export interface TemplateInfo {
  /** The `--var`/`--var-file` variables the template read, with their values. */
  vars: Record<string, unknown>;
  /** The environment variables the template read (`env.NAME`), with their values. */
  env: Record<string, string>;
  /** sha256 of the rendered text. */
  renderedSha256: string;
}

export interface NetSpec {
  name: string;
  pointer: string;
  type: "nat" | "bridge";
  /** Lago's management flag after selection (explicit `management: true`, else the first net by sorted name). */
  management: boolean;
  /** DHCP range as host numbers (last octet) inside the /24; absent for bridge nets without dhcp. */
  dhcp: { start: number; end: number } | undefined;
  /** Gateway address if the file names one (`gw`); it pins the leased subnet. */
  gw: string | undefined;
  /** DNS domain of the management net (Lago default `lago.local`); undefined elsewhere. */
  dnsDomainName: string | undefined;
  /** Extra DNS host records `name → ip`. */
  dnsRecords: Record<string, string>;
  mtu: number | undefined;
}

export interface NicSpec {
  net: string;
  pointer: string;
  /** Static IPv4 address, if the file sets one. */
  ip: string | undefined;
  mtu: number | undefined;
}

/** One virt-customize invocation option: `--name arg` (arg undefined for a flag). */
export interface CustomizeOption {
  option: string;
  /** The argument as written in the init file. */
  arg: string | undefined;
  /**
   * The host files this option reads (`upload`, `copy-in`, `run`, `firstboot`,
   * `commands-from-file`, `file:` selectors…), resolved against the init
   * file's directory, symlinks followed, absolute, in the order they appear in
   * `arg`; `[]` when it reads none. Checked at load time to stay inside that
   * directory unless allowed. Pass these (not `arg`'s relative spelling) to
   * virt-customize, and hash their contents in anything that caches a build.
   */
  hostPaths: string[];
}

/** A build step. Lago's only builder is virt-customize. */
export interface BuildStep {
  builder: "virt-customize";
  options: CustomizeOption[];
}

export interface DiskSpec {
  name: string;
  pointer: string;
  /** Device name, e.g. `vda`, `sdb`. */
  dev: string;
  type: "template" | "file" | "empty";
  format: "qcow2" | "raw" | "iso";
  /** Template name in the template repository (template disks). */
  templateName: string | undefined;
  templateVersion: string | undefined;
  /** A local image path (Lago's `path`), with `$VARS` already expanded. */
  path: string | undefined;
  /** Size in bytes (file/empty disks; for template disks, grow the overlay to this). */
  size: number | undefined;
  build: BuildStep[];
  /** Lago's `template_type`: the format of a template image given by `path` (e.g. `qcow2`). */
  templateType: string | undefined;
  /** Lago's disk `url`: an image to download (file disks), `$VARS` expanded. */
  url: string | undefined;
}

export interface DomainSpec {
  name: string;
  pointer: string;
  /** MiB. */
  memory: number;
  vcpu: number;
  cpuModel: string | undefined;
  /** Lago's `cpu_custom`: libvirt CPU XML written as YAML (`@attr`, `#text`). */
  cpuCustom: Record<string, unknown> | undefined;
  nics: NicSpec[];
  disks: DiskSpec[];
  /** Lago's bootstrap stage: inject the key and set the hostname. */
  bootstrap: boolean;
  sshUser: string;
  rootPassword: string | undefined;
  groups: string[];
  artifacts: string[];
  vmType: string;
  vmProvider: string;
  serviceProvider: string | undefined;
  distro: string | undefined;
  /** Opaque user metadata, kept as written (`{}` when absent). */
  metadata: unknown;
  /** Lago's `ssh-password` (numbers stringified). */
  sshPassword: string | undefined;
  /**
   * Lago's OVA domains (`type: ova` with `url`, `boot_time_sec`): accepted in the
   * file so that the compiler can reject them with a clear message.
   */
  ova: { url: string | undefined; bootTimeSec: number | undefined } | undefined;
}
