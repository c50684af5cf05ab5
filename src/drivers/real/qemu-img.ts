/** {@link ImageDriver} over `qemu-img`. */
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { LagoError } from "../../errors.ts";
import type { CallOptions, ImageDriver, ImageInfo } from "../types.ts";
import { run } from "./exec.ts";
import { readImageHead } from "./qcow2-header.ts";
import { isRecord } from "../../util/read.ts";

const TIMEOUT_MS = 10 * 60_000;

function optString(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** Map `qemu-img info --output=json` to {@link ImageInfo}. Pure. */
export function parseQemuImgInfo(json: string, file: string): ImageInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new LagoError("IMAGE_INFO", `qemu-img info ${file}: unparseable output`, { cause: err });
  }
  if (!isRecord(doc) || typeof doc.format !== "string" || typeof doc["virtual-size"] !== "number") {
    throw new LagoError("IMAGE_INFO", `qemu-img info ${file}: output lacks "format" or "virtual-size"`);
  }
  return {
    format: doc.format,
    virtualSize: doc["virtual-size"],
    backingFile: optString(doc["full-backing-filename"]) ?? optString(doc["backing-filename"]),
    backingFormat: optString(doc["backing-filename-format"]),
  };
}

export class QemuImg implements ImageDriver {
  /**
   * A qcow2 overlay on `backing`, optionally grown to `size` bytes. Built at
   * `<path>.tmp` and renamed, so `path` is either absent or complete; an
   * existing file at `path` is replaced. Refuses a size below the backing's.
   */
  async createOverlay(file: string, backing: string, backingFormat: string, size: number | undefined, opts: CallOptions = {}): Promise<void> {
    if (size !== undefined) {
      const base = await this.info(backing, opts);
      if (base && size < base.virtualSize) {
        throw new LagoError(
          "IMAGE_SHRINK",
          `cannot create ${file} with ${size} bytes: its backing image ${backing} has ${base.virtualSize} bytes and an overlay cannot be smaller`,
        );
      }
    }
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    await rm(tmp, { force: true });
    const args = ["create", "-q", "-f", "qcow2", "-b", backing, "-F", backingFormat, tmp];
    if (size !== undefined) args.push(String(size));
    try {
      await run("qemu-img", args, { signal: opts.signal, timeoutMs: TIMEOUT_MS });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** A thin disk of `size` bytes (raw files are sparse). Built at `<path>.tmp` and renamed. */
  async createBlank(file: string, format: "qcow2" | "raw", size: number, opts: CallOptions = {}): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    await rm(tmp, { force: true });
    try {
      await run("qemu-img", ["create", "-q", "-f", format, tmp, String(size)], { signal: opts.signal, timeoutMs: TIMEOUT_MS });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * The image's format, virtual size and backing file; undefined when the file
   * does not exist. A qcow2 header (and, with `expectFormat: "raw"`, a file
   * with no known magic number) is read in this process; anything else is
   * asked of `qemu-img info -U` (which works on images in use).
   */
  async info(file: string, opts: CallOptions & { expectFormat?: string | undefined } = {}): Promise<ImageInfo | undefined> {
    const head = await readImageHead(file, opts.expectFormat === "raw");
    if (!head.exists) return undefined;
    if (head.info) return head.info;
    const { stdout } = await run("qemu-img", ["info", "--output=json", "-U", file], { signal: opts.signal, timeoutMs: 60_000 });
    return parseQemuImgInfo(stdout, file);
  }

  /** Grow to `size` bytes; the same size is a no-op, a smaller one is refused. */
  async resize(file: string, format: string, size: number, opts: CallOptions = {}): Promise<void> {
    const current = await this.info(file, opts);
    if (!current) throw new LagoError("IMAGE_MISSING", `cannot resize ${file}: it does not exist`);
    if (size < current.virtualSize) {
      throw new LagoError(
        "IMAGE_SHRINK",
        `refusing to shrink ${file} from ${current.virtualSize} to ${size} bytes: shrinking a disk destroys the data at its end`,
        { hint: "give the disk a size at least as large as its current one, or recreate it" },
      );
    }
    if (size === current.virtualSize) return;
    await run("qemu-img", ["resize", "-q", "-f", format, file, String(size)], { signal: opts.signal, timeoutMs: TIMEOUT_MS });
  }

  /** Rename `from` to `to` (same file system: atomic), replacing `to`. */
  async rename(from: string, to: string, _opts: CallOptions = {}): Promise<void> {
    await rename(from, to);
  }

  /** Delete the image (and a leftover `<path>.tmp`); absent is fine. */
  async remove(file: string, _opts: CallOptions = {}): Promise<void> {
    await rm(file, { force: true });
    await rm(`${file}.tmp`, { force: true });
  }
}
