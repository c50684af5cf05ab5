/** Copying disk images with `qemu-img convert`: flattened, or as a layer on a backing image. */
import { mkdir, rename, rm } from "node:fs/promises";
import path from "node:path";
import { run } from "./exec.ts";

const TIMEOUT_MS = 60 * 60_000;

export interface ConvertOptions {
  /** Format of the source image. */
  sourceFormat: string;
  format: "qcow2" | "raw";
  /** Write only what differs from this image, and name it as the backing file (qcow2 only). */
  backing?: { path: string; format: string } | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Convert `source` to `destination`, reading the source only. Built at
 * `<destination>.tmp` and renamed, so the destination is absent or complete.
 */
export async function convertImage(source: string, destination: string, opts: ConvertOptions): Promise<void> {
  await mkdir(path.dirname(destination), { recursive: true });
  const tmp = `${destination}.tmp`;
  const args = ["convert", "-q", "-f", opts.sourceFormat, "-O", opts.format];
  if (opts.backing) args.push("-B", opts.backing.path, "-F", opts.backing.format);
  args.push(source, tmp);
  try {
    await run("qemu-img", args, { timeoutMs: TIMEOUT_MS, signal: opts.signal });
    await rename(tmp, destination);
  } finally {
    await rm(tmp, { force: true });
  }
}
