/**
 * The real libvirt driver against libvirtd, without booting anything: a domain
 * or a network is defined at once when lago creates it (no lookup first), so
 * one that libvirt already knows under that name (left by an interrupted
 * apply) must be taken over with its UUID, not refused; in-place edits of a
 * network (DHCP hosts and range, DNS hosts, then lago's metadata) are made in
 * one virsh process, stay idempotent, and report libvirt's own error.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { VirshLibvirt } from "../../src/drivers/real/libvirt.ts";
import type { DomainDef, NetworkDef } from "../../src/drivers/types.ts";
import { reachableTempDir, requireTestbed, virsh } from "./helpers.ts";

requireTestbed();

const NET = "lago-e2edrv-net";
const DOM = "lago-e2edrv-vm";
const lv = new VirshLibvirt("qemu:///system");
const dir = reachableTempDir("lago-e2e-driver-");

const net: NetworkDef = {
  name: NET,
  bridge: "lgoe2edrv0",
  mode: "nat",
  gateway: "10.231.77.1",
  prefix: 24,
  dhcp: { start: "10.231.77.100", end: "10.231.77.200" },
  hosts: [],
  domain: undefined,
  dnsHosts: [],
  dnsForwarder: undefined,
  mtu: undefined,
  metadata: "{}",
};

const dom: DomainDef = {
  name: DOM,
  type: "qemu",
  memoryMiB: 128,
  vcpu: 1,
  cpu: { mode: "host-passthrough" },
  disks: [],
  nics: [{ mac: "52:54:00:e2:0d:01", network: NET }],
  consoleLog: path.join(dir, "console.log"),
  metadata: "{}",
  runAs: undefined,
};

async function cleanup(): Promise<void> {
  await virsh("destroy", DOM);
  await virsh("undefine", DOM);
  await virsh("net-destroy", NET);
  await virsh("net-undefine", NET);
}

after(cleanup);

async function out(...args: string[]): Promise<string> {
  const r = await virsh(...args);
  assert.equal(r.code, 0, `virsh ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

test("a network created under a name libvirt knows is kept and started; host edits are live, persistent and idempotent", async () => {
  await cleanup();
  await lv.createNetwork(net);
  assert.match(await out("net-info", NET), /^Active:\s+yes/m);
  assert.match(await out("net-info", NET), /^Autostart:\s+no/m);
  const uuid = (await out("net-uuid", NET)).trim();

  // Defined but stopped, as an apply interrupted between define and start leaves it.
  await out("net-destroy", NET);
  await lv.createNetwork(net);
  assert.match(await out("net-info", NET), /^Active:\s+yes/m);
  assert.equal((await out("net-uuid", NET)).trim(), uuid, "the network libvirt had is kept, not replaced");
  // Running already: nothing to do.
  await lv.createNetwork(net);
  assert.equal((await out("net-uuid", NET)).trim(), uuid);

  const host = { mac: "52:54:00:e2:0d:01", ip: "10.231.77.11", name: "vm01" };
  const metadata = (n: number): string => JSON.stringify({ edit: n });
  const stored = async (): Promise<string | undefined> => {
    const m = /<lago:resource [^>]*>([^<]*)</.exec(await out("net-dumpxml", "--inactive", NET));
    return m?.[1] === undefined ? undefined : Buffer.from(m[1], "base64").toString("utf8");
  };
  const range = { start: "10.231.77.120", end: "10.231.77.180" };
  await lv.editNetwork(NET, [{ op: "add-host", host }, { op: "add-dns", host: { ip: host.ip, names: ["vm01", "vm01.lago.local"] } }, { op: "set-range", range }], metadata(1));
  assert.equal(await stored(), metadata(1));
  // Again: already there, no second entry (libvirt would refuse a duplicate); the metadata follows.
  await lv.editNetwork(NET, [{ op: "add-host", host }, { op: "add-dns", host: { ip: host.ip, names: ["vm01.lago.local", "vm01"] } }, { op: "set-range", range }], metadata(2));
  assert.equal(await stored(), metadata(2));
  for (const flags of [[], ["--inactive"]]) {
    const xml = await out("net-dumpxml", ...flags, NET);
    assert.equal(xml.match(/<host mac='52:54:00:e2:0d:01' name='vm01' ip='10.231.77.11'\/>/g)?.length, 1, xml);
    assert.equal(xml.match(/<hostname>vm01\.lago\.local<\/hostname>/g)?.length, 1, xml);
    assert.match(xml, /<range start='10\.231\.77\.120' end='10\.231\.77\.180'\/>/);
  }
  // The same address for another MAC replaces the entry; a host moved to another address is removed, then added.
  await lv.editNetwork(NET, [{ op: "add-host", host: { ...host, mac: "52:54:00:e2:0d:02" } }], metadata(3));
  assert.doesNotMatch(await out("net-dumpxml", NET), /52:54:00:e2:0d:01/);
  const moved = { mac: "52:54:00:e2:0d:02", ip: "10.231.77.12", name: "vm01" };
  await lv.editNetwork(NET, [{ op: "remove-host", host: { ...host, mac: "52:54:00:e2:0d:02" } }, { op: "add-host", host: moved }], metadata(4));
  assert.match(await out("net-dumpxml", NET), /<host mac='52:54:00:e2:0d:02' name='vm01' ip='10\.231\.77\.12'\/>/);
  await lv.editNetwork(NET, [{ op: "remove-host", host: moved }, { op: "remove-dns", host: { ip: host.ip, names: ["vm01"] } }], metadata(5));
  for (const flags of [[], ["--inactive"]]) {
    const xml = await out("net-dumpxml", ...flags, NET);
    assert.doesNotMatch(xml, /<host mac=|vm01/, xml);
  }
  assert.equal(await stored(), metadata(5));
  // Stopped: the persistent definition only.
  await out("net-destroy", NET);
  await lv.editNetwork(NET, [{ op: "add-host", host }], metadata(6));
  assert.match(await out("net-dumpxml", "--inactive", NET), /<host mac='52:54:00:e2:0d:01'/);
  await out("net-start", NET);
  // An edit libvirt refuses: its own error, from the command made alone; what came before it is done.
  await assert.rejects(
    lv.editNetwork(NET, [{ op: "add-dns", host: { ip: "10.231.77.13", names: ["vm03"] } }, { op: "add-host", host: { mac: "52:54:00:e2:0d:zz", ip: "10.231.77.13", name: "vm03" } }], metadata(7)),
    (err: Error) => /net-update .*ip-dhcp-host/.test(err.message) && /error/i.test(err.message),
  );
  assert.match(await out("net-dumpxml", NET), /<hostname>vm03<\/hostname>/);
  assert.equal(await stored(), metadata(6), "the metadata waits for the edits");
  await assert.rejects(lv.editNetwork("lago-e2edrv-none", [{ op: "add-host", host }], "{}"), /network lago-e2edrv-none does not exist/);
});

test("a domain created under a name libvirt knows is redefined with that domain's UUID", async () => {
  await lv.defineDomain(dom, { expectNew: true });
  const uuid = (await out("domuuid", DOM)).trim();
  assert.match(uuid, /^[0-9a-f-]{36}$/);
  // Defined already (an interrupted apply): the definition is replaced, under the same UUID.
  await lv.defineDomain({ ...dom, memoryMiB: 192 }, { expectNew: true });
  assert.equal((await out("domuuid", DOM)).trim(), uuid);
  assert.match(await out("dumpxml", "--inactive", DOM), /<memory unit='KiB'>196608<\/memory>/);
  // A redefinition that expects the domain (an update).
  await lv.defineDomain({ ...dom, memoryMiB: 160 });
  assert.equal((await out("domuuid", DOM)).trim(), uuid);
  assert.match(await out("dumpxml", "--inactive", DOM), /<memory unit='KiB'>163840<\/memory>/);
  // Another error than a taken name is not mistaken for one.
  await assert.rejects(lv.defineDomain({ ...dom, name: "lago-e2edrv-vm2", memoryMiB: 0 }, { expectNew: true }), /-q define .*\n.*\n.*Memory size must be specified/);
  assert.equal((await virsh("domuuid", "lago-e2edrv-vm2")).code, 1, "nothing defined");
});
