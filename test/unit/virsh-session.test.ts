/**
 * One conversational virsh process, against virsh's built-in test driver
 * (`test:///default`: a domain `test`, running; no libvirtd needed), and the
 * standby process a driver's warm-up hint starts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout } from "node:timers/promises";
import { execa } from "execa";
import { warmUpVirsh, withVirshSession } from "../../src/drivers/real/virsh-session.ts";
import { childrenNamed, exited } from "../helpers/proc.ts";

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

const virshChildren = (): number[] => childrenNamed("virsh");

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const started = Date.now(); !cond(); await setTimeout(20)) {
    if (Date.now() - started > 10_000) assert.fail(`timed out waiting until ${what}`);
  }
}

test("a warmed-up virsh is the one the next session uses; the session after that starts its own", async () => {
  assert.deepEqual(virshChildren(), []);
  warmUpVirsh("test:///default");
  warmUpVirsh("test:///default"); // a second hint while one waits starts nothing more
  const standby = virshChildren();
  assert.equal(standby.length, 1);
  const during = await withVirshSession("test:///default", async (round) => [await round([["domstate", "test"]]), virshChildren()], { timeoutMs: 30_000 });
  assert.deepEqual(during, [["running\n"], standby]);
  await until("the session's virsh has quit", () => virshChildren().length === 0);
  const next = await withVirshSession("test:///default", async () => virshChildren(), { timeoutMs: 30_000 });
  assert.equal(next.length, 1);
  assert.notDeepEqual(next, standby);
});

test("a warmed-up virsh that died is not taken: the session starts its own", async () => {
  await until("no virsh is left from an earlier test", () => virshChildren().length === 0);
  warmUpVirsh("test:///default");
  const [standby] = virshChildren();
  assert.ok(standby);
  process.kill(standby, "SIGKILL");
  await until("the standby virsh is gone", () => !virshChildren().includes(standby));
  await setTimeout(50); // its exit reaches the event loop
  const outputs = await withVirshSession("test:///default", (round) => round([["domstate", "test"]]), { timeoutMs: 30_000 });
  assert.deepEqual(outputs, ["running\n"]);
});

test("a warmed-up virsh that no session takes does not keep Node alive, and quits with it", async () => {
  // The child prints its virsh's pid, then has nothing left to do.
  const script = `import { childrenNamed } from ${JSON.stringify(new URL("../helpers/proc.ts", import.meta.url).href)};
import { warmUpVirsh } from ${JSON.stringify(new URL("../../src/drivers/real/virsh-session.ts", import.meta.url).href)};
warmUpVirsh("test:///default");
process.stdout.write(childrenNamed("virsh").join(" "));`;
  const started = Date.now();
  const { stdout } = await execa(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { timeout: 30_000 });
  // Left untaken, the standby quits after 10 s: Node must not have waited for that.
  assert.ok(Date.now() - started < 8_000, `node took ${Date.now() - started} ms to exit`);
  assert.match(stdout, /^\d+$/);
  await until("the orphaned virsh has quit", () => exited(stdout));
});
