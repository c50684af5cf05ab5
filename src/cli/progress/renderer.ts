/**
 * How `apply` and `destroy` show what happens while they run. Three renderers
 * subscribe to the engine's events: a live one on a terminal (a line per
 * resource in flight, spinner, elapsed time, download bars), plain timestamped
 * lines otherwise, and a JSON stream with `--json` (schemas/events.schema.json).
 */
import type { EngineEvent, Emit } from "../../engine/events.ts";
import type { Plan } from "../../plan/plan.ts";
import type { LagoError } from "../../errors.ts";

/** The end of a run, as renderers report it. */
export interface RunSummary {
  verb: "apply" | "destroy";
  /** The plan that ran (its summary counts what was planned). */
  plan: Plan;
  ok: boolean;
  exitCode: number;
  /** Planned steps done, failed, and not attempted. */
  done: number;
  failed: number;
  skipped: number;
  /** Whether the user declined at the confirmation prompt. */
  cancelled: boolean;
  interrupted: NodeJS.Signals | undefined;
}

export interface ProgressRenderer {
  /** Subscribe this to the engine. */
  readonly emit: Emit;
  /** The plan about to be applied, and what recovery found of an interrupted apply. */
  plan(plan: Plan, recovered: string[]): void;
  /** Ctrl-C (or SIGTERM) arrived: say what happens now. */
  interrupted(signal: NodeJS.Signals): void;
  /** A failed step's error and its next step, once the run is over; `cancelled` when an interruption stopped it. */
  failure(address: string, error: LagoError, hint: string | undefined, cancelled: boolean): void;
  /** The run is over. */
  summary(s: RunSummary): void;
  /** Stop rendering (idempotent): restores the terminal. */
  close(): void;
}

/** What a step does to its resource, as the engine says it. */
export type StepAction = Extract<EngineEvent, { type: "start" }>["action"];

const VERBS: Readonly<Record<string, readonly [ing: string, noun: string, past: string]>> = {
  create: ["Creating", "Creation", "created"],
  update: ["Updating", "Update", "updated"],
  delete: ["Destroying", "Destruction", "destroyed"],
  release: ["Detaching from what is recreated", "Detaching", "released"],
};

/** `Creating`/`Creation`/`created` and friends for a step's action (any action the engine adds reads sensibly). */
export function verb(action: StepAction): readonly [ing: string, noun: string, past: string] {
  return VERBS[action] ?? [`${action[0]?.toUpperCase() ?? ""}${action.slice(1)}`, action, action];
}

/** What an interruption means, said the same way by every human renderer. */
export function interruptedMessage(signal: NodeJS.Signals, running: number): string {
  const what = running ? `cancelling ${running} running step${running === 1 ? "" : "s"} (recorded in the state and journal)` : "no step is running";
  return `Interrupted (${signal}): no new step starts; ${what}; saving the state. ${signal === "SIGINT" ? "Ctrl-C again quits at once." : ""}`.trim();
}
