/**
 * The commands' engine entry points: plan, apply, destroy, show. Orchestrates
 * the pure layers (spec, graph, plan) and the side-effecting ones (refresh,
 * apply) under the environment lock. Never prints: emits events.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { sha256 } from "../util/hash.ts";
import { ConfigError, UsageError, errorMessage, type Diagnostic } from "../errors.ts";
import type { EnvSpec, TemplateInfo } from "../spec/types.ts";
import { compile, type TemplateResolution } from "../graph/compile.ts";
import { computePlan, hasChanges, type Plan } from "../plan/plan.ts";
import type { Drivers } from "../drivers/types.ts";
import { envPaths, type EnvContext } from "../env/context.ts";
import { toStored, writeState, type State } from "../state/state.ts";
import { loadState, StateWriter, type StateFiles } from "../state/store.ts";
import { lockEnv, type EnvLock } from "../state/lock.ts";
import { loadTemplateRepo, resolveTemplate, type TemplateRepo } from "../templates/repo.ts";
import type { DesiredResource } from "../resources/types.ts";
import type { TemplateRef } from "../drivers/types.ts";
import { diskAddress } from "../resources/common.ts";
import type { EngineContext } from "./context.ts";
import type { Emit } from "./events.ts";
import { recoverIntents } from "./recover.ts";
import { refresh } from "./refresh.ts";
import { applyPlan, executionGraph, type ApplyOutcome } from "./apply.ts";
import { annotatePlan } from "./plan-notes.ts";

export interface Session {
  env: EnvContext;
  drivers: Drivers;
  emit: Emit;
  signal: AbortSignal;
  lockTimeoutMs: number;
  parallelism: number;
  /** In-process crash simulation: once false, nothing more is written. */
  alive?: (() => boolean) | undefined;
}

function engineOf(s: Session): EngineContext {
  return { env: s.env, drivers: s.drivers, emit: s.emit, signal: s.signal, cache: new Map() };
}

/** The repository a spec resolves against: read, or why it could not be. */
export type RepoSource = { repo: TemplateRepo } | { error: string } | undefined;

/** The template a disk recorded in `prior` was created from, when it came from a repository. */
function recordedTemplate(prior: State | undefined, vm: string, disk: string): TemplateRef | undefined {
  const address = prior?.resources.get(diskAddress(vm, disk))?.attrs.template;
  if (typeof address !== "string") return undefined;
  const t = prior?.resources.get(address)?.attrs;
  const source = t?.source;
  if (!t || typeof t.repo !== "string" || typeof t.name !== "string" || typeof t.version !== "string" || typeof t.handle !== "string" || !source || typeof source !== "object" || Array.isArray(source)) return undefined;
  return { repo: t.repo, name: t.name, version: t.version, handle: t.handle, source: { type: source.type === "http" ? "http" : "file", location: String(source.location) } };
}

export interface TemplateResolutions {
  /** Resolved template of every template disk, by the disk's pointer. */
  templates: Map<string, TemplateResolution>;
  /** What the plan should say about them (versions kept although newer ones exist). */
  notices: string[];
}

export interface ResolveOptions {
  /** The recorded state: a disk keeps the template version it was created from (like a lock file). */
  prior?: State | undefined;
  /** Move every disk without a `template_version` to the repository's newest version. */
  upgrade?: boolean | undefined;
}

/**
 * Resolve every template disk, given the repository already read. Pure;
 * diagnostics carry positions. A disk without `template_version` gets the
 * newest version, unless the state records the version it was created from:
 * that version is kept (and the plan says that a newer one exists) until
 * `upgrade` is asked for.
 */
export function resolveTemplatesIn(spec: EnvSpec, source: RepoSource, options: ResolveOptions = {}): TemplateResolutions {
  const out = new Map<string, TemplateResolution>();
  const notices = new Set<string>();
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
          const name = disk.templateName ?? "";
          const recorded = disk.templateVersion === undefined && !options.upgrade ? recordedTemplate(options.prior, domain.name, disk.name) : undefined;
          if (recorded && recorded.repo === source.repo.name && recorded.name === name) {
            const newest = resolveTemplate(source.repo, name);
            const published = source.repo.templates.get(name)?.versions.has(recorded.version) === true;
            out.set(disk.pointer, { type: "repo", ref: published ? resolveTemplate(source.repo, name, recorded.version) : recorded });
            if (newest.version !== recorded.version) {
              notices.add(
                `template ${recorded.repo}:${name} stays at version ${recorded.version}, which the state records${published ? "" : " (the repository no longer publishes it; the store keeps it)"}; ${newest.version} is newer: \`lago apply --upgrade-templates\` moves to it (replacing the disks and VMs made from it)`,
              );
            }
          } else {
            out.set(disk.pointer, { type: "repo", ref: resolveTemplate(source.repo, name, disk.templateVersion) });
          }
        } catch (err) {
          diagnostics.push({ pos: spec.locate(pointer), pointer, message: errorMessage(err) });
        }
      }
    }
  }
  if (diagnostics.length) throw new ConfigError(diagnostics);
  return { templates: out, notices: [...notices].sort() };
}

/** Read the repository (only when a disk needs it) and resolve every template disk. */
export async function resolveTemplates(spec: EnvSpec, repoPath: string | undefined, options: ResolveOptions = {}): Promise<TemplateResolutions> {
  const needed = spec.domains.some((d) => d.disks.some((k) => k.type === "template" && !k.path));
  let source: RepoSource;
  if (needed && repoPath) {
    try {
      source = { repo: await loadTemplateRepo(repoPath) };
    } catch (err) {
      source = { error: errorMessage(err) };
    }
  }
  return resolveTemplatesIn(spec, source, options);
}

/** Compile `spec` against the recorded state; returns the desired graph and the plan's notices. */
export async function compileSpec(spec: EnvSpec, state: State, env: EnvContext, options: { upgradeTemplates?: boolean | undefined } = {}): Promise<{ desired: DesiredResource[]; notices: string[] }> {
  const { templates, notices } = await resolveTemplates(spec, env.config.templateRepoPath, { prior: state, upgrade: options.upgradeTemplates });
  return { desired: compile({ spec, templates, prior: state, domainType: env.config.domainType }), notices };
}

export interface PlanRequest {
  /**
   * The environment's spec, or how to load it: a loader runs under the lock while the recorded
   * resources are read back from reality, so that the two overlap.
   */
  spec: EnvSpec | undefined | (() => Promise<EnvSpec>);
  refresh: boolean;
  targets?: string[] | undefined;
  replace?: string[] | undefined;
  destroy?: boolean | undefined;
  restart?: boolean | undefined;
  /** Move template disks without a `template_version` to the newest version (`--upgrade-templates`). */
  upgradeTemplates?: boolean | undefined;
}

export interface PlanResult {
  plan: Plan;
  /** The spec the plan was made from (loaded, when the request gave a loader). */
  spec: EnvSpec | undefined;
  state: State;
  recovered: string[];
  /** A journal of an earlier run was found (the checkpoint did not hold everything). */
  interrupted: boolean;
}

const filesOf = (env: EnvContext): StateFiles => ({ state: envPaths.state(env), journal: envPaths.journal(env) });

/** Read the state, resolve an interrupted apply in memory, refresh, plan. Caller holds the lock. */
async function planLocked(s: Session, req: PlanRequest): Promise<PlanResult> {
  const { state, pending, interrupted } = loadState(filesOf(s.env));
  const engine = engineOf(s);
  const recovered = await recoverIntents(engine, state, pending);
  // Reading reality back needs only the state: it starts first, and the init file is read and compiled
  // while its virsh process answers. If that fails, the refresh is cancelled: the spec's error is the news.
  const cancelRefresh = new AbortController();
  const refreshStarted = Date.now();
  const refreshEngine: EngineContext = {
    ...engine,
    signal: AbortSignal.any([engine.signal, cancelRefresh.signal]),
    // Nothing from a cancelled refresh may follow the error it gave way to.
    emit: (e) => {
      if (!cancelRefresh.signal.aborted) engine.emit(e);
    },
  };
  const refreshing = req.refresh && state.resources.size ? refresh(refreshEngine, state, s.parallelism * 2) : undefined;
  refreshing?.catch(() => undefined); // awaited below, unless the spec fails first
  let spec: EnvSpec | undefined;
  let desired: DesiredResource[] = [];
  let notices: string[] = [];
  try {
    spec = typeof req.spec === "function" ? await req.spec() : req.spec;
    if (spec && !req.destroy) ({ desired, notices } = await compileSpec(spec, state, s.env, { upgradeTemplates: req.upgradeTemplates }));
    for (const t of [...(req.targets ?? []), ...(req.replace ?? [])]) {
      if (!desired.some((d) => d.address === t) && !state.resources.has(t)) {
        throw new UsageError(`no resource ${t} in the configuration or the state`, { hint: "addresses look like domain.vm01, disk.vm01.root, network.lago; see `lago show`" });
      }
    }
  } catch (err) {
    cancelRefresh.abort();
    throw err;
  }
  const observed = await refreshing;
  if (observed) engine.emit({ type: "refresh", count: state.resources.size, elapsedMs: Date.now() - refreshStarted });
  const plan = computePlan({
    desired,
    state,
    observed,
    initFileSha256: spec?.sha256 ?? state.initFileSha256 ?? "",
    targets: req.targets,
    replace: req.replace,
    destroy: req.destroy,
    restart: req.restart,
  });
  plan.notices = notices;
  if (spec) refuseShrinks(plan, spec);
  await annotatePlan(engine, plan, state, s.parallelism * 2);
  return { plan, spec, state, recovered, interrupted };
}

async function withLock<T>(s: Session, command: string, fn: () => Promise<T>): Promise<T> {
  const lock: EnvLock = await lockEnv(s.env.dir, command, s.lockTimeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Let libvirt's connection start while the lock is taken and the state and init file are read: for a plan
 * that refreshes something recorded, and for every apply (its first query or change takes it).
 */
function warmUp(s: Session, req: PlanRequest, applying: boolean): void {
  if (applying || (req.refresh && hasState(s))) s.drivers.libvirt.warmUp();
}

/** Whether the environment has recorded anything yet: a checkpoint, or the journal of a run. */
function hasState(s: Session): boolean {
  const files = filesOf(s.env);
  return existsSync(files.state) || existsSync(files.journal);
}

/**
 * The request with its spec loaded now, before the lock, when the environment has no state yet: then no refresh
 * runs for the loader to overlap, and a bad init file fails before anything (the lock, the environment's
 * directory) is made on disk. With a state, the loader runs under the lock, beside the refresh.
 */
async function loadedFirst<R extends PlanRequest>(s: Session, req: R): Promise<R> {
  return typeof req.spec === "function" && !hasState(s) ? { ...req, spec: await req.spec() } : req;
}

export async function planEnv(s: Session, req: PlanRequest): Promise<PlanResult> {
  warmUp(s, req, false);
  const ready = await loadedFirst(s, req);
  return withLock(s, "lago plan", () => planLocked(s, ready));
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
  return sha256(readFileSync(file));
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

export async function applyEnv(s: Session, request: ApplyRequest): Promise<ApplyResult> {
  warmUp(s, request, true);
  const req = await loadedFirst(s, request);
  return withLock(s, req.destroy ? "lago destroy" : "lago apply", async () => {
    let plan: Plan;
    let state: State;
    let recovered: string[] = [];
    let interrupted = false;
    if (req.saved) {
      const saved = req.saved;
      const loaded = loadState(filesOf(s.env));
      state = loaded.state;
      if (loaded.interrupted) {
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
      ({ plan, state, recovered, interrupted } = await planLocked(s, req));
    }
    const pendingDrift = plan.drift.length > 0;
    if (!hasChanges(plan) && !interrupted && !pendingDrift && !dependsOnChanged(plan)) return { plan, outcome: undefined, confirmed: true };
    // Checked before anything is written or asked: a plan the engine cannot order is a bug.
    const graph = executionGraph(plan, state);
    if (hasChanges(plan) && !(await req.confirm(plan, recovered))) return { plan, outcome: undefined, confirmed: false };
    const writer = new StateWriter(filesOf(s.env), state, { alive: s.alive });
    // The recovered picture (or a half-replayed journal) becomes a checkpoint before anything else happens.
    writer.begin({ checkpoint: interrupted });
    recordRefresh(writer, plan);
    if (!plan.destroy) writer.meta(plan.initFileSha256);
    let outcome: ApplyOutcome;
    try {
      outcome = await applyPlan({ engine: engineOf(s), plan, writer, parallelism: s.parallelism, restart: req.restart ?? req.saved?.restart ?? false, graph });
    } catch (err) {
      writer.close();
      throw err;
    }
    writer.finish();
    if (req.destroy && !req.targets?.length && outcome.ok && state.resources.size === 0 && s.alive?.() !== false) {
      // Everything is gone: so are the environment's files (state, journal, console logs).
      rmSync(s.env.dir, { recursive: true, force: true });
    }
    return { plan, outcome, confirmed: true };
  });
}

/** Whether a no-op resource now depends on other things (recorded without a reconciler call). */
function dependsOnChanged(plan: Plan): boolean {
  return plan.resourceChanges.some((c) => c.action === "no-op" && c.refreshed && c.refreshed.dependsOn.join("\0") !== c.dependsOn.join("\0"));
}

/**
 * Before any step: what refresh found becomes the record (resources deleted
 * outside lago are dropped unless they are created again, the others take
 * their observed attributes), and resources left as they are record their new
 * dependencies.
 */
function recordRefresh(writer: StateWriter, plan: Plan): void {
  const state = writer.state;
  // A resource deleted outside lago that is created again keeps its record until then: what is
  // still attached to it (a VM's NICs on a vanished network) needs it to let go of it.
  const recreated = new Set(plan.resourceChanges.filter((c) => c.action === "create").map((c) => c.address));
  for (const d of plan.drift) if (d.type === "deleted" && state.resources.has(d.address) && !recreated.has(d.address)) writer.set(d.address, null);
  for (const c of plan.resourceChanges) {
    const rec = c.refreshed;
    if (!rec) continue;
    const now = state.resources.get(c.address);
    const next = c.action === "no-op" ? { ...rec, dependsOn: c.dependsOn } : rec;
    if (!now || JSON.stringify(toStored(now)) !== JSON.stringify(toStored(next))) writer.set(c.address, next);
  }
}

/**
 * Shrinking a disk is refused at plan time, with the position of its `size`:
 * it would destroy the data at its end.
 */
function refuseShrinks(plan: Plan, spec: EnvSpec): void {
  const diagnostics: Diagnostic[] = [];
  for (const c of plan.resourceChanges) {
    if (c.kind !== "disk" || c.action !== "update") continue;
    // A disk written without a size has the size of its template (or what it was grown to): that counts too.
    const before = typeof c.before?.size === "number" ? c.before.size : c.refreshed?.outputs.virtual_size;
    const after = c.after?.size;
    if (typeof before !== "number" || typeof after !== "number" || after >= before) continue;
    const pointer = plan.desired.find((d) => d.address === c.address)?.pointer ?? "";
    diagnostics.push({
      pos: spec.locate(`${pointer}/size`),
      pointer: `${pointer}/size`,
      message: `${c.address} has ${before} bytes: shrinking it to ${after} would destroy the data at its end; give a size of at least ${before} bytes, or replace the disk with \`lago apply --replace ${c.address}\``,
    });
  }
  if (diagnostics.length) throw new ConfigError(diagnostics);
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
    const { state, interrupted } = loadState(filesOf(s.env));
    if (interrupted) throw new UsageError(`an interrupted apply of environment ${s.env.name} is not resolved yet`, { hint: "run `lago apply` first" });
    const { changed, result } = await fn(state);
    if (changed) writeState(envPaths.state(s.env), state, s.alive);
    return result;
  });
}

/** The recorded state (the checkpoint and the journal of a run in progress), read without the lock. */
export function showState(env: EnvContext): State {
  return loadState(filesOf(env)).state;
}
