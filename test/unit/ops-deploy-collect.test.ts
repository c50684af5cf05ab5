import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { deployScriptsOf, expandVars, interpreterCommand, resolveScripts } from "../../src/ops/deploy.ts";
import { artifactDestination } from "../../src/ops/collect.ts";
import { parseSpec } from "../../src/spec/load.ts";

test("interpreterCommand: the #! line's interpreter reads the script from stdin; a shell gets -s; none means sh", () => {
  assert.equal(interpreterCommand("echo hi\n"), "sh -s");
  assert.equal(interpreterCommand("#!/bin/bash\nset -e\n"), "/bin/bash -s");
  assert.equal(interpreterCommand("#!/bin/sh -ex\n"), "/bin/sh -ex -s");
  assert.equal(interpreterCommand("#!/usr/bin/env bash\n"), "/usr/bin/env bash -s");
  assert.equal(interpreterCommand("#!/usr/bin/python3\nprint(1)\n"), "/usr/bin/python3");
  assert.equal(interpreterCommand("#!\n"), "sh -s");
});

test("a script fed to its interpreter's stdin runs as a file would (real shells)", () => {
  const script = '#!/bin/sh -e\necho "args: $#"\nfalse\necho never\n';
  let out = "";
  try {
    execFileSync("sh", ["-c", interpreterCommand(script)], { input: script, encoding: "utf8" });
  } catch (err) {
    out = String((err as { stdout: string }).stdout);
    assert.equal((err as { status: number }).status, 1, "set -e from the #! line stopped it");
  }
  assert.equal(out, "args: 0\n");
});

test("expandVars expands $VAR and ${VAR}; an undefined variable is an error naming it", () => {
  assert.equal(expandVars("$A/x/${B}y", { A: "/a", B: "b" }), "/a/x/by");
  assert.throws(() => expandVars("$NOPE/x", {}), /undefined variable \$NOPE in "\$NOPE\/x"/);
});

test("deployScriptsOf reads metadata.deploy-scripts; anything but a list of paths is refused", () => {
  assert.deepEqual(deployScriptsOf({ "deploy-scripts": ["a.sh", "b.sh"], other: 1 }), ["a.sh", "b.sh"]);
  assert.deepEqual(deployScriptsOf({}), []);
  assert.deepEqual(deployScriptsOf(undefined), []);
  assert.throws(() => deployScriptsOf({ "deploy-scripts": "a.sh" }), /must be a list of paths/);
  assert.throws(() => deployScriptsOf({ "deploy-scripts": [1] }), /must be a list of paths/);
});

test("script paths resolve against the init file, with $LAGO_INITFILE_PATH; a missing script is named with its VM", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-deploy-"));
  try {
    mkdirSync(path.join(dir, "scripts"));
    writeFileSync(path.join(dir, "scripts", "a.sh"), "true\n");
    const spec = parseSpec("domains:\n  vm01:\n    nics: [{net: n}]\n    disks: [{template_name: t, name: root, dev: vda}]\nnets:\n  n:\n    type: nat\n", path.join(dir, "LagoInitFile"), { env: {} });
    assert.deepEqual(resolveScripts(spec, "vm01", ["scripts/a.sh", "$LAGO_INITFILE_PATH/scripts/a.sh"], {}), [path.join(dir, "scripts", "a.sh"), path.join(dir, "scripts", "a.sh")]);
    assert.throws(() => resolveScripts(spec, "vm01", ["scripts/b.sh"], {}), /VM vm01: deploy script scripts\/b\.sh \(.*\/scripts\/b\.sh\) is not a readable file/);
    assert.throws(() => resolveScripts(spec, "vm01", ["scripts"], {}), /is not a readable file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("artifactDestination mirrors the VM's path under OUTPUT/<vm>, never outside it", () => {
  assert.equal(artifactDestination("/out", "vm01", "/var/log"), "/out/vm01/var/log");
  assert.equal(artifactDestination("/out", "vm01", "/var/log/../lib/x/"), "/out/vm01/var/lib/x");
  assert.equal(artifactDestination("/out", "vm01", "relative/file"), "/out/vm01/relative/file");
  assert.throws(() => artifactDestination("/out", "vm01", "/"), /not a path lago can copy/);
  assert.throws(() => artifactDestination("/out", "vm01", "../../etc/passwd"), /not a path lago can copy/);
  assert.equal(artifactDestination("/out", "vm01", "/../../etc/passwd"), "/out/vm01/etc/passwd");
});
