/** Small readers shared by the stores and parsers. */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A text file's contents, or undefined when the file is not there: ENOENT, ENOTDIR (a parent is a
 * file), and EISDIR too when `directoryIsMissing`. Any other error is thrown.
 */
export async function readText(file: string, directoryIsMissing = false): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    return absent(err, directoryIsMissing);
  }
}

/** {@link readText} without yielding: for a short section under a cross-process lock. */
export function readTextSync(file: string, directoryIsMissing = false): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    return absent(err, directoryIsMissing);
  }
}

function absent(err: unknown, directoryIsMissing: boolean): undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR" || (directoryIsMissing && code === "EISDIR")) return undefined;
  throw err;
}
