/**
 * Lago's management-network selection (`_select_mgmt_networks`): the nets
 * with an explicit `management: true`; if there are none, the first net by
 * sorted name. A management net without `dns_domain_name` gets `lago.local`.
 */
import { isRecord } from "./pointer.ts";

export const DEFAULT_DNS_DOMAIN = "lago.local";

export interface ManagementSelection {
  /** Names of the management nets, sorted. */
  names: string[];
  /** True when no net sets `management: true` and the first net by name was chosen. */
  implicit: boolean;
}

/** Code-unit order, as Python's `sorted` on str (locale-independent). */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function selectManagementNets(nets: Record<string, unknown>): ManagementSelection {
  const names = Object.keys(nets).sort(byName);
  const explicit = names.filter((n) => {
    const net = nets[n];
    return isRecord(net) && net.management === true;
  });
  if (explicit.length > 0) return { names: explicit, implicit: false };
  const first = names[0];
  return { names: first === undefined ? [] : [first], implicit: true };
}
