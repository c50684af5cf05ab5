/** Terminal output: colors only on a TTY, never with NO_COLOR or --no-color. */
import kleur from "kleur";
import type { Style } from "../plan/render.ts";

export function makeStyle(stream: NodeJS.WriteStream, noColor: boolean): Style {
  const on = !noColor && !("NO_COLOR" in process.env && process.env.NO_COLOR !== "") && stream.isTTY === true;
  kleur.enabled = on;
  return {
    green: (s) => kleur.green(s),
    yellow: (s) => kleur.yellow(s),
    red: (s) => kleur.red(s),
    magenta: (s) => kleur.magenta(s),
    bold: (s) => kleur.bold(s),
    dim: (s) => kleur.dim(s),
  };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

/** Bytes as MiB with one decimal: `12.3 MiB`. */
export function formatMiB(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
