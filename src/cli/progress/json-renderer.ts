/**
 * `--json`: a stream of JSON events on stdout, one object per line, each with
 * its `time`; described by schemas/events.schema.json. Nothing else goes to
 * stdout (questions and human messages go to stderr).
 */
import type { EngineEvent } from "../../engine/events.ts";
import { ConfigError, type LagoError } from "../../errors.ts";
import { planToJson } from "../../plan/json.ts";
import { hintFor, type HintContext } from "../../error-hints.ts";
import { batchedWriter } from "./batched-writer.ts";
import { parseTransfer } from "./progress-message.ts";
import type { ProgressRenderer } from "./renderer.ts";

/** The JSON form of an error: its stable code, message, next step, and an init file's problems with their positions. */
export function errorJson(error: LagoError, hint: string | undefined): Record<string, unknown> {
  return {
    code: error.code,
    message: error.message,
    ...(hint ? { hint } : {}),
    ...(error instanceof ConfigError ? { diagnostics: error.diagnostics.map((d) => ({ ...d.pos, pointer: d.pointer, message: d.message })) } : {}),
  };
}

/** Top-level member names in snake_case, as in the plan JSON (`elapsedMs` → `elapsed_ms`). */
function snakeKeys(event: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(event).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

export function jsonRenderer(out: NodeJS.WritableStream, hints: HintContext): ProgressRenderer {
  const o = batchedWriter(out);
  const write = (event: Record<string, unknown>): void => {
    o.write(`${JSON.stringify({ time: new Date().toISOString(), ...snakeKeys(event) })}\n`);
  };
  const emit = (e: EngineEvent): void => {
    switch (e.type) {
      case "failed":
        write({ ...e, error: errorJson(e.error, hintFor(e.error, hints)) });
        return;
      case "progress": {
        const t = parseTransfer(e.message);
        write(t ? { ...e, percent: t.percent, done_bytes: Math.round(t.doneMiB * 1_048_576), total_bytes: Math.round(t.totalMiB * 1_048_576) } : { ...e });
        return;
      }
      default:
        write({ ...e });
    }
  };
  return {
    emit,
    plan(plan, recovered) {
      write({ type: "plan", plan: planToJson(plan), recovered });
    },
    interrupted(signal) {
      write({ type: "interrupted", signal });
      o.flush();
    },
    failure() {
      // Each failure was already streamed as its `failed` event.
    },
    summary(s) {
      write({
        type: "summary",
        verb: s.verb,
        ok: s.ok,
        exit_code: s.exitCode,
        cancelled: s.cancelled,
        interrupted: s.interrupted ?? null,
        steps: { done: s.done, failed: s.failed, skipped: s.skipped },
        planned: s.plan.summary,
      });
      o.flush();
    },
    close() {
      o.flush();
    },
  };
}
