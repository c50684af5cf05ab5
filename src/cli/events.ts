/** Renders engine events as lines (human) or JSON lines. */
import type { EngineEvent } from "../engine/events.ts";
import type { Style } from "../plan/render.ts";
import { formatDuration } from "./output.ts";

const VERB = {
  create: ["Creating", "Creation"],
  update: ["Updating", "Update"],
  delete: ["Destroying", "Destruction"],
  release: ["Detaching from what is recreated", "Detaching"],
} as const;

/** `downloading x: 42% (12/30 MB)` → the same with a bar in front of the percentage. */
export function withBar(message: string, width = 24): string {
  const m = /^(.*?)(\d{1,3})% (.*)$/.exec(message);
  if (!m?.[2]) return message;
  const percent = Math.min(100, Number(m[2]));
  const full = Math.round((percent / 100) * width);
  return `${m[1] ?? ""}[${"#".repeat(full)}${"-".repeat(width - full)}] ${percent}% ${m[3] ?? ""}`;
}

export function eventRenderer(out: NodeJS.WritableStream, st: Style, json: boolean): (e: EngineEvent) => void {
  const lastProgress = new Map<string, number>();
  return (e) => {
    if (json) {
      out.write(`${JSON.stringify(e.type === "failed" ? { ...e, error: { code: e.error.code, message: e.error.message, hint: e.error.hint } } : e)}\n`);
      return;
    }
    switch (e.type) {
      case "start":
        out.write(`${st.bold(e.address)}: ${VERB[e.action][0]}...\n`);
        break;
      case "progress": {
        const now = Date.now();
        if (now - (lastProgress.get(e.address) ?? 0) < 1000) return;
        lastProgress.set(e.address, now);
        out.write(`${st.bold(e.address)}: ${withBar(e.message)}\n`);
        break;
      }
      case "done":
        out.write(`${st.bold(e.address)}: ${st.green(`${VERB[e.action][1]} complete after ${formatDuration(e.elapsedMs)}`)}\n`);
        break;
      case "failed":
        out.write(`${st.bold(e.address)}: ${st.red(`${VERB[e.action][1]} failed after ${formatDuration(e.elapsedMs)}`)}\n`);
        break;
      case "skipped":
        out.write(`${st.bold(e.address)}: ${st.yellow(`not ${e.action === "delete" ? "destroyed" : e.action === "update" ? "updated" : e.action === "release" ? "released" : "created"}: ${e.reason}`)}\n`);
        break;
      case "recovered":
        out.write(`${st.yellow(`recovered ${e.address}: ${e.message}`)}\n`);
        break;
      case "refresh":
        break;
    }
  };
}
