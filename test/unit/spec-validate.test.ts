import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { parseSpec } from "../../src/spec/load.ts";

const FILE = "/e/LagoInitFile";
const lines = (...l: string[]): string => `${l.join("\n")}\n`;
const LAGO_NET = lines("nets:", "  lago: {type: nat, management: true}");

/** Every diagnostic as `line:col: message`. */
function problems(text: string): string[] {
  try {
    parseSpec(text, FILE, { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const d of err.diagnostics) assert.equal(d.pos.file, FILE);
      return err.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`);
    }
    throw err;
  }
  return assert.fail("expected a ConfigError");
}

test("static IPs: reserved host numbers, duplicates, one /24 per net, the gw's /24", () => {
  const text = lines(
    "domains:",
    "  a:",
    "    nics:",
    "      - {net: lago, ip: 192.168.200.0}",
    "      - {net: storage, ip: 192.168.201.255}",
    "  b:",
    "    nics:",
    "      - {net: lago, ip: 192.168.200.7}",
    "      - {net: storage, ip: 192.168.200.7}",
    "  c:",
    "    nics:",
    "      - {net: lago, ip: 192.168.100.8}",
    "      - {net: gwnet, ip: 10.0.0.9}",
    "      - {net: gwnet, ip: 10.0.1.1}",
    "      - {net: gwnet, ip: 10.0.1.9}",
    "nets:",
    "  lago: {type: nat, management: true}",
    "  storage: {type: nat}",
    "  gwnet: {type: nat, gw: 10.0.1.9}",
  );
  assert.deepEqual(problems(text), [
    "4:25: static IP `192.168.200.0` ends in .0, the network address of its /24; static IPs must end in .2 to .254",
    "5:28: static IP `192.168.201.255` ends in .255, the broadcast address of its /24; static IPs must end in .2 to .254",
    "9:28: static IP `192.168.200.7` is already used by `domains.b.nics[0].ip`; static IPs must be unique",
    "12:25: static IP `192.168.100.8` is outside net `lago`'s subnet 192.168.200.0/24 (from its first static IP, 192.168.200.7 at `domains.b.nics[0].ip`); all static IPs of a net must be in one /24",
    "13:26: static IP `10.0.0.9` is outside net `gwnet`'s subnet 10.0.1.0/24 (from its gw 10.0.1.9); all static IPs of a net must be in one /24",
    "14:26: static IP `10.0.1.1` ends in .1, the gateway address of its /24; static IPs must end in .2 to .254",
    "15:26: static IP `10.0.1.9` is the gateway address (gw) of net `gwnet`",
  ]);
});

test("DNS attributes on a net that is not the management net (_validate_netconfig)", () => {
  const implicit = lines(
    "domains:",
    "  a:",
    "    nics: [{net: alpha}, {net: beta}]",
    "nets:",
    "  beta: {type: nat, dns_domain_name: beta.local, dns_records: {x: 1.2.3.4}}",
    "  alpha: {type: nat}",
  );
  const why = "(no net sets `management: true`, so the first net by name, `alpha`, is the management network)";
  assert.deepEqual(problems(implicit), [
    `5:21: net \`beta\` sets \`dns_domain_name\` but is not a management network: Lago serves DNS only on management networks ${why}`,
    `5:50: net \`beta\` sets \`dns_records\` but is not a management network: Lago serves DNS only on management networks ${why}`,
  ]);
  const explicit = lines(
    "domains:",
    "  a:",
    "    nics: [{net: alpha}, {net: beta}]",
    "nets:",
    "  beta: {type: nat, management: false, dns_domain_name: beta.local}",
    "  alpha: {type: nat, management: true}",
  );
  assert.deepEqual(problems(explicit), [
    "5:40: net `beta` sets `dns_domain_name` but is not a management network: Lago serves DNS only on management networks",
  ]);
});

test("management selection: the first net by sorted name when none is marked", () => {
  const spec = parseSpec(
    lines("domains:", "  a:", "    nics: [{net: beta}, {net: alpha}]", "nets:", "  beta: {type: nat}", "  alpha: {type: bridge}"),
    FILE,
    { env: {} },
  );
  assert.deepEqual(
    spec.nets.map((n) => [n.name, n.management, n.dnsDomainName, n.dhcp]),
    [
      ["alpha", true, "lago.local", undefined],
      ["beta", false, undefined, { start: 100, end: 254 }],
    ],
  );
});

test("a domain with two NICs on management networks", () => {
  const text = lines("domains:", "  a:", "    nics: [{net: m1}, {net: m2}]", "nets:", "  m1: {type: nat, management: true}", "  m2: {type: nat, management: true}");
  assert.deepEqual(problems(text), ["3:29: domain `a` has 2 NICs on management networks (`m1`, `m2`); it must have exactly one"]);
});

test("what each disk type needs, iso only on file disks, dev/device conflicts, sizes, CPU settings", () => {
  const text = lines(
    "domains:",
    "  a:",
    "    nics: [{net: lago}]",
    "    disks:",
    "      - {name: root, dev: vda}",
    "      - {name: f, dev: vdb, type: file}",
    "      - {name: iso, dev: sdc, type: empty, format: iso, size: 1G}",
    "      - {name: d, dev: vdd, device: vde, type: empty, size: 512K}",
    "      - {name: e, dev: vdf, type: empty, size: 10 GB}",
    "    cpu_model: Westmere",
    "    cpu_custom: {'@mode': custom}",
    LAGO_NET,
  );
  assert.deepEqual(problems(text), [
    "5:9: template disk `root` of domain `a` needs `template_name` (a template from the repository) or `path` (a local image)",
    "6:9: file disk `f` of domain `a` needs `path` (an existing image), `url` (an image to download) or `size` (to create a new one)",
    "7:52: format `iso` is only for `file` disks (an ISO image given by `path` or `url`), but disk `iso` of domain `a` is an empty disk",
    "8:29: disk `d` of domain `a` sets both `dev` (vdd) and `device` (vde), which are the same setting; keep one",
    "8:61: size `512K` of disk `d` of domain `a` is under 1 MiB",
    '9:48: `domains.a.disks[4].size` must be a size like 10G, 512M or a number of bytes, got "10 GB"',
    "11:5: domain `a` sets both `cpu_model` and `cpu_custom`; use one of them",
  ]);
});

test("build steps: option names, argument types, the only builder", () => {
  const text = lines(
    "domains:",
    "  a:",
    "    nics: [{net: lago}]",
    "    disks:",
    "      - name: root",
    "        dev: vda",
    "        template_name: t",
    "        build:",
    "          - virt-customize: {--run: x, hostname: {a: 1}}",
    "          - {virt-customize: {}, shell: {}}",
    "          - {}",
    "          - virt-customize",
    LAGO_NET,
  );
  assert.deepEqual(problems(text), [
    "9:30: key `--run` must be a virt-customize option name like `run-command` (lowercase, without the leading `--`)",
    "9:50: `domains.a.disks[0].build[0].virt-customize.hostname` must be an argument (string or number), '' for a flag, or a list of arguments to repeat the option",
    "10:13: `domains.a.disks[0].build[1]` must name exactly one builder, like `- virt-customize: {ssh-inject: ''}`",
    "10:34: unknown builder `shell`: lago supports only `virt-customize`",
    "11:13: `domains.a.disks[0].build[2]` must name exactly one builder, like `- virt-customize: {ssh-inject: ''}`",
    '12:13: `domains.a.disks[0].build[3]` must be a mapping, got "virt-customize"',
  ]);
});

test("value types: numbers or numeric strings, booleans, enums, OVA-only keys, MTU range", () => {
  const text = lines(
    "domains:",
    "  a:",
    "    memory: 1.5",
    "    vcpu: '0'",
    "    cpus: two",
    "    bootstrap: 'no'",
    "    groups: [1]",
    "    root-password: [x]",
    "    url: http://x/a.ova",
    "    vm-provider: libvirt",
    "    nics: [{net: lago, mtu: 10}]",
    LAGO_NET,
  );
  assert.deepEqual(problems(text), [
    "3:13: `domains.a.memory` must be a positive whole number of MiB, like 2048 or \"2048\", got 1.5",
    '4:11: `domains.a.vcpu` must be a positive whole number of CPUs, like 2 or "2", got "0"',
    '5:11: `domains.a.cpus` must be a positive whole number of CPUs, like 2 or "2", got "two"',
    '6:16: `domains.a.bootstrap` must be true or false, got "no"',
    "7:14: `domains.a.groups[0]` must be a string, got 1",
    "8:20: `domains.a.root-password` must be a string or a number, got a list",
    "9:5: `url` only applies to OVA domains (`type: ova`)",
    '10:18: `domains.a.vm-provider` must be one of `local-libvirt`, `ssh`, got "libvirt"',
    "11:29: `domains.a.nics[0].mtu` must be a whole number from 68 to 65535, got 10",
  ]);
});

test("unsafe domain names: too long, control characters, quotes, backquotes", () => {
  const text = lines(
    "domains:",
    `  ${"x".repeat(64)}:`,
    "    nics: [{net: lago}]",
    '  "tab\\there":',
    "    nics: [{net: lago}]",
    "  'it''s':",
    "    nics: [{net: lago}]",
    "  '`id`':",
    "    nics: [{net: lago}]",
    LAGO_NET,
  );
  const why = "use letters, digits, `.`, `_` and `-`";
  assert.deepEqual(problems(text), [
    `2:3: domain name "${"x".repeat(64)}" is unsafe for libvirt, file names and shells: it is 64 characters long (at most 63); ${why}`,
    `4:3: domain name "tab\\there" is unsafe for libvirt, file names and shells: it contains a control character; ${why}`,
    `6:3: domain name "it's" is unsafe for libvirt, file names and shells: it contains a quote; ${why}`,
    `8:3: domain name "\`id\`" is unsafe for libvirt, file names and shells: it contains a backquote; ${why}`,
  ]);
});

test("empty sections", () => {
  assert.deepEqual(problems(lines("domains: {}", "nets: []")), [
    "1:10: `domains` must be a mapping of VM names to VM definitions, with at least one VM",
    "2:7: `nets` must be a mapping of network names to network definitions, with at least one network, got a list",
  ]);
});

test("legacy prototypes: `based-on` inherits what the domain does not set", () => {
  const text = lines(
    "prototypes:",
    "  host:",
    "    memory: 2048",
    "    nics: [{net: lago}]",
    "    disks: [{name: root, dev: vda, template_name: el7}]",
    "domains:",
    "  host0: {based-on: host}",
    "  host1: {based-on: host, memory: 4096}",
    LAGO_NET,
  );
  const spec = parseSpec(text, FILE, { env: {} });
  assert.deepEqual(
    spec.domains.map((d) => [d.name, d.memory, d.nics.map((n) => n.net), d.disks.map((k) => k.templateName)]),
    [
      ["host0", 2048, ["lago"], ["el7"]],
      ["host1", 4096, ["lago"], ["el7"]],
    ],
  );
  // Inherited values point into the prototype, where they are written.
  assert.deepEqual(spec.locate("/domains/host0/disks/0/template_name"), { file: FILE, line: 5, col: 51 });
  assert.deepEqual(spec.locate("/domains/host1/memory"), { file: FILE, line: 8, col: 35 });
});

test("legacy prototypes: unknown and chained prototypes", () => {
  const text = lines("prototypes:", "  host: {nics: [{net: lago}], based-on: other}", "domains:", "  a: {based-on: hots}", "  b: {based-on: host, memory: 0}", LAGO_NET);
  assert.deepEqual(problems(text), [
    "2:31: prototype `host` cannot itself be `based-on` another prototype",
    "4:17: prototype `hots` is not defined in `prototypes` — did you mean `host`?",
    '5:31: `domains.b.memory` must be a positive whole number of MiB, like 2048 or "2048", got 0',
  ]);
});

test("accepted Lago keys: OVA domains, ssh provider without disks, CPU aliases, passwords, mtu", () => {
  const text = lines(
    "domains:",
    "  engine:",
    "    type: ova",
    "    url: file://$LAGO_INITFILE_PATH/images/appliance.ova",
    "    boot_time_sec : 500",
    "    cpu: 4",
    "    nics: [{net: lago}]",
    "    disks: [{type: file, path: seed.iso, dev: sda, format: iso, name: cloud-init, url: 'http://x/seed.iso'}]",
    "  remote:",
    "    vm-provider: ssh",
    "    ssh-password: 123456",
    "    vcpu: '3'",
    "    cpus: 1",
    "    nics: [{net: lago, ip: 192.168.200.99, mtu: 1400}]",
    "nets:",
    "  lago: {type: nat, management: true, mtu: 9000, dhcp: {end: 200}}",
  );
  const spec = parseSpec(text, FILE, { env: {} });
  const [engine, remote] = spec.domains;
  assert.deepEqual(engine?.ova, { url: "file:///e/images/appliance.ova", bootTimeSec: 500 });
  assert.equal(engine?.vcpu, 4);
  assert.deepEqual(engine?.disks[0]?.path, "/e/seed.iso");
  assert.deepEqual(engine?.disks[0]?.url, "http://x/seed.iso");
  assert.equal(remote?.vmProvider, "ssh");
  assert.equal(remote?.sshPassword, "123456");
  assert.equal(remote?.vcpu, 3);
  assert.deepEqual(remote?.disks, []);
  assert.deepEqual(remote?.nics[0]?.mtu, 1400);
  assert.deepEqual(engine?.nics[0]?.mtu, 9000);
  assert.deepEqual(spec.nets[0]?.dhcp, { start: 100, end: 200 });
});

test("$VAR expansion: known variables, LAGO_INITFILE_PATH, unknown ones kept as written", () => {
  const text = lines(
    "domains:",
    "  a:",
    "    nics: [{net: lago}]",
    "    disks:",
    "      - {name: root, dev: vda, path: '${IMG}/root.qcow2'}",
    "      - {name: b, dev: vdb, path: '$LAGO_INITFILE_PATH/b.qcow2', type: file}",
    "      - {name: c, dev: vdc, path: '$UNSET/c.qcow2', type: file}",
    "      - {name: d, dev: vdd, path: 'sub/$UNSET/d.qcow2', type: file}",
    LAGO_NET,
  );
  const spec = parseSpec(text, FILE, { env: { IMG: "/images", LAGO_INITFILE_PATH: "/ignored" } });
  assert.deepEqual(
    spec.domains[0]?.disks.map((d) => d.path),
    ["/images/root.qcow2", "/e/b.qcow2", "$UNSET/c.qcow2", "/e/sub/$UNSET/d.qcow2"],
  );
});

test("a disk name may not contain a dot: disk.<vm>.<disk> must name one disk, and VM names may contain dots", () => {
  const text = lines(
    "domains:",
    "  foreman.example.com:",
    "    nics: [{net: lago}]",
    "    disks:",
    "      - {name: root, type: empty, size: 1G, dev: vda}",
    "      - {name: b.c, type: empty, size: 1G, dev: vdb}",
  ) + LAGO_NET;
  assert.deepEqual(problems(text), [
    "6:16: disk name `b.c` contains `.`: disk names may not (lago addresses disks as disk.<vm>.<disk>, and VM names may contain dots); use `_` or `-`",
  ]);
});
