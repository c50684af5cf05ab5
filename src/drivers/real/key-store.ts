/**
 * {@link KeyStoreDriver} on the file system: an ed25519 pair `id_ed25519`
 * (OpenSSH private key format) and `id_ed25519.pub` (`ssh-ed25519 AAAA… lago`),
 * both mode 0600, in a directory created 0700.
 */
import { chmod, mkdir, readFile, rm, stat } from "node:fs/promises";
import path from "node:path";
import ssh2 from "ssh2";
import { writeFileAtomic } from "../../util/fs-atomic.ts";
import type { KeyStoreDriver } from "../types.ts";

const PRIVATE = "id_ed25519";
const PUBLIC = "id_ed25519.pub";

export interface StoredKeyPair {
  publicKey: string;
  privateKeyPath: string;
  publicKeyPath: string;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export class FsKeyStore implements KeyStoreDriver {
  /**
   * The pair in `dir` if both files are there, parse, are ed25519, and the
   * public key matches the private one; otherwise undefined.
   */
  async read(dir: string): Promise<StoredKeyPair | undefined> {
    const privateKeyPath = path.join(dir, PRIVATE);
    const publicKeyPath = path.join(dir, PUBLIC);
    const [priv, pub] = await Promise.all([readText(privateKeyPath), readText(publicKeyPath)]);
    if (priv === undefined || pub === undefined) return undefined;
    const privKey = ssh2.utils.parseKey(priv);
    const pubKey = ssh2.utils.parseKey(pub.trim());
    if (privKey instanceof Error || pubKey instanceof Error) return undefined;
    if (privKey.type !== "ssh-ed25519" || !privKey.isPrivateKey() || pubKey.type !== "ssh-ed25519") return undefined;
    if (!privKey.getPublicSSH().equals(pubKey.getPublicSSH())) return undefined;
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
    const pair = ssh2.utils.generateKeyPairSync("ed25519", { comment: "lago" });
    const privateKeyPath = path.join(dir, PRIVATE);
    const publicKeyPath = path.join(dir, PUBLIC);
    const publicKey = pair.public.trim();
    writeFileAtomic(privateKeyPath, pair.private.endsWith("\n") ? pair.private : `${pair.private}\n`, 0o600);
    writeFileAtomic(publicKeyPath, `${publicKey}\n`, 0o600);
    // The temp file's mode is subject to the umask; make sure of the final one.
    await chmod(privateKeyPath, 0o600);
    await chmod(publicKeyPath, 0o600);
    return { publicKey, privateKeyPath, publicKeyPath };
  }

  /** Delete both files; absent is fine. The directory stays. */
  async remove(dir: string): Promise<void> {
    await rm(path.join(dir, PRIVATE), { force: true });
    await rm(path.join(dir, PUBLIC), { force: true });
  }
}
