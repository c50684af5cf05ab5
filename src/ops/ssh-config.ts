/**
 * `lago ssh-config`: an OpenSSH client configuration with a `Host` entry per
 * VM (address, user, the environment's key) and the host keys lago pinned,
 * in a known_hosts file beside the key, so that `ssh -F "$(lago ssh-config
 * --path)" vm01` checks the same host key lago does.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.ts";
import { envPaths } from "../env/context.ts";
import { writeFileAtomic } from "../util/fs-atomic.ts";
import type { OpsContext } from "./context.ts";
import { readView, type EnvView } from "./view.ts";

export interface SshConfigEntry {
  /** The `Host` name: the VM's name. */
  host: string;
  hostName: string;
  user: string;
  port: number;
  identityFile: string;
  /** Name the host key is recorded under in the known_hosts file. */
  alias: string;
  /** The pinned host key (base64 of the key blob), if SSH ever answered. */
  hostKey: string | undefined;
}

/** The algorithm name a public key blob starts with (`ssh-ed25519`, `ssh-rsa`, …). Pure. */
export function hostKeyType(base64Blob: string): string {
  const blob = Buffer.from(base64Blob, "base64");
  if (blob.length < 4) throw new UsageError("a pinned host key is malformed");
  const len = blob.readUInt32BE(0);
  if (len < 1 || len > 64 || blob.length < 4 + len) throw new UsageError("a pinned host key is malformed");
  const type = blob.subarray(4, 4 + len).toString("latin1");
  if (!/^[a-z0-9@.-]+$/.test(type)) throw new UsageError("a pinned host key is malformed");
  return type;
}

/** A value for ssh_config: quoted when it has spaces; refused when it cannot be written there. Pure. */
export function configValue(value: string): string {
  if (/["\n\r\0]/.test(value)) throw new UsageError(`cannot write ${JSON.stringify(value)} in an OpenSSH configuration`);
  return /[\s#'\\]/.test(value) ? `"${value}"` : value;
}

/** The known_hosts text for `entries` (those with a pinned key). Pure. */
export function renderKnownHosts(entries: SshConfigEntry[]): string {
  return entries
    .filter((e) => e.hostKey)
    .map((e) => `${e.alias} ${hostKeyType(e.hostKey ?? "")} ${e.hostKey ?? ""}\n`)
    .join("");
}

/** The ssh_config text. Pure. */
export function renderSshConfig(envName: string, knownHostsFile: string, entries: SshConfigEntry[]): string {
  const lines = [`# lago environment ${envName}: ssh -F "$(lago ssh-config --path)" VM`];
  for (const e of entries) {
    lines.push(
      "",
      `Host ${e.host}`,
      `  HostName ${e.hostName}`,
      `  Port ${e.port}`,
      `  User ${configValue(e.user)}`,
      `  IdentityFile ${configValue(e.identityFile)}`,
      "  IdentitiesOnly yes",
      `  HostKeyAlias ${e.alias}`,
      `  UserKnownHostsFile ${configValue(knownHostsFile)}`,
      "  GlobalKnownHostsFile /dev/null",
      ...(e.hostKey ? ["  StrictHostKeyChecking yes", `  HostKeyAlgorithms ${hostKeyType(e.hostKey)}`] : ["  StrictHostKeyChecking accept-new"]),
      "  PasswordAuthentication no",
      "  LogLevel ERROR",
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Entries for every VM that has an SSH address. Pure. */
export function sshConfigEntries(view: EnvView): SshConfigEntry[] {
  return view.vms.flatMap((vm) =>
    vm.ssh
      ? [{ host: vm.name, hostName: vm.ssh.host, user: vm.ssh.user, port: vm.ssh.port, identityFile: vm.ssh.privateKeyPath, alias: vm.libvirtName, hostKey: vm.ssh.pinnedHostKey }]
      : [],
  );
}

/** Where the environment's known_hosts file lives. */
export function knownHostsFile(ctx: OpsContext): string {
  return path.join(envPaths.keys(ctx.env), "known_hosts");
}

/** Where the environment's ssh_config file lives (`ssh -F "$(lago ssh-config --path)" vm01`). */
export function sshConfigFile(ctx: OpsContext): string {
  return path.join(envPaths.keys(ctx.env), "config");
}

/**
 * The configuration for every VM of the environment. Writes the pinned host
 * keys to the environment's known_hosts file and the configuration to its
 * config file (both atomically), and returns the configuration.
 */
export function sshConfig(ctx: OpsContext): string {
  const view = readView(ctx);
  const entries = sshConfigEntries(view);
  if (!entries.length) throw new UsageError(`environment ${ctx.env.name} has no VM lago can reach over SSH`, { hint: "create them with `lago apply`" });
  const file = knownHostsFile(ctx);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, renderKnownHosts(entries), 0o600);
  const config = renderSshConfig(ctx.env.name, file, entries);
  writeFileAtomic(sshConfigFile(ctx), config, 0o600);
  return config;
}
