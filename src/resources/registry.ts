/** Every resource kind, by name. Adding a kind: its file, and a line here. */
import { buildKind } from "./build.ts";
import { diskKind } from "./disk.ts";
import { domainKind } from "./domain.ts";
import { keypairKind } from "./keypair.ts";
import { leaseKind } from "./lease.ts";
import { networkKind } from "./network.ts";
import { templateKind } from "./template.ts";
import type { Kind, ResourceKind } from "./types.ts";

const KIND_TABLE: Record<Kind, ResourceKind> = {
  keypair: keypairKind,
  template: templateKind,
  lease: leaseKind,
  network: networkKind,
  disk: diskKind,
  build: buildKind,
  domain: domainKind,
};

export function kindOf(kind: Kind): ResourceKind {
  return KIND_TABLE[kind];
}
