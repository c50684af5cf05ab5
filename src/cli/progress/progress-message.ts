/**
 * Reading the engine's progress messages: a transfer reports
 * `downloading KEY: 42% (12.0/30.0 MB)`, which renderers show with a bar and
 * the JSON stream carries as numbers. Pure.
 */

/** Byte progress found in a message. */
export interface Transfer {
  percent: number;
  doneMiB: number;
  totalMiB: number;
}

const TRANSFER = /^(.*?)(\d{1,3})% \((\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?) MB\)(.*)$/;

/** The byte progress in `message`, if it reports some. */
export function parseTransfer(message: string): Transfer | undefined {
  const m = TRANSFER.exec(message);
  if (!m) return undefined;
  return { percent: Math.min(100, Number(m[2])), doneMiB: Number(m[3]), totalMiB: Number(m[4]) };
}

/** `downloading x: 42% (12/30 MB)` → the same with a bar in front of the percentage. */
export function withBar(message: string, width = 24): string {
  const m = TRANSFER.exec(message);
  const t = parseTransfer(message);
  if (!m || !t) return message;
  const full = Math.round((t.percent / 100) * width);
  return `${m[1] ?? ""}[${"#".repeat(full)}${"-".repeat(width - full)}] ${t.percent}% (${m[3]}/${m[4]} MB)${m[5] ?? ""}`;
}
