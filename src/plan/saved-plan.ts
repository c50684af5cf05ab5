/**
 * Plan files (`lago plan --out FILE`, `lago apply FILE`): written with a
 * checksum, read back only when they are whole, unedited, of this format
 * version and valid against `schemas/plan.schema.json#/$defs/savedPlan`. A
 * damaged file is refused with what is wrong and how to make a new one; the
 * engine then checks that it is still current (state serial, init file hash).
 * The schema is precompiled (`scripts/gen-schema-validator.mjs`, Ajv standalone
 * code with `allErrors`, `strict`, `allowUnionTypes`): no command loads Ajv.
 */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { ErrorObject } from "ajv/dist/2020.js";
import { stringify } from "safe-stable-stringify";
import { UsageError, errorMessage } from "../errors.ts";
import { writeFileAtomic } from "../util/fs-atomic.ts";
import type { SavedPlan } from "../engine/session.ts";
import { validate } from "./saved-plan-validator.generated.js";

/** The plan file format this lago writes and reads. */
export const SAVED_PLAN_FORMAT_VERSION = 1;

function checksumOf(body: Record<string, unknown>): string {
  return `sha256:${createHash("sha256").update(stringify(body) ?? "").digest("hex")}`;
}

function describe(e: ErrorObject): string {
  const where = e.instancePath || "(the top level)";
  if (e.keyword === "additionalProperties") return `${where}: unexpected member ${JSON.stringify((e.params as { additionalProperty?: string }).additionalProperty)}`;
  if (e.keyword === "enum") return `${where}: ${e.message ?? "not an allowed value"} (${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(", ")})`;
  return `${where}: ${e.message ?? e.keyword}`;
}

/**
 * Write `saved` to `file` atomically (mode 0600) with its checksum.
 * Idempotent: the same plan gives the same bytes.
 */
export function writeSavedPlan(file: string, saved: SavedPlan): void {
  // Through JSON and back, so the checksum covers exactly what the file holds.
  const body = JSON.parse(JSON.stringify(saved)) as Record<string, unknown>;
  delete body.checksum;
  writeFileAtomic(file, `${JSON.stringify({ ...body, checksum: checksumOf(body) })}\n`, 0o600);
}

/**
 * Read a plan file. Throws a {@link UsageError} naming the file and the
 * problem when it cannot be read, is not JSON (e.g. truncated), is not a lago
 * plan, has another format version, does not match the schema, or was edited
 * after it was saved (checksum).
 */
export function readSavedPlan(file: string): SavedPlan {
  const again = { hint: `make a new one: lago plan --out ${file}` };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read the plan file ${file}: ${errorMessage(err)}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the plan file ${file} is damaged: it is not complete JSON (${errorMessage(err)}); was it truncated?`, { ...again, cause: err });
  }
  if (typeof data !== "object" || data === null || Array.isArray(data) || (data as { kind?: unknown }).kind !== "lago-plan") {
    throw new UsageError(`${file} is not a lago plan file (one written by \`lago plan --out\`)`, again);
  }
  const body = data as Record<string, unknown>;
  if (body.formatVersion !== SAVED_PLAN_FORMAT_VERSION) {
    throw new UsageError(`the plan file ${file} has format version ${JSON.stringify(body.formatVersion)}; this lago reads version ${SAVED_PLAN_FORMAT_VERSION}`, again);
  }
  if (!validate(body)) {
    const problems = (validate.errors ?? []).slice(0, 5).map(describe);
    const more = (validate.errors?.length ?? 0) - problems.length;
    throw new UsageError(`the plan file ${file} is damaged: ${problems.join("; ")}${more > 0 ? ` (and ${more} more)` : ""}`, again);
  }
  const { checksum, ...rest } = body;
  if (checksum !== checksumOf(rest)) {
    throw new UsageError(`the plan file ${file} was changed after lago saved it (its checksum does not match); lago applies only plans exactly as they were made`, again);
  }
  return rest as unknown as SavedPlan;
}
