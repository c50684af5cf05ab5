/**
 * Writes an init-file document as text in many ways that mean the same:
 * JSON or YAML; block or flow collections; plain, single- or double-quoted
 * strings; numbers as strings where Lago accepts them; key order; aliases
 * and `<<` merge keys (a list, or several `<<` keys in one mapping); sizes
 * in other units; `dev`/`device`, `vcpu`/`cpus`/`cpu`; `$LAGO_INITFILE_PATH`
 * in paths; defaults written out or left implicit; comments. Every choice
 * comes from `seed`, so a text is reproducible from (document, seed).
 */
import { GiB, MiB } from "./model.ts";

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;

/** A mapping as written: entries in order (`<<` may repeat). */
class Entries {
  constructor(readonly entries: [string, Value][]) {}
}
class Alias {
  constructor(readonly name: string) {}
}
/** A value that must be written as the given raw YAML scalar (e.g. `yes`). */
class Raw {
  constructor(readonly text: string) {}
}
type Value = string | number | boolean | Value[] | Entries | Alias | Raw;

const chance = (rng: Rng, p: number): boolean => rng() < p;
function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}
function shuffle<T>(rng: Rng, items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** A size in one of the spellings qemu-img reads. */
function sizeText(rng: Rng, bytes: number): string | number {
  const forms: (string | number)[] = [bytes, String(bytes)];
  if (bytes % GiB === 0) forms.push(`${bytes / GiB}G`, `${bytes / GiB}g`);
  else if (bytes % (GiB / 2) === 0) forms.push(`${bytes / GiB}G`);
  if (bytes % MiB === 0) forms.push(`${bytes / MiB}M`);
  if (bytes % 1024 === 0) forms.push(`${bytes / 1024}K`);
  return pick(rng, forms);
}

/** Meaning-preserving rewrites of one domain, net or disk (Lago's aliases and defaults). */
function rewrite(rng: Rng, where: "domain" | "net" | "disk" | "nic" | "other", o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (where === "domain" && (k === "memory" || k === "vcpu") && typeof v === "number") {
      const key = k === "vcpu" ? pick(rng, ["vcpu", "vcpu", "cpus", "cpu"]) : k;
      out[key] = chance(rng, 0.25) ? String(v) : v;
    } else if (where === "domain" && k === "bootstrap" && typeof v === "boolean") {
      out[k] = chance(rng, 0.3) ? new Raw(v ? pick(rng, ["yes", "True", "on"]) : pick(rng, ["no", "False", "off"])) : v;
    } else if (where === "domain" && k === "groups" && Array.isArray(v) && v.length === 1 && chance(rng, 0.5)) {
      out[k] = v[0];
    } else if (where === "disk" && k === "size" && typeof v === "number") {
      out[k] = sizeText(rng, v);
    } else if (where === "disk" && k === "dev") {
      out[chance(rng, 0.2) ? "device" : "dev"] = v;
    } else if (where === "disk" && k === "type" && v === "template" && chance(rng, 0.4)) {
      // The default type.
    } else if (where === "disk" && k === "path" && typeof v === "string") {
      out[k] = pick(rng, [v, `./${v}`, `$LAGO_INITFILE_PATH/${v}`, `\${LAGO_INITFILE_PATH}/${v}`]);
    } else {
      out[k] = v;
    }
  }
  if (where === "disk" && out.format === undefined && out.type !== "template" && chance(rng, 0.2)) out.format = "qcow2";
  if (where === "net" && out.type === "nat") {
    const dhcp = out.dhcp;
    if (dhcp === undefined && chance(rng, 0.2)) out.dhcp = pick(rng, [{ start: 100, end: 254 }, { start: 100 }, { end: 254 }, {}]);
    else if (isObject(dhcp) && dhcp.start === 100 && dhcp.end === 254 && chance(rng, 0.5)) delete out.dhcp;
  }
  if (where === "net" && out.management === undefined && chance(rng, 0.15)) out.management = false;
  return out;
}

/** The document with every mapping as ordered {@link Entries}, rewritten and shuffled. */
function prepare(rng: Rng, v: unknown, where: "domain" | "net" | "disk" | "nic" | "other" | "build", shuffleP: number): Value {
  if (Array.isArray(v)) return v.map((x) => prepare(rng, x, where === "domain" ? "other" : where, shuffleP));
  if (isObject(v)) {
    const o = where === "other" || where === "build" ? v : rewrite(rng, where, v);
    // The options of a build step run in the order written: that order is meaning, not style.
    const keys = where !== "build" && chance(rng, shuffleP) ? shuffle(rng, Object.keys(o)) : Object.keys(o);
    return new Entries(
      keys.map((k) => {
        const child = o[k];
        const childWhere = where === "domain" && k === "disks" ? "disk" : where === "domain" && k === "nics" ? "nic" : (where === "disk" && k === "build") || where === "build" ? "build" : "other";
        if (child instanceof Raw) return [k, child];
        return [k, prepare(rng, child, childWhere, shuffleP)];
      }),
    );
  }
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return v;
  throw new Error(`render: unexpected value ${JSON.stringify(v)}`);
}

const canon = (v: Value): string =>
  JSON.stringify(v, (_k, x: unknown) => (x instanceof Entries ? Object.fromEntries(x.entries) : x instanceof Alias ? `*${x.name}` : x instanceof Raw ? `!${x.text}` : x));

/**
 * `<<` merge keys: a base mapping (a top-level entry with an anchor) holds
 * some of the fields of several mappings; each of them merges it and keeps,
 * written out, the fields where its value differs (they override the base).
 */
function addMerges(rng: Rng, items: Entries[], candidates: readonly string[], bases: [string, Value][], names: { n: number }): void {
  const pool = items.filter((e) => e.entries.some(([k]) => candidates.includes(k)));
  if (!pool.length) return;
  const model = pick(rng, pool);
  const keys = shuffle(
    rng,
    model.entries.filter(([k]) => candidates.includes(k)).map(([k]) => k),
  );
  // One or two bases with disjoint keys: merge order then cannot matter.
  const split = keys.length > 1 && chance(rng, 0.4) ? 1 + Math.floor(rng() * (keys.length - 1)) : keys.length;
  const groups = [keys.slice(0, split), keys.slice(split)].filter((g) => g.length);
  const anchors = groups.map((g) => {
    const name = `base${++names.n}`;
    const base = new Entries(g.map((k) => [k, model.entries.find(([x]) => x === k)?.[1] as Value]));
    bases.push([`x-${name}`, Object.assign(base, { anchor: name })]);
    return { name, keys: g, base };
  });
  for (const item of items) {
    const usable = anchors.filter((a) => a.keys.every((k) => item.entries.some(([x]) => x === k)));
    if (!usable.length || !chance(rng, 0.75)) continue;
    const merged = new Set<string>();
    for (const a of usable) for (const k of a.keys) merged.add(k);
    const kept = item.entries.filter(([k, v]) => {
      if (!merged.has(k)) return true;
      const base = usable.find((a) => a.keys.includes(k))?.base.entries.find(([x]) => x === k)?.[1];
      // Written out where it differs from the base: it overrides it.
      return base === undefined || canon(base) !== canon(v) || chance(rng, 0.15);
    });
    const merges: [string, Value][] =
      usable.length === 1
        ? [["<<", new Alias((usable[0] as { name: string }).name)]]
        : chance(rng, 0.5)
          ? [["<<", usable.map((a) => new Alias(a.name))]]
          : usable.map((a) => ["<<", new Alias(a.name)] as [string, Value]);
    const at = Math.floor(rng() * (kept.length + 1));
    item.entries.splice(0, item.entries.length, ...kept.slice(0, at), ...merges, ...kept.slice(at));
  }
}

const YAML11_SPECIAL = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~)$/;

function plainOk(s: string, flow: boolean): boolean {
  if (YAML11_SPECIAL.test(s)) return false;
  if (/^[A-Za-z_/][A-Za-z0-9_./-]*$/.test(s)) return true;
  if (/^[0-9]+(\.[0-9]+)?[KMGTkmgt]$/.test(s) || /^\d+\.\d+\.\d+\.\d+$/.test(s)) return true;
  return !flow && /^\$\{?[A-Za-z_]+\}?\/[A-Za-z0-9_./-]*$/.test(s);
}

interface Style {
  rng: Rng;
  indent: number;
  /** Sequences inside a mapping indented (`key:\n  - a`) or not (`key:\n- a`). */
  seqIndent: boolean;
  flowP: number;
  plainP: number;
  commentP: number;
  anchorP: number;
}

class Emitter {
  private anchors = new Map<string, string>();
  private n = 0;
  constructor(private readonly st: Style) {}

  scalar(v: string | number | boolean | Raw, flow: boolean): string {
    if (v instanceof Raw) return v.text;
    if (typeof v !== "string") return String(v);
    const { rng, plainP } = this.st;
    if (plainOk(v, flow) && chance(rng, plainP)) return v;
    if (chance(rng, 0.5) && !v.includes("\\")) return `'${v.replace(/'/g, "''")}'`;
    return JSON.stringify(v);
  }

  key(k: string, flow: boolean): string {
    return k === "<<" ? "<<" : this.scalar(k, flow);
  }

  /** Anchor or alias for a collection seen before (nics lists, dhcp ranges, build steps…). */
  private reuse(v: Value): { alias?: string; anchor?: string } {
    if (!(v instanceof Entries || Array.isArray(v))) return {};
    const c = canon(v);
    if (c.length < 12) return {};
    const known = this.anchors.get(c);
    if (known) return { alias: known };
    if (!chance(this.st.rng, this.st.anchorP)) return {};
    const name = `a${++this.n}`;
    this.anchors.set(c, name);
    return { anchor: name };
  }

  flow(v: Value): string {
    if (v instanceof Alias) return `*${v.name}`;
    if (v instanceof Raw || typeof v !== "object") return this.scalar(v, true);
    const { alias, anchor } = this.reuse(v);
    if (alias) return `*${alias}`;
    const prefix = anchor ? `&${anchor} ` : "";
    if (Array.isArray(v)) return `${prefix}[${v.map((x) => this.flow(x)).join(", ")}]`;
    const own = (v as Entries & { anchor?: string }).anchor;
    return `${own ? `&${own} ` : prefix}{${v.entries.map(([k, x]) => `${this.key(k, true)}: ${this.flow(x)}`).join(", ")}}`;
  }

  private isBlock(v: Value): v is Value[] | Entries {
    if (Array.isArray(v)) return v.length > 0 && !chance(this.st.rng, this.st.flowP);
    if (v instanceof Entries) return v.entries.length > 0 && !chance(this.st.rng, this.st.flowP);
    return false;
  }

  /** Lines of a block mapping, each starting at column `col`. */
  map(e: Entries, col: number): string[] {
    const pad = " ".repeat(col);
    const lines: string[] = [];
    for (const [k, v] of e.entries) {
      if (chance(this.st.rng, this.st.commentP)) lines.push(`${pad}# ${k}`);
      const key = `${pad}${this.key(k, false)}:`;
      if (v instanceof Alias || v instanceof Raw || typeof v !== "object") {
        lines.push(`${key} ${v instanceof Alias ? `*${v.name}` : this.scalar(v, false)}`);
        continue;
      }
      const own = (v as Entries & { anchor?: string }).anchor;
      const { alias, anchor } = own ? { alias: undefined, anchor: own } : this.reuse(v);
      if (alias) {
        lines.push(`${key} *${alias}`);
        continue;
      }
      const tag = anchor ? ` &${anchor}` : "";
      if (!this.isBlock(v)) {
        lines.push(`${key}${tag} ${this.flowBody(v)}`);
        continue;
      }
      lines.push(`${key}${tag}`);
      if (Array.isArray(v)) lines.push(...this.seq(v, this.st.seqIndent ? col + this.st.indent : col));
      else lines.push(...this.map(v, col + this.st.indent));
    }
    return lines;
  }

  /** A collection in flow style without re-deciding its anchor. */
  private flowBody(v: Value[] | Entries): string {
    if (Array.isArray(v)) return `[${v.map((x) => this.flow(x)).join(", ")}]`;
    return `{${v.entries.map(([k, x]) => `${this.key(k, true)}: ${this.flow(x)}`).join(", ")}}`;
  }

  /** Lines of a block sequence, dashes at column `col`. */
  seq(items: Value[], col: number): string[] {
    const pad = " ".repeat(col);
    const lines: string[] = [];
    for (const item of items) {
      if (item instanceof Entries && item.entries.length && !chance(this.st.rng, this.st.flowP)) {
        const body = this.map(item, col + 2);
        const first = body.findIndex((l) => !l.trimStart().startsWith("#"));
        body[first] = `${pad}- ${(body[first] ?? "").slice(col + 2)}`;
        lines.push(...body);
      } else if (Array.isArray(item) && item.length) {
        lines.push(`${pad}- ${this.flow(item)}`);
      } else {
        lines.push(`${pad}- ${this.flow(item)}`);
      }
    }
    return lines;
  }
}

function toPlain(v: Value): unknown {
  if (v instanceof Entries) return Object.fromEntries(v.entries.map(([k, x]) => [k, toPlain(x)]));
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Raw) return v.text === "yes" || v.text === "True" || v.text === "on";
  if (v instanceof Alias) throw new Error("render: alias in JSON");
  return v;
}

/**
 * The text of `doc` (a canonical init-file document, see `toDocument`)
 * written in the style `seed` picks. Same document and seed, same text.
 */
export function render(doc: { domains: Record<string, unknown>; nets: Record<string, unknown> }, seed: number): string {
  const rng = prng(seed);
  const json = chance(rng, 0.12);
  const shuffleP = pick(rng, [0, 0.3, 1]);
  const prep = (where: "domain" | "net", o: Record<string, unknown>): Entries =>
    new Entries((chance(rng, shuffleP) ? shuffle(rng, Object.keys(o)) : Object.keys(o)).map((k) => [k, prepare(rng, o[k], where, json ? 0 : shuffleP)]));
  const domains = prep("domain", doc.domains);
  const nets = prep("net", doc.nets);
  if (json) {
    // JSON is YAML too, but lago reads it as JSON first (as Lago does): no aliases, booleans as JSON.
    const top = chance(rng, 0.5) ? { domains: toPlain(domains), nets: toPlain(nets) } : { nets: toPlain(nets), domains: toPlain(domains) };
    return `${JSON.stringify(top, null, pick(rng, [0, 1, 2, "\t"]))}\n`;
  }
  const bases: [string, Value][] = [];
  if (chance(rng, 0.35)) {
    const names = { n: 0 };
    addMerges(rng, domains.entries.map(([, v]) => v).filter((v): v is Entries => v instanceof Entries), ["memory", "vcpu", "cpus", "cpu", "cpu_model", "bootstrap", "distro", "groups"], bases, names);
    addMerges(rng, nets.entries.map(([, v]) => v).filter((v): v is Entries => v instanceof Entries), ["type", "mtu", "dhcp", "management"], bases, names);
    const disks = domains.entries.flatMap(([, d]) => (d instanceof Entries ? d.entries.filter(([k]) => k === "disks").flatMap(([, v]) => (Array.isArray(v) ? v : [])) : [])).filter((v): v is Entries => v instanceof Entries);
    addMerges(rng, disks, ["type", "format", "template_name", "template_version", "size"], bases, names);
  }
  const st: Style = {
    rng,
    indent: pick(rng, [2, 2, 4, 3]),
    seqIndent: chance(rng, 0.6),
    flowP: pick(rng, [0, 0.15, 0.5]),
    plainP: pick(rng, [1, 0.8, 0.3]),
    commentP: pick(rng, [0, 0, 0.05]),
    anchorP: bases.length || chance(rng, 0.3) ? 0.4 : 0,
  };
  const em = new Emitter(st);
  const top = new Entries([...bases, ...(chance(rng, 0.5) ? [["domains", domains], ["nets", nets]] : [["nets", nets], ["domains", domains]]) as [string, Value][]]);
  const header = chance(rng, 0.3) ? [pick(rng, ["---", "# LagoInitFile", "%YAML 1.1\n---"])] : [];
  return `${[...header, ...em.map(top, 0)].join("\n")}\n`;
}
