import { createHash } from "node:crypto";
import { ProviderError } from "../errors.ts";
import type { Attrs, Json, ReconcileContext } from "./types.ts";
import type { DomainInfo, NetworkInfo } from "../drivers/types.ts";
import { libvirtPrefix } from "../env/context.ts";

/** The current attributes and outputs of a dependency; a missing one is an engine bug surfaced clearly. */
export function dependency(ctx: ReconcileContext, address: string): { attrs: Attrs; outputs: Attrs } {
  const dep = ctx.deps.get(address);
  if (!dep) throw new ProviderError(ctx.address, `dependency ${address} is not in the state; apply it first`);
  return dep;
}

export function str(v: Json | undefined, what: string): string {
  if (typeof v !== "string") throw new Error(`expected ${what} to be a string`);
  return v;
}

export function num(v: Json | undefined, what: string): number {
  if (typeof v !== "number") throw new Error(`expected ${what} to be a number`);
  return v;
}

export function obj(v: Json | undefined): { [k: string]: Json } {
  return v && typeof v === "object" && !Array.isArray(v) ? v : {};
}

/**
 * The address of a VM's disk: `disk.<vm>.<disk>`. VM names may contain dots
 * (`foreman.example.com`), disk names may not, so the last dot separates them.
 */
export function diskAddress(vm: string, disk: string, kind: "disk" | "build" = "disk"): string {
  return `${kind}.${vm}.${disk}`;
}

/** Back from {@link diskAddress}. */
export function parseDiskAddress(address: string): { vm: string; disk: string } {
  const first = address.indexOf(".");
  const last = address.lastIndexOf(".");
  return { vm: address.slice(first + 1, last), disk: address.slice(last + 1) };
}

/** `192.168.201.0` + 5 → `192.168.201.5`. */
export function ipIn(subnet: string, host: number): string {
  return `${subnet.split(".").slice(0, 3).join(".")}.${host}`;
}

/** Lago's MAC for an address: 54:52 followed by the four octets. */
export function macForIp(ip: string): string {
  return `54:52:${ip
    .split(".")
    .map((o) => Number(o).toString(16).padStart(2, "0"))
    .join(":")}`;
}

/** A stable MAC for a NIC without an address (bridge nets). */
export function macForKey(envId: string, vm: string, key: string): string {
  const h = createHash("sha256").update(`${envId}\0${vm}\0${key}`).digest("hex");
  return `54:52:00:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

/**
 * Every domain and network of the environment, read once per command (one
 * virsh process) and indexed by libvirt name.
 */
export function inventoryOf(ctx: ReconcileContext): Promise<{ domains: Map<string, DomainInfo>; networks: Map<string, NetworkInfo> }> {
  const prefix = libvirtPrefix(ctx.env);
  return memo(ctx, `inventory:${prefix}`, async () => {
    const inv = await ctx.drivers.libvirt.inventory(prefix, { signal: ctx.signal });
    return { domains: new Map(inv.domains.map((d) => [d.name, d])), networks: new Map(inv.networks.map((n) => [n.name, n])) };
  });
}

/**
 * {@link inventoryOf} read again: what this command's earlier steps changed (a VM restarted by another step of
 * the same apply) shows, and later calls of inventoryOf get it too.
 */
export function currentInventoryOf(ctx: ReconcileContext): Promise<{ domains: Map<string, DomainInfo>; networks: Map<string, NetworkInfo> }> {
  ctx.cache.delete(`inventory:${libvirtPrefix(ctx.env)}`);
  return inventoryOf(ctx);
}

/** Memoize a promise for the duration of one command (batched reads during refresh). */
export function memo<T>(ctx: ReconcileContext, key: string, fn: () => Promise<T>): Promise<T> {
  const cache = ctx.cache;
  let p = cache.get(key) as Promise<T> | undefined;
  if (!p) {
    p = fn();
    cache.set(key, p);
  }
  return p;
}
