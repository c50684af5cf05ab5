/**
 * Lago's legacy domain prototypes (`_use_prototype`): a domain written as
 * `based-on: <name>` receives every attribute of `prototypes.<name>` that it
 * does not set itself (a shallow merge; the domain's own keys win). Positions
 * of inherited values point into the prototype, where they are written.
 */
import type { DiagnosticSink } from "./diagnostics.ts";
import { didYouMean } from "./did-you-mean.ts";
import { isRecord, joinPointer } from "./pointer.ts";
import type { SourceMap } from "./source-map.ts";

function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Returns the document with `based-on` domains expanded (the input is not
 * modified). Unknown prototypes and prototypes that are themselves `based-on`
 * another are reported.
 */
export function applyPrototypes(doc: unknown, map: SourceMap, sink: DiagnosticSink): unknown {
  if (!isRecord(doc) || !isRecord(doc.domains)) return doc;
  const prototypes = isRecord(doc.prototypes) ? doc.prototypes : undefined;
  if (prototypes) {
    for (const [name, proto] of Object.entries(prototypes)) {
      if (isRecord(proto) && Object.hasOwn(proto, "based-on")) {
        sink.atKey(joinPointer(joinPointer("/prototypes", name), "based-on"), `prototype \`${name}\` cannot itself be \`based-on\` another prototype`);
      }
    }
  }
  const domains: Record<string, unknown> = {};
  for (const [name, domain] of Object.entries(doc.domains)) {
    const basedOn = isRecord(domain) ? domain["based-on"] : undefined;
    if (!isRecord(domain) || typeof basedOn !== "string") {
      define(domains, name, domain);
      continue;
    }
    const domainPointer = joinPointer("/domains", name);
    const proto = prototypes?.[basedOn];
    if (!isRecord(proto)) {
      const where = prototypes
        ? `is not defined in \`prototypes\`${didYouMean(basedOn, Object.keys(prototypes))}`
        : "is not defined: the file has no top-level `prototypes`";
      sink.at(joinPointer(domainPointer, "based-on"), `prototype \`${basedOn}\` ${where}`);
      define(domains, name, domain);
      continue;
    }
    const merged: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(proto)) {
      if (key === "based-on" || Object.hasOwn(domain, key)) continue;
      define(merged, key, structuredClone(value));
      map.alias(joinPointer(joinPointer("/prototypes", basedOn), key), joinPointer(domainPointer, key));
    }
    for (const [key, value] of Object.entries(domain)) {
      if (key !== "based-on") define(merged, key, value);
    }
    define(domains, name, merged);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) define(out, key, key === "domains" ? domains : value);
  return out;
}
