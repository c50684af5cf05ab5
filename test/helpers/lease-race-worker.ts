/**
 * One environment taking a subnet lease, for the lease store race test
 * (test/unit/drivers-lease-store.test.ts): says `ready`, waits for `<go>` to
 * exist, acquires a lease for `<owner>` and prints the subnet. Every step of
 * the store lock's protocol may pause up to 2 ms, so that the test's SIGKILLs
 * land inside the lock, mid-takeover or mid-write more often.
 *
 * argv: store dir, owner uuid file, go file.
 */
import { existsSync } from "node:fs";
import { FsLeaseStore } from "../../src/drivers/real/lease-store.ts";
import { setLockStepHookForTesting } from "../../src/util/dir-lock.ts";

const [storeDir = "", owner = "", go = ""] = process.argv.slice(2);
const nap = new Int32Array(new SharedArrayBuffer(4));
setLockStepHookForTesting(() => {
  if (Math.random() < 0.5) Atomics.wait(nap, 0, 0, Math.random() * 2);
});
const store = new FsLeaseStore(storeDir, { first: 200, last: 255 });
process.stdout.write("ready\n");
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 1));
const subnet = await store.acquire(owner, undefined);
process.stdout.write(`${subnet}\n`);
