import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LagoError } from "../../src/errors.ts";
import { FsLeaseStore } from "../../src/drivers/real/lease-store.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WORKER = path.join(ROOT, "test/helpers/lease-race-worker.ts");

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

test("32 processes take leases at the same instant, some killed mid-way: no duplicate subnet, no lock left stuck", { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t);
  const store = path.join(dir, "store");
  const go = path.join(dir, "go");
  const N = 32;
  const owners = Array.from({ length: N }, (_, i) => path.join(dir, `env${i}`, "leases", "default.uuid"));
  const children = owners.map((owner) => spawn(process.execPath, ["--import", "tsx", WORKER, store, owner, go], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  const outputs = children.map((child) => {
    let out = "";
    let err = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    return {
      ready: new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (out.startsWith("ready\n")) resolve();
        };
        child.stdout?.on("data", check);
        child.on("exit", () => reject(new Error(`a worker exited before it was ready: ${err}`)));
      }),
      exit: new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on("exit", (code) => resolve({ code, out, err }))),
    };
  });
  await Promise.all(outputs.map((o) => o.ready));
  await writeFile(go, "");
  // Kill a quarter of them within the first milliseconds: before, inside or after the lock.
  const victims = new Set<number>();
  while (victims.size < N / 4) victims.add(Math.floor(Math.random() * N));
  for (const v of victims) setTimeout(() => children[v]?.kill("SIGKILL"), Math.random() * 40);
  const results = await Promise.all(outputs.map((o) => o.exit));

  const subnets = new Map<number, string>();
  results.forEach((r, i) => {
    if (r.code === 0) subnets.set(i, r.out.split("\n")[1] ?? "");
    else assert.ok(victims.has(i), `worker ${i} failed (${r.code}): ${r.err}`);
  });
  t.diagnostic(`${subnets.size} took a lease, ${N - subnets.size} were killed first`);
  assert.ok(subnets.size >= N - N / 4);
  assert.equal(new Set(subnets.values()).size, subnets.size, `duplicate subnets: ${[...subnets.values()].join(", ")}`);
  // Each survivor's subnet is leased to it, with its uuid, and every lease names a distinct owner.
  for (const [i, subnet] of subnets) {
    const owner = owners[i] ?? "";
    assert.deepEqual(JSON.parse(await readFile(path.join(store, `${subnet.split(".")[2]}.lease`), "utf8")), [owner, await readFile(owner, "utf8")]);
  }
  const leased = await Promise.all((await leaseFiles(store)).map(async (f) => JSON.parse(await readFile(path.join(store, f), "utf8")) as [string, string]));
  assert.equal(new Set(leased.map((l) => l[0])).size, leased.length);
  for (const [owner] of leased) assert.ok(owners.includes(owner));
  // No lock stuck beyond its stale timeout: free, or held by a killed process and taken over at once.
  const after = new FsLeaseStore(store, { first: 200, last: 255 });
  after.lockWaitMs = after.lockStaleMs;
  const extra = await after.acquire(path.join(dir, "late", "default.uuid"), undefined);
  assert.ok(!new Set(subnets.values()).has(extra));
  assert.deepEqual((await readdir(store)).filter((n) => !n.endsWith(".lease")), []);
});
