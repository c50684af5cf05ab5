/**
 * {@link KeyStoreDriver} on the file system: an ed25519 pair `id_ed25519`
 * (OpenSSH private key format) and `id_ed25519.pub` (`ssh-ed25519 AAAA… lago`),
 * both mode 0600, in a directory created 0700.
 */
import { chmod, mkdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic, writeFileAtomicAsync } from "../../util/fs-atomic.ts";
import { sha256 } from "../../util/hash.ts";
import type { KeyStoreDriver } from "../types.ts";
import { loadSsh2, type Ssh2 } from "./ssh2-module.ts";
import { readText } from "../../util/read.ts";

const PRIVATE = "id_ed25519";
const PUBLIC = "id_ed25519.pub";
/**
 * The SHA-256 of the pair last checked with ssh2: a pair whose files still
 * hash to it is not parsed again, so that a plan need not load ssh2 (~40 ms).
 */
const VERIFIED = ".verified-sha256";

function pairDigest(privateText: string, publicText: string): string {
  return sha256(`${privateText}\0${publicText}`);
}

export interface StoredKeyPair {
  publicKey: string;
  privateKeyPath: string;
  publicKeyPath: string;
}

/** A pair whose two halves parse as ed25519 keys of one another. */
function validPair(ssh2: Ssh2, privateText: string, publicText: string): boolean {
  const priv = ssh2.utils.parseKey(privateText);
  const pub = ssh2.utils.parseKey(publicText.trim());
  if (priv instanceof Error || pub instanceof Error) return false;
  return priv.type === "ssh-ed25519" && priv.isPrivateKey() && pub.type === "ssh-ed25519" && priv.getPublicSSH().equals(pub.getPublicSSH());
}

/**
 * A new ed25519 pair. ssh2 strips leading zero bytes from the public key it
 * encodes (mscdex/ssh2#1390): about one pair in 256 is malformed, and `read`
 * would reject it, so that every run made a new key. Generate until it parses.
 * Tests make their keys here too: a malformed one made CI fail once in ~256 runs.
 */
export function generatePair(ssh2: Ssh2, comment = "lago"): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment });
    if (validPair(ssh2, pair.private, pair.public)) return pair;
  }
}

export class FsKeyStore implements KeyStoreDriver {
  /**
   * The pair in `dir` if both files are there, parse, are ed25519, and the
   * public key matches the private one (checked once per content: see
   * {@link VERIFIED}); otherwise undefined.
   */
  async read(dir: string): Promise<StoredKeyPair | undefined> {
    const privateKeyPath = path.join(dir, PRIVATE);
    const publicKeyPath = path.join(dir, PUBLIC);
    const [priv, pub] = await Promise.all([readText(privateKeyPath), readText(publicKeyPath)]);
    if (priv === undefined || pub === undefined) return undefined;
    const digest = pairDigest(priv, pub);
    if ((await readText(path.join(dir, VERIFIED)))?.trim() !== digest) {
      if (!validPair(await loadSsh2(), priv, pub)) return undefined;
      await writeFileAtomicAsync(path.join(dir, VERIFIED), `${digest}\n`, 0o600).catch(() => undefined);
    }
    return { publicKey: pub.trim(), privateKeyPath, publicKeyPath };
  }

  /**
   * Idempotent: keeps a valid pair (fixing its modes), otherwise generates a
   * new one. Each file is written atomically, the private key first, so a
   * crash leaves at worst a partial pair that the next call regenerates.
   */
  async ensure(dir: string): Promise<StoredKeyPair> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const existing = await this.read(dir);
    if (existing) {
      for (const file of [existing.privateKeyPath, existing.publicKeyPath]) {
        if (((await stat(file)).mode & 0o777) !== 0o600) await chmod(file, 0o600);
      }
      return existing;
    }
    const pair = generatePair(await loadSsh2());
    const privateKeyPath = path.join(dir, PRIVATE);
    const publicKeyPath = path.join(dir, PUBLIC);
    const publicKey = pair.public.trim();
    const privateText = pair.private.endsWith("\n") ? pair.private : `${pair.private}\n`;
    writeFileAtomic(privateKeyPath, privateText, 0o600);
    writeFileAtomic(publicKeyPath, `${publicKey}\n`, 0o600);
    writeFileAtomic(path.join(dir, VERIFIED), `${pairDigest(privateText, `${publicKey}\n`)}\n`, 0o600);
    // The temp file's mode is subject to the umask; make sure of the final one.
    await chmod(privateKeyPath, 0o600);
    await chmod(publicKeyPath, 0o600);
    return { publicKey, privateKeyPath, publicKeyPath };
  }

  /** Delete both files; absent is fine. The directory stays. */
  async remove(dir: string): Promise<void> {
    await rm(path.join(dir, PRIVATE), { force: true });
    await rm(path.join(dir, PUBLIC), { force: true });
    await rm(path.join(dir, VERIFIED), { force: true });
  }
}
