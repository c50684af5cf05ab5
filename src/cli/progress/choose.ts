/** Picks the renderer for `apply`/`destroy`: JSON with --json, live on a terminal, plain lines otherwise. */
import type { HintContext } from "../../error-hints.ts";
import type { Style } from "../../plan/render.ts";
import { jsonRenderer } from "./json-renderer.ts";
import { lineRenderer } from "./line-renderer.ts";
import type { ProgressRenderer } from "./renderer.ts";

export interface RendererChoice {
  json: boolean;
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
  style: Style;
  hints: HintContext;
}

/**
 * The renderer for this run. The live one needs a terminal on stdout and a
 * terminal that can move the cursor (`TERM` not `dumb`); `LAGO_PROGRESS=plain`
 * forces plain lines. The live one's modules (log-update, string widths) are
 * loaded only then: they cost tens of milliseconds to load.
 */
export async function chooseRenderer(c: RendererChoice): Promise<ProgressRenderer> {
  if (c.json) return jsonRenderer(c.out, c.hints);
  const live = c.out.isTTY === true && process.env.TERM !== "dumb" && process.env.LAGO_PROGRESS !== "plain";
  if (!live) return lineRenderer(c.out, c.err, c.style);
  const { ttyRenderer } = await import("./tty-renderer.ts");
  return ttyRenderer(c.out, c.err, c.style);
}
