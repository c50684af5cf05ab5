/**
 * Every verb that reads the init file reads it the same way: template variables
 * (`--var`, `--var-file`) for a file written as a Jinja2 template, and the
 * host-path policy of lago.conf. Bad option values are usage errors (exit 1).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox } from "../helpers/sandbox.ts";
import { lockEnv } from "../../src/state/lock.ts";

const TEMPLATED = `domains:
{% for i in range(count | int) %}
  {{ prefix }}{{ i }}:
    memory: 256
    groups: [web]
    nics:
      - net: lago
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
{% endfor %}
nets:
  lago:
    type: nat
    management: true
`;

test("deploy and collect take --var and --var-file like plan and apply (one loader for every verb)", async () => {
  const sb = makeSandbox();
  try {
    sb.init(TEMPLATED);
    writeFileSync(path.join(sb.work, "vars.yaml"), "count: 2\n");
    const vars = ["--var", "prefix=web", "--var-file", "vars.yaml"];
    const applied = await sb.lago(["apply", "--auto-approve", ...vars]);
    assert.equal(applied.code, 0, applied.stderr);
    const deployed = await sb.lago(["deploy", ...vars]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.match(deployed.stdout, /No VM has deploy scripts/);
    const unknown = await sb.lago(["deploy", ...vars, "web7"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /web7/);
    assert.match(unknown.stderr, /web0, web1/);
    // Without the variables, the verb names the one missing, as plan does.
    const missing = await sb.lago(["collect", "--output", "out", "--var-file", "vars.yaml"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /prefix/);
    assert.doesNotMatch(missing.stderr, /Internal error|\n\s+at /);
  } finally {
    sb.cleanup();
  }
});

test("a --timeout that is not a positive number of seconds is a usage error (exit 1), not an internal one", async () => {
  const sb = makeSandbox();
  try {
    for (const bad of ["0", "-1", "soon"]) {
      const r = await sb.lago(["ssh", "--timeout", bad, "vm01", "true"]);
      assert.equal(r.code, 1, `--timeout ${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--timeout <seconds>' argument '.*' is invalid\. expected a number of seconds/);
      assert.doesNotMatch(r.stderr, /Internal error/);
    }
  } finally {
    sb.cleanup();
  }
});

test("the built CLI reads with the `yaml` package what js-yaml may not (anchors, tabs): loaded on demand, outside the bundle", async () => {
  const sb = makeSandbox();
  try {
    // An anchor and an alias: read by the `yaml` package (spec/yaml-tree.ts), as PyYAML reads them.
    sb.init(`domains:
  vm01: &vm
    memory: 384
    nics:
      - net: lago
    disks:
      - template_name: tiny
        type: template
        name: root
        dev: vda
  vm02: *vm
nets:
  lago:
    type: nat
    management: true
`);
    const applied = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.deepEqual(
      Object.entries(sb.world().domains)
        .map(([name, d]) => [name.replace(/^.*-/, ""), d.def.memoryMiB])
        .sort(),
      [
        ["vm01", 384],
        ["vm02", 384],
      ],
    );
    // A tab used as indentation: the `yaml` package's error, at its line and column.
    sb.init("domains:\n  vm01:\n\tmemory: 256\n");
    const bad = await sb.lago(["plan"]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /LagoInitFile:3:1: syntax error: Tabs are not allowed as indentation/);
    assert.doesNotMatch(bad.stderr, /Internal error|\n\s+at /);
  } finally {
    sb.cleanup();
  }
});

test("a bad init file in a fresh workdir fails before anything is made: no .lago, and not the lock's error while another lago holds it", async () => {
  const sb = makeSandbox();
  try {
    sb.init("domains:\n  vm01:\n    memory: [\n");
    for (const verb of [["plan"], ["apply", "--auto-approve"]]) {
      const r = await sb.lago(verb);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /LagoInitFile:4:1: syntax error: /);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.deepEqual(readdirSync(sb.work), ["LagoInitFile"], `lago ${verb[0]} made nothing on disk`);
    }
    // Another lago holds the environment's lock (the environment has no state yet): the file's error comes first.
    const lock = await lockEnv(path.join(sb.work, ".lago", "default"), "another lago", 0);
    try {
      const r = await sb.lago(["plan"]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /LagoInitFile:4:1: syntax error: /);
      assert.doesNotMatch(r.stderr, /locked/);
    } finally {
      await lock.release();
    }
  } finally {
    sb.cleanup();
  }
});
