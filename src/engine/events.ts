/** Typed events the engine emits; `cli/` renders them. The engine never prints. */
import type { LagoError } from "../errors.ts";

export type NodeAction = "create" | "update" | "delete";

export type EngineEvent =
  | { type: "start"; address: string; action: NodeAction }
  | { type: "progress"; address: string; message: string }
  | { type: "done"; address: string; action: NodeAction; elapsedMs: number }
  | { type: "failed"; address: string; action: NodeAction; elapsedMs: number; error: LagoError }
  | { type: "skipped"; address: string; action: NodeAction; reason: string }
  | { type: "recovered"; address: string; message: string }
  | { type: "refresh"; count: number; elapsedMs: number };

export type Emit = (event: EngineEvent) => void;
