import { test } from "node:test";
import assert from "node:assert/strict";
import {
  dhcpHostXml,
  dnsHostXml,
  domainXml,
  LAGO_NS,
  networkXml,
  parseDomainXml,
  parseNetworkXml,
  planNetworkEdits,
  rangeXml,
  sameNetworkEntries,
  withMetadata,
} from "../../src/drivers/real/libvirt-xml.ts";
import type { DomainDef, NetworkDef } from "../../src/drivers/types.ts";

const META = JSON.stringify({ address: "domain.vm01", env: "0a1b2c3d", attrs: { memory: 2048 } });
const META_B64 = Buffer.from(META).toString("base64");

const DEF: DomainDef = {
  name: "lago-0a1b2c3d-vm01",
  type: "kvm",
  memoryMiB: 2048,
  vcpu: 2,
  cpu: { mode: "host-passthrough" },
  disks: [{ dev: "vda", bus: "virtio", path: "/work/.lago/default/disks/vm01_root.qcow2", format: "qcow2", device: "disk" }],
  nics: [{ mac: "54:52:c0:a8:c8:02", network: "lago-0a1b2c3d-lago" }],
  consoleLog: "/work/.lago/default/logs/vm01.console.log",
  metadata: META,
  runAs: undefined,
};

/** The parts of a domain document before and after `<cpu>`, for the default DEF. */
const HEAD = (type: string): string => `<domain type="${type}">
  <name>lago-0a1b2c3d-vm01</name>
  <metadata>
    <lago:resource xmlns:lago="${LAGO_NS}">${META_B64}</lago:resource>
  </metadata>
  <memory unit="MiB">2048</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch="x86_64" machine="pc">hvm</type>
    <boot dev="hd"/>
    <bootmenu enable="no"/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
`;

const TAIL = `  <clock offset="utc"/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" discard="unmap"/>
      <source file="/work/.lago/default/disks/vm01_root.qcow2"/>
      <target dev="vda" bus="virtio"/>
    </disk>
    <interface type="network">
      <source network="lago-0a1b2c3d-lago"/>
      <mac address="54:52:c0:a8:c8:02"/>
      <model type="virtio"/>
      <rom enabled="no"/>
    </interface>
    <serial type="pty">
      <log file="/work/.lago/default/logs/vm01.console.log" append="on"/>
      <target port="0"/>
    </serial>
    <console type="pty">
      <target type="serial" port="0"/>
    </console>
    <rng model="virtio">
      <backend model="random">/dev/urandom</backend>
    </rng>
    <controller type="usb" model="none"/>
    <memballoon model="none"/>
  </devices>
</domain>
`;

test("kvm domain with host-passthrough: the exact document", () => {
  assert.equal(
    domainXml(DEF),
    `${HEAD("kvm")}  <cpu mode="host-passthrough">
    <topology sockets="2" cores="1" threads="1"/>
  </cpu>
${TAIL}`,
  );
});

test("qemu (TCG) domain with host-passthrough has no cpu element", () => {
  assert.equal(domainXml({ ...DEF, type: "qemu" }), `${HEAD("qemu")}${TAIL}`);
});

test("cpu_model: a custom cpu with the model, fallback allowed, and a topology", () => {
  assert.equal(
    domainXml({ ...DEF, cpu: { mode: "model", model: "Haswell-noTSX" } }),
    `${HEAD("kvm")}  <cpu mode="custom" match="exact">
    <model fallback="allow">Haswell-noTSX</model>
    <topology sockets="2" cores="1" threads="1"/>
  </cpu>
${TAIL}`,
  );
});

test("cpu_custom: @attrs and #text become XML, lists repeat elements, and a topology is added", () => {
  const custom = {
    "@mode": "custom",
    "@match": "exact",
    model: { "@fallback": "forbid", "#text": "Westmere" },
    feature: [
      { "@policy": "require", "@name": "vmx" },
      { "@policy": "disable", "@name": "svm" },
    ],
    vendor: "Intel",
  };
  assert.equal(
    domainXml({ ...DEF, type: "qemu", cpu: { mode: "custom", custom } }),
    `${HEAD("qemu")}  <cpu mode="custom" match="exact">
    <model fallback="forbid">Westmere</model>
    <feature policy="require" name="vmx"/>
    <feature policy="disable" name="svm"/>
    <vendor>Intel</vendor>
    <topology sockets="2" cores="1" threads="1"/>
  </cpu>
${TAIL}`,
  );
});

test("cpu_custom with its own topology keeps it and adds none", () => {
  const custom = { "@mode": "host-model", topology: { "@sockets": 1, "@cores": 2, "@threads": 1 } };
  assert.equal(
    domainXml({ ...DEF, cpu: { mode: "custom", custom } }),
    `${HEAD("kvm")}  <cpu mode="host-model">
    <topology sockets="1" cores="2" threads="1"/>
  </cpu>
${TAIL}`,
  );
});

test("sd* disks get a virtio-scsi controller; a cdrom is read-only without discard; a NIC can carry an MTU", () => {
  const def: DomainDef = {
    ...DEF,
    disks: [
      DEF.disks[0] ?? assert.fail(),
      { dev: "sdb", bus: "scsi", path: "/srv/data.raw", format: "raw", device: "disk" },
      { dev: "hdc", bus: "ide", path: "/srv/boot.iso", format: "raw", device: "cdrom" },
    ],
    nics: [...DEF.nics, { mac: "54:52:c0:a8:c9:02", network: "lago-0a1b2c3d-data", mtu: 9000 }],
  };
  const xml = domainXml(def);
  const devices = xml.slice(xml.indexOf("  <devices>"), xml.indexOf("    <serial"));
  assert.equal(
    devices,
    `  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" discard="unmap"/>
      <source file="/work/.lago/default/disks/vm01_root.qcow2"/>
      <target dev="vda" bus="virtio"/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw" discard="unmap"/>
      <source file="/srv/data.raw"/>
      <target dev="sdb" bus="scsi"/>
    </disk>
    <disk type="file" device="cdrom">
      <driver name="qemu" type="raw"/>
      <source file="/srv/boot.iso"/>
      <target dev="hdc" bus="ide"/>
      <readonly/>
    </disk>
    <controller type="scsi" model="virtio-scsi"/>
    <interface type="network">
      <source network="lago-0a1b2c3d-lago"/>
      <mac address="54:52:c0:a8:c8:02"/>
      <model type="virtio"/>
      <rom enabled="no"/>
    </interface>
    <interface type="network">
      <source network="lago-0a1b2c3d-data"/>
      <mac address="54:52:c0:a8:c9:02"/>
      <model type="virtio"/>
      <mtu size="9000"/>
      <rom enabled="no"/>
    </interface>
`,
  );
  const parsed = parseDomainXml(xml);
  assert.deepEqual(
    parsed.view.nics,
    [
      { mac: "54:52:c0:a8:c8:02", network: "lago-0a1b2c3d-lago", mtu: undefined },
      { mac: "54:52:c0:a8:c9:02", network: "lago-0a1b2c3d-data", mtu: 9000 },
    ],
  );
  assert.deepEqual(
    parsed.view.disks.map((d) => [d.dev, d.bus, d.format, d.device]),
    [
      ["vda", "virtio", "qcow2", "disk"],
      ["sdb", "scsi", "raw", "disk"],
      ["hdc", "ide", "raw", "cdrom"],
    ],
  );
});

test("no scsi controller without sd* disks", () => {
  assert.doesNotMatch(domainXml(DEF), /controller type="scsi"/);
});

test("metadata round trip through the generated domain XML", () => {
  assert.deepEqual(parseDomainXml(domainXml(DEF)), {
    name: "lago-0a1b2c3d-vm01",
    metadata: META,
    view: {
      memoryMiB: 2048,
      vcpu: 2,
      cpu: { mode: "host-passthrough", model: undefined },
      nics: [{ mac: "54:52:c0:a8:c8:02", network: "lago-0a1b2c3d-lago", mtu: undefined }],
      disks: [{ dev: "vda", path: "/work/.lago/default/disks/vm01_root.qcow2", format: "qcow2", bus: "virtio", device: "disk" }],
    },
  });
});

/** `virsh dumpxml --inactive` of a lago domain, as libvirt 9 prints it (single quotes, KiB, uuid, extra devices). */
const VIRSH_DOMAIN = `<domain type='kvm'>
  <name>lago-0a1b2c3d-vm01</name>
  <uuid>8d1f0c5e-2a7b-4e39-9c61-0f5d2b7a3e14</uuid>
  <metadata>
    <lago:resource xmlns:lago="${LAGO_NS}">${META_B64}</lago:resource>
  </metadata>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='host-passthrough' check='none' migratable='on'>
    <topology sockets='2' dies='1' cores='1' threads='1'/>
  </cpu>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/work/.lago/default/disks/vm01_root.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <interface type='network'>
      <mac address='54:52:C0:A8:C8:02'/>
      <source network='lago-0a1b2c3d-lago'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
  </devices>
</domain>
`;

test("parseDomainXml reads what libvirt prints: KiB memory, attributes on vcpu, upper-case MACs", () => {
  assert.deepEqual(parseDomainXml(VIRSH_DOMAIN), {
    name: "lago-0a1b2c3d-vm01",
    metadata: META,
    view: {
      memoryMiB: 2048,
      vcpu: 2,
      cpu: { mode: "host-passthrough", model: undefined },
      nics: [{ mac: "54:52:c0:a8:c8:02", network: "lago-0a1b2c3d-lago", mtu: undefined }],
      disks: [{ dev: "vda", path: "/work/.lago/default/disks/vm01_root.qcow2", format: "qcow2", bus: "virtio", device: "disk" }],
    },
  });
  // A named CPU model comes back as libvirt's `custom` mode with the model text.
  const modelled = VIRSH_DOMAIN.replace(/<cpu mode='host-passthrough'[\s\S]*?<\/cpu>/, "<cpu mode='custom' match='exact' check='partial'>\n    <model fallback='allow'>Skylake-Client</model>\n  </cpu>");
  assert.deepEqual(parseDomainXml(modelled).view.cpu, { mode: "custom", model: "Skylake-Client" });
  // No <cpu> at all: the hypervisor's default.
  assert.deepEqual(parseDomainXml(VIRSH_DOMAIN.replace(/<cpu mode='host-passthrough'[\s\S]*?<\/cpu>/, "")).view.cpu, { mode: "none", model: undefined });
});

test("a domain lago did not create has no metadata", () => {
  const foreign = VIRSH_DOMAIN.replace(/ {2}<metadata>[\s\S]*?<\/metadata>\n/, "");
  assert.equal(parseDomainXml(foreign).metadata, undefined);
  const otherNs = VIRSH_DOMAIN.replace(LAGO_NS, "http://example.com/other");
  assert.equal(parseDomainXml(otherNs).metadata, undefined);
});

const NAT: NetworkDef = {
  name: "lago-0a1b2c3d-lago",
  bridge: "lgo1234567890",
  mode: "nat",
  gateway: "192.168.200.1",
  prefix: 24,
  dhcp: { start: "192.168.200.100", end: "192.168.200.254" },
  hosts: [
    { mac: "54:52:c0:a8:c8:02", ip: "192.168.200.2", name: "vm01" },
    { mac: "54:52:c0:a8:c8:03", ip: "192.168.200.3", name: "vm02" },
  ],
  domain: "lago.local",
  dnsHosts: [
    { ip: "192.168.200.2", names: ["vm01"] },
    { ip: "192.168.200.9", names: ["db.lago.local", "db2.lago.local"] },
  ],
  dnsForwarder: undefined,
  mtu: undefined,
  metadata: '{"address":"network.lago"}',
};
const NET_META_B64 = Buffer.from('{"address":"network.lago"}').toString("base64");

test("NAT network: dhcp range, hosts, DNS domain and DNS hosts", () => {
  assert.equal(
    networkXml(NAT),
    `<network>
  <name>lago-0a1b2c3d-lago</name>
  <metadata>
    <lago:resource xmlns:lago="${LAGO_NS}">${NET_META_B64}</lago:resource>
  </metadata>
  <forward mode="nat"/>
  <bridge name="lgo1234567890" stp="off" delay="0"/>
  <domain name="lago.local" localOnly="yes"/>
  <dns enable="yes">
    <host ip="192.168.200.2">
      <hostname>vm01</hostname>
    </host>
    <host ip="192.168.200.9">
      <hostname>db.lago.local</hostname>
      <hostname>db2.lago.local</hostname>
    </host>
  </dns>
  <ip address="192.168.200.1" prefix="24">
    <dhcp>
      <range start="192.168.200.100" end="192.168.200.254"/>
      <host mac="54:52:c0:a8:c8:02" name="vm01" ip="192.168.200.2"/>
      <host mac="54:52:c0:a8:c8:03" name="vm02" ip="192.168.200.3"/>
    </dhcp>
  </ip>
</network>
`,
  );
});

test("NAT network without a dhcp range but with hosts keeps the dhcp element; without either it has none", () => {
  assert.match(networkXml({ ...NAT, dhcp: undefined }), /<ip address="192.168.200.1" prefix="24">\n {4}<dhcp>\n {6}<host mac="54:52:c0:a8:c8:02"/);
  assert.match(networkXml({ ...NAT, dhcp: undefined, hosts: [] }), /<ip address="192.168.200.1" prefix="24"\/>\n<\/network>\n$/);
});

test("isolated bridge network: no forward, no ip, DNS off", () => {
  assert.equal(
    networkXml({
      name: "lago-0a1b2c3d-data",
      bridge: "lgoabcdef0123",
      mode: "isolated",
      gateway: "",
      prefix: 24,
      dhcp: undefined,
      hosts: [],
      domain: undefined,
      dnsHosts: [],
      dnsForwarder: undefined,
      mtu: 9000,
      metadata: "{}",
    }),
    `<network>
  <name>lago-0a1b2c3d-data</name>
  <metadata>
    <lago:resource xmlns:lago="${LAGO_NS}">e30=</lago:resource>
  </metadata>
  <bridge name="lgoabcdef0123" stp="off" delay="0"/>
  <mtu size="9000"/>
  <dns enable="no"/>
</network>
`,
  );
});

test("net-update fragments", () => {
  assert.equal(dhcpHostXml({ mac: "54:52:c0:a8:c8:02", ip: "192.168.200.2", name: "vm01" }), '<host mac="54:52:c0:a8:c8:02" name="vm01" ip="192.168.200.2"/>');
  assert.equal(dnsHostXml({ ip: "192.168.200.2", names: ["a", "b"] }), '<host ip="192.168.200.2">\n  <hostname>a</hostname>\n  <hostname>b</hostname>\n</host>');
  assert.equal(rangeXml({ start: "192.168.200.100", end: "192.168.200.254" }), '<range start="192.168.200.100" end="192.168.200.254"/>');
});

/** `virsh net-dumpxml` of a lago network as libvirt 9 prints it. */
const VIRSH_NETWORK = `<network connections='2'>
  <name>lago-0a1b2c3d-lago</name>
  <uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid>
  <metadata>
    <lago:resource xmlns:lago="${LAGO_NS}">${NET_META_B64}</lago:resource>
  </metadata>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='lgo1234567890' stp='on' delay='0'/>
  <mac address='52:54:00:4a:1e:7b'/>
  <domain name='lago.local' localOnly='yes'/>
  <dns enable='yes'>
    <host ip='192.168.200.2'>
      <hostname>vm01</hostname>
    </host>
    <host ip='192.168.200.9'>
      <hostname>db.lago.local</hostname>
      <hostname>db2.lago.local</hostname>
    </host>
  </dns>
  <ip address='192.168.200.1' prefix='24'>
    <dhcp>
      <range start='192.168.200.100' end='192.168.200.254'/>
      <host mac='54:52:C0:A8:C8:02' name='vm01' ip='192.168.200.2'/>
      <host mac='54:52:c0:a8:c8:03' name='vm02' ip='192.168.200.3'/>
    </dhcp>
  </ip>
</network>
`;

test("parseNetworkXml reads libvirt's net-dumpxml output", () => {
  assert.deepEqual(parseNetworkXml(VIRSH_NETWORK), {
    name: "lago-0a1b2c3d-lago",
    bridge: "lgo1234567890",
    metadata: '{"address":"network.lago"}',
    mode: "nat",
    gateway: "192.168.200.1",
    mtu: undefined,
    domain: "lago.local",
    forwarder: undefined,
    dhcp: { start: "192.168.200.100", end: "192.168.200.254" },
    hosts: [
      { mac: "54:52:c0:a8:c8:02", ip: "192.168.200.2", name: "vm01" },
      { mac: "54:52:c0:a8:c8:03", ip: "192.168.200.3", name: "vm02" },
    ],
    dnsHosts: [
      { ip: "192.168.200.2", names: ["vm01"] },
      { ip: "192.168.200.9", names: ["db.lago.local", "db2.lago.local"] },
    ],
  });
});

test("parseNetworkXml of an isolated bridge: no dhcp, no hosts", () => {
  const xml = `<network>
  <name>lago-0a1b2c3d-data</name>
  <uuid>0b7e2f51-91c3-4d0a-a2a8-5f1f4e2c9d70</uuid>
  <bridge name='lgoabcdef0123' stp='on' delay='0'/>
  <mtu size='9000'/>
  <mac address='52:54:00:12:34:56'/>
  <dns enable='no'/>
</network>
`;
  assert.deepEqual(parseNetworkXml(xml), {
    name: "lago-0a1b2c3d-data",
    bridge: "lgoabcdef0123",
    metadata: undefined,
    mode: "isolated",
    gateway: undefined,
    mtu: 9000,
    domain: undefined,
    forwarder: undefined,
    dhcp: undefined,
    hosts: [],
    dnsHosts: [],
  });
});

test("parseNetworkXml round-trips networkXml", () => {
  const parsed = parseNetworkXml(networkXml(NAT));
  assert.deepEqual(parsed, {
    name: NAT.name,
    bridge: NAT.bridge,
    metadata: NAT.metadata,
    mode: "nat",
    gateway: NAT.gateway,
    mtu: NAT.mtu,
    domain: NAT.domain,
    forwarder: NAT.dnsForwarder,
    dhcp: NAT.dhcp,
    hosts: NAT.hosts,
    dnsHosts: NAT.dnsHosts,
  });
});

test("withMetadata replaces the existing lago metadata and nothing else", () => {
  const replaced = withMetadata(VIRSH_NETWORK, '{"address":"network.lago","v":2}');
  const newB64 = Buffer.from('{"address":"network.lago","v":2}').toString("base64");
  assert.equal(
    replaced,
    VIRSH_NETWORK.replace(
      `<metadata>\n    <lago:resource xmlns:lago="${LAGO_NS}">${NET_META_B64}</lago:resource>\n  </metadata>`,
      `<metadata>\n    <lago:resource xmlns:lago="${LAGO_NS}">${newB64}</lago:resource>\n  </metadata>`,
    ),
  );
  assert.equal(parseNetworkXml(replaced).metadata, '{"address":"network.lago","v":2}');
  assert.deepEqual({ ...parseNetworkXml(replaced), metadata: undefined }, { ...parseNetworkXml(VIRSH_NETWORK), metadata: undefined });
  // Only one metadata element remains.
  assert.equal(replaced.match(/<metadata>/g)?.length, 1);
});

test("withMetadata keeps other tools' metadata", () => {
  const other = `<other:info xmlns:other="https://example.org/other">keep me</other:info>`;
  const withOther = VIRSH_NETWORK.replace("<metadata>\n", `<metadata>\n    ${other}\n`);
  const replaced = withMetadata(withOther, "{}");
  assert.ok(replaced.includes(other));
  assert.equal(parseNetworkXml(replaced).metadata, "{}");
  const noLago = VIRSH_NETWORK.replace(/ {4}<lago:resource[^\n]*\n/, `    ${other}\n`);
  const added = withMetadata(noLago, "{}");
  assert.ok(added.includes(other));
  assert.equal(parseNetworkXml(added).metadata, "{}");
});

test("withMetadata adds metadata after the name when there is none", () => {
  const bare = VIRSH_DOMAIN.replace(/ {2}<metadata>[\s\S]*?<\/metadata>\n/, "");
  const added = withMetadata(bare, "{}");
  assert.match(added, /<name>lago-0a1b2c3d-vm01<\/name>\n {2}<metadata>\n {2}<lago:resource xmlns:lago="https:\/\/lago.dev\/xmlns\/libvirt\/1">e30=<\/lago:resource>\n<\/metadata>\n {2}<uuid>/);
  assert.equal(parseDomainXml(added).metadata, "{}");
});

test("hostile values are escaped: names with < and &, quotes in cpu_custom text and attributes", () => {
  const name = `vm<1>&"x'`;
  const xml = domainXml({
    ...DEF,
    name,
    consoleLog: `/tmp/a"b<c>.log`,
    cpu: { mode: "custom", custom: { "@mode": `custom" evil="1`, model: { "#text": `Westmere"</model><evil/>` } } },
  });
  assert.match(xml, /<name>vm&lt;1&gt;&amp;&quot;x&apos;<\/name>/);
  assert.match(xml, /<cpu mode="custom&quot; evil=&quot;1">/);
  assert.match(xml, /<model>Westmere&quot;&lt;\/model&gt;&lt;evil\/&gt;<\/model>/);
  assert.match(xml, /<log file="\/tmp\/a&quot;b&lt;c&gt;.log" append="on"\/>/);
  assert.doesNotMatch(xml, /<evil/);
  // The escaped document parses back to the original values.
  assert.equal(parseDomainXml(xml).name, name);

  const net = networkXml({ ...NAT, domain: `a"b&c`, dnsHosts: [{ ip: "192.168.200.9", names: ["<x>"] }], hosts: [{ mac: "54:52:c0:a8:c8:02", ip: "192.168.200.2", name: `vm"1` }] });
  assert.match(net, /<domain name="a&quot;b&amp;c" localOnly="yes"\/>/);
  assert.match(net, /<hostname>&lt;x&gt;<\/hostname>/);
  assert.match(net, /<host mac="54:52:c0:a8:c8:02" name="vm&quot;1" ip="192.168.200.2"\/>/);
  assert.deepEqual(parseNetworkXml(net).dnsHosts, [{ ip: "192.168.200.9", names: ["<x>"] }]);
});

test("cpu_custom keys that are not XML names are refused instead of injected", () => {
  assert.throws(
    () => domainXml({ ...DEF, cpu: { mode: "custom", custom: { "x><evil/><y": "z" } } }),
    /"x><evil\/><y" is not a valid XML element or attribute name/,
  );
  assert.throws(() => domainXml({ ...DEF, cpu: { mode: "custom", custom: { '@a="1" b': "z" } } }), /is not a valid XML element or attribute name/);
});

test("runAs adds a static DAC seclabel after the devices; a uuid is kept when redefining", () => {
  const xml = domainXml({ ...DEF, runAs: { uid: 1000, gid: 1001 } }, "8d1f0c5e-2a7b-4e39-9c61-0f5d2b7a3e14");
  assert.match(xml, /^<domain type="kvm">\n {2}<name>lago-0a1b2c3d-vm01<\/name>\n {2}<uuid>8d1f0c5e-2a7b-4e39-9c61-0f5d2b7a3e14<\/uuid>\n {2}<metadata>/);
  assert.match(
    xml,
    /<\/devices>\n {2}<seclabel type="static" model="dac" relabel="no">\n {4}<label>\+1000:\+1001<\/label>\n {2}<\/seclabel>\n<\/domain>\n$/,
  );
  assert.doesNotMatch(domainXml(DEF), /seclabel|<uuid>/);
});

test("a DNS forwarder is the first child of <dns>", () => {
  assert.match(
    networkXml({ ...NAT, domain: undefined, dnsHosts: [{ ip: "192.168.201.2", names: ["vm01"] }], dnsForwarder: "192.168.200.1" }),
    /<dns enable="yes">\n {4}<forwarder addr="192.168.200.1"\/>\n {4}<host ip="192.168.201.2">\n {6}<hostname>vm01<\/hostname>\n {4}<\/host>\n {2}<\/dns>/,
  );
});

test("a network redefined carries the existing network's UUID, right after its name (libvirt refuses a definition of that name with another)", () => {
  const xml = networkXml(NAT, "cd9e89dc-8e95-460f-a86d-ad25125e9b0e");
  assert.match(xml, /^<network>\n {2}<name>[^<]+<\/name>\n {2}<uuid>cd9e89dc-8e95-460f-a86d-ad25125e9b0e<\/uuid>\n/);
  assert.doesNotMatch(networkXml(NAT), /<uuid>/);
});

test("planNetworkEdits: the net-updates a network's in-place edits need, what is in place skipped, and the entries after", () => {
  const a = { mac: "52:54:00:00:00:0a", ip: "192.168.200.10", name: "vm01" };
  const current = { hosts: [a], dnsHosts: [{ ip: a.ip, names: ["vm01", "vm01.lago"] }], dhcp: { start: "192.168.200.100", end: "192.168.200.254" } };
  const host = (h: { mac: string; ip: string; name: string }): string => `<host mac="${h.mac}" name="${h.name}" ip="${h.ip}"/>`;
  // Already in place (MAC case and name order do not matter): nothing to do.
  assert.deepEqual(
    planNetworkEdits(current, [
      { op: "add-host", host: { ...a, mac: a.mac.toUpperCase() } },
      { op: "add-dns", host: { ip: a.ip, names: ["vm01.lago", "vm01"] } },
      { op: "set-range", range: { start: "192.168.200.100", end: "192.168.200.254" } },
    ]),
    { updates: [], after: current },
  );
  // Another MAC at the same address replaces the host; a host that moves is removed then added; other names
  // at an address replace its DNS entry; a new range replaces the old one.
  const b = { mac: "52:54:00:00:00:0b", ip: a.ip, name: "vm02" };
  const moved = { ...b, ip: "192.168.200.11" };
  const plan = planNetworkEdits(current, [
    { op: "add-host", host: b },
    { op: "remove-host", host: b },
    { op: "add-host", host: moved },
    { op: "add-dns", host: { ip: a.ip, names: ["vm02"] } },
    { op: "remove-dns", host: { ip: "192.168.200.99", names: [] } },
    { op: "set-range", range: { start: "192.168.200.50", end: "192.168.200.60" } },
  ]);
  assert.deepEqual(
    plan.updates.map((u) => `${u.command} ${u.section} ${u.xml}`),
    [
      `delete ip-dhcp-host ${host(a)}`,
      `add ip-dhcp-host ${host(b)}`,
      `delete ip-dhcp-host ${host(b)}`,
      `add ip-dhcp-host ${host(moved)}`,
      `delete dns-host <host ip="192.168.200.10">\n  <hostname>vm01</hostname>\n  <hostname>vm01.lago</hostname>\n</host>`,
      `add dns-host <host ip="192.168.200.10">\n  <hostname>vm02</hostname>\n</host>`,
      `delete ip-dhcp-range <range start="192.168.200.100" end="192.168.200.254"/>`,
      `add ip-dhcp-range <range start="192.168.200.50" end="192.168.200.60"/>`,
    ],
  );
  assert.deepEqual(plan.after, { hosts: [moved], dnsHosts: [{ ip: a.ip, names: ["vm02"] }], dhcp: { start: "192.168.200.50", end: "192.168.200.60" } });
  // No range yet: only an add.
  assert.deepEqual(
    planNetworkEdits({ hosts: [], dnsHosts: [], dhcp: undefined }, [{ op: "set-range", range: { start: "10.0.0.2", end: "10.0.0.9" } }]).updates.map((u) => u.command),
    ["add"],
  );
});

test("sameNetworkEntries: hosts, DNS entries and range, in any order and MAC case", () => {
  const x = { hosts: [{ mac: "52:54:00:00:00:0A", ip: "10.0.0.10", name: "a" }, { mac: "52:54:00:00:00:0b", ip: "10.0.0.11", name: "b" }], dnsHosts: [{ ip: "10.0.0.10", names: ["a", "a.lago"] }], dhcp: { start: "10.0.0.100", end: "10.0.0.200" } };
  const y = { hosts: [x.hosts[1]!, { ...x.hosts[0]!, mac: "52:54:00:00:00:0a" }], dnsHosts: [{ ip: "10.0.0.10", names: ["a.lago", "a"] }], dhcp: { ...x.dhcp } };
  assert.equal(sameNetworkEntries(x, y), true);
  assert.equal(sameNetworkEntries(x, { ...y, dhcp: undefined }), false);
  assert.equal(sameNetworkEntries(x, { ...y, hosts: [x.hosts[1]!] }), false);
  assert.equal(sameNetworkEntries(x, { ...y, dnsHosts: [{ ip: "10.0.0.10", names: ["a"] }] }), false);
});
