/**
 * What a refresh needs to know about an image, read from its first bytes in
 * this process instead of one `qemu-img info` process per disk: the qcow2
 * header (virtual size, backing file and its format), or that the file is
 * raw. Formats lago does not create itself are left to `qemu-img`.
 *
 * qcow2 header (big-endian; docs/interop/qcow2.txt in qemu):
 *   0 magic "QFI\xfb" · 4 version · 8 backing_file_offset (u64) ·
 *   16 backing_file_size (u32) · 24 size (u64) · 72 incompatible_features (v3) ·
 *   100 header_length (v3; header extensions follow it, at 72 in v2).
 * Header extension 0xe2792aca holds the backing file's format name.
 */
import { open } from "node:fs/promises";
import type { ImageInfo } from "../types.ts";

const QCOW2_MAGIC = 0x514649fb;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_END = 0;
const HEAD = 64 * 1024;

/** Magic numbers of formats that are not raw: such a file is never taken for raw here. */
const OTHER_FORMATS: Buffer[] = [Buffer.from("KDMV"), Buffer.from("QED\0"), Buffer.from("vhdxfile"), Buffer.from("conectix")];
const VDI_SIGNATURE = Buffer.from("<<< ");

/**
 * The image info from the file's header, or `undefined` when this cannot
 * tell (not qcow2, and not known to be raw): the caller asks qemu-img then.
 * `expectRaw`: the file was made raw by lago, so a file without any known
 * magic number is raw.
 */
export function parseImageHead(head: Buffer, fileSize: number, expectRaw: boolean): ImageInfo | undefined {
  if (head.length >= 32 && head.readUInt32BE(0) === QCOW2_MAGIC) {
    const version = head.readUInt32BE(4);
    if (version !== 2 && version !== 3) return undefined;
    const backingOffset = Number(head.readBigUInt64BE(8));
    const backingSize = head.readUInt32BE(16);
    const virtualSize = Number(head.readBigUInt64BE(24));
    if (version === 3 && head.length >= 80 && (head.readBigUInt64BE(72) & 4n) !== 0n) return undefined; // external data file: let qemu-img say
    let backingFile: string | undefined;
    if (backingOffset > 0 && backingSize > 0) {
      if (backingOffset + backingSize > head.length) return undefined;
      backingFile = head.subarray(backingOffset, backingOffset + backingSize).toString("utf8");
    }
    let backingFormat: string | undefined;
    let at = version === 3 && head.length >= 104 ? head.readUInt32BE(100) : 72;
    while (at + 8 <= head.length) {
      const type = head.readUInt32BE(at);
      const length = head.readUInt32BE(at + 4);
      if (type === EXT_END) break;
      if (at + 8 + length > head.length) return undefined;
      if (type === EXT_BACKING_FORMAT) backingFormat = head.subarray(at + 8, at + 8 + length).toString("utf8");
      at += 8 + Math.ceil(length / 8) * 8;
    }
    return { format: "qcow2", virtualSize, backingFile, backingFormat };
  }
  if (!expectRaw) return undefined;
  if (OTHER_FORMATS.some((m) => head.subarray(0, m.length).equals(m)) || head.subarray(0, 4).equals(VDI_SIGNATURE)) return undefined;
  return { format: "raw", virtualSize: fileSize, backingFile: undefined, backingFormat: undefined };
}

/** Read the head of `file` and parse it; undefined when the file is absent or cannot be told from its header. */
export async function readImageHead(file: string, expectRaw: boolean): Promise<{ exists: boolean; info: ImageInfo | undefined }> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { exists: false, info: undefined };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(Math.min(HEAD, size));
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return { exists: true, info: parseImageHead(head.subarray(0, bytesRead), size, expectRaw) };
  } finally {
    await fh.close();
  }
}

/** A backing file name that is not a plain path (`json:{…}`, `nbd://…`, `rbd:…`): only qemu can follow it. */
const PROTOCOL = /^[a-z][a-z0-9+.-]*:/i;

/**
 * The files qemu opens for `file` declared as `format`: the file and, for
 * qcow2, its backing chain, read from the headers in this process (relative
 * backing names are joined to the image's directory, as qemu does).
 * `undefined` when a header cannot tell (another format, a protocol, an
 * unreadable file) or the chain loops: the caller asks `qemu-img` then.
 */
export async function imageChain(file: string, format: string): Promise<string[] | undefined> {
  const chain: string[] = [];
  let current = file;
  let currentFormat: string | undefined = format;
  for (;;) {
    if (chain.includes(current) || chain.length > 64) return undefined;
    chain.push(current);
    if (currentFormat === "raw") return chain;
    let head;
    try {
      // Without a declared format qemu probes: qcow2 by its magic, anything else ends the chain as qemu-img would say.
      head = await readImageHead(current, currentFormat === undefined);
    } catch {
      return undefined;
    }
    if (!head.exists || head.info === undefined) return undefined;
    if (currentFormat !== undefined && head.info.format !== currentFormat) return undefined;
    const backing = head.info.backingFile;
    if (backing === undefined) return chain;
    if (PROTOCOL.test(backing)) return undefined;
    // qemu's path_combine: the image's directory and the name, unnormalized (`a/../b` needs search access to `a` too).
    current = backing.startsWith("/") ? backing : `${current.slice(0, current.lastIndexOf("/") + 1)}${backing}`;
    currentFormat = head.info.backingFormat;
  }
}
