/**
 * lago as a library: `import { Environment } from "lago"`. The same engine
 * and operations as the `lago` command line, typed.
 *
 * @example
 * const env = await Environment.load("LagoInitFile");
 * env.on("progress", (e) => console.log(e));
 * await env.apply();
 * const { stdout } = await env.vm("vm01").ssh("hostname");
 * await env.destroy();
 */
export { Environment, Vm, type ApplyOptions, type ApplyResult, type EnvironmentEvent, type EnvironmentOptions, type SshResult } from "./environment.ts";
export { LagoError, ConfigError, CommandError, ProviderError, LockError, StateError, UsageError, type Diagnostic, type SourcePos } from "../errors.ts";
export type { Plan, ResourceChange, Drift } from "../plan/plan.ts";
export type { EnvStatus, VmStatus, NetStatus } from "../ops/status.ts";
export type { PowerResult } from "../ops/power.ts";
export type { DeployResult, ScriptRun } from "../ops/deploy.ts";
export type { CollectResult } from "../ops/collect.ts";
export type { SnapshotResult, SnapshotSummary } from "../ops/snapshots.ts";
export type { ExportResult, ExportedDisk } from "../ops/export.ts";
export type { CopyReport } from "../drivers/real/sftp-copy.ts";
export type { EngineEvent } from "../engine/events.ts";
export type { OpsEvent } from "../ops/events.ts";
