/**
 * Refresh never mistakes libvirt's own rewrites for drift: the domain
 * reconciler's read, fed the XML real libvirt printed for a VM lago defined
 * (test/fixtures/virsh-domain-tcg-inactive.xml: libvirt 9, domain type qemu,
 * with the default CPU it filled in, addresses, controllers and devices it
 * added), observes exactly the recorded attributes; real differences show.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseDomainXml } from "../../src/drivers/real/libvirt-xml.ts";
import { domainKind } from "../../src/resources/domain.ts";
import { loadConfig } from "../../src/config/config.ts";
import type { EnvContext } from "../../src/env/context.ts";
import type { DomainInfo, Drivers } from "../../src/drivers/types.ts";
import type { Attrs, Kind, ReconcileContext } from "../../src/resources/types.ts";

const XML = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "virsh-domain-tcg-inactive.xml"), "utf8");

/** The attributes lago recorded for that VM (they are also in the XML's metadata). */
const RECORDED: Attrs = (JSON.parse(parseDomainXml(XML).metadata ?? "{}") as { attrs: Attrs }).attrs;

const env: EnvContext = { workdir: "/tmp/drift/.lago", name: "default", dir: "/tmp/drift/.lago/default", id: "cbed14f5", config: loadConfig({}, {}, []) };

function ctxWith(info: DomainInfo): ReconcileContext {
  const deps = new Map<string, { kind: Kind; attrs: Attrs; outputs: Attrs }>([
    ["network.lago", { kind: "network", attrs: { net: "lago" }, outputs: { libvirt_name: "lago-cbed14f5-lago", subnet: "192.168.201.0" } }],
    ["disk.vm01.root", { kind: "disk", attrs: {}, outputs: { path: "/tmp/drift/.lago/default/vms/vm01/disks/root.qcow2" } }],
    ["keypair", { kind: "keypair", attrs: {}, outputs: { privateKeyPath: "/k" } }],
  ]);
  const libvirt = { inventory: async () => ({ domains: [info], networks: [] }) } as unknown as Drivers["libvirt"];
  return {
    address: "domain.vm01",
    env,
    drivers: { libvirt } as Drivers,
    deps,
    progress: () => undefined,
    signal: new AbortController().signal,
    restart: false,
    idle: (fn) => fn(),
    cache: new Map(),
  };
}

function infoOf(xml: string, running = true): DomainInfo {
  const parsed = parseDomainXml(xml);
  return { name: parsed.name, id: running ? 7 : undefined, running, metadata: parsed.metadata, config: parsed.view, live: running ? parsed.view : undefined };
}

test("real libvirt XML of a lago VM reads back as exactly its recorded attributes", async () => {
  assert.equal(RECORDED.domain_type, "qemu");
  const observed = await domainKind.read(ctxWith(infoOf(XML)), { attrs: RECORDED, outputs: { host_key: "AAAA" } });
  assert.ok(observed);
  assert.deepEqual(observed.attrs, RECORDED);
  assert.deepEqual(observed.outputs.pendingRestart, []);
});

test("real differences do show: memory, a NIC on another network, a disk with another source, a CPU model for KVM", async () => {
  const changed = XML.replace("<memory unit='KiB'>262144</memory>", "<memory unit='KiB'>524288</memory>")
    .replace("<source network='lago-cbed14f5-lago'/>", "<source network='lago-cbed14f5-other'/>")
    .replace("/tmp/drift/.lago/default/vms/vm01/disks/root.qcow2", "/elsewhere.qcow2");
  const observed = await domainKind.read(ctxWith(infoOf(changed)), { attrs: RECORDED, outputs: { host_key: "AAAA" } });
  assert.equal(observed?.attrs.memory, 512);
  assert.deepEqual((observed?.attrs.nics as Record<string, Attrs>)["lago#0"], { net: "other", index: 0, host: 2, mtu: null });
  assert.equal(((observed?.attrs.disks as Record<string, Attrs>).root as Attrs).source, "/elsewhere.qcow2");
  // With KVM, lago asks for host-passthrough: libvirt's qemu64 would be a change.
  const kvm = { ...RECORDED, domain_type: "kvm" };
  const onKvm = await domainKind.read(ctxWith(infoOf(XML)), { attrs: kvm, outputs: { host_key: "AAAA" } });
  assert.deepEqual(onKvm?.attrs.cpu, { mode: "observed", libvirt_mode: "custom", model: "qemu64" });
});

test("a running VM whose persistent memory differs from the live one waits for a restart", async () => {
  const info = infoOf(XML);
  const config = parseDomainXml(XML.replace("<memory unit='KiB'>262144</memory>", "<memory unit='KiB'>393216</memory>")).view;
  const observed = await domainKind.read(ctxWith({ ...info, config }), { attrs: RECORDED, outputs: { host_key: "AAAA" } });
  assert.deepEqual(observed?.outputs.pendingRestart, ["memory"]);
  assert.equal(observed?.attrs.memory, 384);
});
