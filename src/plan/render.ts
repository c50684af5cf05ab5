/** The human plan, the way the best tools print it. Pure: returns text. */
import { stringify } from "safe-stable-stringify";
import type { Json } from "../resources/types.ts";
import type { Drift, Plan, ResourceChange } from "./plan.ts";
import { maskChanges, maskSensitive } from "./sensitive.ts";

export interface Style {
  green(s: string): string;
  yellow(s: string): string;
  red(s: string): string;
  magenta(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

export const plainStyle: Style = { green: (s) => s, yellow: (s) => s, red: (s) => s, magenta: (s) => s, bold: (s) => s, dim: (s) => s };

/** `/nics/lago#0/host` → `nics.lago#0.host`. */
export function displayPath(pointer: string): string {
  if (!pointer.startsWith("/")) return pointer;
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
}

/** Sorted keys: a value read back from state.json must print like the same value fresh from the compiler. */
function show(v: Json | undefined): string {
  return v === undefined ? "(none)" : (stringify(v) ?? "(none)");
}

function changeLines(c: ResourceChange, st: Style): string[] {
  const lines: string[] = [];
  if (c.action === "create") {
    for (const [k, v] of Object.entries(maskSensitive(c.kind, c.after ?? {}))) lines.push(`      ${k}: ${show(v)}`);
    return lines;
  }
  for (const x of maskChanges(c.kind, c.changes)) {
    if (x.path.startsWith("(")) {
      lines.push(`      ${st.dim(`# ${x.reason ?? x.path}`)}`);
      continue;
    }
    const p = displayPath(x.path);
    let line: string;
    if (x.before === undefined) line = `      ${st.green("+")} ${p}: ${show(x.after)}`;
    else if (x.after === undefined) line = `      ${st.red("-")} ${p}: ${show(x.before)}`;
    else line = `      ${p}: ${show(x.before)} → ${show(x.after)}`;
    if (x.forcesReplacement) line += `   ${st.magenta(`# forces replacement: ${x.reason ?? ""}`)}`;
    else if (x.requiresRestart) line += `   ${st.yellow("# takes effect after restart")}`;
    lines.push(line);
  }
  for (const r of c.replaceReasons) {
    if (!c.changes.some((x) => x.forcesReplacement && x.reason === r)) lines.push(`      ${st.magenta(`# replaced because ${r}`)}`);
  }
  return lines;
}

function header(c: ResourceChange, st: Style): string {
  switch (c.action) {
    case "create":
      return `  ${st.green("+")} ${st.bold(c.address)} will be created${c.note ? ` ${st.dim(`(${c.note})`)}` : ""}`;
    case "update": {
      const note = c.restart ? " and restarted" : c.requiresRestart ? " (takes effect after restart: lago apply --restart)" : "";
      const disrupts = c.disrupts ? `, interrupting what uses it: ${c.disrupts}` : "";
      return `  ${st.yellow("~")} ${st.bold(c.address)} will be updated in place${note}${disrupts}`;
    }
    case "replace":
      return `${st.magenta("-/+")} ${st.bold(c.address)} must be replaced${c.note ? ` ${st.dim(`(${c.note})`)}` : ""}`;
    case "delete":
      return c.kind === "template"
        ? `  ${st.red("-")} ${st.bold(c.address)} will be released (the shared template store keeps the image)`
        : `  ${st.red("-")} ${st.bold(c.address)} will be destroyed`;
    default:
      return `    ${c.address}`;
  }
}

function driftLines(d: Drift, st: Style): string[] {
  if (d.type === "deleted") return [`  ${st.red("!")} ${st.bold(d.address)} was deleted outside lago`];
  if (d.type === "damaged") return [`  ${st.red("!")} ${st.bold(d.address)} is damaged${d.reason ? `: ${d.reason}` : ""}`];
  return [`  ${st.yellow("!")} ${st.bold(d.address)} changed outside lago`, ...maskChanges(d.kind, d.changes).map((x) => `      ${displayPath(x.path)}: ${show(x.before)} → ${show(x.after)}`)];
}

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  return `Plan: ${s.create} to add, ${s.update} to change, ${s.replace} to replace, ${s.delete} to destroy.`;
}

export function renderPlan(plan: Plan, st: Style = plainStyle): string {
  const out: string[] = [];
  if (plan.drift.length) {
    out.push(st.bold("Changes outside lago (found by refresh):"), "");
    for (const d of plan.drift) out.push(...driftLines(d, st));
    out.push("");
  }
  const changes = plan.resourceChanges.filter((c) => c.action !== "no-op");
  if (!changes.length) {
    out.push(st.green("No changes.") + " The environment matches the configuration.");
  } else {
    out.push(st.bold(plan.destroy ? "lago will destroy every resource of this environment:" : "lago will perform the following actions:"), "");
    for (const c of changes) out.push(header(c, st), ...changeLines(c, st), "");
    out.push(st.bold(summaryLine(plan)));
  }
  for (const n of plan.notices) out.push("", st.dim(`Note: ${n}.`));
  if (plan.pendingRestarts.length) {
    out.push("", st.yellow(`Waiting for a restart to take effect: ${plan.pendingRestarts.join(", ")} (lago apply --restart)`));
  }
  if (plan.stopped?.length) {
    out.push("", `Stopped on purpose, kept stopped: ${plan.stopped.join(", ")} (lago start VM starts it)`);
  }
  for (const l of plan.snapshotsLost ?? []) {
    out.push("", st.red(`${l.address} loses its snapshots: ${l.snapshots.join(", ")}`));
  }
  return `${out.join("\n")}\n`;
}
