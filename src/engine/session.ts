/**
 * The commands' engine entry points: plan, apply, destroy, show. Orchestrates
 * the pure layers (spec, graph, plan) and the side-effecting ones (refresh,
 * apply) under the environment lock. Never prints: emits events.
 */
import { readFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { ConfigError, UsageError, errorMessage, type Diagnostic } from "../errors.ts";
import type { EnvSpec, TemplateInfo } from "../spec/types.ts";
import { compile, type TemplateResolution } from "../graph/compile.ts";
import { computePlan, hasChanges, type Plan } from "../plan/plan.ts";
import type { Drivers } from "../drivers/types.ts";
import { envPaths, type EnvContext } from "../env/context.ts";
import { readState, writeState, type State } from "../state/state.ts";
import { Journal, pendingIntents } from "../state/journal.ts";
import { lockEnv, type EnvLock } from "../state/lock.ts";
import { loadTemplateRepo, resolveTemplate, type TemplateRepo } from "../templates/repo.ts";
import type { DesiredResource } from "../resources/types.ts";
import type { EngineContext } from "./context.ts";
import type { Emit } from "./events.ts";
import { recoverIntents } from "./recover.ts";
import { refresh } from "./refresh.ts";
import { applyPlan, type ApplyOutcome } from "./apply.ts";

export interface Session {
  env: EnvContext;
  drivers: Drivers;
  emit: Emit;
  signal: AbortSignal;
  lockTimeoutMs: number;
  parallelism: number;
}

function engineOf(s: Session): EngineContext {
  return { env: s.env, drivers: s.drivers, emit: s.emit, signal: s.signal, cache: new Map() };
}

/** The repository a spec resolves against: read, or why it could not be. */
export type RepoSource = { repo: TemplateRepo } | { error: string } | undefined;

/** Resolve every template disk, given the repository already read. Pure; diagnostics carry positions. */
export function resolveTemplatesIn(spec: EnvSpec, source: RepoSource): Map<string, TemplateResolution> {
  const out = new Map<string, TemplateResolution>();
  const diagnostics: Diagnostic[] = [];
  for (const domain of spec.domains) {
    for (const disk of domain.disks) {
      if (disk.type !== "template") continue;
      if (disk.path) {
        out.set(disk.pointer, { type: "path", path: disk.path, format: disk.format === "raw" ? "raw" : "qcow2" });
        continue;
      }
      const pointer = `${disk.pointer}/template_name`;
      if (!source) {
        diagnostics.push({
          pos: spec.locate(pointer),
          pointer,
          message: `template ${JSON.stringify(disk.templateName)} needs a template repository: pass --template-repo-path PATH|URL (or set template_repo_path in lago.conf, or LAGO__INIT__TEMPLATE_REPO_PATH)`,
        });
      } else if ("error" in source) {
        diagnostics.push({ pos: spec.locate(pointer), pointer, message: `cannot read the template repository: ${source.error}` });
      } else {
        try {
          out.set(disk.pointer, { type: "repo", ref: resolveTemplate(source.repo, disk.templateName ?? "", disk.templateVersion) });
        } catch (err) {
          diagnostics.push({ pos: spec.locate(pointer), pointer, message: errorMessage(err) });
        }
      }
    }
  }
  if (diagnostics.length) throw new ConfigError(diagnostics);
  return out;
}

/** Read the repository (only when a disk needs it) and resolve every template disk. */
export async function resolveTemplates(spec: EnvSpec, repoPath: string | undefined): Promise<Map<string, TemplateResolution>> {
  const needed = spec.domains.some((d) => d.disks.some((k) => k.type === "template" && !k.path));
  let source: RepoSource;
  if (needed && repoPath) {
    try {
      source = { repo: await loadTemplateRepo(repoPath) };
    } catch (err) {
      source = { error: errorMessage(err) };
    }
  }
  return resolveTemplatesIn(spec, source);
}

export async function compileSpec(spec: EnvSpec, state: State, env: EnvContext): Promise<DesiredResource[]> {
  const templates = await resolveTemplates(spec, env.config.templateRepoPath);
  return compile({ spec, templates, prior: state, domainType: env.config.domainType });
}

export interface PlanRequest {
  spec: EnvSpec | undefined;
  refresh: boolean;
  targets?: string[] | undefined;
  replace?: string[] | undefined;
  destroy?: boolean | undefined;
  restart?: boolean | undefined;
}

export interface PlanResult {
  plan: Plan;
  state: State;
  recovered: string[];
}

/** Read the state, resolve an interrupted apply in memory, refresh, plan. Caller holds the lock. */
async function planLocked(s: Session, req: PlanRequest): Promise<PlanResult> {
  const state = readState(envPaths.state(s.env));
  const engine = engineOf(s);
  const recovered = await recoverIntents(engine, state, pendingIntents(envPaths.journal(s.env)));
  const desired = req.spec && !req.destroy ? await compileSpec(req.spec, state, s.env) : [];
  for (const t of [...(req.targets ?? []), ...(req.replace ?? [])]) {
    if (!desired.some((d) => d.address === t) && !state.resources.has(t)) {
      throw new UsageError(`no resource ${t} in the configuration or the state`, { hint: "addresses look like domain.vm01, disk.vm01.root, network.lago; see `lago show`" });
    }
  }
  const observed = req.refresh && state.resources.size ? await refresh(engine, state, s.parallelism * 2) : undefined;
  const plan = computePlan({
    desired,
    state,
    observed,
    initFileSha256: req.spec?.sha256 ?? state.initFileSha256 ?? "",
    targets: req.targets,
    replace: req.replace,
    destroy: req.destroy,
    restart: req.restart,
  });
  return { plan, state, recovered };
}

async function withLock<T>(s: Session, command: string, fn: () => Promise<T>): Promise<T> {
  const lock: EnvLock = await lockEnv(s.env.dir, command, s.lockTimeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

export async function planEnv(s: Session, req: PlanRequest): Promise<PlanResult> {
  return withLock(s, "lago plan", () => planLocked(s, req));
}

/** A plan saved with `plan --out`, applied later with `apply PLANFILE`. */
export interface SavedPlan {
  kind: "lago-plan";
  formatVersion: 1;
  env: string;
  workdir: string;
  initFile: string | null;
  restart: boolean;
  plan: Plan;
  /** For a templated init file: the variables and environment variables its render read. */
  template?: TemplateInfo | null;
}

export function sha256File(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

export interface ApplyRequest extends PlanRequest {
  /** Decide whether to go ahead once the plan is known (confirmation). */
  confirm: (plan: Plan, recovered: string[]) => Promise<boolean>;
  saved?: SavedPlan | undefined;
}

export interface ApplyResult {
  plan: Plan;
  outcome: ApplyOutcome | undefined;
  confirmed: boolean;
}

export async function applyEnv(s: Session, req: ApplyRequest): Promise<ApplyResult> {
  return withLock(s, req.destroy ? "lago destroy" : "lago apply", async () => {
    let plan: Plan;
    let state: State;
    let recovered: string[] = [];
    if (req.saved) {
      state = readState(envPaths.state(s.env));
      const saved = req.saved;
      if (pendingIntents(envPaths.journal(s.env)).length) {
        throw new UsageError("the saved plan is stale: an apply was interrupted since it was made; run `lago plan` again");
      }
      if ((state.lineage || null) !== saved.plan.lineage || state.serial !== saved.plan.serial) {
        throw new UsageError(`the saved plan is stale: the state changed since it was made (serial ${saved.plan.serial} → ${state.serial}); run \`lago plan\` again`);
      }
      if (saved.initFile && sha256File(saved.initFile) !== saved.plan.initFileSha256) {
        throw new UsageError(`the saved plan is stale: ${saved.initFile} changed since it was made; run \`lago plan\` again`);
      }
      plan = saved.plan;
    } else {
      ({ plan, state, recovered } = await planLocked(s, req));
    }
    const stateFile = envPaths.state(s.env);
    const journalFile = envPaths.journal(s.env);
    const pendingDrift = plan.drift.some((d) => d.type === "deleted");
    if (!hasChanges(plan) && !recovered.length && !pendingDrift) return { plan, outcome: undefined, confirmed: true };
    if (hasChanges(plan) && !(await req.confirm(plan, recovered))) return { plan, outcome: undefined, confirmed: false };
    // The recovered picture becomes the recorded one before anything else happens.
    if (recovered.length) {
      writeState(stateFile, state);
      new Journal(journalFile).clear();
      plan = { ...plan, serial: state.serial };
    }
    const journal = new Journal(journalFile);
    const outcome = await applyPlan({ engine: engineOf(s), plan, state, stateFile, journal, parallelism: s.parallelism, restart: req.restart ?? req.saved?.restart ?? false });
    if (req.destroy && !req.targets?.length && outcome.ok && state.resources.size === 0) {
      // Everything is gone: so are the environment's files (state, journal, console logs).
      rmSync(s.env.dir, { recursive: true, force: true });
    }
    return { plan, outcome, confirmed: true };
  });
}

/**
 * Change the recorded state outside plan/apply (verbs such as `lago stop` or
 * `lago snapshot` record what the user asked for), under the environment lock.
 * `fn` mutates the state it is given and returns whether it changed it; the
 * state is then saved atomically. Refused while an interrupted apply waits
 * to be resolved by the next `lago plan` or `lago apply`.
 */
export async function updateState<T>(s: Session, command: string, fn: (state: State) => Promise<{ changed: boolean; result: T }>): Promise<T> {
  return withLock(s, command, async () => {
    if (pendingIntents(envPaths.journal(s.env)).length) {
      throw new UsageError(`an interrupted apply of environment ${s.env.name} is not resolved yet`, { hint: "run `lago apply` first" });
    }
    const state = readState(envPaths.state(s.env));
    const { changed, result } = await fn(state);
    if (changed) writeState(envPaths.state(s.env), state);
    return result;
  });
}

/** The recorded state, read without the lock (it is always whole on disk). */
export function showState(env: EnvContext): State {
  return readState(envPaths.state(env));
}
