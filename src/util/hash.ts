import { createHash } from "node:crypto";

/** The sha256 of `data`, hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
