/**
 * The order in which the applier starts ready steps: the longest critical path first
 * (resources/types.ts `typicalMs`), so that what a network and then the VMs wait for
 * (a subnet lease) goes before what only a disk waits for.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

test("ready steps start by critical path: leases, then the networks waiting for them, before keys, templates and disks", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    // One slot, killed after the 11th journal record: the order in which steps took the slot, as the journal has it.
    const killed = await sb.lago(["apply", "--auto-approve", "--parallelism", "1"], { env: { LAGO_TEST_CRASH_AFTER_JOURNAL: "11" } });
    assert.equal(killed.signal, "SIGKILL", killed.stderr);
    const records = readFileSync(path.join(sb.work, ".lago", "default", "journal.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; address?: string });
    assert.deepEqual(
      records.map((r) => (r.address ? `${r.type} ${r.address}` : r.type)),
      [
        "begin",
        "meta",
        // Every source journals its intent at once (group commit), longest path first:
        // lease → network → domain (10 + 500 + 10,000 ms), template → build → disk → domain (10,250),
        // keypair → build → disk → domain (10,200), the data disk → domain (10,050).
        "intent lease.data",
        "intent lease.lago",
        "intent template.test-repo:tiny:v2",
        "intent keypair",
        "intent disk.vm02.extra",
        "outcome lease.data",
        "outcome lease.lago",
        // The networks the leases freed go before the template, keypair and disk already under way.
        "intent network.data",
        "intent network.lago",
      ],
    );
    const done = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(done.code, 0, done.stderr);
  } finally {
    sb.cleanup();
  }
});
