/** Plain timestamped lines, for logs and pipes: one line per event, download progress at most every few seconds. */
import type { EngineEvent } from "../../engine/events.ts";
import type { Style } from "../../plan/render.ts";
import { renderPlan } from "../../plan/render.ts";
import { hasChanges } from "../../plan/plan.ts";
import { formatDuration } from "../output.ts";
import { batchedWriter } from "./batched-writer.ts";
import { withBar } from "./progress-message.ts";
import { verb, interruptedMessage, type ProgressRenderer, type RunSummary } from "./renderer.ts";
import type { LagoError } from "../../errors.ts";

const PROGRESS_EVERY_MS = 5000;

/** `HH:MM:SS` in local time. */
export function clock(at: Date = new Date()): string {
  return [at.getHours(), at.getMinutes(), at.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

/** Summary lines common to the human renderers. */
export function summaryText(s: RunSummary, st: Style): { out?: string; err?: string } {
  const verb = s.verb === "apply" ? "Apply" : "Destroy";
  if (s.cancelled) return { out: `${verb} cancelled.` };
  if (s.interrupted && s.done + s.failed + s.skipped === 0) return { err: st.yellow(`${verb} cancelled (${s.interrupted}): nothing was changed.`) };
  if (s.interrupted) {
    return { err: st.yellow(`${verb} interrupted: ${s.done} step(s) done, ${s.failed} cancelled or failed, ${s.skipped} not started; the state records what was done. Run \`lago ${s.verb}\` again to finish.`) };
  }
  if (s.ok) {
    if (s.done === 0) return {};
    const counts = s.plan.summary;
    return { out: `\n${st.green(st.bold(`${verb} complete!`))} Resources: ${counts.create} added, ${counts.update} changed, ${counts.replace} replaced, ${counts.delete} destroyed.` };
  }
  return { err: `${st.red(st.bold(`${verb} failed.`))} ${s.failed} resource(s) failed, ${s.skipped} not attempted; the state records what was done.` };
}

export function lineRenderer(out: NodeJS.WritableStream, err: NodeJS.WritableStream, st: Style): ProgressRenderer {
  const lastProgress = new Map<string, number>();
  const running = new Set<string>();
  const o = batchedWriter(out);
  const line = (text: string): void => {
    o.write(`${st.dim(clock())} ${text}\n`);
  };
  const emit = (e: EngineEvent): void => {
    switch (e.type) {
      case "start":
        running.add(e.address);
        line(`${st.bold(e.address)}: ${verb(e.action)[0]}...`);
        break;
      case "progress": {
        const now = Date.now();
        if (now - (lastProgress.get(e.address) ?? 0) < PROGRESS_EVERY_MS) return;
        lastProgress.set(e.address, now);
        line(`${st.bold(e.address)}: ${withBar(e.message)}`);
        break;
      }
      case "done":
        running.delete(e.address);
        line(`${st.bold(e.address)}: ${st.green(`${verb(e.action)[1]} complete after ${formatDuration(e.elapsedMs)}`)}`);
        break;
      case "failed":
        running.delete(e.address);
        line(`${st.bold(e.address)}: ${st.red(`${verb(e.action)[1]} failed after ${formatDuration(e.elapsedMs)}`)}`);
        break;
      case "skipped":
        line(`${st.bold(e.address)}: ${st.yellow(`not ${verb(e.action)[2]}: ${e.reason}`)}`);
        break;
      case "recovered":
        line(st.yellow(`recovered ${e.address}: ${e.message}`));
        break;
      case "refresh":
        break;
    }
  };
  return {
    emit,
    plan(plan, recovered) {
      for (const r of recovered) o.write(`${st.yellow(`An interrupted apply was found: ${r}`)}\n`);
      o.write(`${renderPlan(plan, st)}${hasChanges(plan) ? "\n" : ""}`);
      o.flush();
    },
    interrupted(signal) {
      o.flush();
      err.write(`\n${st.yellow(interruptedMessage(signal, running.size))}\n`);
    },
    failure(address: string, error: LagoError, hint: string | undefined, cancelled: boolean) {
      o.flush();
      const message = error.message.startsWith(`${address}:`) ? error.message : `${address}: ${error.message}`;
      err.write(`\n${cancelled ? st.yellow("Cancelled:") : st.red("Error:")} ${message}\n`);
      if (hint) err.write(`${st.dim(`hint: ${hint}`)}\n`);
    },
    summary(s) {
      const text = summaryText(s, st);
      if (text.out) o.write(`${text.out}\n`);
      o.flush();
      if (text.err) err.write(`\n${text.err}\n`);
    },
    close() {
      o.flush();
      running.clear();
    },
  };
}
