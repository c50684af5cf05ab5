/**
 * `lago copy-to-vm` and `lago copy-from-vm`: files and directory trees over
 * SFTP, permission bits and times kept. As with `cp -r`, a destination that
 * is an existing directory receives the source under its own name.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { UsageError } from "../errors.ts";
import { download, remoteStat, upload, type CopyReport } from "../drivers/real/sftp-copy.ts";
import type { OpsContext } from "./context.ts";
import { openSession } from "./remote.ts";

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/** Copy the local `source` to `destination` on `vm`. */
export async function copyToVm(ctx: OpsContext, vm: string, source: string, destination: string): Promise<CopyReport & { destination: string }> {
  const local = path.resolve(source);
  if (!existsSync(local)) throw new UsageError(`cannot copy ${source}: no such file or directory`);
  const session = await openSession(ctx, vm);
  try {
    const sftp = await session.sftp();
    const existing = await remoteStat(sftp, destination);
    const target = existing && (existing.mode & S_IFMT) === S_IFDIR ? path.posix.join(destination, path.basename(local)) : destination;
    const report = await upload(sftp, local, target);
    return { ...report, destination: target };
  } finally {
    session.close();
  }
}

/** Copy `source` on `vm` to the local `destination`. */
export async function copyFromVm(ctx: OpsContext, vm: string, source: string, destination: string): Promise<CopyReport & { destination: string }> {
  const local = path.resolve(destination);
  const session = await openSession(ctx, vm);
  try {
    const sftp = await session.sftp();
    const name = path.posix.basename(path.posix.normalize(source));
    const target = existsSync(local) && statSync(local).isDirectory() && name && name !== "/" && name !== ".." ? path.join(local, name) : local;
    const report = await download(sftp, source, target);
    return { ...report, destination: target };
  } finally {
    session.close();
  }
}
