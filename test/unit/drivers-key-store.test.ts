import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";
import { FsKeyStore, generatePair } from "../../src/drivers/real/key-store.ts";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-keys-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("ensure creates a valid ed25519 pair with private modes", async (t) => {
  const dir = path.join(await tempDir(t), "env", "ssh");
  const keys = new FsKeyStore();
  assert.equal(await keys.read(dir), undefined);
  const pair = await keys.ensure(dir);
  assert.equal(pair.privateKeyPath, path.join(dir, "id_ed25519"));
  assert.equal(pair.publicKeyPath, path.join(dir, "id_ed25519.pub"));
  assert.match(pair.publicKey, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ lago$/);
  assert.equal((await readFile(pair.publicKeyPath, "utf8")).trim(), pair.publicKey);

  const privText = await readFile(pair.privateKeyPath, "utf8");
  assert.match(privText, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
  const priv = ssh2.utils.parseKey(privText);
  assert.ok(!(priv instanceof Error));
  assert.equal(priv.type, "ssh-ed25519");
  assert.equal(priv.isPrivateKey(), true);
  assert.equal(priv.getPublicSSH().toString("base64"), pair.publicKey.split(" ")[1]);

  assert.equal((await stat(pair.privateKeyPath)).mode & 0o777, 0o600);
  assert.equal((await stat(pair.publicKeyPath)).mode & 0o777, 0o600);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.deepEqual(await keys.read(dir), pair);
});

test("ensure is idempotent and regenerates a partial or corrupt pair", async (t) => {
  const dir = await tempDir(t);
  const keys = new FsKeyStore();
  const first = await keys.ensure(dir);
  const mtime = (await stat(first.privateKeyPath)).mtimeMs;
  const again = await keys.ensure(dir);
  assert.deepEqual(again, first);
  assert.equal((await stat(first.privateKeyPath)).mtimeMs, mtime);

  await writeFile(first.publicKeyPath, "ssh-ed25519 AAAAgarbage lago\n");
  assert.equal(await keys.read(dir), undefined);
  const regenerated = await keys.ensure(dir);
  assert.notEqual(regenerated.publicKey, first.publicKey);
  assert.deepEqual(await keys.read(dir), regenerated);

  // A public key from another pair does not match the private key.
  const other = generatePair(ssh2);
  await writeFile(regenerated.publicKeyPath, `${other.public}\n`);
  assert.equal(await keys.read(dir), undefined);

  await rm(regenerated.publicKeyPath);
  assert.equal(await keys.read(dir), undefined);
  const third = await keys.ensure(dir);
  assert.deepEqual(await keys.read(dir), third);

  await keys.remove(dir);
  await keys.remove(dir);
  assert.equal(await keys.read(dir), undefined);
});

test("a malformed pair from ssh2's generator (mscdex/ssh2#1390, ~1 in 256) is never stored: ensure then read agree", async (t) => {
  // Found by the edit-sequence property tests: `read` rejected the stored pair, so every plan wanted a new key.
  let bad: { private: string; public: string } | undefined;
  for (let i = 0; i < 20_000 && !bad; i++) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "lago" });
    if (ssh2.utils.parseKey(pair.public) instanceof Error) bad = pair;
  }
  assert.ok(bad, "ssh2 fixed its generator: this workaround can go");
  const real = ssh2.utils.generateKeyPairSync;
  let calls = 0;
  t.mock.method(ssh2.utils, "generateKeyPairSync", (...args: Parameters<typeof real>) => (++calls === 1 ? bad : real(...args)));
  const dir = await tempDir(t);
  const keys = new FsKeyStore();
  const pair = await keys.ensure(dir);
  assert.equal(calls, 2, "the malformed pair was thrown away");
  assert.deepEqual(await keys.read(dir), pair);
});

test("a pair checked once is not parsed again until its files change; a pair the cache names but ssh2 rejects is never trusted", async (t) => {
  const dir = await tempDir(t);
  const keys = new FsKeyStore();
  const pair = await keys.ensure(dir);
  const parse = t.mock.method(ssh2.utils, "parseKey");
  assert.deepEqual(await keys.read(dir), pair);
  assert.equal(parse.mock.callCount(), 0, "the verified digest matched: no ssh2 parse");

  // Another valid pair written behind lago's back: checked again, then cached.
  const other = generatePair(ssh2);
  await writeFile(pair.privateKeyPath, other.private);
  await writeFile(pair.publicKeyPath, `${other.public}\n`);
  assert.equal((await keys.read(dir))?.publicKey, other.public.trim());
  assert.ok(parse.mock.callCount() > 0);
  const after = parse.mock.callCount();
  await keys.read(dir);
  assert.equal(parse.mock.callCount(), after);

  // A mismatched pair is refused whatever the cache said before.
  await writeFile(pair.publicKeyPath, `${generatePair(ssh2).public}\n`);
  assert.equal(await keys.read(dir), undefined);
  await keys.remove(dir);
  await assert.rejects(readFile(path.join(dir, ".verified-sha256")), { code: "ENOENT" });
});
