import { test } from "node:test";
import assert from "node:assert/strict";
import { makeSandbox, actions } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("growing a disk resizes it in place (live while its VM runs); shrinking is refused with a clear message", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    sb.init(BASE.replace("        size: 1G\n", "        size: 2G\n"));
    const plan = await sb.lago(["plan", "--json"]);
    assert.deepEqual(actions(plan.stdout), { "disk.vm02.extra": "update" });
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 0, r.stderr);
    const image = Object.entries(sb.world().images).find(([p]) => p.endsWith("vm02_extra.qcow2"))?.[1];
    assert.equal(image?.virtualSize, 2 * 1024 ** 3);
    assert.ok(sb.world().calls.some((c) => c.startsWith("resizeDiskLive ")), "resized through libvirt while the VM runs");
    sb.init(BASE.replace("        size: 1G\n", "        size: 512M\n"));
    const shrink = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(shrink.code, 1);
    assert.match(shrink.stderr, /Error: disk\.vm02\.extra: shrinking \S+vm02_extra\.qcow2 from 2147483648 to 536870912 bytes is refused: it would destroy data\nhint: to start over with a smaller disk, run: lago apply --replace disk\.vm02\.extra/);
  } finally {
    sb.cleanup();
  }
});
