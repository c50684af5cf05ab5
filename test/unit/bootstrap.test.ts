import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  bootstrapCustomizeArgs,
  bootstrapMethod,
  cloudInitSeed,
  firstLoginScript,
  publishedRootPassword,
  singleQuote,
} from "../../src/resources/bootstrap.ts";
import { buildArgs, buildInputs } from "../../src/resources/build.ts";
import { BUILD_OPERATIONS, withResolvedHostPaths } from "../../src/spec/build-ops.ts";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq lago";

test("the bootstrap method: the setting, else the template's declaration, else a published password, else virt-customize", () => {
  assert.equal(bootstrapMethod({ bootstrap: ["cloud-init", "ssh"], "root-password": "x" }, "auto"), "cloud-init");
  assert.equal(bootstrapMethod({ bootstrap: "ssh" }, "auto"), "ssh");
  // Unknown methods are skipped: the first one lago knows wins.
  assert.equal(bootstrapMethod({ bootstrap: ["ignition", "cloud-init"] }, "auto"), "cloud-init");
  assert.equal(bootstrapMethod({ "root-password": "123456", distro: "el7" }, "auto"), "ssh");
  assert.equal(bootstrapMethod({ "root-password": "", distro: "el7" }, "auto"), "virt-customize");
  assert.equal(bootstrapMethod(undefined, "auto"), "virt-customize");
  assert.equal(bootstrapMethod({ bootstrap: "cloud-init" }, "virt-customize"), "virt-customize");
  assert.equal(publishedRootPassword({ "root-password": "" }), undefined);
  assert.equal(publishedRootPassword({ "root-password": "cowswin:)" }), "cowswin:)");
});

test("the cloud-init seed: exact files, valid YAML, deterministic, a new instance-id when anything changes", () => {
  const seed = cloudInitSeed({ hostname: "vm01", ssh_user: "root", root_password: null }, `${KEY}\n`);
  assert.equal(
    seed.userData,
    `#cloud-config\nhostname: "vm01"\npreserve_hostname: false\ndisable_root: false\nssh_authorized_keys:\n  - "${KEY}"\n`,
  );
  assert.match(seed.metaData, /^instance-id: "lago-[0-9a-f]{16}"\nlocal-hostname: "vm01"\n$/);
  assert.deepEqual(cloudInitSeed({ hostname: "vm01", ssh_user: "root", root_password: null }, KEY), seed);
  const other = cloudInitSeed({ hostname: "vm02", ssh_user: "root", root_password: null }, KEY);
  assert.notEqual(other.metaData.split("\n")[0], seed.metaData.split("\n")[0]);

  // A password with YAML's and JSON's special characters round-trips; another user gets the key and sudo.
  const tricky = 'p"a\\ss: #w\'d';
  const full = cloudInitSeed({ hostname: "web-1", ssh_user: "admin", root_password: tricky }, KEY);
  assert.deepEqual(parse(full.userData), {
    hostname: "web-1",
    preserve_hostname: false,
    disable_root: false,
    ssh_authorized_keys: [KEY],
    users: ["default", { name: "admin", ssh_authorized_keys: [KEY], sudo: "ALL=(ALL) NOPASSWD:ALL" }],
    chpasswd: { expire: false, users: [{ name: "root", password: tricky, type: "text" }] },
  });
  assert.deepEqual(parse(full.metaData), { "instance-id": parse(full.metaData)["instance-id"], "local-hostname": "web-1" });
});

test("the first-login script quotes what comes from the init file and takes the password on stdin only", () => {
  const evil = "x'; rm -rf / #";
  const { command, input } = firstLoginScript({ hostname: evil, ssh_user: "root", root_password: "s3cret pw" }, KEY);
  assert.ok(command.startsWith("# lago bootstrap\nset -e\n"));
  assert.ok(command.includes(`host=${singleQuote(evil)}\n`));
  assert.equal(singleQuote(evil), `'x'\\''; rm -rf / #'`);
  assert.ok(command.includes(`key=${singleQuote(KEY)}\n`));
  assert.doesNotMatch(command, /s3cret/);
  assert.equal(input, "s3cret pw\n");
  // The key goes in last: once it logs in, the rest was done.
  assert.ok(command.lastIndexOf("chpasswd") < command.indexOf("authorized_keys"));
  assert.equal(firstLoginScript({ hostname: "vm01", ssh_user: "root", root_password: null }, KEY).input, undefined);
  assert.doesNotMatch(firstLoginScript({ hostname: "vm01", ssh_user: "root", root_password: null }, KEY).command, /chpasswd|read -r pw/);
});

test("virt-customize arguments: passwords go through secret files, never argv", () => {
  assert.deepEqual(bootstrapCustomizeArgs({ hostname: "vm01", ssh_user: "root", root_password: "pw" }, "/env/ssh/id_ed25519.pub"), [
    "--no-network",
    "--ssh-inject",
    "root:file:/env/ssh/id_ed25519.pub",
    "--write",
    "/etc/hostname:vm01",
    "--root-password",
    { secretFile: "pw\n", prefix: "file:" },
  ]);
  const steps = [
    {
      builder: "virt-customize",
      options: [
        { option: "touch", arg: "/x" },
        { option: "ssh-inject", arg: null },
        { option: "root-password", arg: "password:top" },
        { option: "password", arg: "bob:password:b:ob" },
        { option: "root-password", arg: "random" },
        { option: "selinux-relabel", arg: null },
      ],
    },
  ];
  assert.deepEqual(buildArgs({ steps, inject_user: "admin" }, "/k.pub"), [
    "--touch",
    "/x",
    "--ssh-inject",
    "admin:file:/k.pub",
    "--root-password",
    { secretFile: "top\n", prefix: "file:" },
    "--password",
    { secretFile: "b:ob\n", prefix: "bob:file:" },
    "--root-password",
    "random",
    "--selinux-relabel",
  ]);
});

test("virt-customize reads host files at the paths the spec layer resolved (CustomizeOption.hostPaths)", () => {
  const op = (name: string) => {
    const found = BUILD_OPERATIONS.get(name);
    assert.ok(found, name);
    return found;
  };
  assert.equal(withResolvedHostPaths(op("upload"), "files/a.sh:/root/a.sh", ["/env/files/a.sh"]), "/env/files/a.sh:/root/a.sh");
  assert.equal(withResolvedHostPaths(op("copy-in"), "tree:/opt", ["/env/tree"]), "/env/tree:/opt");
  assert.equal(withResolvedHostPaths(op("run"), "setup.sh", ["/env/setup.sh"]), "/env/setup.sh");
  assert.equal(withResolvedHostPaths(op("ssh-inject"), "root:file:keys/k.pub", ["/env/keys/k.pub"]), "root:file:/env/keys/k.pub");
  assert.equal(withResolvedHostPaths(op("ssh-inject"), "root:string:ssh-ed25519 AAAA", []), "root:string:ssh-ed25519 AAAA");
  assert.equal(withResolvedHostPaths(op("root-password"), "file:pw", ["/env/pw"]), "file:/env/pw");
  assert.equal(withResolvedHostPaths(op("password"), "bob:file:pw", ["/env/pw"]), "bob:file:/env/pw");
  assert.equal(withResolvedHostPaths(op("write"), "/etc/motd:hello", []), "/etc/motd:hello");
  const attrs = {
    steps: [
      {
        builder: "virt-customize",
        options: [
          { option: "upload", arg: "files/a.sh:/root/a.sh", host_paths: ["/env/files/a.sh"] },
          { option: "run", arg: "setup.sh", host_paths: ["/env/setup.sh"] },
          { option: "touch", arg: "/x" },
        ],
      },
    ],
  };
  assert.deepEqual(buildArgs(attrs, undefined), ["--upload", "/env/files/a.sh:/root/a.sh", "--run", "/env/setup.sh", "--touch", "/x"]);
  assert.deepEqual(buildInputs(attrs), ["/env/files/a.sh", "/env/setup.sh"]);
});
