/**
 * The SDK's `Environment`: one lago environment driven from code, with the
 * same engine and operations the CLI uses. Load an init file, then plan,
 * apply, destroy; look at it (`status`), reach its VMs (`vm(name).ssh`,
 * `copyTo`, `copyFrom`), run its deploy scripts, collect artifacts, snapshot
 * and revert, export, and hand Ansible an inventory. Progress arrives as
 * `progress` events. Failures throw {@link LagoError}s.
 */
import { EventEmitter } from "node:events";
import path from "node:path";
import { LagoError } from "../errors.ts";
import { loadConfig, type ConfigOverrides, type LagoConfig } from "../config/config.ts";
import { findWorkdir, makeEnvContext, type EnvContext } from "../env/context.ts";
import { createDrivers } from "../drivers/factory.ts";
import type { Drivers } from "../drivers/types.ts";
import { loadSpec } from "../spec/load.ts";
import type { EnvSpec } from "../spec/types.ts";
import { applyEnv, planEnv, type Session } from "../engine/session.ts";
import type { EngineEvent } from "../engine/events.ts";
import type { ApplyOutcome } from "../engine/apply.ts";
import type { Plan } from "../plan/plan.ts";
import { makeOpsContext, type OpsContext } from "../ops/context.ts";
import type { OpsEvent } from "../ops/events.ts";
import { envStatus, type EnvStatus } from "../ops/status.ts";
import { startVms, stopVms, type PowerResult } from "../ops/power.ts";
import { shellQuote } from "../ops/command-line.ts";
import { DEFAULT_PARALLELISM } from "../engine/parallelism.ts";
import { captureOnVm } from "../ops/remote.ts";
import { copyFromVm, copyToVm } from "../ops/copy.ts";
import { deploy, type DeployResult } from "../ops/deploy.ts";
import { collect, type CollectResult } from "../ops/collect.ts";
import { DEFAULT_INVENTORY_KEYS, ansibleInventory, dynamicInventory, renderIni } from "../ops/inventory.ts";
import { listSnapshots, revertSnapshot, takeSnapshot, type SnapshotResult, type SnapshotSummary } from "../ops/snapshots.ts";
import { exportVms, type ExportResult } from "../ops/export.ts";
import { sshConfig } from "../ops/ssh-config.ts";
import type { CopyReport } from "../drivers/real/sftp-copy.ts";

/** Everything the SDK reports while it works: the engine's events (plan/apply/destroy) and the operations' (`vm`, `output`, `warning`). */
export type EnvironmentEvent = EngineEvent | OpsEvent;

export interface EnvironmentOptions {
  /** The `.lago` workdir (or the directory holding it); default: found from the init file's directory upwards, else created beside it. */
  workdir?: string | undefined;
  /** Environment name inside the workdir; default `default`. */
  env?: string | undefined;
  /** Lago template repository (repo.metadata path or URL); default from lago.conf / `LAGO__INIT__TEMPLATE_REPO_PATH`. */
  templateRepoPath?: string | undefined;
  templateStore?: string | undefined;
  leaseDir?: string | undefined;
  domainType?: "kvm" | "qemu" | undefined;
  /** Variables of an init file written as a Jinja2 template (`{{ name }}`), as the CLI's `--var`; `env` is the process environment. */
  vars?: Record<string, unknown> | undefined;
  /** Any other lago.conf setting, as `section.key` → value (e.g. `{"lago.boot_timeout": "300"}`). */
  config?: ConfigOverrides | undefined;
  /** Resources changed at once by `apply`/`destroy` (default 4). */
  parallelism?: number | undefined;
  /** How long to wait for the environment lock (default 0: fail at once when another lago holds it). */
  lockTimeoutMs?: number | undefined;
  /** Cancels what runs (commands are killed, the state records what was done). */
  signal?: AbortSignal | undefined;
}

export interface ApplyOptions {
  /** Restart VMs whose changes wait for a restart. */
  restart?: boolean | undefined;
  /** Read reality first (default true). */
  refresh?: boolean | undefined;
}

export interface ApplyResult {
  plan: Plan;
  /** False when there was nothing to do. */
  changed: boolean;
}

export interface SshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** One VM of an {@link Environment}. */
export class Vm {
  constructor(
    private readonly environment: Environment,
    readonly name: string,
  ) {}

  /**
   * Run a command over SSH and collect its output. A string is a command
   * line for the VM's shell; an array is a command and its arguments, each
   * passed as is. A non-zero exit code is returned, not thrown.
   */
  ssh(command: string | readonly string[], opts: { timeoutMs?: number | undefined; stdin?: string | Buffer | undefined } = {}): Promise<SshResult> {
    const line = typeof command === "string" ? command : command.map(shellQuote).join(" ");
    return captureOnVm(this.environment.ops(), this.name, line, opts);
  }

  /** Copy a local file or directory to the VM (SFTP, recursive, modes kept). */
  copyTo(local: string, remote: string): Promise<CopyReport & { destination: string }> {
    return copyToVm(this.environment.ops(), this.name, local, remote);
  }

  /** Copy a file or directory from the VM (SFTP, recursive, modes kept). */
  copyFrom(remote: string, local: string): Promise<CopyReport & { destination: string }> {
    return copyFromVm(this.environment.ops(), this.name, remote, local);
  }

  start(): Promise<PowerResult[]> {
    return this.environment.start([this.name]);
  }

  stop(): Promise<PowerResult[]> {
    return this.environment.stop([this.name]);
  }

  shutdown(opts: { reboot?: boolean } = {}): Promise<PowerResult[]> {
    return this.environment.shutdown([this.name], opts);
  }
}

export interface EnvironmentEvents {
  progress: [EnvironmentEvent];
}

export class Environment extends EventEmitter<EnvironmentEvents> {
  /** The init file, loaded and validated. */
  readonly spec: EnvSpec;
  readonly context: EnvContext;
  private readonly drivers: Drivers;
  private readonly options: EnvironmentOptions;

  private constructor(spec: EnvSpec, context: EnvContext, options: EnvironmentOptions) {
    super();
    this.spec = spec;
    this.context = context;
    this.options = options;
    this.drivers = createDrivers(context);
  }

  /**
   * Load and validate `initFile` and locate its environment. Reads
   * lago.conf and `LAGO_*` variables like the CLI; `options` win over both.
   * Throws a ConfigError listing every problem of the file.
   */
  static async load(initFile: string, options: EnvironmentOptions = {}): Promise<Environment> {
    const file = path.resolve(initFile);
    const overrides: ConfigOverrides = {
      ...options.config,
      ...(options.templateRepoPath !== undefined ? { "init.template_repo_path": options.templateRepoPath } : {}),
      ...(options.templateStore !== undefined ? { "init.template_store": options.templateStore } : {}),
      ...(options.leaseDir !== undefined ? { "lago.lease_dir": options.leaseDir } : {}),
      ...(options.domainType !== undefined ? { "lago.domain_type": options.domainType } : {}),
    };
    const config: LagoConfig = loadConfig(process.env, overrides);
    const spec = await loadSpec(file, {
      vars: options.vars ?? {},
      hostAccess: { allowOutsidePaths: config.allowOutsidePaths, allowSystemPaths: config.allowSystemPaths },
    });
    const context = makeEnvContext(findWorkdir(path.dirname(file), options.workdir), options.env ?? "default", config);
    return new Environment(spec, context, options);
  }

  /** The VM names of the init file. */
  get vmNames(): string[] {
    return this.spec.domains.map((d) => d.name);
  }

  /** The VM `name` (not checked until used). */
  vm(name: string): Vm {
    return new Vm(this, name);
  }

  private emitEvent = (e: EnvironmentEvent): void => {
    this.emit("progress", e);
  };

  private session(): Session {
    return {
      env: this.context,
      drivers: this.drivers,
      emit: this.emitEvent,
      signal: this.options.signal ?? new AbortController().signal,
      lockTimeoutMs: this.options.lockTimeoutMs ?? 0,
      parallelism: this.options.parallelism ?? DEFAULT_PARALLELISM,
    };
  }

  /** @internal The operations context (shared with {@link Vm}). */
  ops(): OpsContext {
    return makeOpsContext(this.context, { drivers: this.drivers, signal: this.options.signal, lockTimeoutMs: this.options.lockTimeoutMs, emit: this.emitEvent });
  }

  /** What `apply` would do (reads reality unless `refresh` is false). Changes nothing. */
  async plan(opts: ApplyOptions = {}): Promise<Plan> {
    return (await planEnv(this.session(), { spec: this.spec, refresh: opts.refresh ?? true, restart: opts.restart })).plan;
  }

  /** Converge the environment to the init file. Throws when a resource failed (the state records what was done). */
  async apply(opts: ApplyOptions = {}): Promise<ApplyResult> {
    const result = await applyEnv(this.session(), { spec: this.spec, refresh: opts.refresh ?? true, restart: opts.restart, confirm: async () => true });
    failIfNotOk("apply", result.outcome);
    return { plan: result.plan, changed: result.outcome !== undefined };
  }

  /** Delete every VM, disk, network and lease of the environment (and its snapshots). */
  async destroy(): Promise<void> {
    const result = await applyEnv(this.session(), { spec: undefined, destroy: true, refresh: true, confirm: async () => true });
    failIfNotOk("destroy", result.outcome);
  }

  /** Each VM's state, addresses and SSH, each net, the templates in use. */
  status(): Promise<EnvStatus> {
    return envStatus(this.ops());
  }

  start(vms: readonly string[] = []): Promise<PowerResult[]> {
    return startVms(this.ops(), vms);
  }

  /** Power off at once; plans keep the VMs stopped until `start`. */
  stop(vms: readonly string[] = []): Promise<PowerResult[]> {
    return stopVms(this.ops(), vms, { graceful: false, reboot: false });
  }

  /** ACPI shutdown (power off after the configured timeout); with `reboot`, started again. */
  shutdown(vms: readonly string[] = [], opts: { reboot?: boolean } = {}): Promise<PowerResult[]> {
    return stopVms(this.ops(), vms, { graceful: true, reboot: opts.reboot === true });
  }

  /** Run each VM's `metadata.deploy-scripts` (output arrives as `output` progress events). */
  deploy(vms: readonly string[] = []): Promise<DeployResult[]> {
    return deploy(this.ops(), this.spec, vms);
  }

  /** Copy each VM's `artifacts` to `<output>/<vm>/<path>`. */
  collect(output: string, opts: { vms?: readonly string[]; strict?: boolean } = {}): Promise<CollectResult[]> {
    return collect(this.ops(), this.spec, output, opts.vms ?? [], { strict: opts.strict === true });
  }

  /** A consistent snapshot of the VMs (all by default), memory included. */
  snapshot(name: string, vms: readonly string[] = []): Promise<SnapshotResult> {
    return takeSnapshot(this.ops(), name, vms);
  }

  /** Revert to a snapshot: running VMs resume where they were. */
  revert(name: string, vms: readonly string[] = []): Promise<SnapshotResult> {
    return revertSnapshot(this.ops(), name, vms);
  }

  async snapshots(): Promise<SnapshotSummary[]> {
    return (await listSnapshots(this.ops())).snapshots;
  }

  /** Export shut-off VMs' disks and an init file that recreates them. */
  export(output: string, opts: { vms?: readonly string[]; standalone?: boolean; initFileName?: string } = {}): Promise<ExportResult> {
    return exportVms(this.ops(), this.spec, output, opts.vms ?? [], { standalone: opts.standalone === true, initFileName: opts.initFileName ?? "LagoInitFile" });
  }

  /** The Ansible inventory: INI text and Ansible's dynamic-inventory JSON. */
  ansibleInventory(keys: readonly string[] = DEFAULT_INVENTORY_KEYS): { ini: string; json: Record<string, unknown> } {
    const inv = ansibleInventory(this.ops(), this.spec, keys);
    return { ini: renderIni(inv), json: dynamicInventory(inv) };
  }

  /** An OpenSSH client configuration for the VMs (also written to the environment's ssh/config). */
  sshConfig(): string {
    return sshConfig(this.ops());
  }
}

function failIfNotOk(verb: string, outcome: ApplyOutcome | undefined): void {
  if (!outcome || outcome.ok) return;
  const first = outcome.failed[0]?.error;
  const why = outcome.failed.length
    ? outcome.failed.map((f) => f.error.message).join("; ")
    : `${outcome.skipped.length} step(s) not done${outcome.interrupted ? " (interrupted)" : ""}: ${outcome.skipped.map((x) => `${x.address}: ${x.reason}`).join("; ")}`;
  throw new LagoError("APPLY_FAILED", `${verb} failed: ${why}`, { hint: first?.hint, cause: first });
}
