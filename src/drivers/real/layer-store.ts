/**
 * {@link LayerStoreDriver}: build layers in the shared template store, content-addressed.
 *
 *     <store>/layers/<key>.qcow2       the layer: a qcow2 overlay on a template, read-only (0444)
 *     <store>/layers/<key>.json        its manifest: the template, the build (no secrets), when
 *     <store>/layers/<key>.users       who overlays it, in Lago's `.users` format
 *     <store>/layers/<key>.qcow2.tmp   a build in progress
 *     <store>/layers/<key>.lock        the per-layer lock (a directory, as for templates)
 *
 * `<key>` is the sha256 of everything that makes the layer's bytes (the template's
 * digest, the canonical build steps, the contents of the host files they read, an
 * injected key), so two builds with the same key are the same build: made once,
 * under the lock, by whichever process comes first, and reused by every VM,
 * re-create and environment after it. A layer registers as a user of its template,
 * so the template outlives it; a layer nobody uses stays as a cache until pruned.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lstat, readdir, readlink, rm, stat } from "node:fs/promises";
import path from "node:path";
import { LagoError, LockError, errorMessage } from "../../errors.ts";
import { fsyncDir, writeFileAtomicAsync } from "../../util/fs-atomic.ts";
import type { CallOptions, ImageDriver, LayerInfo, LayerRequest, LayerStoreDriver, StoredLayer, TemplateRef, TemplateStoreDriver } from "../types.ts";
import { isRecord, readText } from "../../util/read.ts";
import { updateUsers, userNames, usersOf, withEntryLock, type EntryLock } from "./store-entry.ts";

const KEY = /^[0-9a-f]{64}$/;

interface LayerPaths {
  image: string;
  manifest: string;
  users: string;
  tmp: string;
  lock: string;
}

interface Manifest {
  key: string;
  template: { path: string; format: string };
  templateRef: TemplateRef | null;
  created: string;
  build: Record<string, unknown>;
}

function parseManifest(text: string | undefined, key: string): Manifest | undefined {
  if (text === undefined) return undefined;
  try {
    const doc: unknown = JSON.parse(text);
    if (!isRecord(doc) || doc.key !== key || !isRecord(doc.template) || typeof doc.template.path !== "string") return undefined;
    return doc as unknown as Manifest;
  } catch {
    return undefined;
  }
}

/** sha256 of a file's content, streamed. */
async function hashFile(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** sha256 of a tree: each entry's relative name, type, permission bits and content (or link target), in name order. */
async function hashTree(root: string): Promise<string> {
  const h = createHash("sha256");
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const abs = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) h.update(`l ${mode} ${r} -> ${await readlink(abs)}\0`);
      else if (st.isDirectory()) {
        h.update(`d ${mode} ${r}\0`);
        await walk(abs, r);
      } else if (st.isFile()) h.update(`f ${mode} ${r} ${await hashFile(abs)}\0`);
      else h.update(`o ${mode} ${r}\0`);
    }
  };
  await walk(root, "");
  return h.digest("hex");
}

export interface FsLayerStoreOptions {
  /** Give up waiting for another process's build after this long (default 2 h). */
  lockWaitMs?: number | undefined;
  /** A holder whose liveness cannot be checked (another host) is dead when its heartbeat is older than this (default 60 s). */
  lockStaleMs?: number | undefined;
}

export class FsLayerStore implements LayerStoreDriver {
  readonly dir: string;
  private readonly lockWaitMs: number;
  private readonly lockStaleMs: number | undefined;

  constructor(
    storeDir: string,
    private readonly images: ImageDriver,
    private readonly templates: TemplateStoreDriver,
    options: FsLayerStoreOptions = {},
  ) {
    this.dir = path.join(path.resolve(storeDir), "layers");
    this.lockWaitMs = options.lockWaitMs ?? 2 * 60 * 60_000;
    this.lockStaleMs = options.lockStaleMs;
  }

  private paths(key: string): LayerPaths {
    if (!KEY.test(key)) throw new LagoError("INTERNAL", `invalid build layer key ${JSON.stringify(key)}`);
    const base = path.join(this.dir, key);
    return { image: `${base}.qcow2`, manifest: `${base}.json`, users: `${base}.users`, tmp: `${base}.qcow2.tmp`, lock: `${base}.lock` };
  }

  /** Complete: the manifest names the key and the image exists (it is renamed into place last). */
  async lookup(key: string): Promise<StoredLayer | undefined> {
    const p = this.paths(key);
    const manifest = parseManifest(await readText(p.manifest), key);
    if (!manifest) return undefined;
    const info = await this.images.info(p.image);
    if (!info) return undefined;
    return { key, path: p.image, template: manifest.template.path, users: userNames(await readText(p.users)) };
  }

  async ensure(req: LayerRequest, opts: CallOptions = {}): Promise<StoredLayer & { cached: boolean }> {
    const p = this.paths(req.key);
    return withEntryLock(this.entryLock(req.key, p), opts, async (isCompromised) => {
      await updateUsers(p.users, [{ user: req.user, add: true }]);
      const stored = await this.lookup(req.key);
      if (stored) return { ...stored, cached: true };
      try {
        return await this.build(req, p, isCompromised, opts);
      } catch (err) {
        await updateUsers(p.users, [{ user: req.user, add: false }]).catch(() => undefined);
        throw err;
      }
    });
  }

  private async build(req: LayerRequest, p: LayerPaths, isCompromised: () => Error | undefined, opts: CallOptions): Promise<StoredLayer & { cached: boolean }> {
    {
      // The template must outlive the layer: register before building on it.
      if (req.templateRef) await this.templates.ensure(req.templateRef, p.image, opts);
      await this.images.remove(p.tmp, opts);
      let published = false;
      try {
        await this.images.createOverlay(p.tmp, req.template.path, req.template.format, undefined, opts);
        await req.build(p.tmp);
        const info = await this.images.info(p.tmp, opts);
        if (!info) throw new LagoError("LAYER_INVALID", `build layer ${req.key.slice(0, 12)}: ${p.tmp} disappeared while it was built`);
        if (info.format !== "qcow2" || info.backingFile !== req.template.path) {
          throw new LagoError(
            "LAYER_INVALID",
            `build layer ${req.key.slice(0, 12)}: expected a qcow2 overlay on ${req.template.path}, got ${info.format} backed by ${info.backingFile ?? "nothing"}`,
          );
        }
        const manifest: Manifest = {
          key: req.key,
          template: req.template,
          templateRef: req.templateRef ?? null,
          created: new Date().toISOString(),
          build: req.manifest,
        };
        await writeFileAtomicAsync(p.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
        // Never modified once published: the VMs' overlays only read it.
        await chmod(p.tmp, 0o444).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
        });
        const lost = isCompromised();
        if (lost) throw new LockError(`lost the lock on build layer ${req.key.slice(0, 12)} while building it: ${lost.message}; not storing it`);
        await this.images.rename(p.tmp, p.image, opts);
        published = true;
        fsyncDir(this.dir);
        return { key: req.key, path: p.image, template: req.template.path, users: userNames(await readText(p.users)), cached: false };
      } finally {
        if (!published) await this.images.remove(p.tmp).catch(() => undefined);
      }
    }
  }

  async release(key: string, user: string): Promise<void> {
    const p = this.paths(key);
    if ((await readText(p.users)) === undefined) return;
    await withEntryLock(this.entryLock(key, p), {}, async () => {
      await updateUsers(p.users, [{ user, add: false }]);
    });
  }

  /** The store's layer directory entries (none before the first layer). */
  private async entries(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  }

  async list(): Promise<LayerInfo[]> {
    const names = await this.entries();
    const out: LayerInfo[] = [];
    for (const name of names.sort()) {
      const key = name.endsWith(".json") ? name.slice(0, -".json".length) : "";
      if (!KEY.test(key)) continue;
      const p = this.paths(key);
      const manifest = parseManifest(await readText(p.manifest), key);
      const st = await stat(p.image).catch(() => undefined);
      if (!manifest || !st) continue;
      const { doc, users } = usersOf(await readText(p.users));
      out.push({
        key,
        path: p.image,
        template: manifest.template.path,
        bytes: st.blocks * 512,
        users: Object.keys(users).sort(),
        lastAccess: typeof doc.last_access === "number" ? doc.last_access : undefined,
        manifest: { ...manifest },
      });
    }
    return out;
  }

  async prune(opts: CallOptions = {}, stillUnused: (users: string[], image: string) => boolean = (users) => users.length === 0): Promise<string[]> {
    const names = await this.entries();
    const keys = new Set(names.map((n) => /^([0-9a-f]{64})\./.exec(n)?.[1]).filter((k): k is string => k !== undefined));
    const removed: string[] = [];
    for (const key of [...keys].sort()) {
      const p = this.paths(key);
      const gone = await withEntryLock(this.entryLock(key, p), opts, async () => {
        const { users } = usersOf(await readText(p.users));
        if (!stillUnused(Object.keys(users).sort(), p.image)) return false;
        const manifest = parseManifest(await readText(p.manifest), key);
        await this.images.remove(p.tmp);
        await this.images.remove(p.image);
        await rm(p.manifest, { force: true });
        await rm(p.users, { force: true });
        if (manifest?.templateRef) await this.templates.release(manifest.templateRef, p.image);
        return true;
      });
      if (gone) removed.push(key);
    }
    return removed;
  }

  private entryLock(key: string, p: LayerPaths): EntryLock {
    const short = key.slice(0, 12);
    return {
      dir: this.dir,
      dirName: "layer store",
      lock: p.lock,
      entry: `build layer ${short}`,
      waiting: `waiting for another process building layer ${short}`,
      waitMs: this.lockWaitMs,
      staleMs: this.lockStaleMs,
    };
  }

  async hashFiles(paths: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const file of [...new Set(paths)].sort()) {
      let st;
      try {
        st = await stat(file);
      } catch (err) {
        throw new LagoError("BUILD_INPUT", `cannot read ${file}, which a build step uses: ${errorMessage(err)}`, { cause: err });
      }
      out[file] = st.isDirectory() ? `tree:${await hashTree(file)}` : await hashFile(file);
    }
    return out;
  }

  async imageIdentity(file: string): Promise<string> {
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      // An image only the image driver knows (the fake world's): what it reports of it.
      const info = (err as NodeJS.ErrnoException).code === "ENOENT" ? await this.images.info(file) : undefined;
      if (!info) throw new LagoError("BUILD_INPUT", `cannot read the image ${file} a build layer is made on: ${errorMessage(err)}`, { cause: err });
      return `info:${info.format}:${info.virtualSize}:${info.backingFile ?? ""}`;
    }
    return `${st.dev}:${st.ino}:${st.size}:${Math.round(st.mtimeMs)}`;
  }

}
