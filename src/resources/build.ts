/**
 * Preparing a disk before its VM's first boot: Lago's bootstrap (inject the
 * environment's key, set the hostname) and the disk's `build` steps, in one
 * virt-customize run. Never re-run on a used disk: any change replaces the disk.
 */
import { ProviderError } from "../errors.ts";
import { KEYPAIR } from "../graph/compile.ts";
import { dependency, obj, str } from "./common.ts";
import type { Attrs, ResourceKind } from "./types.ts";

/** The virt-customize arguments for a build, bootstrap first. Pure. */
export function customizeArgs(attrs: Attrs, publicKeyPath: string): string[] {
  const args: string[] = [];
  const bootstrap = attrs.bootstrap ? obj(attrs.bootstrap) : undefined;
  if (bootstrap) {
    const user = str(bootstrap.ssh_user, "ssh_user");
    args.push("--ssh-inject", `${user}:file:${publicKeyPath}`);
    args.push("--write", `/etc/hostname:${str(bootstrap.hostname, "hostname")}`);
    if (typeof bootstrap.root_password === "string") args.push("--root-password", `password:${bootstrap.root_password}`);
  }
  for (const step of Array.isArray(attrs.steps) ? attrs.steps : []) {
    for (const o of Array.isArray(obj(step).options) ? (obj(step).options as unknown[]) : []) {
      const { option, arg } = obj(o as Attrs);
      const name = str(option, "option");
      if (name === "ssh-inject" && (arg === null || arg === "")) {
        args.push("--ssh-inject", `${bootstrap ? str(bootstrap.ssh_user, "ssh_user") : "root"}:file:${publicKeyPath}`);
      } else if (arg === null || arg === undefined) args.push(`--${name}`);
      else args.push(`--${name}`, String(arg));
    }
  }
  return args;
}

export const buildKind: ResourceKind = {
  kind: "build",
  replaceOn: [{ path: "", reason: "build steps run once on a fresh disk" }],
  sensitive: ["/bootstrap/root_password"],
  onDependencyDisrupted: (dep) => (dep.kind === "disk" ? { action: "replace", reason: `its disk ${dep.address} is replaced` } : undefined),
  taintOnInterruptedCreate: (self) => self.dependsOn.find((d) => d.startsWith("disk.")),
  async read(_ctx, current) {
    // A build leaves no object of its own: it happened if the state says so.
    return current.outputs ? { attrs: current.attrs, outputs: current.outputs, healthy: true } : undefined;
  },
  async create(ctx, desired) {
    const disk = dependency(ctx, `disk.${str(desired.vm, "vm")}.${str(desired.disk, "disk")}`);
    const keys = dependency(ctx, KEYPAIR).outputs;
    const args = customizeArgs(desired, str(keys.publicKeyPath, "publicKeyPath"));
    if (!args.length) return { ran: false };
    ctx.progress(`virt-customize: ${args.filter((a) => a.startsWith("--")).join(" ")}`);
    await ctx.drivers.customize.run(str(disk.outputs.path, "disk path"), args, { signal: ctx.signal, progress: ctx.progress });
    return { ran: true };
  },
  async update(ctx) {
    throw new ProviderError(ctx.address, "a build cannot be updated in place; it is replaced with its disk");
  },
  async delete() {
    // Nothing to undo: the disk carrying the build is deleted by its own resource.
  },
};
