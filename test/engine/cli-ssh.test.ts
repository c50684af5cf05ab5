import { test } from "node:test";
import assert from "node:assert/strict";
import { makeSandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("lago ssh passes the command's own options through to the VM", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    const r = await sb.lago(["ssh", "vm01", "ping", "-c1", "-W5", "vm02"]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(sb.world().calls.some((c) => /^sshExec 192\.168\.\d+\.\d+ ping -c1 -W5 vm02$/.test(c)), "the options reached the VM");
    const host = await sb.lago(["ssh", "vm02", "hostname"]);
    assert.equal(host.stdout, "vm02\n");
    const missing = await sb.lago(["ssh", "nope", "true"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /Error: no VM nope in environment default\nhint: see `lago show`/);
  } finally {
    sb.cleanup();
  }
});
