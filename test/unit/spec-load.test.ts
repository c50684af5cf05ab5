import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigError, UsageError, formatDiagnostic } from "../../src/errors.ts";
import { loadSpec, parseSpec } from "../../src/spec/load.ts";
import type { EnvSpec } from "../../src/spec/types.ts";

const FILE = "/env/demo/LagoInitFile";

/** Every diagnostic of a file that must fail, as `file:line:col: message`. */
function problems(text: string, file = FILE): string[] {
  try {
    parseSpec(text, file, { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  return assert.fail("expected a ConfigError");
}

function withoutLocate(spec: EnvSpec): Omit<EnvSpec, "locate"> {
  const { locate: _locate, ...rest } = spec;
  return rest;
}

const SMALL = `base-disk: &base-disk
  type: template
  template_name: el7.6-base
  dev: vda
  name: root

vm-common: &vm-common
  memory: "2048"
  service_provider: systemd
  nics:
    - net: lago
  disks:
    - *base-disk

domains:
  vm02:
    <<: *vm-common
    cpus: 4
    root-password: 123456
    groups: web
    disks:
      - *base-disk
      - name: data
        dev: sdb
        type: empty
        size: 10G
        format: raw
      - name: seed
        dev: sdc
        type: file
        format: iso
        path: images/seed.iso
      - name: extra
        dev: vdb
        type: file
        path: \${IMAGES}/extra.qcow2
  vm01:
    <<: *vm-common
    bootstrap: false
    ssh-user: admin
    metadata:
      deploy-scripts: [$LAGO_INITFILE_PATH/deploy.sh]
    nics:
      - net: lago
        ip: 192.168.200.10
      - net: storage
    disks:
      - name: root
        dev: vda
        template_name: el7.6-base
        template_version: v2
        path: $LAGO_INITFILE_PATH/../images/root.qcow2
        build:
          - virt-customize:
              ssh-inject: ''
              touch: [/root/a, /root/b]
              selinux-relabel:
              memsize: 1024
nets:
  storage:
    type: bridge
  lago:
    type: nat
    gw: 192.168.200.1
    dns_records:
      www.example.com: 192.168.200.50
`;

const domainDefaults = {
  vcpu: 2,
  cpuModel: undefined,
  cpuCustom: undefined,
  bootstrap: true,
  sshUser: "root",
  rootPassword: undefined,
  groups: [],
  artifacts: [],
  vmType: "default",
  vmProvider: "local-libvirt",
  serviceProvider: undefined,
  distro: undefined,
  metadata: {},
  sshPassword: undefined,
  ova: undefined,
};

const diskDefaults = {
  type: "template",
  format: "qcow2",
  templateName: undefined,
  templateVersion: undefined,
  path: undefined,
  size: undefined,
  build: [],
  templateType: undefined,
  url: undefined,
};

test("parseSpec normalizes a small file: defaults, aliases, merge keys, $VARS, sorting", () => {
  const spec = parseSpec(SMALL, FILE, { env: { IMAGES: "/srv/images" } });
  assert.deepEqual(withoutLocate(spec), {
    file: FILE,
    sha256: createHash("sha256").update(SMALL).digest("hex"),
    domains: [
      {
        ...domainDefaults,
        name: "vm01",
        pointer: "/domains/vm01",
        memory: 2048,
        serviceProvider: "systemd",
        bootstrap: false,
        sshUser: "admin",
        metadata: { "deploy-scripts": ["$LAGO_INITFILE_PATH/deploy.sh"] },
        nics: [
          { net: "lago", pointer: "/domains/vm01/nics/0", ip: "192.168.200.10", mtu: undefined },
          { net: "storage", pointer: "/domains/vm01/nics/1", ip: undefined, mtu: undefined },
        ],
        disks: [
          {
            ...diskDefaults,
            name: "root",
            pointer: "/domains/vm01/disks/0",
            dev: "vda",
            templateName: "el7.6-base",
            templateVersion: "v2",
            path: "/env/images/root.qcow2",
            build: [
              {
                builder: "virt-customize",
                options: [
                  { option: "ssh-inject", arg: undefined, hostPaths: [] },
                  { option: "touch", arg: "/root/a", hostPaths: [] },
                  { option: "touch", arg: "/root/b", hostPaths: [] },
                  { option: "selinux-relabel", arg: undefined, hostPaths: [] },
                  { option: "memsize", arg: "1024", hostPaths: [] },
                ],
              },
            ],
          },
        ],
      },
      {
        ...domainDefaults,
        name: "vm02",
        pointer: "/domains/vm02",
        memory: 2048,
        vcpu: 4,
        serviceProvider: "systemd",
        rootPassword: "123456",
        groups: ["web"],
        nics: [{ net: "lago", pointer: "/domains/vm02/nics/0", ip: undefined, mtu: undefined }],
        disks: [
          { ...diskDefaults, name: "root", pointer: "/domains/vm02/disks/0", dev: "vda", templateName: "el7.6-base" },
          { ...diskDefaults, name: "data", pointer: "/domains/vm02/disks/1", dev: "sdb", type: "empty", format: "raw", size: 10 * 1024 ** 3 },
          { ...diskDefaults, name: "seed", pointer: "/domains/vm02/disks/2", dev: "sdc", type: "file", format: "iso", path: "/env/demo/images/seed.iso" },
          { ...diskDefaults, name: "extra", pointer: "/domains/vm02/disks/3", dev: "vdb", type: "file", path: "/srv/images/extra.qcow2" },
        ],
      },
    ],
    nets: [
      {
        name: "lago",
        pointer: "/nets/lago",
        type: "nat",
        management: true,
        dhcp: { start: 100, end: 254 },
        gw: "192.168.200.1",
        dnsDomainName: "lago.local",
        dnsRecords: { "www.example.com": "192.168.200.50" },
        mtu: undefined,
      },
      {
        name: "storage",
        pointer: "/nets/storage",
        type: "bridge",
        management: false,
        dhcp: undefined,
        gw: undefined,
        dnsDomainName: undefined,
        dnsRecords: {},
        mtu: undefined,
      },
    ],
  });
});

test("locate maps pointers to where values are written, through aliases and merge keys", () => {
  const spec = parseSpec(SMALL, FILE, { env: {} });
  // Through the `*base-disk` alias: the anchor's `template_name` value.
  assert.deepEqual(spec.locate("/domains/vm02/disks/0/template_name"), { file: FILE, line: 3, col: 18 });
  // Through `<<: *vm-common`: the anchor's `memory` value.
  assert.deepEqual(spec.locate("/domains/vm01/memory"), { file: FILE, line: 8, col: 11 });
  // A missing key: the mapping that lacks it (vm01's mapping starts at its `<<`).
  assert.deepEqual(spec.locate("/domains/vm01/nope"), { file: FILE, line: 38, col: 5 });
  assert.deepEqual(spec.locate("/nets/lago/gw"), { file: FILE, line: 64, col: 9 });
});

test("Lago's defaults when a domain and a net say almost nothing", () => {
  const spec = parseSpec(
    "domains:\n  vm:\n    nics: [{net: n}]\n    disks: [{name: root, dev: vda, template_name: t}]\nnets:\n  n: {type: nat, mtu: 9000}\n",
    FILE,
    { env: {} },
  );
  const [vm] = spec.domains;
  assert.equal(vm?.memory, 1024);
  assert.equal(vm?.vcpu, 2);
  assert.deepEqual(vm?.nics, [{ net: "n", pointer: "/domains/vm/nics/0", ip: undefined, mtu: 9000 }]);
  assert.deepEqual(spec.nets, [
    { name: "n", pointer: "/nets/n", type: "nat", management: true, dhcp: { start: 100, end: 254 }, gw: undefined, dnsDomainName: "lago.local", dnsRecords: {}, mtu: 9000 },
  ]);
});

test("a syntax error is reported with its position", () => {
  assert.deepEqual(problems("domains:\n  vm01:\n    memory: 1024\n   nics: []\nnets: {}\n"), [
    `${FILE}:4:1: syntax error: All mapping items must start at the same column`,
  ]);
});

test("an unknown key points at the key, with a did-you-mean hint", () => {
  const text = "domains:\n  vm01:\n    vCpu: 2\n    nics: [{net: n}]\n    disks: [{name: root, dev: vda, template_name: t, sise: 10G}]\nnets:\n  n: {type: nat}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:3:5: unknown key \`vCpu\` — did you mean \`vcpu\`?`,
    `${FILE}:5:54: unknown key \`sise\` — did you mean \`size\`?`,
  ]);
});

test("an unknown key without a close match lists the accepted keys", () => {
  const text = "domains:\n  vm01:\n    nics: [{net: n, flavour: x}]\nnets:\n  n: {type: nat}\n";
  assert.deepEqual(problems(text), [`${FILE}:3:21: unknown key \`flavour\` (a NIC accepts: ip, mtu, net)`]);
});

test("an invalid static IP points at the value", () => {
  const text = "domains:\n  vm01:\n    nics:\n      - net: n\n        ip: 300.300.300.17\nnets:\n  n: {type: nat}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:5:13: \`domains.vm01.nics[0].ip\` must be an IPv4 address like 192.168.200.3, got "300.300.300.17"`,
  ]);
});

test("a NIC on an undefined net", () => {
  const text = "domains:\n  vm01:\n    nics:\n      - net: lago\n      - net: storag\nnets:\n  lago: {type: nat}\n  storage: {type: nat}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:5:14: NIC of domain \`vm01\` is on net \`storag\`, which is not defined in \`nets\` — did you mean \`storage\`?`,
  ]);
});

test("a domain without a NIC on the management net, and one without NICs at all", () => {
  const text = "domains:\n  vm01:\n    nics:\n      - net: storage\n  vm02:\n    memory: 512\nnets:\n  lago: {type: nat, management: true}\n  storage: {type: nat}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:4:7: domain \`vm01\` has no NIC on the management network \`lago\`: Lago reaches the VM over SSH through it`,
    `${FILE}:6:5: domain \`vm02\` has no NICs: it needs one on a management network, which Lago uses to reach the VM over SSH`,
  ]);
});

test("duplicate disk devices and names within a domain", () => {
  const text = [
    "domains:",
    "  vm01:",
    "    nics: [{net: n}]",
    "    disks:",
    "      - {name: root, dev: vda, template_name: t}",
    "      - {name: data, device: vda, type: empty, size: 1G}",
    "      - {name: data, dev: vdc, type: empty, size: 1G}",
    "nets:",
    "  n: {type: nat}",
    "",
  ].join("\n");
  assert.deepEqual(problems(text), [
    `${FILE}:6:30: device \`vda\` is used by two disks of domain \`vm01\` (\`domains.vm01.disks[0]\` and \`domains.vm01.disks[1]\`); devices must be unique within a domain`,
    `${FILE}:7:16: disk name \`data\` is used twice in domain \`vm01\` (first by \`domains.vm01.disks[1]\`); disk names must be unique within a domain`,
  ]);
});

test("unsafe names are rejected with the reason", () => {
  const text = [
    "domains:",
    "  'web server':",
    "    nics: [{net: n}]",
    "    disks: [{name: ../root, dev: vda, template_name: 'el7:base'}]",
    "  foreman.example.com:",
    "    nics: [{net: n}]",
    "nets:",
    "  -n$: {type: nat}",
    "  n: {type: nat, management: true}",
    "",
  ].join("\n");
  const why = "use letters, digits, `.`, `_` and `-`";
  assert.deepEqual(problems(text), [
    `${FILE}:2:3: domain name "web server" is unsafe for libvirt, file names and shells: it contains a space; ${why}`,
    `${FILE}:4:20: disk name "../root" is unsafe for libvirt, file names and shells: it starts with \`.\`, contains \`..\`, contains \`/\`; ${why}`,
    `${FILE}:4:54: template name "el7:base" is unsafe for libvirt, file names and shells: it contains \`:\`; ${why}`,
    `${FILE}:8:3: net name "-n$" is unsafe for libvirt, file names and shells: it starts with \`-\`, contains \`$\`; ${why}`,
  ]);
});

test("a size under 1 MiB suggests a unit", () => {
  const text = "domains:\n  vm01:\n    nics: [{net: n}]\n    disks:\n      - {name: data, dev: vdb, type: empty, size: 10}\nnets:\n  n: {type: nat}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:5:51: size \`10\` of disk \`data\` of domain \`vm01\` is under 1 MiB — sizes are in bytes unless suffixed: did you mean 10G?`,
  ]);
});

test("DHCP bounds out of range and an empty range", () => {
  const text = "domains:\n  vm01:\n    nics: [{net: a}, {net: b}]\nnets:\n  a:\n    type: nat\n    management: true\n    dhcp: {start: 1, end: 255}\n  b:\n    type: nat\n    dhcp: {start: 200, end: 100}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:8:19: \`nets.a.dhcp.start\` must be a whole number from 2 to 254 (the last number of the address), got 1`,
    `${FILE}:8:27: \`nets.a.dhcp.end\` must be a whole number from 2 to 254 (the last number of the address), got 255`,
    `${FILE}:11:19: DHCP range of net \`b\` is empty: start 200 is greater than end 100`,
  ]);
});

test("several problems are all reported at once, in file order", () => {
  const text = [
    "domains:",
    "  vm01:",
    "    memory: lots",
    "    nics:",
    "      - net: lago",
    "        ip: 192,168.200.3",
    "      - net: nowhere",
    "    disks:",
    "      - {name: root, dev: xvda, template_name: el7}",
    "      - {name: data, dev: vdb, type: empty}",
    "nets:",
    "  lago:",
    "    type: natt",
    "    management: yes",
    "    gw: 192.168.200.0",
    "",
  ].join("\n");
  const errors = problems(text);
  assert.deepEqual(errors, [
    `${FILE}:3:13: \`domains.vm01.memory\` must be a positive whole number of MiB, like 2048 or "2048", got "lots"`,
    `${FILE}:6:13: \`domains.vm01.nics[0].ip\` must be an IPv4 address like 192.168.200.3, got "192,168.200.3"`,
    `${FILE}:7:14: NIC of domain \`vm01\` is on net \`nowhere\`, which is not defined in \`nets\` (defined nets: \`lago\`)`,
    `${FILE}:9:27: \`domains.vm01.disks[0].dev\` must be a device name like vda, sdb or hdc, got "xvda"`,
    `${FILE}:10:9: empty disk \`data\` of domain \`vm01\` needs a \`size\`, like 10G`,
    `${FILE}:13:11: \`nets.lago.type\` must be one of \`nat\`, \`bridge\`, got "natt" — did you mean \`nat\`?`,
    `${FILE}:15:9: gw \`192.168.200.0\` of net \`lago\` must end in .1 to .254 (.0 is the network address, .255 the broadcast address)`,
  ]);
  assert.throws(() => parseSpec(text, FILE, { env: {} }), (err: unknown) => err instanceof ConfigError && err.message.startsWith("7 problems:\n"));
});

test("missing keys point at the mapping that lacks them", () => {
  const text = "domains:\n  vm01:\n    nics: [{ip: 192.168.1.5}]\nnets:\n  n:\n    dhcp: {start: 100}\n";
  assert.deepEqual(problems(text), [
    `${FILE}:3:12: missing required key \`net\` in \`domains.vm01.nics[0]\``,
    `${FILE}:6:5: missing required key \`type\` in \`nets.n\``,
  ]);
  assert.deepEqual(problems("nets:\n  n: {type: nat}\n"), [`${FILE}:1:1: missing required key \`domains\` at the top level`]);
});

test("loadSpec reads YAML or JSON by content, hashes the bytes, and resolves paths against the file", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), "lago-spec-"));
  try {
    const json = JSON.stringify({
      domains: { vm: { memory: "512", nics: [{ net: "n" }], disks: [{ name: "root", dev: "vda", type: "template", path: "img/root.qcow2" }] } },
      nets: { n: { type: "nat" } },
    });
    const yamlInJson = "domains:\n  vm:\n    nics: [{net: n}]\n    disks: [{name: root, dev: vda, template_name: t}]\nnets:\n  n: {type: bridge}\n";
    await writeFile(path.join(dir, "a.yaml"), json);
    await writeFile(path.join(dir, "b.json"), yamlInJson);
    const a = await loadSpec(path.join(dir, "a.yaml"), { env: {} });
    assert.equal(a.domains[0]?.memory, 512);
    assert.equal(a.domains[0]?.disks[0]?.path, path.join(dir, "img/root.qcow2"));
    assert.equal(a.sha256, createHash("sha256").update(json).digest("hex"));
    const b = await loadSpec(path.join(dir, "b.json"), { env: {} });
    assert.equal(b.nets[0]?.type, "bridge");
    assert.equal(b.file, path.join(dir, "b.json"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loadSpec: a missing file is a usage error naming it", async () => {
  await assert.rejects(loadSpec("/nonexistent/dir/LagoInitFile"), (err: unknown) => {
    assert.ok(err instanceof UsageError);
    assert.equal(err.message, "cannot read init file /nonexistent/dir/LagoInitFile: no such file");
    return true;
  });
});
