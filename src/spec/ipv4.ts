/** IPv4 helpers for init-file validation (dotted quads without leading zeros, as ajv-formats' `ipv4`). */

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIpv4(value: unknown): value is string {
  return typeof value === "string" && IPV4.test(value);
}

/** The last number of the address (the host number inside its /24). */
export function hostNumber(ip: string): number {
  return Number(ip.slice(ip.lastIndexOf(".") + 1));
}

/** The /24 containing the address, e.g. `192.168.200.0/24`. */
export function subnet24(ip: string): string {
  return `${ip.slice(0, ip.lastIndexOf("."))}.0/24`;
}
