import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LagoError } from "../../src/errors.ts";
import { FsLeaseStore } from "../../src/drivers/real/lease-store.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MODULE = path.join(ROOT, "src/drivers/real/lease-store.ts");

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-leases-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function leaseFiles(dir: string): Promise<string[]> {
  return readdir(dir).then((names) => names.filter((n) => n.endsWith(".lease")).sort());
}

test("acquire writes Lago's lease format, creates the owner file, and is idempotent", async (t) => {
  const dir = await tempDir(t);
  const store = new FsLeaseStore(path.join(dir, "subnets"), { first: 200, last: 255 });
  const owner = path.join(dir, "env", "leases", "default.uuid");
  assert.equal(await store.find(owner), undefined);

  assert.equal(await store.acquire(owner, undefined), "192.168.200.0");
  const uuid = await readFile(owner, "utf8");
  assert.match(uuid, /^[0-9a-f]{32}$/);
  assert.equal(await readFile(path.join(dir, "subnets", "200.lease"), "utf8"), `[${JSON.stringify(owner)}, "${uuid}"]`);

  assert.equal(await store.acquire(owner, undefined), "192.168.200.0");
  assert.equal(await readFile(owner, "utf8"), uuid);
  assert.equal(await store.find(owner), "192.168.200.0");

  const other = path.join(dir, "env", "leases", "other.uuid");
  assert.equal(await store.acquire(other, undefined), "192.168.201.0");
  assert.deepEqual(await leaseFiles(path.join(dir, "subnets")), ["200.lease", "201.lease"]);
});

test("stale leases (owner file gone, or holding another uuid) are reclaimed", async (t) => {
  const dir = await tempDir(t);
  const store = new FsLeaseStore(dir, { first: 10, last: 20 });
  const a = path.join(dir, "a.uuid");
  const b = path.join(dir, "b.uuid");
  const c = path.join(dir, "c.uuid");
  assert.equal(await store.acquire(a, undefined), "192.168.10.0");
  assert.equal(await store.acquire(b, undefined), "192.168.11.0");

  await rm(a);
  assert.equal(await store.find(a), undefined);
  assert.equal(await store.acquire(c, undefined), "192.168.10.0");

  // b's environment was recreated at the same path: a new uuid, so its old lease is stale.
  await writeFile(b, "0123456789abcdef0123456789abcdef");
  assert.equal(await store.find(b), undefined);
  const d = path.join(dir, "d.uuid");
  assert.equal(await store.acquire(d, undefined), "192.168.11.0");
  assert.equal(await store.acquire(b, undefined), "192.168.12.0");

  // A lease file that is not valid JSON has no owner.
  await writeFile(path.join(dir, "13.lease"), "{garbage");
  assert.equal(await store.acquire(path.join(dir, "e.uuid"), undefined), "192.168.13.0");
});

test("a requested subnet: granted when free, refused when taken, malformed or out of range", async (t) => {
  const dir = await tempDir(t);
  const store = new FsLeaseStore(dir, { first: 200, last: 210 });
  const a = path.join(dir, "a.uuid");
  const b = path.join(dir, "b.uuid");
  assert.equal(await store.acquire(a, "192.168.205.0"), "192.168.205.0");
  assert.equal(await store.acquire(a, "192.168.205.0"), "192.168.205.0");
  assert.equal(await store.acquire(b, undefined), "192.168.200.0");

  await assert.rejects(store.acquire(b, "192.168.205.0"), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "SUBNET_TAKEN");
    assert.equal(err.message, `subnet 192.168.205.0/24 is already leased to ${a}`);
    return true;
  });
  assert.equal(await store.find(b), "192.168.200.0");
  await assert.rejects(store.acquire(b, "192.168.211.0"), {
    code: "SUBNET_OUT_OF_RANGE",
    message: "requested subnet 192.168.211.0/24 is outside the lease store's range 192.168.200.0/24 - 192.168.210.0/24",
  });
  await assert.rejects(store.acquire(b, "10.0.0.0"), { code: "SUBNET_MALFORMED" });
  await assert.rejects(store.acquire(b, "192.168.205.1"), { code: "SUBNET_MALFORMED" });

  // Asking for another subnet moves the owner's lease.
  assert.equal(await store.acquire(b, "192.168.207.0/24"), "192.168.207.0");
  assert.deepEqual(await leaseFiles(dir), ["205.lease", "207.lease"]);
  assert.equal(await store.find(b), "192.168.207.0");
});

test("a full store is a clear error", async (t) => {
  const dir = await tempDir(t);
  const store = new FsLeaseStore(dir, { first: 250, last: 251 });
  await store.acquire(path.join(dir, "1.uuid"), undefined);
  await store.acquire(path.join(dir, "2.uuid"), undefined);
  await assert.rejects(store.acquire(path.join(dir, "3.uuid"), undefined), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "SUBNET_STORE_FULL");
    assert.equal(err.message, `the subnet lease store ${dir} is full: every /24 in 192.168.250.0/24 - 192.168.251.0/24 is leased`);
    return true;
  });
  assert.throws(() => new FsLeaseStore(dir, { first: 10, last: 5 }), /invalid subnet lease range 10-5/);
});

test("release removes the lease and the owner file; absent is fine", async (t) => {
  const dir = await tempDir(t);
  const store = new FsLeaseStore(path.join(dir, "store"), { first: 200, last: 255 });
  const a = path.join(dir, "a.uuid");
  const b = path.join(dir, "b.uuid");
  await store.acquire(a, undefined);
  await store.acquire(b, undefined);
  await store.release(a);
  assert.equal(existsSync(a), false);
  assert.equal(await store.find(a), undefined);
  assert.deepEqual(await leaseFiles(path.join(dir, "store")), ["201.lease"]);
  await store.release(a);
  await store.release(path.join(dir, "never.uuid"));
  assert.equal(await store.find(b), "192.168.201.0");
  assert.equal(existsSync(path.join(dir, "store", "leases.lock")), false);
});

test("concurrent processes never get the same subnet", async (t) => {
  const dir = await tempDir(t);
  const store = path.join(dir, "store");
  const N = 8;
  const startAt = Date.now() + 2500;
  const script = `
    import { FsLeaseStore } from ${JSON.stringify(MODULE)};
    const [storeDir, owner, at] = process.argv.slice(1);
    const s = new FsLeaseStore(storeDir, { first: 200, last: 255 });
    await new Promise((r) => setTimeout(r, Math.max(0, Number(at) - Date.now())));
    const subnet = await s.acquire(owner, undefined);
    process.stdout.write(subnet);
  `;
  const run = (i: number): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script, store, path.join(dir, `env${i}`, "uuid"), String(startAt)],
        { cwd: ROOT, timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`child ${i}: ${err.message}\n${stderr}`)) : resolve(stdout.trim())),
      );
    });
  const subnets = await Promise.all(Array.from({ length: N }, (_, i) => run(i)));
  assert.equal(new Set(subnets).size, N, `duplicate subnets: ${subnets.join(", ")}`);
  assert.deepEqual(
    [...subnets].sort(),
    Array.from({ length: N }, (_, i) => `192.168.${200 + i}.0`),
  );
  const files = await leaseFiles(store);
  assert.equal(files.length, N);
  for (let i = 0; i < N; i++) {
    const owner = path.join(dir, `env${i}`, "uuid");
    const lease = JSON.parse(await readFile(path.join(store, `${subnets[i]?.split(".")[2]}.lease`), "utf8")) as unknown;
    assert.deepEqual(lease, [owner, await readFile(owner, "utf8")]);
  }
});
