/** Facts about virt-customize arguments shared by its drivers and the reconcilers that build them. */
import type { CustomizeArg } from "./types.ts";

/**
 * The first words of the progress message every libguestfs launch reports (a build
 * layer, a virt-customize bootstrap): `npm run bench -- --real` and the end-to-end
 * suite count them in `lago apply --json`'s events.
 */
export const LIBGUESTFS_LAUNCH = "libguestfs launch:";

/** The arguments as they may be shown: secrets replaced by `(secret)`. Pure. */
export function shownArgs(args: CustomizeArg[]): string[] {
  return args.map((a) => (typeof a === "string" ? a : `${a.prefix}(secret)`));
}
