/**
 * {@link SeedImageDriver} over `genisoimage` (Debian package genisoimage, what
 * cloud-image-utils' `cloud-localds` uses): a cloud-init NoCloud seed is an ISO 9660
 * filesystem labelled `cidata` with `meta-data` and `user-data` at its root (Rock Ridge
 * and Joliet names, so the dashes survive). Made in milliseconds.
 */
import { chmod, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CallOptions, SeedFiles, SeedImageDriver } from "../types.ts";
import { run } from "./exec.ts";

export class GenisoimageSeeds implements SeedImageDriver {
  /**
   * Idempotent: the inputs go to a private directory beside `file` (0700, files 0600:
   * user-data may hold a root password), the image to `<file>.tmp`, then a rename.
   */
  async write(file: string, files: SeedFiles, opts: CallOptions = {}): Promise<void> {
    const dir = path.dirname(file);
    await mkdir(dir, { recursive: true });
    const work = await mkdtemp(path.join(dir, ".seed-"));
    const tmp = `${file}.tmp`;
    try {
      await writeFile(path.join(work, "meta-data"), files.metaData, { mode: 0o600 });
      await writeFile(path.join(work, "user-data"), files.userData, { mode: 0o600 });
      await rm(tmp, { force: true });
      await run("genisoimage", ["-quiet", "-output", tmp, "-volid", "cidata", "-joliet", "-rock", "meta-data", "user-data"], {
        cwd: work,
        signal: opts.signal,
        timeoutMs: 60_000,
      });
      await chmod(tmp, 0o600);
      await rename(tmp, file);
    } finally {
      await rm(work, { recursive: true, force: true });
      await rm(tmp, { force: true });
    }
  }

  async remove(file: string, _opts: CallOptions = {}): Promise<void> {
    await rm(file, { force: true });
    await rm(`${file}.tmp`, { force: true });
  }
}
