import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { dynamicInventory, getKey, groupHosts, renderIni, type Inventory } from "../../src/ops/inventory.ts";

const SPEC = {
  "vm-type": "ovirt-host",
  groups: ["hosts", "el8"],
  "vm-provider": "local-libvirt",
  disks: [{ name: "root", metadata: { distro: "el8", arch: "x86_64" } }, { name: "data", metadata: {} }],
  nics: [{ net: "lago", ip: "192.168.200.5" }],
};

test("getKey follows Lago's key paths: names, list indexes, a leading slash, / for everything", () => {
  assert.equal(getKey("vm-type", SPEC), "ovirt-host");
  assert.equal(getKey("/disks/0/metadata/distro", SPEC), "el8");
  assert.equal(getKey("disks/0/metadata/arch", SPEC), "x86_64");
  assert.equal(getKey("disks/-1/name", SPEC), "data");
  assert.deepEqual(getKey("groups", SPEC), ["hosts", "el8"]);
  assert.equal(getKey("/", SPEC), SPEC);
  assert.equal(getKey("disks/5/name", SPEC), undefined);
  assert.equal(getKey("disks/x", SPEC), undefined);
  assert.equal(getKey("memory", SPEC), undefined);
  assert.equal(getKey("constructor", SPEC), undefined);
});

test("groups: KEY=VALUE per key (one per list item), plus each of the VM's groups by name; sorted", () => {
  const groups = groupHosts(
    [
      { name: "engine", spec: { "vm-type": "ovirt-engine", groups: ["engines"], "vm-provider": "local-libvirt" } },
      { name: "host1", spec: SPEC },
      { name: "host0", spec: { ...SPEC, groups: ["hosts"] } },
    ],
    ["vm-type", "groups", "disks/0/metadata/distro"],
  );
  assert.deepEqual([...groups], [
    ["disks/0/metadata/distro=el8", ["host0", "host1"]],
    ["el8", ["host1"]],
    ["engines", ["engine"]],
    ["groups=el8", ["host1"]],
    ["groups=engines", ["engine"]],
    ["groups=hosts", ["host0", "host1"]],
    ["hosts", ["host0", "host1"]],
    ["vm-type=ovirt-engine", ["engine"]],
    ["vm-type=ovirt-host", ["host0", "host1"]],
  ]);
});

const INV: Inventory = {
  groups: new Map([
    ["front", ["vm01"]],
    ["vm-type=default", ["vm01", "vm02"]],
  ]),
  hosts: [
    { name: "vm01", vars: { ansible_host: "192.168.201.2", ansible_user: "root", ansible_ssh_private_key_file: "/w/ssh/id_ed25519", ansible_ssh_common_args: "-o UserKnownHostsFile=/w/ssh/known_hosts -o HostKeyAlias=lago-x-vm01" } },
    { name: "vm02", vars: { ansible_host: "192.168.201.3", ansible_user: "root", ansible_ssh_private_key_file: "/w/my keys/id_ed25519", ansible_ssh_common_args: "-o HostKeyAlias=lago-x-vm02" } },
    { name: "vm03", vars: { ansible_host: "192.168.201.4", ansible_user: "root", ansible_ssh_private_key_file: "/w/ssh/id_ed25519", ansible_ssh_common_args: "" } },
  ],
};

test("the INI inventory, exactly", () => {
  assert.equal(
    renderIni(INV),
    `[front]
vm01 ansible_host=192.168.201.2 ansible_user=root ansible_ssh_private_key_file=/w/ssh/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile=/w/ssh/known_hosts -o HostKeyAlias=lago-x-vm01'
[vm-type=default]
vm01 ansible_host=192.168.201.2 ansible_user=root ansible_ssh_private_key_file=/w/ssh/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile=/w/ssh/known_hosts -o HostKeyAlias=lago-x-vm01'
vm02 ansible_host=192.168.201.3 ansible_user=root ansible_ssh_private_key_file='/w/my keys/id_ed25519' ansible_ssh_common_args='-o HostKeyAlias=lago-x-vm02'
[ungrouped]
vm03 ansible_host=192.168.201.4 ansible_user=root ansible_ssh_private_key_file=/w/ssh/id_ed25519 ansible_ssh_common_args=''
`,
  );
});

test("the dynamic inventory, exactly", () => {
  assert.deepEqual(dynamicInventory(INV), {
    _meta: { hostvars: Object.fromEntries(INV.hosts.map((h) => [h.name, h.vars])) },
    all: { children: ["front", "vm-type=default", "ungrouped"] },
    ungrouped: { hosts: ["vm03"] },
    front: { hosts: ["vm01"] },
    "vm-type=default": { hosts: ["vm01", "vm02"] },
  });
});

test("Ansible reads the INI inventory as meant (ansible-inventory)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-inventory-"));
  try {
    const file = path.join(dir, "hosts");
    writeFileSync(file, renderIni(INV));
    const parsed = JSON.parse(
      execFileSync("ansible-inventory", ["-i", file, "--list"], { encoding: "utf8", env: { ...process.env, ANSIBLE_HOME: dir, ANSIBLE_LOCAL_TEMP: dir } }),
    ) as { _meta: { hostvars: Record<string, Record<string, string>> }; front: { hosts: string[] } };
    assert.deepEqual(parsed.front.hosts, ["vm01"]);
    for (const h of INV.hosts) {
      for (const [k, v] of Object.entries(h.vars)) assert.equal(parsed._meta.hostvars[h.name]?.[k], v, `${h.name} ${k}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
