/**
 * How a problem in a rendered template points back to the template line it
 * came from.
 *
 * Before rendering, a marker `OPEN LINE:COL CLOSE` (OPEN and CLOSE are two
 * private-use characters absent from the template) is inserted in the
 * template's literal text, before the first non-blank character of each of its
 * lines (`template.ts`, `insertMarkers`). The template engine copies literal
 * text to the output verbatim, so after rendering every output line that holds
 * literal text holds the marker(s) of the template line(s) that text came from:
 * once per loop iteration, nothing for a branch not taken. {@link LineMap.fromMarked}
 * strips the markers and records, per output line, each marker's column in
 * the clean output and the template position it names.
 *
 * A position (line, col) in the clean output maps to the template through the
 * last marker on its line at or before `col` (template column + distance from
 * the marker), else the first marker after it (for indentation before literal
 * text); a line without any marker (text produced entirely by `{{ … }}`) maps
 * to the template line of the last marker before it. Columns are exact inside
 * literal text and approximate inside the output of an expression.
 */

interface Anchor {
  /** 1-based column in the clean output line. */
  col: number;
  line: number;
  tcol: number;
}

export class LineMap {
  /** The rendered text without markers. */
  readonly text: string;
  private readonly anchors: Anchor[][];
  /** Per output line, the template line used when the line has no marker. */
  private readonly inherited: number[];

  private constructor(text: string, anchors: Anchor[][], inherited: number[]) {
    this.text = text;
    this.anchors = anchors;
    this.inherited = inherited;
  }

  /** Strips the markers out of `output` and remembers where they were. Pure. */
  static fromMarked(output: string, open: string, close: string): LineMap {
    const anchors: Anchor[][] = [];
    const inherited: number[] = [];
    const clean: string[] = [];
    let lastLine = 1;
    for (const raw of output.split("\n")) {
      const here: Anchor[] = [];
      inherited.push(lastLine);
      let text = "";
      let i = 0;
      for (;;) {
        const at = raw.indexOf(open, i);
        if (at < 0) {
          text += raw.slice(i);
          break;
        }
        const end = raw.indexOf(close, at);
        const body = end < 0 ? "" : raw.slice(at + 1, end);
        const m = /^(\d+):(\d+)$/.exec(body);
        if (!m) {
          text += raw.slice(i, at + 1);
          i = at + 1;
          continue;
        }
        text += raw.slice(i, at);
        const line = Number(m[1]);
        here.push({ col: text.length + 1, line, tcol: Number(m[2]) });
        lastLine = line;
        i = end + 1;
      }
      anchors.push(here);
      clean.push(text);
    }
    return new LineMap(clean.join("\n"), anchors, inherited);
  }

  /** The template position of a 1-based (line, col) of {@link text}. Pure. */
  map(line: number, col: number): { line: number; col: number } {
    const index = Math.min(Math.max(line, 1), this.anchors.length) - 1;
    const anchors = this.anchors[index] ?? [];
    let best: Anchor | undefined;
    for (const a of anchors) if (a.col <= col) best = a;
    if (best) return { line: best.line, col: best.tcol + (col - best.col) };
    const next = anchors[0];
    if (next) return { line: next.line, col: Math.max(1, next.tcol - (next.col - col)) };
    return { line: this.inherited[index] ?? 1, col };
  }
}
