/**
 * The live renderer for a terminal (log-update): finished steps scroll up as
 * permanent lines; below them, one line per resource in flight with a spinner,
 * its elapsed time and its latest progress (a bar for downloads), redrawn in
 * place and cut to the terminal's width.
 */
import { createLogUpdate } from "log-update";
import cliSpinners from "cli-spinners";
import type { EngineEvent } from "../../engine/events.ts";
import type { Style } from "../../plan/render.ts";
import { formatDuration } from "../output.ts";
import { withBar } from "./progress-message.ts";
import { lineRenderer } from "./line-renderer.ts";
import { verb, interruptedMessage, type ProgressRenderer } from "./renderer.ts";

interface InFlight {
  address: string;
  verb: string;
  started: number;
  message: string;
}

/** Cut `text` (no escape codes) to `width` characters, with an ellipsis. */
export function fit(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join("")}…`;
}

/** One live line, `width` columns at most (styling added after cutting). */
export function liveLine(f: InFlight, frame: string, now: number, width: number, st: Style): string {
  const head = `${frame} ${f.address}: ${f.verb}… ${formatDuration(now - f.started)}`;
  const rest = f.message ? `  ${withBar(f.message, 20)}` : "";
  const text = fit(head + rest, width);
  const headLen = [...head].length;
  const shown = [...text];
  return `${st.magenta(shown.slice(0, 1).join(""))}${st.bold(shown.slice(1, headLen).join(""))}${st.dim(shown.slice(headLen).join(""))}`;
}

export function ttyRenderer(out: NodeJS.WriteStream, err: NodeJS.WritableStream, st: Style): ProgressRenderer {
  const log = createLogUpdate(out);
  const spinner = cliSpinners.dots;
  const inFlight = new Map<string, InFlight>();
  let live = true;
  // Permanent lines look as they do without a terminal: while the live block
  // is drawn they are written above it, after it is gone straight to the terminal.
  const sink = {
    write(chunk: string): boolean {
      if (live) log.persist(chunk);
      else out.write(chunk);
      return true;
    },
  } as unknown as NodeJS.WritableStream;
  const plain = lineRenderer(sink, err, st);
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;

  const draw = (): void => {
    if (!live) return;
    if (!inFlight.size) {
      log.clear();
      return;
    }
    const width = Math.max(20, (out.columns || 80) - 1);
    const now = Date.now();
    const glyph = spinner.frames[frame % spinner.frames.length] ?? "*";
    log([...inFlight.values()].map((f) => liveLine(f, glyph, now, width, st)).join("\n"));
  };
  const stop = (): void => {
    if (!live) return;
    if (timer) clearInterval(timer);
    timer = undefined;
    log.clear();
    log.done();
    live = false;
  };

  const emit = (e: EngineEvent): void => {
    if (e.type === "start") {
      inFlight.set(e.address, { address: e.address, verb: verb(e.action)[0], started: Date.now(), message: "" });
      if (!timer && live) {
        timer = setInterval(() => {
          frame += 1;
          draw();
        }, Math.max(spinner.interval, 100));
        timer.unref();
      }
    } else if (e.type === "progress") {
      const f = inFlight.get(e.address);
      if (f) f.message = e.message;
    } else {
      if (e.type === "done" || e.type === "failed") inFlight.delete(e.address);
      plain.emit(e);
    }
    draw();
  };
  return {
    emit,
    plan: (plan, recovered) => plain.plan(plan, recovered),
    interrupted(signal) {
      sink.write(`${st.yellow(interruptedMessage(signal, inFlight.size))}\n`);
      draw();
    },
    failure(address, error, hint, cancelled) {
      stop();
      plain.failure(address, error, hint, cancelled);
    },
    summary(s) {
      stop();
      plain.summary(s);
    },
    close: stop,
  };
}
