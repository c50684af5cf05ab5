/**
 * {@link TemplateStoreDriver} over Lago's shared template store:
 *
 *     <store>/<repo>:<name>:<version>            the image
 *     <store>/<repo>:<name>:<version>.hash       sha1 (hex) of the image
 *     <store>/<repo>:<name>:<version>.metadata   the repository's metadata (JSON)
 *     <store>/<repo>:<name>:<version>.users      {"users": {<user>: …}, "last_access": …}, as Lago writes it
 *     <store>/<repo>:<name>:<version>.size       size in bytes (lago-ts: makes "complete" cheap to check)
 *     <store>/<repo>:<name>:<version>.tmp        the download in progress
 *     <store>/<repo>:<name>:<version>.lockdir    the per-template lock (util/dir-lock.ts; Lago flocks `.lock`,
 *                                                 a file it never removes, so lago keeps out of its way)
 *
 * A download streams to `.tmp`, hashing as it goes; only a verified image
 * without a backing file (or external data file) is renamed to the final
 * name, after its side files. So the final name is either absent or complete.
 */
import { createHash } from "node:crypto";
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CommandError, LagoError, LockError, errorMessage } from "../../errors.ts";
import { checkTemplateHandle, checkTemplateName, templateStoreKey } from "../../templates/repo.ts";
import { fsyncDir, writeFileAtomic } from "../../util/fs-atomic.ts";
import type { CallOptions, ImageDriver, StoredTemplate, TemplateRef, TemplateStoreDriver } from "../types.ts";
import { commandNotFoundError } from "./exec.ts";
import { cancelledError } from "../../util/sleep.ts";
import { isRecord, readText } from "../../util/read.ts";
import { EntryBatches, updateUsers, withEntryLock, type EntryLock, type UserChange } from "./store-entry.ts";

/** The files beside a stored image (see the layout above). */
export const STORE_SIDE_SUFFIXES = [".hash", ".metadata", ".users", ".size", ".tmp"] as const;
/** The per-template lock beside a stored image: downloads and `lago template prune` take it. */
export const STORE_LOCK_SUFFIX = ".lockdir";

export interface FsTemplateStoreOptions {
  /** Give up waiting for another process's download after this long (default 2 h). */
  lockWaitMs?: number | undefined;
  /** A lock holder whose liveness cannot be checked (another host or PID namespace) is dead after this long without a heartbeat (default 30 s). */
  lockStaleMs?: number | undefined;
  /** Abort an HTTP transfer that makes no progress for this long (default 60 s). */
  idleTimeoutMs?: number | undefined;
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ACCEPTED_FORMATS = new Set(["qcow2", "raw"]);
const PROGRESS_EVERY_MS = 500;

interface Digest {
  sha1: string;
  sha256: string;
  bytes: number;
}

interface ExpectedHash {
  algo: "sha1" | "sha256";
  hex: string;
}

interface Paths {
  key: string;
  image: string;
  hash: string;
  metadata: string;
  users: string;
  size: string;
  tmp: string;
  lock: string;
}

/** A user registration waiting for its template's batch. */
interface Registration extends UserChange {
  ref: TemplateRef;
  p: Paths;
  opts: CallOptions;
}

async function statFile(file: string): Promise<{ size: number; ino: number } | undefined> {
  try {
    const s = await stat(file);
    return s.isFile() ? { size: s.size, ino: s.ino } : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Parse a Lago `.hash` file: a sha1 (40 hex) or sha256 (64 hex), optionally followed by a file name. Pure. */
export function parseHashFile(text: string): ExpectedHash | undefined {
  const token = text.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  if (/^[0-9a-f]{40}$/.test(token)) return { algo: "sha1", hex: token };
  if (/^[0-9a-f]{64}$/.test(token)) return { algo: "sha256", hex: token };
  return undefined;
}

/** `<baseurl>/<handle><suffix>` with the handle's segments URL-encoded (Lago: `posixpath.join`). */
export function templateUrl(baseurl: string, handle: string, suffix = ""): string {
  const encoded = handle
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
  return `${baseurl.replace(/\/+$/, "")}/${encoded}${suffix}`;
}

/**
 * A qcow2 v3 header with the "external data file" incompatible feature: the
 * image's data lives in another file, named in the header, that qemu would
 * open on the host.
 */
async function usesExternalDataFile(file: string): Promise<boolean> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(80);
    const { bytesRead } = await fh.read(buf, 0, 80, 0);
    if (bytesRead < 80 || buf.readUInt32BE(0) !== 0x514649fb) return false;
    if (buf.readUInt32BE(4) < 3) return false;
    return (buf.readBigUInt64BE(72) & 4n) !== 0n;
  } finally {
    await fh.close();
  }
}

/** Throttled progress reports for a transfer. */
class Progress {
  private last = 0;
  private done = 0;

  constructor(
    private readonly key: string,
    private readonly total: number | undefined,
    private readonly report: ((message: string) => void) | undefined,
  ) {}

  add(n: number): void {
    this.done += n;
    const now = Date.now();
    if (!this.report || now - this.last < PROGRESS_EVERY_MS) return;
    this.last = now;
    const mb = (b: number): string => (b / 1_048_576).toFixed(1);
    if (this.total && this.total > 0) {
      const pct = Math.min(100, Math.floor((this.done * 100) / this.total));
      this.report(`downloading ${this.key}: ${pct}% (${mb(this.done)}/${mb(this.total)} MB)`);
    } else {
      this.report(`downloading ${this.key}: ${mb(this.done)} MB`);
    }
  }
}

async function* counted(source: AsyncIterable<Uint8Array>, progress: Progress, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (signal?.aborted) throw cancelledError("the download");
    progress.add(chunk.byteLength);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/** Read until the first bytes can be checked for the xz magic; returns them and an iterable replaying everything. */
async function sniff(source: AsyncIterable<Buffer>): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let length = 0;
  let ended = false;
  while (length < XZ_MAGIC.length) {
    const next = await it.next();
    if (next.done) {
      ended = true;
      break;
    }
    seen.push(next.value);
    length += next.value.length;
  }
  const head = Buffer.concat(seen);
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (ended) return;
    for (;;) {
      const next = await it.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { head, all: all() };
}

/** Write `source` to `fh` (when given), hashing while streaming. */
async function writeHashed(source: AsyncIterable<Uint8Array>, fh: FileHandle | undefined): Promise<Digest> {
  const sha1 = createHash("sha1");
  const sha256 = createHash("sha256");
  let bytes = 0;
  for await (const chunk of source) {
    sha1.update(chunk);
    sha256.update(chunk);
    bytes += chunk.byteLength;
    if (!fh) continue;
    let off = 0;
    while (off < chunk.byteLength) {
      const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
      off += bytesWritten;
    }
  }
  return { sha1: sha1.digest("hex"), sha256: sha256.digest("hex"), bytes };
}

function isPipeError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ERR_STREAM_DESTROYED";
}

/** Decompress `source` with `xz` in a child process, writing (and hashing) the output to `fh`. */
async function writeXzHashed(source: AsyncIterable<Buffer>, fh: FileHandle): Promise<Digest> {
  const command = ["xz", "--decompress", "--stdout"];
  const child = spawn(command[0] ?? "xz", command.slice(1), { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    if (stderr.length < 65_536) stderr += d;
  });
  let first: unknown;
  let killedByUs = false;
  const note = (err: unknown): void => {
    if (first === undefined || (isPipeError(first) && !isPipeError(err))) first = err;
    if (!killedByUs && child.exitCode === null) {
      killedByUs = true;
      child.kill("SIGKILL");
    }
  };
  const exited = new Promise<void>((resolve, reject) => {
    child.once("error", (err: NodeJS.ErrnoException) => {
      reject(err.code === "ENOENT" ? commandNotFoundError(command, err) : new CommandError(command, undefined, stderr, `failed: ${err.message}`, { cause: err }));
    });
    child.once("close", (code, sig) => {
      if (code === 0) resolve();
      else reject(new CommandError(command, code ?? undefined, stderr, sig ? `was killed by ${sig}` : undefined));
    });
  });
  const feeding = pipeline(Readable.from(source), child.stdin);
  const writing = writeHashed(child.stdout, fh);
  const [fed, written, done] = await Promise.allSettled([
    feeding.catch((err: unknown) => {
      note(err);
      throw err;
    }),
    writing.catch((err: unknown) => {
      note(err);
      throw err;
    }),
    exited.catch((err: unknown) => {
      // xz's own complaint (bad data) beats the broken pipe it causes upstream.
      if (!killedByUs) note(err);
      throw err;
    }),
  ]);
  if (first !== undefined || fed.status === "rejected" || done.status === "rejected" || written.status === "rejected") {
    throw first ?? (done.status === "rejected" ? done.reason : new LagoError("DOWNLOAD", "xz decompression failed"));
  }
  return written.value;
}

export class FsTemplateStore implements TemplateStoreDriver {
  readonly storeDir: string;
  private readonly images: ImageDriver;
  private readonly lockWaitMs: number;
  private readonly lockStaleMs: number;
  private readonly idleTimeoutMs: number;
  /** Registrations (ensure, release) of this process waiting for their template's lock, served in batches. */
  private readonly registrations = new EntryBatches<Registration, StoredTemplate | undefined>((items) => this.register(items));

  constructor(storeDir: string, images: ImageDriver, options: FsTemplateStoreOptions = {}) {
    this.storeDir = path.resolve(storeDir);
    this.images = images;
    this.lockWaitMs = options.lockWaitMs ?? 2 * 60 * 60_000;
    this.lockStaleMs = options.lockStaleMs ?? 30_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  private paths(ref: TemplateRef): Paths {
    for (const [what, value] of [
      ["repository name", ref.repo],
      ["template name", ref.name],
      ["template version", ref.version],
    ] as const) {
      const why = checkTemplateName(value);
      if (why) throw new LagoError("TEMPLATE_INVALID", `${what} ${JSON.stringify(value)} ${why}`);
    }
    const key = templateStoreKey(ref);
    const image = path.join(this.storeDir, key);
    return {
      key,
      image,
      hash: `${image}.hash`,
      metadata: `${image}.metadata`,
      users: `${image}.users`,
      size: `${image}.size`,
      tmp: `${image}.tmp`,
      lock: `${image}${STORE_LOCK_SUFFIX}`,
    };
  }

  /** The stored image if it is complete: image, a valid `.hash`, and a `.size` matching the image. Never downloads. */
  async lookup(ref: TemplateRef): Promise<StoredTemplate | undefined> {
    const p = this.paths(ref);
    const complete = await this.complete(p);
    if (!complete) return undefined;
    const info = await this.images.info(p.image);
    if (!info) return undefined;
    return { path: p.image, format: info.format, sha1: complete.sha1 };
  }

  private async complete(p: Paths): Promise<{ sha1: string } | undefined> {
    const [img, hashText, sizeText] = await Promise.all([statFile(p.image), readText(p.hash), readText(p.size)]);
    if (!img || hashText === undefined || sizeText === undefined) return undefined;
    const hash = parseHashFile(hashText);
    if (hash?.algo !== "sha1") return undefined;
    if (!/^\d+$/.test(sizeText.trim()) || Number(sizeText.trim()) !== img.size) return undefined;
    return { sha1: hash.hex };
  }

  /**
   * Idempotent: under the template's lock, return the complete stored image
   * or download, verify and store it (one download however many processes
   * ask at once), then register `user`. Concurrent calls of this process for
   * one template are served together ({@link EntryBatches}).
   */
  async ensure(ref: TemplateRef, user: string, opts: CallOptions = {}): Promise<StoredTemplate> {
    const p = this.paths(ref);
    const whyHandle = checkTemplateHandle(ref.handle);
    if (whyHandle) throw new LagoError("TEMPLATE_INVALID", `template ${p.key}: handle ${JSON.stringify(ref.handle)} ${whyHandle}`);
    const stored = await this.registrations.submit(`+${p.key}`, opts.signal, { ref, p, user, add: true, opts });
    if (!stored) throw new LagoError("INTERNAL", `template ${p.key}: a registration batch returned no image`);
    return stored;
  }

  /** Unregister `user`; the image stays. */
  async release(ref: TemplateRef, user: string): Promise<void> {
    const p = this.paths(ref);
    if ((await statFile(p.users)) === undefined) return;
    await this.registrations.submit(`-${p.key}`, undefined, { ref, p, user, add: false, opts: {} });
  }

  /** One batch of registrations of one template, all adding or all removing a user, under its lock. */
  private async register(items: Registration[]): Promise<StoredTemplate | undefined> {
    const head = items[0];
    if (!head) throw new LagoError("INTERNAL", "an empty template registration batch");
    const { ref, p, add, opts: first } = head;
    const progress = [...new Set(items.map((i) => i.opts.progress).filter((f) => f !== undefined))];
    const opts: CallOptions = { signal: first.signal, progress: (m) => progress.forEach((f) => f(m)) };
    return withEntryLock(this.entryLock(p), opts, async (isCompromised) => {
      const stored = add ? ((await this.lookup(ref)) ?? (await this.adopt(p)) ?? (await this.download(ref, p, opts, isCompromised))) : undefined;
      await updateUsers(p.users, items);
      return stored;
    });
  }

  /**
   * An image stored by Lago itself has `.hash` but no `.size`: accept it when
   * the image still matches its hash (Lago may have converted it, then not).
   */
  private async adopt(p: Paths): Promise<StoredTemplate | undefined> {
    const [img, hashText] = await Promise.all([statFile(p.image), readText(p.hash)]);
    if (!img || hashText === undefined || (await readText(p.size)) !== undefined) return undefined;
    const expected = parseHashFile(hashText);
    if (!expected) return undefined;
    const fh = await open(p.image, "r");
    let digest: Digest;
    try {
      digest = await writeHashed(fh.createReadStream({ autoClose: false, highWaterMark: 1 << 20 }), undefined);
    } finally {
      await fh.close();
    }
    if (digest[expected.algo] !== expected.hex) return undefined;
    const info = await this.images.info(p.image);
    if (!info || info.backingFile || !ACCEPTED_FORMATS.has(info.format) || (await usesExternalDataFile(p.image))) return undefined;
    writeFileAtomic(p.size, `${digest.bytes}\n`);
    return { path: p.image, format: info.format, sha1: digest.sha1 };
  }

  private async download(ref: TemplateRef, p: Paths, opts: CallOptions, isCompromised: () => Error | undefined): Promise<StoredTemplate> {
    await rm(p.tmp, { force: true });
    let fh: FileHandle | undefined;
    let renamed = false;
    try {
      const fetched = ref.source.type === "file" ? await this.openFileSource(ref, p, opts) : await this.openHttpSource(ref, p, opts);
      opts.progress?.(`downloading ${p.key} from ${fetched.from}`);
      const progress = new Progress(p.key, fetched.total, opts.progress);
      fh = await open(p.tmp, "wx", 0o640);
      let digest: Digest;
      try {
        const raw = counted(fetched.body, progress, opts.signal);
        if (fetched.sniffXz) {
          const { head, all } = await sniff(raw);
          digest = head.subarray(0, XZ_MAGIC.length).equals(XZ_MAGIC) ? await writeXzHashed(all, fh) : await writeHashed(all, fh);
        } else {
          digest = await writeHashed(raw, fh);
        }
      } finally {
        fetched.done();
      }
      await fh.sync();

      const actual = digest[fetched.expected.algo];
      if (actual !== fetched.expected.hex) {
        throw new LagoError(
          "TEMPLATE_HASH_MISMATCH",
          `template ${p.key} (${fetched.from}) does not match its hash: expected ${fetched.expected.algo} ${fetched.expected.hex}, got ${actual}`,
        );
      }
      const info = await this.images.info(p.tmp, opts);
      if (!info) throw new LagoError("TEMPLATE_INVALID", `template ${p.key}: the downloaded image ${p.tmp} disappeared`);
      if (info.backingFile) {
        throw new LagoError("TEMPLATE_UNSAFE", `template ${p.key}: the image names a backing file ${info.backingFile}: it could read files of the host; refusing`);
      }
      if (await usesExternalDataFile(p.tmp)) {
        throw new LagoError("TEMPLATE_UNSAFE", `template ${p.key}: the image uses an external data file: it could read files of the host; refusing`);
      }
      if (!ACCEPTED_FORMATS.has(info.format)) {
        throw new LagoError("TEMPLATE_UNSAFE", `template ${p.key}: the image is in ${info.format} format; only qcow2 and raw templates are accepted`);
      }

      writeFileAtomic(p.metadata, `${JSON.stringify(fetched.metadata, null, 4)}\n`);
      writeFileAtomic(p.hash, digest.sha1);
      writeFileAtomic(p.size, `${digest.bytes}\n`);
      const lost = isCompromised();
      const mine = await statFile(p.tmp);
      if (lost || !mine || mine.ino !== (await fh.stat()).ino) {
        throw new LockError(`lost the lock on template ${p.key} while downloading it${lost ? `: ${lost.message}` : ""}; not storing it`);
      }
      await fh.close();
      fh = undefined;
      await rename(p.tmp, p.image);
      renamed = true;
      fsyncDir(this.storeDir);
      return { path: p.image, format: info.format, sha1: digest.sha1 };
    } catch (err) {
      if (opts.signal?.aborted && !(err instanceof LagoError)) throw cancelledError(`the download of template ${p.key}`);
      throw err;
    } finally {
      await fh?.close().catch(() => undefined);
      if (!renamed) await rm(p.tmp, { force: true }).catch(() => undefined);
    }
  }

  private async openFileSource(ref: TemplateRef, p: Paths, opts: CallOptions): Promise<FetchedImage> {
    const root = path.resolve(ref.source.location);
    const file = path.resolve(root, ref.handle);
    if (!file.startsWith(root + path.sep)) {
      throw new LagoError("TEMPLATE_INVALID", `template ${p.key}: handle ${JSON.stringify(ref.handle)} leads outside the source root ${root}`);
    }
    const hashText = await readText(`${file}.hash`);
    if (hashText === undefined) throw new LagoError("TEMPLATE_UNVERIFIABLE", `template ${p.key}: ${file}.hash does not exist; refusing an image that cannot be verified`);
    const expected = parseHashFile(hashText);
    if (!expected) throw new LagoError("TEMPLATE_UNVERIFIABLE", `template ${p.key}: ${file}.hash holds no sha1 or sha256 hex digest`);
    const metaText = await readText(`${file}.metadata`);
    const metadata = metaText === undefined ? {} : parseMetadata(metaText, `${file}.metadata`);
    const st = await statFile(file);
    if (!st) throw new LagoError("TEMPLATE_NOT_FOUND", `template ${p.key}: ${file} does not exist`);
    const stream = createReadStream(file, { highWaterMark: 1 << 20, ...(opts.signal ? { signal: opts.signal } : {}) });
    return { from: file, body: stream, total: st.size, expected, metadata, sniffXz: false, done: () => stream.destroy() };
  }

  private async openHttpSource(ref: TemplateRef, p: Paths, opts: CallOptions): Promise<FetchedImage> {
    const base = ref.source.location;
    // Lago's open_url: `<handle>.xz<suffix>` first, then `<handle><suffix>`.
    const candidates = (suffix: string): string[] =>
      ref.handle.endsWith(".xz") ? [templateUrl(base, ref.handle, suffix)] : [templateUrl(base, ref.handle, `.xz${suffix}`), templateUrl(base, ref.handle, suffix)];

    const hashRes = await this.getFirst(candidates(".hash"), opts, p.key);
    if (!hashRes.res) throw new LagoError("TEMPLATE_UNVERIFIABLE", `template ${p.key}: cannot fetch its hash: ${hashRes.url}: HTTP ${hashRes.status}`);
    const expected = parseHashFile(await hashRes.res.text());
    if (!expected) throw new LagoError("TEMPLATE_UNVERIFIABLE", `template ${p.key}: ${hashRes.url} holds no sha1 or sha256 hex digest`);

    const metaRes = await this.getFirst(candidates(".metadata"), opts, p.key);
    let metadata: unknown = {};
    if (metaRes.res) metadata = parseMetadata(await metaRes.res.text(), metaRes.url);
    else if (metaRes.status !== 404) throw new LagoError("DOWNLOAD", `template ${p.key}: cannot fetch its metadata: ${metaRes.url}: HTTP ${metaRes.status}`);

    const idle = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
    let timer = setTimeout(() => idle.abort(), this.idleTimeoutMs);
    const img = await this.getFirst(candidates(""), { ...opts, signal }, p.key);
    if (!img.res?.body) {
      clearTimeout(timer);
      throw new LagoError("DOWNLOAD", `template ${p.key}: cannot download ${img.url}: HTTP ${img.status}`);
    }
    const lengthHeader = img.res.headers.get("content-length");
    const total = lengthHeader && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    const body = img.res.body;
    const idleMs = this.idleTimeoutMs;
    const url = img.url;
    async function* watched(): AsyncGenerator<Uint8Array> {
      try {
        for await (const chunk of body) {
          clearTimeout(timer);
          timer = setTimeout(() => idle.abort(), idleMs);
          yield chunk;
        }
      } catch (err) {
        if (idle.signal.aborted) throw new LagoError("DOWNLOAD", `download of ${url} stalled: no data for ${idleMs / 1000}s`, { cause: err });
        if (opts.signal?.aborted) throw cancelledError(`the download of ${url}`);
        throw new LagoError("DOWNLOAD", `download of ${url} failed: ${errorMessage(err)}`, { cause: err });
      } finally {
        clearTimeout(timer);
      }
    }
    return {
      from: url,
      body: watched(),
      total,
      expected,
      metadata,
      sniffXz: true,
      done: () => {
        clearTimeout(timer);
        idle.abort();
      },
    };
  }

  /** GET each URL in turn; the first 2xx response, or the last failure's status. */
  private async getFirst(urls: string[], opts: CallOptions, key: string): Promise<{ url: string; status: number; res: Response | undefined }> {
    let last = { url: urls[0] ?? "", status: 0 };
    for (const url of urls) {
      let res: Response;
      try {
        res = await fetch(url, { redirect: "follow", ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (err) {
        if (opts.signal?.aborted) throw cancelledError(`the download of template ${key}`);
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
        throw new LagoError("DOWNLOAD", `template ${key}: cannot fetch ${url}: ${errorMessage(err)}${cause}`, { cause: err });
      }
      if (res.ok) return { url, status: res.status, res };
      await res.body?.cancel().catch(() => undefined);
      last = { url, status: res.status };
    }
    return { ...last, res: undefined };
  }

  private entryLock(p: Paths): EntryLock {
    return {
      dir: this.storeDir,
      dirName: "template store",
      lock: p.lock,
      entry: `template ${p.key}`,
      waiting: `waiting for another process to finish with template ${p.key}`,
      waitMs: this.lockWaitMs,
      staleMs: this.lockStaleMs,
    };
  }

  /** `<image>.metadata` as a JSON object (the store's copy of a template's metadata, or a sidecar of a local image). */
  async metadataOf(imagePath: string): Promise<Record<string, unknown> | undefined> {
    const text = await readText(`${imagePath}.metadata`);
    return text === undefined ? undefined : (parseMetadata(text, `${imagePath}.metadata`) as Record<string, unknown>);
  }

}

interface FetchedImage {
  /** Path or URL, for messages. */
  from: string;
  body: AsyncIterable<Uint8Array>;
  /** Bytes expected on the wire, when known. */
  total: number | undefined;
  expected: ExpectedHash;
  metadata: unknown;
  /** Lago decompresses HTTP downloads that are xz data, whatever their name. */
  sniffXz: boolean;
  /** Release the source (close the file, stop the idle timer). */
  done: () => void;
}

function parseMetadata(text: string, from: string): unknown {
  try {
    const doc: unknown = JSON.parse(text);
    if (!isRecord(doc)) throw new Error("not a JSON object");
    return doc;
  } catch (err) {
    throw new LagoError("TEMPLATE_INVALID", `template metadata ${from} is invalid: ${errorMessage(err)}`, { cause: err });
  }
}
