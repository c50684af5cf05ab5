import { test } from "node:test";
import assert from "node:assert/strict";
import { makeSandbox, actions } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("growing a disk resizes it in place (live while its VM runs); shrinking is refused at plan time at the position of size", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    sb.init(BASE.replace("        size: 1G\n", "        size: 2G\n"));
    const plan = await sb.lago(["plan", "--json"]);
    assert.deepEqual(actions(plan.stdout), { "disk.vm02.extra": "update" });
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 0, r.stderr);
    const image = Object.entries(sb.world().images).find(([p]) => p.endsWith("/vms/vm02/disks/extra.qcow2"))?.[1];
    assert.equal(image?.virtualSize, 2 * 1024 ** 3);
    assert.ok(sb.world().calls.some((c) => c.startsWith("resizeDiskLive ")), "resized through libvirt while the VM runs");
    sb.init(BASE.replace("        size: 1G\n", "        size: 512M\n"));
    const calls = sb.world().calls.length;
    for (const verb of ["plan", "apply"]) {
      const shrink = await sb.lago(verb === "plan" ? ["plan"] : ["apply", "--auto-approve"]);
      assert.equal(shrink.code, 1);
      assert.match(
        shrink.stderr,
        /LagoInitFile:28:15: disk\.vm02\.extra has 2147483648 bytes: shrinking it to 536870912 would destroy the data at its end; give a size of at least 2147483648 bytes, or replace the disk with `lago apply --replace disk\.vm02\.extra`\n1 problem found\./,
      );
    }
    assert.deepEqual(sb.world().calls.slice(calls).filter((c) => !c.startsWith("inventory") && !c.startsWith("imageInfo")), [], "nothing changed");
  } finally {
    sb.cleanup();
  }
});
