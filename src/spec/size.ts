/**
 * Disk sizes as `qemu-img` reads them: a number of bytes, or a number with a
 * K, M, G, T, P or E suffix (powers of 1024; a `b` suffix means bytes).
 */

const SIZE = /^([0-9]+(?:\.[0-9]+)?)([bBkKmMgGtTpPeE]?)$/;
const UNITS = "bkmgtpe";

export const MIB = 1024 * 1024;

export interface ParsedSize {
  bytes: number;
  /** Whether a unit suffix was written (a bare number means bytes). */
  suffixed: boolean;
  /** The number as written, without the suffix. */
  amount: string;
}

/** Parses a size; `undefined` if it is not one (the schema reports those). */
export function parseSize(value: unknown): ParsedSize | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? { bytes: value, suffixed: false, amount: String(value) } : undefined;
  }
  if (typeof value !== "string") return undefined;
  const m = SIZE.exec(value);
  if (!m) return undefined;
  const amount = m[1] ?? "";
  const unit = (m[2] ?? "").toLowerCase();
  const power = unit === "" ? 0 : UNITS.indexOf(unit);
  const bytes = Math.round(Number(amount) * 1024 ** power);
  return { bytes, suffixed: unit !== "" && unit !== "b", amount };
}
