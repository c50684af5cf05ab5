/**
 * A recorded state in which every desired resource exists (as after a
 * successful apply), and the refresh result saying reality matches it.
 */
import type { Attrs, DesiredResource, Observed, RecordedResource } from "../src/resources/types.ts";
import { STATE_FORMAT_VERSION, type State } from "../src/state/state.ts";

function str(v: unknown): string {
  return typeof v === "string" ? v : String(v);
}

/** Plausible outputs per kind, shaped like what the reconcilers return from `create`. */
function outputsOf(r: DesiredResource, index: number): Attrs {
  const a = r.attrs;
  switch (r.kind) {
    case "keypair":
      return {
        publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchBenchBenchBenchBenchBenchBenchBenchBen lago@bench",
        privateKeyPath: "/work/.lago/bench/keys/id_ed25519",
        publicKeyPath: "/work/.lago/bench/keys/id_ed25519.pub",
      };
    case "template":
      return { path: `/var/lib/lago/store/${str(a.repo)}:${str(a.name)}:${str(a.version)}`, format: "qcow2" };
    case "lease":
      return { subnet: `192.${168 + Math.floor(index / 250)}.${index % 250}.0` };
    case "network":
      return { libvirt_name: `bench-${str(a.net)}`, bridge: `lgb${index.toString(16)}`, subnet: a.type === "nat" ? `192.168.${index % 250}.0` : null };
    case "disk":
      return { path: `/work/.lago/bench/images/${str(a.vm)}_${str(a.name)}.qcow2`, virtual_size: 10 * 1024 ** 3 };
    case "build":
      return { ran: true };
    case "domain":
      return { libvirt_name: `bench-${str(a.name)}`, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostHostHostHostHostHostHostHostHostHostHos" };
  }
}

/** Deep copy of attributes, so the state shares no objects with the desired graph (as after a JSON read). */
function copy(a: Attrs): Attrs {
  return structuredClone(a);
}

/** The state after applying `desired`: every resource ready, with outputs. */
export function appliedState(desired: DesiredResource[]): State {
  const resources = new Map<string, RecordedResource>();
  desired.forEach((r, i) => {
    resources.set(r.address, {
      address: r.address,
      kind: r.kind,
      attrs: copy(r.attrs),
      outputs: outputsOf(r, i),
      dependsOn: [...r.dependsOn],
      status: "ready",
    });
  });
  return { formatVersion: STATE_FORMAT_VERSION, lineage: "00000000-0000-4000-8000-00000000bench", serial: 1, initFileSha256: null, resources };
}

/** What a refresh returns when reality is exactly as recorded. */
export function observedAsRecorded(state: State): Map<string, Observed | null> {
  const out = new Map<string, Observed | null>();
  for (const [address, r] of state.resources) out.set(address, { attrs: copy(r.attrs), outputs: { ...r.outputs }, healthy: true });
  return out;
}
