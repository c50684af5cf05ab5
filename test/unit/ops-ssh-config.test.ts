import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";
import { generatePair } from "../../src/drivers/real/key-store.ts";
import { configValue, hostKeyType, renderKnownHosts, renderSshConfig, type SshConfigEntry } from "../../src/ops/ssh-config.ts";

/** A real ed25519 public key blob, base64, as ssh2's hostVerifier hands it to lago. */
function ed25519Blob(): string {
  const { public: pub } = generatePair(ssh2);
  return pub.split(" ")[1] ?? "";
}

const KEY = ed25519Blob();

const ENTRIES: SshConfigEntry[] = [
  { host: "vm01", hostName: "192.168.201.2", user: "root", port: 22, identityFile: "/w/.lago/default/ssh/id_ed25519", alias: "lago-1e1cd805-vm01", hostKey: KEY },
  { host: "vm02", hostName: "192.168.201.3", user: "root", port: 22, identityFile: "/w/my envs/.lago/default/ssh/id_ed25519", alias: "lago-1e1cd805-vm02", hostKey: undefined },
];

test("hostKeyType reads the algorithm a key blob starts with, and refuses garbage", () => {
  assert.equal(hostKeyType(KEY), "ssh-ed25519");
  assert.throws(() => hostKeyType("AAAA"), /malformed/);
  assert.throws(() => hostKeyType(Buffer.from("\0\0\0\x05a b c").toString("base64")), /malformed/);
});

test("configValue quotes what has spaces and refuses what ssh_config cannot hold", () => {
  assert.equal(configValue("/a/b"), "/a/b");
  assert.equal(configValue("/a b/c"), '"/a b/c"');
  assert.throws(() => configValue('/a"b'), /cannot write/);
  assert.throws(() => configValue("/a\nb"), /cannot write/);
});

test("the known_hosts text pins each key under the VM's alias; VMs never reached are left out", () => {
  assert.equal(renderKnownHosts(ENTRIES), `lago-1e1cd805-vm01 ssh-ed25519 ${KEY}\n`);
});

test("the ssh_config text, exactly", () => {
  assert.equal(
    renderSshConfig("default", "/w/.lago/default/ssh/known_hosts", ENTRIES),
    `# lago environment default: ssh -F "$(lago ssh-config --path)" VM

Host vm01
  HostName 192.168.201.2
  Port 22
  User root
  IdentityFile /w/.lago/default/ssh/id_ed25519
  IdentitiesOnly yes
  HostKeyAlias lago-1e1cd805-vm01
  UserKnownHostsFile /w/.lago/default/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  HostKeyAlgorithms ssh-ed25519
  PasswordAuthentication no
  LogLevel ERROR

Host vm02
  HostName 192.168.201.3
  Port 22
  User root
  IdentityFile "/w/my envs/.lago/default/ssh/id_ed25519"
  IdentitiesOnly yes
  HostKeyAlias lago-1e1cd805-vm02
  UserKnownHostsFile /w/.lago/default/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking accept-new
  PasswordAuthentication no
  LogLevel ERROR
`,
  );
});

test("the OpenSSH client reads the configuration as meant (ssh -G)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-ssh-config-"));
  try {
    const file = path.join(dir, "config");
    writeFileSync(file, renderSshConfig("default", "/w/.lago/default/ssh/known_hosts", ENTRIES));
    const seen = (host: string): Map<string, string> =>
      new Map(
        execFileSync("ssh", ["-G", "-F", file, host], { encoding: "utf8" })
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)] as [string, string]),
      );
    const vm01 = seen("vm01");
    assert.equal(vm01.get("hostname"), "192.168.201.2");
    assert.equal(vm01.get("user"), "root");
    assert.equal(vm01.get("identityfile"), "/w/.lago/default/ssh/id_ed25519");
    assert.equal(vm01.get("hostkeyalias"), "lago-1e1cd805-vm01");
    assert.equal(vm01.get("stricthostkeychecking"), "true");
    assert.equal(vm01.get("hostkeyalgorithms"), "ssh-ed25519");
    const vm02 = seen("vm02");
    assert.equal(vm02.get("identityfile"), "/w/my envs/.lago/default/ssh/id_ed25519");
    assert.equal(vm02.get("stricthostkeychecking"), "accept-new");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
