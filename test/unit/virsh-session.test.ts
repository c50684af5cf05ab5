/**
 * One conversational virsh process, against virsh's built-in test driver
 * (`test:///default`: a domain `test`, running; no libvirtd needed).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { withVirshSession } from "../../src/drivers/real/virsh-session.ts";

test("each command of each round gets exactly its own output; a failed command gets none and the session goes on", async () => {
  const outputs = await withVirshSession(
    "test:///default",
    async (round) => [
      await round([["list", "--all", "--name"]]),
      await round([["snapshot-list", "--name", "test"], ["snapshot-list", "--name", "no-such-domain"], ["domstate", "test"]]),
      await round([["echo", "plain"], ["domstate", "test"]]),
    ],
    { timeoutMs: 30_000 },
  );
  // virsh's echo ends its line only when more output follows.
  assert.deepEqual(outputs, [["test\n"], ["", "", "running\n"], ["plain", "running\n"]]);
});
