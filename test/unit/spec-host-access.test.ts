/**
 * Init files are untrusted: build steps use only allowed virt-customize
 * operations and read host files only inside the init file's directory; disk
 * images stay out of system directories and are never devices.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { ConfigError, ProviderError } from "../../src/errors.ts";
import { parseSpec, type LoadOptions } from "../../src/spec/load.ts";
import { BUILD_OPERATIONS, REFUSED_OPTIONS } from "../../src/spec/build-ops.ts";
import { assertImageFile, checkBuildHostPath, isWithin, systemDirOf } from "../../src/spec/host-paths.ts";
import type { EnvSpec } from "../../src/spec/types.ts";

function withDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "lago-host-")));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** An init file whose one disk has `build` (YAML lines at the options' indentation) and an optional extra disk line. */
function initFile(options: string[], extraDisk = ""): string {
  return [
    "domains:",
    "  vm01:",
    "    nics: [{net: lago}]",
    "    disks:",
    "      - name: root",
    "        template_name: el8",
    "        dev: vda",
    "        build:",
    "          - virt-customize:",
    ...options.map((o) => `              ${o}`),
    ...(extraDisk ? [extraDisk] : []),
    "nets:",
    "  lago: {type: nat}",
    "",
  ].join("\n");
}

function problems(text: string, file: string, options: LoadOptions = {}): string[] {
  try {
    parseSpec(text, file, { env: {}, ...options });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`);
  }
  return [];
}

function options(spec: EnvSpec): Array<{ option: string; arg: string | undefined; hostPaths: string[] }> {
  return spec.domains[0]?.disks[0]?.build[0]?.options ?? [];
}

test("options that point virt-customize elsewhere, or run code on the host, are refused at the key", withDir((dir) => {
  const file = path.join(dir, "LagoInitFile");
  const text = initFile(["add: /var/lib/libvirt/images/other.qcow2", "domain: production", "connect: qemu+ssh://elsewhere/system", "format: raw", "edit: '/etc/x:s/a/b/'", "dry-run: ''", "touchh: /x", "update: now"]);
  assert.deepEqual(problems(text, file), [
    "10:15: virt-customize option `add` is not allowed in a build step: it points virt-customize at another disk image: lago runs each build on the disk it belongs to",
    "11:15: virt-customize option `domain` is not allowed in a build step: it points virt-customize at a libvirt domain instead of the build's disk",
    "12:15: virt-customize option `connect` is not allowed in a build step: it points virt-customize at another hypervisor",
    "13:15: virt-customize option `format` is not allowed in a build step: it overrides the format of the disk lago hands to virt-customize",
    "14:15: virt-customize option `edit` is not allowed in a build step: it runs its Perl expression on the host, not in the guest (use `run-command: sed -i …` instead)",
    "15:15: virt-customize option `dry-run` is not allowed in a build step: it makes the build do nothing",
    "16:15: unknown virt-customize operation `touchh` — did you mean `touch`?",
    "17:23: virt-customize operation `update` takes no argument: write `update: ''`",
  ]);
}));

test("host paths resolve against the init file's directory and are carried in the spec", withDir((dir) => {
  mkdirSync(path.join(dir, "files"));
  for (const f of ["files/a.txt", "setup.sh", "pw", "key.pub", "boot.sh"]) writeFileSync(path.join(dir, f), "x");
  const file = path.join(dir, "LagoInitFile");
  const spec = parseSpec(
    initFile([
      "upload: files/a.txt:/root/a.txt",
      `copy-in: ${dir}/files:/srv`,
      "run: ./setup.sh",
      "firstboot: boot.sh",
      "root-password: file:pw",
      "password: alice:file:pw",
      "ssh-inject: [root:file:key.pub, 'bob:string:ssh-ed25519 AAAA', '']",
      "run-command: cat /etc/passwd",
    ]),
    file,
    { env: {} },
  );
  assert.deepEqual(options(spec), [
    { option: "upload", arg: "files/a.txt:/root/a.txt", hostPaths: [path.join(dir, "files/a.txt")] },
    { option: "copy-in", arg: `${dir}/files:/srv`, hostPaths: [path.join(dir, "files")] },
    { option: "run", arg: "./setup.sh", hostPaths: [path.join(dir, "setup.sh")] },
    { option: "firstboot", arg: "boot.sh", hostPaths: [path.join(dir, "boot.sh")] },
    { option: "root-password", arg: "file:pw", hostPaths: [path.join(dir, "pw")] },
    { option: "password", arg: "alice:file:pw", hostPaths: [path.join(dir, "pw")] },
    { option: "ssh-inject", arg: "root:file:key.pub", hostPaths: [path.join(dir, "key.pub")] },
    { option: "ssh-inject", arg: "bob:string:ssh-ed25519 AAAA", hostPaths: [] },
    { option: "ssh-inject", arg: undefined, hostPaths: [] },
    { option: "run-command", arg: "cat /etc/passwd", hostPaths: [] },
  ]);
}));

test("escapes are refused: `..`, absolute paths outside, symlinks out, ~/.ssh, missing files", withDir((dir) => {
  const env = path.join(dir, "env");
  mkdirSync(env);
  writeFileSync(path.join(dir, "secret"), "s");
  symlinkSync(path.join(dir, "secret"), path.join(env, "innocent"));
  symlinkSync("/etc", path.join(env, "etc"));
  const file = path.join(env, "LagoInitFile");
  const text = initFile(["upload: ../secret:/root/s", "copy-in: /etc/ssh:/root", "run: innocent", "firstboot: etc/passwd", "ssh-inject: root", "root-password: file:nope"]);
  assert.deepEqual(problems(text, file), [
    `10:23: \`upload\` reads a host file: \`../secret\` is outside the init file's directory ${env}; keep build inputs beside the init file, or run lago with --allow-outside-paths`,
    `11:24: \`copy-in\` reads a host file: \`/etc/ssh\` is outside the init file's directory ${env}; keep build inputs beside the init file, or run lago with --allow-outside-paths`,
    `12:20: \`run\` reads a host file: \`innocent\` leads through a symlink to ${path.join(dir, "secret")}, outside the init file's directory ${env}; keep build inputs beside the init file, or run lago with --allow-outside-paths`,
    `13:26: \`firstboot\` reads a host file: \`etc/passwd\` leads through a symlink to /etc/passwd, outside the init file's directory ${env}; keep build inputs beside the init file, or run lago with --allow-outside-paths`,
    "14:27: `ssh-inject: root` reads the public keys in the invoking user's ~/.ssh, outside the init file's directory; name a key file instead (`USER:file:KEYFILE`), or run lago with --allow-outside-paths",
    `15:30: \`root-password\` reads a host file: \`nope\` does not exist (relative paths are relative to the init file's directory ${env})`,
  ]);
  // With the explicit flag, the same file loads and carries the real paths.
  const spec = parseSpec(text.replace("root-password: file:nope", "root-password: random"), file, { env: {}, hostAccess: { allowOutsidePaths: true, allowSystemPaths: false } });
  assert.deepEqual(
    options(spec).map((o) => o.hostPaths),
    [[path.join(dir, "secret")], ["/etc/ssh"], [path.join(dir, "secret")], ["/etc/passwd"], [], []],
  );
}));

test("commands files get the same allow-list, and may not read host files", withDir((dir) => {
  writeFileSync(path.join(dir, "ok.cmds"), "# comment\ninstall vim,\\\n  git\n\ntouch /root/x\nupdate\n");
  writeFileSync(path.join(dir, "bad.cmds"), "touch /a\nedit /etc/x:s/a/b/\nupload /etc/shadow:/root/shadow\nadd /dev/sda\n");
  const file = path.join(dir, "LagoInitFile");
  const ok = parseSpec(initFile(["commands-from-file: ok.cmds"]), file, { env: {} });
  assert.deepEqual(options(ok)[0]?.hostPaths, [path.join(dir, "ok.cmds")]);
  const bad = path.join(dir, "bad.cmds");
  assert.deepEqual(problems(initFile(["commands-from-file: bad.cmds"]), file), [
    `10:35: commands file ${bad}, line 2: virt-customize option \`edit\` is not allowed in a build step: it runs its Perl expression on the host, not in the guest (use \`run-command: sed -i …\` instead)`,
    `10:35: commands file ${bad}, line 3: \`upload\` reads host files, which a commands file may not do (virt-customize would resolve them against its working directory); write it as a build option of the init file`,
    `10:35: commands file ${bad}, line 4: virt-customize option \`add\` is not allowed in a build step: it points virt-customize at another disk image: lago runs each build on the disk it belongs to`,
  ]);
}));

test("disk images in system directories or on devices are refused at `path`, unless allowed", withDir((dir) => {
  symlinkSync("/dev/null", path.join(dir, "disk.img"));
  writeFileSync(path.join(dir, "good.qcow2"), "x");
  const file = path.join(dir, "LagoInitFile");
  const disks = (...paths: string[]): string =>
    paths.map((p, i) => `      - {name: d${i}, type: file, path: '${p}', dev: vd${String.fromCharCode(98 + i)}}`).join("\n");
  const text = initFile(["touch: /x"], disks("/dev/sda", "/etc/../etc/shadow", "disk.img", "/var/lib/libvirt/images/x.qcow2", "$LAGO_INITFILE_PATH/good.qcow2", "/usr/share/x.qcow2"));
  assert.deepEqual(problems(text, file), [
    "11:38: disk image `path`: /dev/sda lies in the system directory /dev; lago refuses images there unless run with --allow-system-paths",
    "12:38: disk image `path`: /etc/shadow lies in the system directory /etc; lago refuses images there unless run with --allow-system-paths",
    `13:38: disk image \`path\`: ${path.join(dir, "disk.img")} lies in the system directory /dev (through a symlink to /dev/null); lago refuses images there unless run with --allow-system-paths`,
    "14:38: disk image `path`: /var/lib/libvirt/images/x.qcow2 lies in the system directory /var/lib/libvirt; lago refuses images there unless run with --allow-system-paths",
    "16:38: disk image `path`: /usr/share/x.qcow2 lies in the system directory /usr; lago refuses images there unless run with --allow-system-paths",
  ]);
  // Allowed system paths still never accept a device.
  assert.deepEqual(problems(text, file, { hostAccess: { allowOutsidePaths: false, allowSystemPaths: true } }), [
    `13:38: disk image \`path\`: ${path.join(dir, "disk.img")} is a character device, not a disk image file`,
  ]);
}));

test("apply-time guard: only regular image files pass", withDir(async (dir) => {
  writeFileSync(path.join(dir, "disk.qcow2"), "x");
  await assertImageFile("disk.vm01.data", path.join(dir, "disk.qcow2"));
  for (const [p, why] of [["/dev/null", "a character device"], [dir, "a directory"]] as const) {
    await assert.rejects(assertImageFile("disk.vm01.data", p), (err: unknown) => err instanceof ProviderError && err.message === `disk.vm01.data: refusing image ${p}: it is ${why}, not a disk image file`);
  }
  await assert.rejects(assertImageFile("template.x", path.join(dir, "nope")), (err: unknown) => err instanceof ProviderError && /no such file/.test(err.message));
}));

test("property: a relative host path is accepted exactly when it stays inside the directory", withDir((dir) => {
  mkdirSync(path.join(dir, "env", "a", "b"), { recursive: true });
  mkdirSync(path.join(dir, "outside"), { recursive: true });
  for (const f of ["env/x", "env/a/x", "env/a/b/x", "outside/x", "x"]) writeFileSync(path.join(dir, f), "x");
  const env = path.join(dir, "env");
  fc.assert(
    fc.property(fc.array(fc.constantFrom("a", "b", "..", ".", "outside", "env"), { maxLength: 6 }), (segments) => {
      const written = [...segments, "x"].join("/");
      const resolved = path.resolve(env, written);
      const check = checkBuildHostPath(env, written, false);
      const exists = ["env/x", "env/a/x", "env/a/b/x", "outside/x", "x"].some((f) => path.join(dir, f) === resolved);
      assert.equal(check.ok, isWithin(env, resolved) && exists, `${written} → ${resolved}: ${check.ok ? "accepted" : check.reason}`);
      if (check.ok) assert.equal(check.path, resolved);
    }),
    { numRuns: 300 },
  );
}));

test("the allow-list covers every option of the installed virt-customize (the real tool)", (t) => {
  let out: string;
  try {
    out = execFileSync("virt-customize", ["--long-options"], { encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  } catch {
    t.skip("virt-customize is not installed");
    return;
  }
  const listed = out.split(/\s+/).filter((o) => o.startsWith("--")).map((o) => o.slice(2));
  assert.ok(listed.includes("upload") && listed.includes("add"), out);
  assert.deepEqual(listed.filter((o) => !BUILD_OPERATIONS.has(o) && !REFUSED_OPTIONS.has(o)), []);
  for (const o of BUILD_OPERATIONS.keys()) assert.ok(!REFUSED_OPTIONS.has(o), o);
});

test("system directories: /dev is one, its scratch tmpfs /dev/shm is not (like /tmp)", () => {
  assert.equal(systemDirOf("/dev/sda"), "/dev");
  assert.equal(systemDirOf("/dev/shm/envs/disk.qcow2"), undefined);
  assert.equal(systemDirOf("/dev/shmx/disk.qcow2"), "/dev");
  assert.equal(systemDirOf("/var/lib/libvirt/images/x.qcow2"), "/var/lib/libvirt");
  assert.equal(systemDirOf("/tmp/x.qcow2"), undefined);
});
