/**
 * IPv4 helpers for init-file validation, on ip-address's `Address4`: dotted
 * quads without leading zeros (what ajv-formats' `ipv4`, used by the schema,
 * accepts) and the /24 math Lago's nets use.
 */
import { Address4 } from "ip-address";

/** Whether `value` is a plain IPv4 address (no prefix length, no leading zeros). Pure. */
export function isIpv4(value: unknown): value is string {
  return typeof value === "string" && !value.includes("/") && Address4.isValid(value);
}

/** The last number of the address (the host number inside its /24). Pure; `ip` must pass {@link isIpv4}. */
export function hostNumber(ip: string): number {
  return new Address4(ip).toArray()[3] ?? 0;
}

/** The /24 containing the address, e.g. `192.168.200.0/24`. Pure; `ip` must pass {@link isIpv4}. */
export function subnet24(ip: string): string {
  return `${new Address4(`${ip}/24`).startAddress().correctForm()}/24`;
}
