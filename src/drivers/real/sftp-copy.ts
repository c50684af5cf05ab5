/**
 * Recursive copies over SFTP, keeping permission bits and modification times.
 * Uploads follow local symbolic links (as `scp -r` does); downloads recreate
 * remote symbolic links as links, never following them, so that nothing is
 * written outside the destination.
 */
import { chmod, lstat, mkdir, readdir, rm, stat, symlink, utimes } from "node:fs/promises";
import path from "node:path";
import type { SFTPWrapper, Stats as SftpStats } from "ssh2";
import { LagoError, errorMessage } from "../../errors.ts";

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** What a copy did. */
export interface CopyReport {
  files: number;
  directories: number;
  links: number;
  bytes: number;
  /** Entries left out (special files, loops), with why. */
  skipped: { path: string; reason: string }[];
}

export function emptyReport(): CopyReport {
  return { files: 0, directories: 0, links: 0, bytes: 0, skipped: [] };
}

function call<T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

function sftpError(what: string, file: string, err: unknown): LagoError {
  const code = (err as { code?: number } | undefined)?.code;
  const why = code === 2 ? "no such file or directory" : code === 3 ? "permission denied" : errorMessage(err);
  return new LagoError("SFTP", `${what} ${file}: ${why}`, { cause: err });
}

/** `stat` on the remote side; undefined when the path does not exist. */
export async function remoteStat(sftp: SFTPWrapper, file: string, follow = true): Promise<SftpStats | undefined> {
  try {
    return await call<SftpStats>((cb) => (follow ? sftp.stat(file, cb) : sftp.lstat(file, cb)));
  } catch (err) {
    if ((err as { code?: number }).code === 2) return undefined;
    throw sftpError("cannot stat", file, err);
  }
}

function kind(mode: number): "dir" | "file" | "link" | "other" {
  const t = mode & S_IFMT;
  return t === S_IFDIR ? "dir" : t === S_IFREG ? "file" : t === S_IFLNK ? "link" : "other";
}

/** Copy the local file or directory `local` to `remote` (the exact destination path). */
export async function upload(sftp: SFTPWrapper, local: string, remote: string, report: CopyReport = emptyReport(), seen = new Set<string>()): Promise<CopyReport> {
  const st = await stat(local);
  const id = `${st.dev}:${st.ino}`;
  if (st.isDirectory()) {
    if (seen.has(id)) {
      report.skipped.push({ path: local, reason: "a symbolic link loop" });
      return report;
    }
    seen.add(id);
    const existing = await remoteStat(sftp, remote);
    if (!existing) {
      await call<void>((cb) => sftp.mkdir(remote, { mode: 0o700 }, (err) => cb(err, undefined))).catch((err: unknown) => {
        throw sftpError("cannot create directory", remote, err);
      });
    } else if (kind(existing.mode) !== "dir") {
      throw new LagoError("SFTP", `cannot copy directory ${local} onto ${remote}: it exists and is not a directory`);
    }
    report.directories += 1;
    for (const name of (await readdir(local)).sort()) {
      await upload(sftp, path.join(local, name), path.posix.join(remote, name), report, seen);
    }
    seen.delete(id);
  } else if (st.isFile()) {
    await call<void>((cb) => sftp.fastPut(local, remote, (err) => cb(err, undefined))).catch((err: unknown) => {
      throw sftpError(`cannot copy ${local} to`, remote, err);
    });
    report.files += 1;
    report.bytes += st.size;
  } else {
    report.skipped.push({ path: local, reason: "not a regular file or directory" });
    return report;
  }
  await call<void>((cb) => sftp.chmod(remote, st.mode & 0o7777, (err) => cb(err, undefined))).catch((err: unknown) => {
    throw sftpError("cannot set the mode of", remote, err);
  });
  await call<void>((cb) => sftp.utimes(remote, st.atime, st.mtime, (err) => cb(err, undefined))).catch((err: unknown) => {
    throw sftpError("cannot set the times of", remote, err);
  });
  return report;
}

/** Copy the remote file or directory `remote` to `local` (the exact destination path). */
export async function download(sftp: SFTPWrapper, remote: string, local: string, report: CopyReport = emptyReport()): Promise<CopyReport> {
  const st = await remoteStat(sftp, remote, false);
  if (!st) throw new LagoError("SFTP", `cannot copy ${remote}: no such file or directory`);
  switch (kind(st.mode)) {
    case "link": {
      const target = await call<string>((cb) => sftp.readlink(remote, cb)).catch((err: unknown) => {
        throw sftpError("cannot read the link", remote, err);
      });
      await rm(local, { force: true });
      await symlink(target, local);
      report.links += 1;
      return report;
    }
    case "dir": {
      const existing = await lstat(local).catch(() => undefined);
      if (existing && !existing.isDirectory()) throw new LagoError("SFTP", `cannot copy directory ${remote} onto ${local}: it exists and is not a directory`);
      if (!existing) await mkdir(local, { mode: 0o700 });
      report.directories += 1;
      const entries = await call<{ filename: string }[]>((cb) => sftp.readdir(remote, cb)).catch((err: unknown) => {
        throw sftpError("cannot list", remote, err);
      });
      for (const name of entries.map((e) => e.filename).sort()) {
        // Names come from the VM: never `.`/`..` or anything with a separator.
        if (name === "." || name === ".." || name.includes("/") || name.includes("\0")) continue;
        await download(sftp, path.posix.join(remote, name), path.join(local, name), report);
      }
      break;
    }
    case "file": {
      const existing = await lstat(local).catch(() => undefined);
      // Never write through a link that was there before.
      if (existing?.isSymbolicLink()) await rm(local, { force: true });
      await call<void>((cb) => sftp.fastGet(remote, local, (err) => cb(err, undefined))).catch((err: unknown) => {
        throw sftpError(`cannot copy ${remote} to`, local, err);
      });
      report.files += 1;
      report.bytes += st.size;
      break;
    }
    default:
      report.skipped.push({ path: remote, reason: "not a regular file, directory or link" });
      return report;
  }
  await chmod(local, st.mode & 0o7777);
  await utimes(local, st.atime, st.mtime);
  return report;
}

