/**
 * What lago parsed out of libvirt's XML documents, remembered by content in a
 * small file of the environment. A refresh reads every domain's definitions
 * (persistent and live) and networks each time, and they rarely change:
 * parsing them in a fresh process cost about 45 ms of a 0.3 s `lago plan` of
 * 10 running VMs (20 documents). An entry is found by the SHA-1 of the exact
 * text, with lago's version and the entry's kind, so a changed document, or a
 * lago that parses differently, never reads an old result. Losing the file
 * loses nothing: the documents are parsed again.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { VERSION } from "../../version.ts";
import { writeFileAtomic } from "../../util/fs-atomic.ts";
import { isRecord } from "../../util/read.ts";

/** Entries kept besides the ones the last reading used (other environments' states, older definitions). */
const KEEP_UNUSED = 256;

export class ParsedXmlCache {
  private readonly stored: Map<string, unknown>;
  private readonly used = new Map<string, unknown>();
  private readonly hashes = new Map<string, string>();
  private missed = false;

  /** `file`: where the cache lives (undefined: parse everything, remember nothing). */
  constructor(private readonly file: string | undefined) {
    this.stored = new Map();
    if (!file) return;
    try {
      const doc: unknown = JSON.parse(readFileSync(file, "utf8"));
      if (isRecord(doc) && doc.lago === VERSION && isRecord(doc.entries)) for (const [k, v] of Object.entries(doc.entries)) this.stored.set(k, v);
    } catch {
      // Absent or unreadable: start empty.
    }
  }

  private key(kind: string, xml: string): string {
    let hash = this.hashes.get(xml);
    if (hash === undefined) {
      hash = createHash("sha1").update(xml).digest("hex");
      this.hashes.set(xml, hash);
    }
    return `${kind}:${hash}`;
  }

  /** Whether every document of `kind` among `xmls` is known (nothing to parse). */
  knows(kind: string, xmls: readonly string[]): boolean {
    return xmls.every((x) => this.stored.has(this.key(kind, x)));
  }

  /** `parse(xml)`, or what it returned for the same text before. `parse` must return plain JSON data. */
  get<T>(kind: string, xml: string, parse: (xml: string) => T): T {
    const k = this.key(kind, xml);
    let value = this.stored.get(k) as T | undefined;
    if (value === undefined) {
      value = parse(xml);
      this.missed = true;
      this.stored.set(k, value);
    }
    this.used.set(k, value);
    return value;
  }

  /** Write the file when something was parsed: the entries used first, then a few others. Never creates the environment's directory. */
  save(): void {
    if (!this.file || !this.missed || !existsSync(path.dirname(this.file))) return;
    const entries: Record<string, unknown> = Object.fromEntries(this.used);
    let kept = 0;
    for (const [k, v] of this.stored) {
      if (kept >= KEEP_UNUSED) break;
      if (this.used.has(k)) continue;
      entries[k] = v;
      kept++;
    }
    try {
      writeFileAtomic(this.file, `${JSON.stringify({ lago: VERSION, entries })}\n`, 0o600);
    } catch {
      // A cache that cannot be written costs the next reading its parse, nothing else.
    }
    this.missed = false;
  }
}
