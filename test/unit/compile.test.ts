import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { stringify } from "safe-stable-stringify";
import { compile, nicKeys, templateAddress } from "../../src/graph/compile.ts";
import { sha256 } from "../../src/util/hash.ts";
import type { Attrs, DesiredResource } from "../../src/resources/types.ts";
import { parseSpec } from "../../src/spec/load.ts";
import type { EnvSpec } from "../../src/spec/types.ts";
import { emptyState, type State } from "../../src/state/state.ts";
import { appliedState, FIXTURE_ENV, fixtureTemplates } from "./plan-fixture-support.ts";
import { diagnosticsOf } from "../helpers/diagnostics.ts";
import { buildInputs } from "../../src/resources/build.ts";

const FILE = "/env/demo/LagoInitFile";

function spec(text: string): EnvSpec {
  return parseSpec(text, FILE, { env: FIXTURE_ENV });
}

function compileText(text: string, prior: State = emptyState(), domainType: "kvm" | "qemu" = "qemu"): DesiredResource[] {
  const s = spec(text);
  return compile({ spec: s, templates: fixtureTemplates(s), prior, domainType });
}

function attrsOf(resources: DesiredResource[], address: string): Attrs {
  const r = resources.find((x) => x.address === address);
  assert.ok(r, `no resource ${address}`);
  return r.attrs;
}

/** `vm#net#n` → host, for every NAT net. */
function hostsOf(resources: DesiredResource[], net: string): Record<string, number> {
  const hosts = attrsOf(resources, `network.${net}`).hosts as Record<string, { host: number }>;
  return Object.fromEntries(Object.entries(hosts).map(([k, v]) => [k, v.host]));
}

const SMALL = `domains:
  vm01:
    memory: 512
    vcpu: 1
    nics:
      - net: lago
      - net: data
    disks:
      - template_name: el8-base
        template_version: v1
        type: template
        name: root
        dev: vda
        build:
          - virt-customize:
              touch: /root/built
              run-command: [echo one, echo two]
      - name: extra
        type: empty
        size: 1G
        dev: sdb
nets:
  lago:
    type: nat
    management: true
    dhcp:
      start: 100
      end: 200
  data:
    type: bridge
    mtu: 9000
`;

test("a small spec compiles to exactly these resources", () => {
  const buildAttrs: Attrs = {
    vm: "vm01",
    disk: "root",
    template: "template.lago-ci:el8-base:v1",
    inject_user: null,
    first_boot: true,
    steps: [
      {
        builder: "virt-customize",
        options: [
          { option: "touch", arg: "/root/built" },
          { option: "run-command", arg: "echo one" },
          { option: "run-command", arg: "echo two" },
        ],
      },
    ],
  };
  const expected: DesiredResource[] = [
    { address: "build.vm01.root", kind: "build", attrs: buildAttrs, dependsOn: ["template.lago-ci:el8-base:v1"], pointer: "/domains/vm01/disks/0" },
    {
      address: "disk.vm01.extra",
      kind: "disk",
      attrs: { vm: "vm01", name: "extra", type: "empty", format: "qcow2", size: 1073741824, template: null, path: null, build_sha256: null, bootstrap: null },
      dependsOn: [],
      pointer: "/domains/vm01/disks/1",
    },
    {
      address: "disk.vm01.root",
      kind: "disk",
      attrs: {
        vm: "vm01",
        name: "root",
        type: "template",
        format: "qcow2",
        size: null,
        template: "template.lago-ci:el8-base:v1",
        path: null,
        build_sha256: sha256(stringify({ steps: buildAttrs.steps, inject_user: null }) ?? ""),
        bootstrap: { hostname: "vm01", ssh_user: "root", root_password: null },
      },
      dependsOn: ["build.vm01.root", "keypair", "template.lago-ci:el8-base:v1"],
      pointer: "/domains/vm01/disks/0",
    },
    {
      address: "domain.vm01",
      kind: "domain",
      attrs: {
        name: "vm01",
        domain_type: "qemu",
        memory: 512,
        vcpu: 1,
        cpu: { mode: "host-passthrough" },
        disks: {
          root: { dev: "vda", bus: "virtio", format: "qcow2", device: "disk", boot: true, kind: "template" },
          extra: { dev: "sdb", bus: "scsi", format: "qcow2", device: "disk", boot: false, kind: "data" },
        },
        nics: {
          "lago#0": { net: "lago", index: 0, host: 2, mtu: null },
          "data#0": { net: "data", index: 1, host: null, mtu: 9000 },
        },
        management_nic: "lago#0",
        ssh_user: "root",
        running: true,
          ready: true,
      },
      dependsOn: ["disk.vm01.extra", "disk.vm01.root", "keypair", "network.data", "network.lago"],
      pointer: "/domains/vm01",
    },
    { address: "keypair", kind: "keypair", attrs: { algorithm: "ed25519" }, dependsOn: [], pointer: "" },
    { address: "lease.lago", kind: "lease", attrs: { net: "lago", requested: null }, dependsOn: [], pointer: "/nets/lago" },
    {
      address: "network.data",
      kind: "network",
      attrs: {
        net: "data",
        type: "bridge",
        management: false,
        bridge_index: 0,
        gateway: null,
        dhcp: null,
        dns_domain: null,
        dns: {},
        dns_forward: null,
        mtu: 9000,
        hosts: {},
        active: true,
      },
      dependsOn: [],
      pointer: "/nets/data",
    },
    {
      address: "network.lago",
      kind: "network",
      attrs: {
        net: "lago",
        type: "nat",
        management: true,
        bridge_index: 1,
        gateway: 1,
        dhcp: { start: 100, end: 200 },
        dns_domain: "lago.local",
        dns: { h2: ["vm01"] },
        dns_forward: null,
        mtu: null,
        hosts: { "vm01#lago#0": { vm: "vm01", host: 2 } },
        active: true,
      },
      dependsOn: ["lease.lago"],
      pointer: "/nets/lago",
    },
    {
      address: "template.lago-ci:el8-base:v1",
      kind: "template",
      attrs: {
        repo: "lago-ci",
        name: "el8-base",
        version: "v1",
        handle: "el8-base-v1",
        source: { type: "file", location: "/srv/lago-templates" },
      },
      dependsOn: [],
      pointer: "/domains/vm01/disks/0/template_name",
    },
  ];
  assert.deepEqual(compileText(SMALL), expected);
});

test("compile is deterministic and its output is sorted by address with sorted dependencies", () => {
  const a = compileText(SMALL);
  const b = compileText(SMALL);
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  const addresses = a.map((r) => r.address);
  assert.deepEqual(addresses, [...addresses].sort());
  for (const r of a) assert.deepEqual(r.dependsOn, [...new Set(r.dependsOn)].sort(), r.address);
});

test("cpu_model and cpu_custom become the domain's cpu attribute; domain type is passed through", () => {
  const text = SMALL.replace("    vcpu: 1\n", "    vcpu: 1\n    cpu_model: Skylake-Server\n");
  assert.deepEqual(attrsOf(compileText(text, emptyState(), "kvm"), "domain.vm01").cpu, { mode: "model", model: "Skylake-Server" });
  assert.equal(attrsOf(compileText(text, emptyState(), "kvm"), "domain.vm01").domain_type, "kvm");
  const custom = SMALL.replace("    vcpu: 1\n", "    vcpu: 1\n    cpu_custom:\n      '@mode': custom\n      model:\n        '#text': Westmere\n");
  assert.deepEqual(attrsOf(compileText(custom), "domain.vm01").cpu, { mode: "custom", custom: { "@mode": "custom", model: { "#text": "Westmere" } } });
});

test("NIC keys are the net and the position among the VM's NICs on that net", () => {
  const s = spec(`domains:
  vm01:
    nics:
      - net: lago
      - net: data
      - net: data
nets:
  lago:
    type: nat
    management: true
  data:
    type: nat
`);
  const vm = s.domains[0];
  assert.ok(vm);
  assert.deepEqual(nicKeys(vm), ["lago#0", "data#0", "data#1"]);
});

const THREE = (names: string[]): string => `domains:
${names
  .map(
    (n) => `  ${n}:
    nics:
      - net: lago
      - net: data
`,
  )
  .join("")}nets:
  lago:
    type: nat
    management: true
  data:
    type: nat
`;

test("NIC host numbers are sticky: a VM that sorts first does not renumber the others", () => {
  const before = compileText(THREE(["vm02", "vm03"]));
  assert.deepEqual(hostsOf(before, "lago"), { "vm02#lago#0": 2, "vm03#lago#0": 3 });
  const prior = appliedState(before, "0".repeat(64));

  const after = compileText(THREE(["vm01", "vm02", "vm03"]), prior);
  assert.deepEqual(hostsOf(after, "lago"), { "vm01#lago#0": 4, "vm02#lago#0": 2, "vm03#lago#0": 3 });
  assert.deepEqual(hostsOf(after, "data"), { "vm01#data#0": 4, "vm02#data#0": 2, "vm03#data#0": 3 });
  assert.deepEqual(attrsOf(after, "domain.vm02").nics, {
    "lago#0": { net: "lago", index: 0, host: 2, mtu: null },
    "data#0": { net: "data", index: 1, host: 2, mtu: null },
  });

  // Without the prior state the allocation is by name order.
  assert.deepEqual(hostsOf(compileText(THREE(["vm01", "vm02", "vm03"])), "lago"), { "vm01#lago#0": 2, "vm02#lago#0": 3, "vm03#lago#0": 4 });
});

test("a freed host number is not reused in the apply that frees it, but by a later one, lowest first", () => {
  const prior = appliedState(compileText(THREE(["vm01", "vm02", "vm03"])), "0".repeat(64));
  // vm01 goes while vm04 comes: vm04 must not take vm01's address (and MAC) while vm01 may still be up.
  const after = compileText(THREE(["vm02", "vm03", "vm04"]), prior);
  assert.deepEqual(hostsOf(after, "lago"), { "vm02#lago#0": 3, "vm03#lago#0": 4, "vm04#lago#0": 5 });
  const later = compileText(THREE(["vm02", "vm03", "vm04", "vm05"]), appliedState(after, "1".repeat(64)));
  assert.deepEqual(hostsOf(later, "lago"), { "vm02#lago#0": 3, "vm03#lago#0": 4, "vm04#lago#0": 5, "vm05#lago#0": 2 });
});

test("static IPs keep their host number and pin the requested subnet; dynamic NICs avoid it", () => {
  const out = compileText(`domains:
  vm01:
    nics:
      - net: lago
  vm02:
    nics:
      - net: lago
        ip: 192.168.210.2
nets:
  lago:
    type: nat
    management: true
`);
  assert.deepEqual(hostsOf(out, "lago"), { "vm01#lago#0": 3, "vm02#lago#0": 2 });
  assert.deepEqual(attrsOf(out, "lease.lago"), { net: "lago", requested: "192.168.210.0" });
});

test("a static IP wins over a host number recorded for a dynamic NIC", () => {
  const prior = appliedState(compileText(THREE(["vm01", "vm02"])), "0".repeat(64));
  assert.deepEqual(hostsOf(compileText(THREE(["vm01", "vm02"])), "lago"), { "vm01#lago#0": 2, "vm02#lago#0": 3 });
  const text = THREE(["vm01", "vm02"]).replace("  vm02:\n    nics:\n      - net: lago\n", "  vm02:\n    nics:\n      - net: lago\n        ip: 192.168.200.2\n");
  const after = compileText(text, prior);
  // vm01 is displaced; it skips .3 too, which vm02 still holds until it moves to .2.
  assert.deepEqual(hostsOf(after, "lago"), { "vm01#lago#0": 4, "vm02#lago#0": 2 });
});

test("gw pins the subnet and the gateway host number", () => {
  const out = compileText(`domains:
  vm01:
    nics:
      - net: lago
nets:
  lago:
    type: nat
    management: true
    gw: 192.168.220.254
`);
  assert.deepEqual(attrsOf(out, "lease.lago"), { net: "lago", requested: "192.168.220.0" });
  assert.equal(attrsOf(out, "network.lago").gateway, 254);
  assert.deepEqual(hostsOf(out, "lago"), { "vm01#lago#0": 2 });
});

test("a gw of .2 is skipped by the allocator", () => {
  const out = compileText(`domains:
  vm01:
    nics:
      - net: lago
nets:
  lago:
    type: nat
    management: true
    gw: 192.168.220.2
`);
  assert.deepEqual(hostsOf(out, "lago"), { "vm01#lago#0": 3 });
});

test("OVA domains, disks with a url and other vm-providers are ConfigErrors with positions", () => {
  const text = `domains:
  vm01:
    type: ova
    url: http://example.com/a.ova
    boot_time_sec: 30
    nics:
      - net: lago
  vm02:
    vm-provider: ssh
    nics:
      - net: lago
  vm03:
    nics:
      - net: lago
    disks:
      - name: root
        type: file
        url: http://example.com/disk.qcow2
        dev: vda
nets:
  lago:
    type: nat
`;
  assert.deepEqual(diagnosticsOf(() => compileText(text)), [
    `${FILE}:3:11: OVA domains (type: ova) are not supported by lago: convert the appliance to a qcow2 template and use a template disk`,
    `${FILE}:9:18: vm-provider "ssh" is not supported: lago manages local libvirt VMs only`,
    `${FILE}:18:14: disks downloaded from a url are not supported by lago: download the image and name it with path`,
  ]);
});

test("a template disk without a resolution is a ConfigError at its template_name", () => {
  const s = spec(SMALL);
  assert.deepEqual(
    diagnosticsOf(() => compile({ spec: s, templates: new Map(), prior: emptyState(), domainType: "kvm" })),
    [`${FILE}:9:24: template disk root has no resolved template`],
  );
});

test("build attrs and build_sha256 change when build steps change, and only then", () => {
  const base = compileText(SMALL);
  const changed = compileText(SMALL.replace("touch: /root/built", "touch: /root/built-v2"));
  assert.notDeepEqual(attrsOf(changed, "build.vm01.root"), attrsOf(base, "build.vm01.root"));
  assert.deepEqual((attrsOf(changed, "build.vm01.root").steps as Attrs[])[0], {
    builder: "virt-customize",
    options: [
      { option: "touch", arg: "/root/built-v2" },
      { option: "run-command", arg: "echo one" },
      { option: "run-command", arg: "echo two" },
    ],
  });
  const before = attrsOf(base, "disk.vm01.root").build_sha256;
  const after = attrsOf(changed, "disk.vm01.root").build_sha256;
  assert.match(String(before), /^[0-9a-f]{64}$/);
  assert.match(String(after), /^[0-9a-f]{64}$/);
  assert.notEqual(after, before);
  const build = attrsOf(changed, "build.vm01.root");
  assert.equal(after, sha256(stringify({ steps: build.steps, inject_user: build.inject_user }) ?? ""));

  // Memory is not part of the build.
  const memory = compileText(SMALL.replace("memory: 512", "memory: 1024"));
  assert.equal(attrsOf(memory, "disk.vm01.root").build_sha256, before);

  // Reordering steps is a change too: they run in order.
  const reordered = compileText(SMALL.replace("run-command: [echo one, echo two]", "run-command: [echo two, echo one]"));
  assert.notEqual(attrsOf(reordered, "disk.vm01.root").build_sha256, before);
});

test("bootstrap lives on the first template disk; build steps that set the host name or root password win over it", () => {
  const text = SMALL.replace("    vcpu: 1\n", "    vcpu: 1\n    root-password: s3cret\n    ssh-user: admin\n");
  assert.deepEqual(attrsOf(compileText(text), "disk.vm01.root").bootstrap, { hostname: "vm01", ssh_user: "admin", root_password: "s3cret" });
  assert.equal(attrsOf(compileText(text), "disk.vm01.extra").bootstrap, null);
  const overridden = compileText(text.replace("touch: /root/built", "hostname: web01\n              root-password: password:other"));
  assert.deepEqual(attrsOf(overridden, "disk.vm01.root").bootstrap, { hostname: "web01", ssh_user: "admin", root_password: null });
  // A bootstrap change replaces the disk (and so the VM); a memory change does not touch it.
  assert.notDeepEqual(attrsOf(compileText(text.replace("s3cret", "other")), "disk.vm01.root").bootstrap, attrsOf(compileText(text), "disk.vm01.root").bootstrap);
});

test("a build records the host files its steps read, as the spec layer resolved them, and who gets the environment's key", () => {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "lago-compile-")));
  try {
    mkdirSync(path.join(dir, "files"));
    mkdirSync(path.join(dir, "tree"));
    writeFileSync(path.join(dir, "files", "motd"), "hello\n");
    writeFileSync(path.join(dir, "setup.sh"), "true\n");
    const text = SMALL.replace(
      "touch: /root/built",
      "upload: files/motd:/etc/motd\n              copy-in: tree:/opt\n              run: setup.sh\n              ssh-inject: ''\n              write: /etc/x:not a host file",
    );
    const s = parseSpec(text, path.join(dir, "LagoInitFile"), { env: FIXTURE_ENV });
    const out = compile({ spec: s, templates: fixtureTemplates(s), prior: emptyState(), domainType: "qemu" });
    const build = attrsOf(out, "build.vm01.root");
    assert.deepEqual(buildInputs(build), [path.join(dir, "files", "motd"), path.join(dir, "setup.sh"), path.join(dir, "tree")]);
    assert.deepEqual(
      ((build.steps as Attrs[])[0]?.options as Attrs[]).map((o) => [o.option, o.host_paths ?? null]),
      [
        ["upload", [path.join(dir, "files", "motd")]],
        ["copy-in", [path.join(dir, "tree")]],
        ["run", [path.join(dir, "setup.sh")]],
        ["ssh-inject", null],
        ["write", null],
        ["run-command", null],
        ["run-command", null],
      ],
    );
    assert.equal(build.inject_user, "root");
    assert.deepEqual(out.find((r) => r.address === "build.vm01.root")?.dependsOn, ["keypair", "template.lago-ci:el8-base:v1"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bootstrap: false without build steps means no build resource", () => {
  const out = compileText(`domains:
  vm01:
    bootstrap: false
    nics:
      - net: lago
    disks:
      - template_name: el8-base
        type: template
        name: root
        dev: vda
nets:
  lago:
    type: nat
`);
  assert.equal(out.some((r) => r.kind === "build"), false);
  assert.equal(attrsOf(out, "disk.vm01.root").build_sha256, null);
  assert.deepEqual(out.find((r) => r.address === "domain.vm01")?.dependsOn, ["disk.vm01.root", "keypair", "network.lago"]);
});

test("template addresses: repository refs by repo:name:version, local images by file name and path hash", () => {
  assert.equal(
    templateAddress({ type: "repo", ref: { repo: "r", name: "n", version: "v", handle: "h", source: { type: "file", location: "/x" } } }),
    "template.r:n:v",
  );
  assert.equal(
    templateAddress({ type: "path", path: "/srv/images/base.qcow2", format: "qcow2" }),
    `template.file:base.qcow2@${sha256("/srv/images/base.qcow2").slice(0, 8)}`,
  );
});

test("two disks on the same template share one template resource", () => {
  const out = compileText(THREE(["vm01", "vm02"]).replace(/( {4}nics:)/g, "    disks:\n      - template_name: el8-base\n        type: template\n        name: root\n        dev: vda\n$1"));
  assert.deepEqual(
    out.filter((r) => r.kind === "template").map((r) => r.address),
    ["template.lago-ci:el8-base:v2"],
  );
  // The first disk of a bootstrapped VM also depends on the key pair it delivers.
  assert.deepEqual(out.find((r) => r.address === "disk.vm02.root")?.dependsOn, ["keypair", "template.lago-ci:el8-base:v2"]);
});
