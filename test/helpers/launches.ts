import { LIBGUESTFS_LAUNCH } from "../../src/drivers/customize-args.ts";

/** The libguestfs launches a `lago apply --json` reported (its `libguestfs launch:` progress events), by resource address. */
export function reportedLaunches(jsonLines: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of jsonLines.split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as { type: string; address?: string; message?: string };
    if (e.type === "progress" && e.address && e.message?.startsWith(LIBGUESTFS_LAUNCH)) out[e.address] = (out[e.address] ?? 0) + 1;
  }
  return out;
}
