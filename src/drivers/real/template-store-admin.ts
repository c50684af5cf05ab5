/**
 * Looking after Lago's shared template store (see template-store.ts for its
 * layout): listing its images with their users, and removing one under its
 * per-template lock (the same lock downloads take, so an image is never
 * removed while another process fetches or registers it).
 */
import { existsSync } from "node:fs";
import { readFile, readdir, rm, stat } from "node:fs/promises";
import path from "node:path";
import { acquireDirLockOr, describeHolder, type HeldLock } from "../../util/dir-lock.ts";
import { LockError, errorMessage } from "../../errors.ts";
import { STORE_LOCK_SUFFIX, STORE_SIDE_SUFFIXES } from "./template-store.ts";
import { userNames } from "./store-entry.ts";

export interface StoreImage {
  /** `<repo>:<name>:<version>`. */
  key: string;
  path: string;
  /** Size in bytes. */
  size: number;
  /** Who registered as using it (Lago's `.users`): environment directories, exported layers, Lago prefixes. */
  users: string[];
}

export class TemplateStoreAdmin {
  readonly storeDir: string;

  constructor(storeDir: string) {
    this.storeDir = path.resolve(storeDir);
  }

  /** Every image of the store (a file with a `.hash` beside it), sorted by key. An absent store is empty. */
  async list(): Promise<StoreImage[]> {
    let names: string[];
    try {
      names = await readdir(this.storeDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const all = new Set(names);
    const out: StoreImage[] = [];
    for (const key of names.sort()) {
      if (STORE_SIDE_SUFFIXES.some((s) => key.endsWith(s)) || key.endsWith(".lock") || key.endsWith(STORE_LOCK_SUFFIX) || !all.has(`${key}.hash`)) continue;
      const file = path.join(this.storeDir, key);
      const st = await stat(file).catch(() => undefined);
      if (!st?.isFile()) continue;
      const users = userNames(await readFile(`${file}.users`, "utf8").catch(() => undefined));
      out.push({ key, path: file, size: st.size, users });
    }
    return out;
  }

  /**
   * Under the image's lock, ask `stillUnused` (with the users registered at
   * that moment) and remove the image and its side files only if it agrees.
   * Resolves whether it removed it.
   */
  async removeIfUnused(key: string, stillUnused: (users: string[]) => boolean): Promise<boolean> {
    const file = path.join(this.storeDir, key);
    let held: HeldLock;
    try {
      held = await acquireDirLockOr(`${file}${STORE_LOCK_SUFFIX}`, { command: "lago template prune", timeoutMs: 0 }, (holder) => new LockError(`template ${key} is in use by ${describeHolder(holder)} (${file}${STORE_LOCK_SUFFIX})`, { hint: "try again when it is done" }));
    } catch (err) {
      if (err instanceof LockError) throw err;
      throw new LockError(`cannot lock template ${key}: ${errorMessage(err)}`, { cause: err });
    }
    try {
      if (!existsSync(file)) return false;
      const users = userNames(await readFile(`${file}.users`, "utf8").catch(() => undefined));
      if (!stillUnused(users)) return false;
      // The image goes first: without it the side files describe nothing.
      await rm(file, { force: true });
      for (const s of STORE_SIDE_SUFFIXES) await rm(`${file}${s}`, { force: true });
      return true;
    } finally {
      await held.release().catch(() => undefined);
    }
  }
}
