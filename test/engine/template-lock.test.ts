/**
 * A resolved template version is recorded and kept, like Terraform's
 * dependency lock file: when the repository publishes a newer version, the
 * next plan shows no change (and says that a newer version exists); only
 * `--upgrade-templates` plans the upgrade and its replacements.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("a newer template version changes nothing until --upgrade-templates, which replaces what uses it", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const first = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(sb.state().resources["template.test-repo:tiny:v2"], "the newest version at the time: v2");

    // The repository publishes v3.
    const repoDir = path.dirname(sb.repoMetadata);
    writeFileSync(path.join(repoDir, "tiny-v3.img"), "tiny image, version 3");
    writeFileSync(path.join(repoDir, "tiny-v3.img.hash"), createHash("sha1").update("tiny image, version 3").digest("hex"));
    const meta = JSON.parse(readFileSync(sb.repoMetadata, "utf8"));
    meta.templates.tiny.versions.v3 = { source: "local", handle: "tiny-v3.img", timestamp: 3000 };
    writeFileSync(sb.repoMetadata, JSON.stringify(meta));

    const plan = await sb.lago(["plan", "--detailed-exitcode"]);
    assert.equal(plan.code, 0, "no changes");
    assert.match(plan.stdout, /No changes\./);
    assert.match(plan.stdout, /Note: template test-repo:tiny stays at version v2, which the state records; v3 is newer: `lago apply --upgrade-templates` moves to it/);
    const json = JSON.parse((await sb.lago(["plan", "--json"])).stdout);
    assert.equal(json.notices.length, 1);

    const upgrade = await sb.lago(["plan", "--json", "--upgrade-templates"]);
    assert.deepEqual(actions(upgrade.stdout), {
      "build.vm02.root": "replace",
      "disk.vm01.root": "replace",
      "disk.vm02.root": "replace",
      "domain.vm01": "replace",
      "domain.vm02": "replace",
      "template.test-repo:tiny:v2": "delete",
      "template.test-repo:tiny:v3": "create",
    });
    const applied = await sb.lago(["apply", "--auto-approve", "--upgrade-templates"]);
    assert.equal(applied.code, 0, applied.stderr);
    // Now v3 is the recorded version: a plain plan keeps it.
    const after = await sb.lago(["plan", "--detailed-exitcode"]);
    assert.equal(after.code, 0, after.stdout);
    assert.doesNotMatch(after.stdout, /Note:/);
  } finally {
    sb.cleanup();
  }
});

test("an explicit template_version is used as written, whatever the state records", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    sb.init(BASE.replace("      - template_name: tiny\n        type: template\n        name: root\n        dev: vda\n        format: qcow2", "      - template_name: tiny\n        template_version: v1\n        type: template\n        name: root\n        dev: vda\n        format: qcow2"));
    const plan = await sb.lago(["plan", "--json"]);
    assert.deepEqual(actions(plan.stdout), {
      "disk.vm01.root": "replace",
      "domain.vm01": "replace",
      "template.test-repo:tiny:v1": "create",
    });
  } finally {
    sb.cleanup();
  }
});
