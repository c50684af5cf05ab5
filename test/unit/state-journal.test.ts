import { test, after } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { StateError } from "../../src/errors.ts";
import { Journal, pendingIntents, type JournalRecord } from "../../src/state/journal.ts";
import { emptyState, readState, serializeState, STATE_FORMAT_VERSION, writeState, type State } from "../../src/state/state.ts";

const root = mkdtempSync(path.join(tmpdir(), "lago-state-test-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => path.join(root, `env${++n}`);

function sampleState(): State {
  const state = emptyState();
  state.initFileSha256 = "a".repeat(64);
  // Inserted out of order, with attribute keys out of order: the file must be canonical anyway.
  state.resources.set("network.lago", {
    address: "network.lago",
    kind: "network",
    attrs: { net: "lago", type: "nat", hosts: { "vm01#lago#0": { vm: "vm01", host: 2 } }, active: true },
    outputs: { subnet: "192.168.200.0", libvirt_name: "lago-0a1b2c3d-lago" },
    dependsOn: ["lease.lago"],
    status: "ready",
  });
  state.resources.set("keypair", { address: "keypair", kind: "keypair", attrs: { algorithm: "ed25519" }, outputs: {}, dependsOn: [], status: "ready" });
  state.resources.set("disk.vm01.root", {
    address: "disk.vm01.root",
    kind: "disk",
    attrs: { vm: "vm01", name: "root" },
    outputs: { path: "/x/vm01_root.qcow2" },
    dependsOn: [],
    status: "tainted",
    reason: "its build was interrupted",
  });
  return state;
}

const EXPECTED_TEXT = (lineage: string, serial: number): string => `{
  "format_version": 1,
  "init_file_sha256": "${"a".repeat(64)}",
  "lineage": "${lineage}",
  "resources": {
    "disk.vm01.root": {
      "attrs": {
        "name": "root",
        "vm": "vm01"
      },
      "depends_on": [],
      "kind": "disk",
      "outputs": {
        "path": "/x/vm01_root.qcow2"
      },
      "reason": "its build was interrupted",
      "status": "tainted"
    },
    "keypair": {
      "attrs": {
        "algorithm": "ed25519"
      },
      "depends_on": [],
      "kind": "keypair",
      "outputs": {},
      "status": "ready"
    },
    "network.lago": {
      "attrs": {
        "active": true,
        "hosts": {
          "vm01#lago#0": {
            "host": 2,
            "vm": "vm01"
          }
        },
        "net": "lago",
        "type": "nat"
      },
      "depends_on": [
        "lease.lago"
      ],
      "kind": "network",
      "outputs": {
        "libvirt_name": "lago-0a1b2c3d-lago",
        "subnet": "192.168.200.0"
      },
      "status": "ready"
    }
  },
  "serial": ${serial}
}
`;

test("an absent state file is an empty state without a lineage", () => {
  assert.deepEqual(readState(path.join(fresh(), "state.json")), emptyState());
  assert.deepEqual(emptyState(), { formatVersion: STATE_FORMAT_VERSION, lineage: "", serial: 0, initFileSha256: null, resources: new Map() });
});

test("write/read round trip: canonical JSON with sorted keys and resources, private file mode", () => {
  const file = path.join(fresh(), "state.json");
  const state = sampleState();
  writeState(file, state);
  assert.match(state.lineage, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(state.serial, 1);
  assert.equal(readFileSync(file, "utf8"), EXPECTED_TEXT(state.lineage, 1));
  assert.equal(serializeState(state), EXPECTED_TEXT(state.lineage, 1));
  assert.equal(statSync(file).mode & 0o777, 0o600);

  const back = readState(file);
  assert.deepEqual(back, state);
  assert.deepEqual([...back.resources.keys()], ["disk.vm01.root", "keypair", "network.lago"]);
});

test("the serial grows with every write and the lineage is assigned once", () => {
  const file = path.join(fresh(), "state.json");
  const state = sampleState();
  writeState(file, state);
  const lineage = state.lineage;
  writeState(file, state);
  writeState(file, state);
  assert.equal(state.lineage, lineage);
  assert.equal(state.serial, 3);
  const back = readState(file);
  assert.equal(back.lineage, lineage);
  assert.equal(back.serial, 3);
  // Reading and writing again continues the same history.
  writeState(file, back);
  assert.deepEqual({ lineage: readState(file).lineage, serial: readState(file).serial }, { lineage, serial: 4 });

  // A state that already has a lineage keeps it.
  const other = sampleState();
  other.lineage = "11111111-2222-4333-8444-555555555555";
  const otherFile = path.join(fresh(), "state.json");
  writeState(otherFile, other);
  assert.equal(readState(otherFile).lineage, "11111111-2222-4333-8444-555555555555");
});

test("no temp files are left behind by writes", () => {
  const dir = fresh();
  const state = sampleState();
  writeState(path.join(dir, "state.json"), state);
  writeState(path.join(dir, "state.json"), state);
  assert.deepEqual(readdirSync(dir), ["state.json"]);
});

function stateErrorOf(file: string): StateError {
  try {
    readState(file);
  } catch (err) {
    if (err instanceof StateError) return err;
    throw err;
  }
  return assert.fail("expected a StateError");
}

function stateFile(text: string): string {
  const file = path.join(fresh(), "state.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}

test("a malformed state file is a StateError", () => {
  const torn = stateFile('{"format_version": 1, "lineage": "x", "ser');
  const err = stateErrorOf(torn);
  assert.equal(err.code, "STATE");
  assert.match(err.message, new RegExp(`^cannot read state ${torn.replaceAll("/", "\\/")}: `));
  assert.equal(err.hint, "the state file is written atomically, so this is damage from outside lago; restore it from a backup");

  for (const text of ["[]", "null", '{"lineage": "x", "serial": 1}', '{"format_version": 1, "lineage": 5, "serial": 1, "resources": {}}', '{"format_version": 1, "lineage": "x", "serial": "1", "resources": {}}']) {
    const file = stateFile(text);
    assert.equal(stateErrorOf(file).message, `state ${file} is not a lago state file`, text);
  }

  const badResource = stateFile(
    JSON.stringify({ format_version: 1, lineage: "x", serial: 1, init_file_sha256: null, resources: { "volume.a": { kind: "volume", attrs: {}, depends_on: [] } } }),
  );
  assert.equal(stateErrorOf(badResource).message, `state ${badResource}: resource volume.a is malformed`);
  const noDeps = stateFile(JSON.stringify({ format_version: 1, lineage: "x", serial: 1, resources: { keypair: { kind: "keypair", attrs: {} } } }));
  assert.equal(stateErrorOf(noDeps).message, `state ${noDeps}: resource keypair is malformed`);
});

test("a state from a future (or unknown) format version is a StateError", () => {
  const future = stateFile(JSON.stringify({ format_version: 2, lineage: "x", serial: 1, resources: {} }));
  assert.equal(stateErrorOf(future).message, `state ${future} has format version 2; this lago reads version 1`);
  const missing = stateFile(JSON.stringify({ lineage: "x", serial: 1, resources: {} }));
  assert.equal(stateErrorOf(missing).message, `state ${missing} has format version undefined; this lago reads version 1`);
});

test("reading tolerates missing outputs and normalizes an unknown status to ready", () => {
  const file = stateFile(
    JSON.stringify({ format_version: 1, lineage: "x", serial: 4, resources: { keypair: { kind: "keypair", attrs: { algorithm: "ed25519" }, depends_on: [], status: "weird" } } }),
  );
  const state = readState(file);
  assert.equal(state.initFileSha256, null);
  assert.deepEqual(state.resources.get("keypair"), { address: "keypair", kind: "keypair", attrs: { algorithm: "ed25519" }, outputs: {}, dependsOn: [], status: "ready" });
});

// ---------------------------------------------------------------- journal

function intent(address: string, action: "create" | "update" | "delete") {
  return { type: "intent" as const, address, kind: "disk" as const, action, attrs: { vm: "vm01" }, dependsOn: [] };
}

function outcome(address: string, action: "create" | "update" | "delete", ok = true) {
  return { type: "outcome" as const, address, action, ok };
}

test("the journal appends one JSON record a line with a growing seq and a timestamp", () => {
  const file = path.join(fresh(), "journal.jsonl");
  const j = new Journal(file);
  j.append(intent("disk.vm01.root", "create"));
  j.append(outcome("disk.vm01.root", "create"));
  j.close();
  const lines = readFileSync(file, "utf8").split("\n");
  assert.equal(lines.at(-1), "");
  const records = lines.filter(Boolean).map((l) => JSON.parse(l) as JournalRecord);
  assert.deepEqual(
    records.map(({ time: _t, ...rest }) => rest),
    [
      { ...intent("disk.vm01.root", "create"), seq: 1 },
      { ...outcome("disk.vm01.root", "create"), seq: 2 },
    ],
  );
  for (const r of records) assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
});

test("pendingIntents pairs intents with outcomes by address and action, in journal order", () => {
  const file = path.join(fresh(), "journal.jsonl");
  const j = new Journal(file);
  j.append(intent("disk.vm01.root", "create"));
  j.append(intent("disk.vm02.root", "create"));
  j.append(outcome("disk.vm01.root", "create"));
  j.append(intent("domain.vm01", "delete"));
  j.append(intent("disk.vm03.root", "delete"));
  // A failed call has an outcome too: it is not pending.
  j.append(outcome("disk.vm03.root", "delete", false));
  // An outcome of another action does not close the intent.
  j.append(outcome("domain.vm01", "create"));
  j.close();
  const pending = pendingIntents(file);
  assert.deepEqual(
    pending.map((p) => [p.address, p.action, p.seq]),
    [
      ["disk.vm02.root", "create", 2],
      ["domain.vm01", "delete", 4],
    ],
  );
  assert.deepEqual(pending[0]?.attrs, { vm: "vm01" });
});

test("pendingIntents ignores a torn last line", () => {
  const file = path.join(fresh(), "journal.jsonl");
  const j = new Journal(file);
  j.append(intent("disk.vm01.root", "create"));
  j.close();
  // A crash mid-write of the outcome leaves half a line.
  appendFileSync(file, '{"type":"outcome","address":"disk.vm01.ro');
  assert.deepEqual(
    pendingIntents(file).map((p) => p.address),
    ["disk.vm01.root"],
  );
  // A torn intent (never completed) is not pending either.
  const file2 = path.join(fresh(), "journal.jsonl");
  mkdirSync(path.dirname(file2), { recursive: true });
  writeFileSync(file2, `${JSON.stringify({ ...intent("keypair", "create"), seq: 1, time: "t" })}\n{"type":"intent","addr`);
  assert.deepEqual(
    pendingIntents(file2).map((p) => p.address),
    ["keypair"],
  );
});

test("a second Journal on the same file continues appending; clear removes the file", async () => {
  const file = path.join(fresh(), "journal.jsonl");
  const a = new Journal(file);
  a.append(intent("keypair", "create"));
  a.close();
  const b = new Journal(file);
  b.append(outcome("keypair", "create"));
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 1, "appended records are written in a batch, within the turn");
  await b.sync();
  assert.deepEqual(pendingIntents(file), []);
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 2);
  b.clear();
  assert.equal(existsSync(file), false);
  assert.deepEqual(pendingIntents(file), []);
});
