/** Typed events the engine emits; `cli/` renders them. The engine never prints. */
import type { LagoError } from "../errors.ts";

/** What an apply step does to a resource (`release`: let go of a dependency about to be disrupted). */
export type StepAction = "create" | "update" | "delete" | "release";

export type EngineEvent =
  | { type: "start"; address: string; action: StepAction }
  | { type: "progress"; address: string; message: string }
  | { type: "done"; address: string; action: StepAction; elapsedMs: number }
  | { type: "failed"; address: string; action: StepAction; elapsedMs: number; error: LagoError }
  | { type: "skipped"; address: string; action: StepAction; reason: string }
  | { type: "recovered"; address: string; message: string }
  | { type: "refresh"; count: number; elapsedMs: number };

export type Emit = (event: EngineEvent) => void;
