import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions } from "../helpers/sandbox.ts";

test("a template disk named by a local image path (Lago's path + template_type) is an overlay on that image", async () => {
  const sb = makeSandbox();
  try {
    const image = path.join(sb.work, "my-base.qcow2");
    writeFileSync(image, "a local base image");
    sb.init(`domains:
  vm01:
    nics: [{net: lago}]
    disks:
      - name: root
        dev: vda
        type: template
        template_type: qcow2
        path: $LAGO_INITFILE_PATH/my-base.qcow2
nets:
  lago:
    type: nat
`);
    const plan = await sb.lago(["plan", "--json"]);
    assert.equal(plan.code, 0, plan.stderr);
    const created = Object.keys(actions(plan.stdout)).filter((a) => a.startsWith("template."));
    assert.equal(created.length, 1);
    assert.match(created[0] ?? "", /^template\.file:my-base\.qcow2@[0-9a-f]{8}$/);
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 0, r.stderr);
    const overlay = Object.values(sb.world().images).find((i) => i.backingFile === image);
    assert.ok(overlay, "the root disk is an overlay on the local image");
    // The user's image is never deleted by lago.
    assert.equal((await sb.lago(["destroy", "--auto-approve"])).code, 0);
    assert.equal((await import("node:fs")).existsSync(image), true);
  } finally {
    sb.cleanup();
  }
});

test("a local image that names a backing file is refused", async () => {
  const sb = makeSandbox();
  try {
    writeFileSync(path.join(sb.work, "evil.qcow2"), "BACKING=/etc/shadow");
    sb.init(`domains:\n  vm01:\n    nics: [{net: lago}]\n    disks: [{name: root, dev: vda, path: ./evil.qcow2}]\nnets:\n  lago:\n    type: nat\n`);
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /template\.file:evil\.qcow2@[0-9a-f]{8}: image \S+evil\.qcow2 names a backing file \/etc\/shadow: it could read files of the host; refusing/);
  } finally {
    sb.cleanup();
  }
});
