import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { EntryBatches, updateUsers } from "../../src/drivers/real/store-entry.ts";

test("EntryBatches: requests made while a batch of their key runs are served together by the next one", async () => {
  const batches: string[][] = [];
  let release: (() => void) | undefined;
  const b = new EntryBatches<string, number>(async (items) => {
    const n = batches.push(items);
    if (n === 1) await new Promise<void>((r) => (release = r));
    return n;
  });
  const first = b.submit("k", undefined, "a");
  const rest = ["b", "c", "d"].map((x) => b.submit("k", undefined, x));
  const other = b.submit("other", undefined, "z");
  release?.();
  assert.equal(await first, 1);
  assert.deepEqual(await Promise.all(rest), [3, 3, 3]);
  assert.equal(await other, 2);
  assert.deepEqual(batches, [["a"], ["z"], ["b", "c", "d"]]);
});

test("EntryBatches: a failed batch fails its own requests only; different signals never share a batch", async () => {
  const seen: string[][] = [];
  let release: (() => void) | undefined;
  const b = new EntryBatches<string, string>(async (items) => {
    seen.push(items);
    if (seen.length === 1) await new Promise<void>((r) => (release = r));
    if (items.includes("bad")) throw new Error("boom");
    return items.join("+");
  });
  const s1 = new AbortController().signal;
  const s2 = new AbortController().signal;
  const running = b.submit("k", s1, "x");
  const bad = b.submit("k", s1, "bad");
  const same = b.submit("k", s1, "y");
  const otherSignal = b.submit("k", s2, "w");
  release?.();
  assert.equal(await running, "x");
  await assert.rejects(bad, /boom/);
  await assert.rejects(same, /boom/);
  assert.equal(await otherSignal, "w");
  // After the queue drained, a new request starts a batch of its own.
  assert.equal(await b.submit("k", s1, "later"), "later");
  assert.deepEqual(seen, [["x"], ["w"], ["bad", "y"], ["later"]]);
});

test("updateUsers applies a list of changes in order with one rewrite, and writes nothing when nothing changes", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-users-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "x.users");
  await writeFile(file, `${JSON.stringify({ users: { "/b": "", "/old": "" }, last_access: 1, other: "kept" })}\n`);
  await updateUsers(file, [
    { user: "/c", add: true },
    { user: "/a", add: true },
    { user: "/old", add: false },
    { user: "/c", add: false },
    { user: "/never", add: false },
  ]);
  const doc = JSON.parse(await readFile(file, "utf8")) as { users: Record<string, string>; last_access: number; other: string };
  assert.deepEqual(Object.keys(doc.users), ["/a", "/b"]);
  assert.equal(doc.other, "kept");
  assert.ok(doc.last_access > 1);

  const before = await stat(file);
  await updateUsers(file, [{ user: "/nobody", add: false }]);
  const after = await stat(file);
  assert.equal(after.ino, before.ino, "an atomic rewrite replaces the inode: nothing should have been written");

  // No registry yet: removing still writes an empty one (as before batching).
  const fresh = path.join(dir, "fresh.users");
  await updateUsers(fresh, [{ user: "/x", add: false }]);
  assert.deepEqual((JSON.parse(await readFile(fresh, "utf8")) as { users: object }).users, {});
});
