/**
 * Validates the resolved document against `schemas/lago-init-file.schema.json`
 * (JSON Schema 2020-12, ajv with allErrors and verbose errors, compiled ahead
 * of time into `schema-validator.generated.js` by
 * `scripts/gen-schema-validator.mjs`, which `npm run build` runs) and turns
 * every ajv error into a positioned diagnostic with a specific message:
 * - an unknown key points at the key, with a "did you mean" hint;
 * - a missing key points at the mapping that lacks it;
 * - a schema node may carry `errorMessage` (also understood by
 *   yaml-language-server): it replaces ajv's wording for every error of the value
 *   it describes, so a value failing several `anyOf` branches yields one message.
 */
import { isDeepStrictEqual } from "node:util";
import type { ErrorObject } from "ajv/dist/2020.js";
import schema from "../../schemas/lago-init-file.schema.json" with { type: "json" };
import { validate as generatedValidate } from "./schema-validator.generated.js";
import type { DiagnosticSink } from "./diagnostics.ts";
import { didYouMean } from "./did-you-mean.ts";
import { isRecord, joinPointer, pointerLabel, splitPointer } from "./pointer.ts";

export const INIT_FILE_SCHEMA: Record<string, unknown> = schema;


type SchemaNode = Record<string, unknown>;

const DEFS: SchemaNode = isRecord(INIT_FILE_SCHEMA.$defs) ? INIT_FILE_SCHEMA.$defs : {};

/** A schema node followed by the nodes its `$ref`s point to (same instance value). */
function expand(node: unknown): SchemaNode[] {
  const out: SchemaNode[] = [];
  let current = node;
  while (isRecord(current) && !out.includes(current)) {
    out.push(current);
    const ref = current.$ref;
    current = typeof ref === "string" && ref.startsWith("#/$defs/") ? DEFS[ref.slice("#/$defs/".length)] : undefined;
  }
  return out;
}

/**
 * The schema nodes that describe the value at `pointer`, found by walking the
 * schema along the instance path (ajv's own `schemaPath` is relative to the
 * referenced schema it was compiled in, so it cannot be used for this).
 */
function schemaFor(pointer: string): SchemaNode[] {
  let chain = expand(INIT_FILE_SCHEMA);
  for (const seg of splitPointer(pointer)) {
    let next: unknown;
    for (const node of chain) {
      if (isRecord(node.properties) && Object.hasOwn(node.properties, seg)) next = node.properties[seg];
      else if (isRecord(node.additionalProperties)) next = node.additionalProperties;
      else if (isRecord(node.items)) next = node.items;
      if (next !== undefined) break;
    }
    if (next === undefined) return [];
    chain = expand(next);
  }
  return chain;
}

/**
 * Whether `target` (a schema node from an ajv error) occurs in `tree`. The
 * generated validator carries its own copies of the schema's nodes, so they
 * are compared by value.
 */
function contains(tree: unknown, target: unknown): boolean {
  if (tree === target || (isRecord(tree) && isDeepStrictEqual(tree, target))) return true;
  if (Array.isArray(tree)) return tree.some((t) => contains(t, target));
  if (isRecord(tree)) return Object.values(tree).some((t) => contains(t, target));
  return false;
}

function errorMessageOf(node: unknown): string | undefined {
  return isRecord(node) && typeof node.errorMessage === "string" ? node.errorMessage : undefined;
}

/**
 * The `errorMessage` that replaces ajv's wording for an error: the one of an
 * `allOf`/`anyOf`/`oneOf` entry holding the failed keyword, else the one of
 * the schema node describing the value.
 */
function customMessage(e: ErrorObject, chain: SchemaNode[]): string | undefined {
  for (const node of chain) {
    for (const combinator of ["allOf", "anyOf", "oneOf"]) {
      const entries = node[combinator];
      if (!Array.isArray(entries)) continue;
      for (const entry of entries) {
        const m = errorMessageOf(entry);
        if (m !== undefined && contains(entry, e.parentSchema)) return m;
      }
    }
  }
  for (const node of chain) {
    const m = errorMessageOf(node);
    if (m !== undefined) return m;
  }
  return undefined;
}

const WHAT: Record<string, string> = {
  domain: "a domain",
  nic: "a NIC",
  disk: "a disk",
  net: "a net",
  buildStep: "a build step",
};

function describeValue(value: unknown): string {
  if (value === null) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (isRecord(value)) return "a mapping";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

function typeName(t: string): string {
  switch (t) {
    case "object":
      return "a mapping";
    case "array":
      return "a list";
    case "string":
      return "a string";
    case "integer":
      return "a whole number";
    case "number":
      return "a number";
    case "boolean":
      return "true or false";
    case "null":
      return "empty";
    default:
      return t;
  }
}

function valueAt(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const s of splitPointer(pointer)) v = Array.isArray(v) ? v[Number(s)] : isRecord(v) ? v[s] : undefined;
  return v;
}

function quoteList(values: unknown[]): string {
  return values.map((v) => `\`${String(v)}\``).join(", ");
}

/** Reports every schema violation of `doc` into `sink`. */
export function validateSchema(doc: unknown, sink: DiagnosticSink): void {
  if (generatedValidate(doc)) return;
  for (const e of generatedValidate.errors ?? []) report(e, doc, sink);
}

function report(e: ErrorObject, doc: unknown, sink: DiagnosticSink): void {
  const label = (p: string): string => (p === "" ? "the init file" : `\`${pointerLabel(p, doc)}\``);
  const params: Record<string, unknown> = e.params;

  const chain = schemaFor(e.instancePath);

  if (e.keyword === "additionalProperties") {
    const key = String(params.additionalProperty);
    const pointer = joinPointer(e.instancePath, key);
    if (chain.includes(DEFS.buildStep as SchemaNode)) {
      sink.atKey(pointer, `unknown builder \`${key}\`: lago supports only \`virt-customize\``);
      return;
    }
    const known = chain.flatMap((n) => (isRecord(n.properties) ? Object.keys(n.properties) : []));
    const hint = didYouMean(key, known);
    const defName = Object.keys(WHAT).find((name) => chain.includes(DEFS[name] as SchemaNode));
    const what = defName !== undefined ? WHAT[defName] : label(e.instancePath);
    sink.atKey(pointer, hint ? `unknown key \`${key}\`${hint}` : `unknown key \`${key}\` (${what} accepts: ${[...known].sort().join(", ")})`);
    return;
  }

  const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName ?? (e.keyword === "propertyNames" ? String(params.propertyName) : undefined);
  if (propertyName !== undefined) {
    const names = chain.map((n) => n.propertyNames).find(isRecord);
    const message = errorMessageOf(names) ?? e.message ?? "is not allowed";
    sink.atKey(joinPointer(e.instancePath, propertyName), `key \`${propertyName}\` ${message}`);
    return;
  }

  const value = valueAt(doc, e.instancePath);
  const custom = customMessage(e, chain);
  if (custom !== undefined) {
    const got = isRecord(value) ? "" : `, got ${describeValue(value)}`;
    sink.at(e.instancePath, `${label(e.instancePath)} ${custom}${got}`);
    return;
  }

  switch (e.keyword) {
    case "required": {
      const missing = String(params.missingProperty);
      const where = e.instancePath === "" ? "at the top level" : `in ${label(e.instancePath)}`;
      sink.at(e.instancePath, `missing required key \`${missing}\` ${where}`);
      return;
    }
    case "type": {
      const types = String(params.type).split(",").map(typeName).join(" or ");
      if (e.instancePath === "") {
        sink.at("", `the init file must be a mapping with \`domains\` and \`nets\`, got ${describeValue(value)}`);
      } else {
        sink.at(e.instancePath, `${label(e.instancePath)} must be ${types}, got ${describeValue(value)}`);
      }
      return;
    }
    case "enum": {
      const allowed = Array.isArray(params.allowedValues) ? (params.allowedValues as unknown[]) : [];
      const hint = typeof value === "string" ? didYouMean(value, allowed.map(String)) : "";
      sink.at(e.instancePath, `${label(e.instancePath)} must be one of ${quoteList(allowed)}, got ${describeValue(value)}${hint}`);
      return;
    }
    case "if":
      return;
    case "minLength":
      if (params.limit === 1) {
        sink.at(e.instancePath, `${label(e.instancePath)} must not be empty`);
        return;
      }
      break;
    default:
      break;
  }
  sink.at(e.instancePath, `${label(e.instancePath)} ${e.message ?? "is invalid"}${isRecord(value) ? "" : `, got ${describeValue(value)}`}`);
}
