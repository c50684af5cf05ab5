/**
 * The benchmark baseline: bench/results.json (machine-readable, one section
 * per part of `npm run bench`, each replaced only by a run of that part) and
 * bench/results.md, rendered from it: a table of every figure next to its
 * target (issue 7's goals), then each part's own tables and method notes.
 * Figures are measurements, never assertions: "meets" is information.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";

export const RESULTS_JSON = fileURLToPath(new URL("./results.json", import.meta.url));
export const RESULTS_MD = fileURLToPath(new URL("./results.md", import.meta.url));

export type Unit = "s" | "ms" | "KiB" | "MiB" | "launches" | "×";

export interface Figure {
  /** Issue 7's goal number ("1" … "5"), or "8" for issue 8's snapshot/revert slots. */
  goal: string;
  what: string;
  /** null: not measured (the reason is in `note`). */
  value: number | null;
  unit: Unit;
  /** The target as people read it, e.g. "≤ 0.15 s" or "≤ 0.5× vagrant up". */
  target: string;
  /** value ÷ the reference the target names (a peer's time, a limit), when the target is relative. */
  ratio?: number | null | undefined;
  /** Whether the value meets the target; null when it cannot be told. */
  met: boolean | null;
  note?: string | undefined;
}

export interface Section {
  id: SectionId;
  title: string;
  /** ISO date-time of the run. */
  measuredAt: string;
  machine: string[];
  /** The part's own tables and notes (Markdown, no heading). */
  markdown: string;
  figures: Figure[];
}

export const SECTION_ORDER = ["side-by-side", "cli", "pure", "real"] as const;
export type SectionId = (typeof SECTION_ORDER)[number];

interface ResultsFile {
  formatVersion: 1;
  sections: Partial<Record<SectionId, Section>>;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) return m[1].trim();
  } catch {
    // Not Linux: what Node reports will do.
  }
  return os.cpus()[0]?.model ?? "unknown";
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
}

/** The machine lines every section starts with. */
export function machineLines(extra: string[] = []): string[] {
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Node: ${process.version} (${process.platform} ${process.arch}), ${os.type()} ${os.release()}`,
    `- CPU: ${cpuModel()}, ${os.availableParallelism()} cores available; memory ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- Load average when the part ended (1/5/15 min): ${loadAverage()} — other work on the machine inflates wall times`,
    ...extra,
  ];
}

function readResults(): ResultsFile {
  if (!existsSync(RESULTS_JSON)) return { formatVersion: 1, sections: {} };
  const v = JSON.parse(readFileSync(RESULTS_JSON, "utf8")) as ResultsFile;
  return v.formatVersion === 1 && typeof v.sections === "object" ? v : { formatVersion: 1, sections: {} };
}

const UNIT_TEXT: Record<Unit, string> = { s: "s", ms: "ms", KiB: "KiB", MiB: "MiB", launches: "", "×": "×" };

export function formatValue(value: number | null, unit: Unit): string {
  if (value === null || !Number.isFinite(value)) return "n/a";
  const digits = unit === "launches" ? 0 : Math.abs(value) < 1 ? 3 : Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0;
  const text = value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit === "launches" ? text : `${text} ${UNIT_TEXT[unit]}`.trim();
}

const met = (m: boolean | null): string => (m === null ? "–" : m ? "yes" : "**no**");
const ratio = (r: number | null | undefined): string => (r === undefined ? "" : r === null || !Number.isFinite(r) ? "n/a" : `${r.toFixed(2)}×`);

/** One table of figures: what, value, target, ratio, meets, note. */
export function figureTable(figures: Figure[], withGoal = false): string {
  const head = [...(withGoal ? ["goal"] : []), "figure", "value", "target", "ratio", "meets", "note"];
  const rows = figures.map((f) => [...(withGoal ? [f.goal] : []), f.what, formatValue(f.value, f.unit), f.target, ratio(f.ratio), met(f.met), f.note ?? ""]);
  const line = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  const align = head.map((h) => (h === "value" || h === "ratio" ? "---:" : "---"));
  return [line(head), line(align), ...rows.map(line)].join("\n");
}

function render(results: ResultsFile): string {
  const sections = SECTION_ORDER.map((id) => results.sections[id]).filter((s): s is Section => s !== undefined);
  const figures = sections.flatMap((s) => s.figures.map((f) => ({ ...f, note: [f.note, `(${s.measuredAt.slice(0, 10)}, ${s.title})`].filter(Boolean).join(" ") })));
  figures.sort((a, b) => a.goal.localeCompare(b.goal));
  const out = [
    "# lago benchmark baseline",
    "",
    "Written by `npm run bench -- --write` (bench/run.ts) from bench/results.json; each part replaces only its own",
    "section. Measurement only: no timing is asserted anywhere. How to run each part: README, section Benchmarks.",
    "",
    "## Figures and targets (issue 7; snapshot/revert from issue 8)",
    "",
    "Ratios are lago ÷ the reference the target names (Vagrant's time for the same work, or the guest's own",
    "boot-to-SSH); \"meets\" compares the value with the target and asserts nothing.",
    "",
    figureTable(figures, true),
    "",
  ];
  for (const s of sections) out.push(`## ${s.title}`, "", ...s.machine, "", s.markdown.trimEnd(), "");
  return out.join("\n");
}

/** Replaces one section in bench/results.json and re-renders bench/results.md. */
export function writeSection(section: Section): void {
  const results = readResults();
  results.sections[section.id] = section;
  writeFileSync(RESULTS_JSON, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(RESULTS_MD, render(results));
}

/** Prints a section the way results.md shows it. */
export function sectionText(section: Section): string {
  return [`## ${section.title}`, "", ...section.machine, "", figureTable(section.figures), "", section.markdown.trimEnd(), ""].join("\n");
}
