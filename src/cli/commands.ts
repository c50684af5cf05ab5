/**
 * The verbs' implementations. Loaded on demand by `main.ts`, so that `lago
 * --version` and `--help` never pay for the engine, the YAML and schema
 * libraries or the drivers.
 */
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { stringify } from "safe-stable-stringify";
import { LagoError, UsageError } from "../errors.ts";
import { hintFor } from "../error-hints.ts";
import type { EnvContext } from "../env/context.ts";
import { createDrivers } from "../drivers/factory.ts";
import { applyEnv, compileSpec, planEnv, resolveTemplates, showState, type ApplyResult, type SavedPlan, type Session } from "../engine/session.ts";
import { readSavedPlan, writeSavedPlan } from "../plan/saved-plan.ts";
import { hasChanges } from "../plan/plan.ts";
import { planToJson } from "../plan/json.ts";
import { renderPlan } from "../plan/render.ts";
import { toDot } from "../graph/graph.ts";
import { chooseRenderer } from "./progress/choose.ts";
import { errorJson } from "./progress/json-renderer.ts";
import type { ProgressRenderer } from "./progress/renderer.ts";
import { hintContext } from "./report-error.ts";
import type { Emit } from "../engine/events.ts";
import { EXIT } from "./exit-codes.ts";
import { DEFAULT_PARALLELISM } from "../engine/parallelism.ts";
import type { Cli } from "./main.ts";
import { loadInitFile, type InitFileOpts } from "./init-file.ts";

export type { InitFileOpts };

function session(cli: Cli, env: EnvContext, emit: Emit, parallelism = DEFAULT_PARALLELISM, signal = cli.interruptible()): Session {
  return { env, drivers: createDrivers(env), emit, signal, lockTimeoutMs: cli.globals().lockTimeout * 1000, parallelism };
}

/**
 * Ask on the terminal (stderr, never stdout, which may carry JSON). Resolves
 * to whether the answer was `yes`; Ctrl-C at the question counts as an
 * interruption. Without a terminal it refuses: changes need --auto-approve.
 */
async function confirm(cli: Cli, autoApprove: boolean, question: string): Promise<boolean> {
  if (autoApprove) return true;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError("refusing to change anything without confirmation: standard input is not a terminal", { hint: "pass --auto-approve to apply without asking" });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const asking = new AbortController();
  rl.on("SIGINT", () => {
    cli.interrupted = "SIGINT";
    asking.abort();
  });
  try {
    const answer = await rl.question(`${question}\n  Only 'yes' will be accepted: `, { signal: asking.signal });
    return answer.trim() === "yes";
  } catch (err) {
    if (asking.signal.aborted) {
      process.stderr.write("\n");
      return false;
    }
    throw err;
  } finally {
    rl.close();
  }
}

/** The renderer for `apply`/`destroy`, hooked to Ctrl-C. */
async function renderer(cli: Cli, json: boolean): Promise<ProgressRenderer> {
  const r = await chooseRenderer({ json, out: cli.out, err: cli.err, style: cli.style(), hints: hintContext(cli) });
  cli.onInterrupt = (signal) => r.interrupted(signal);
  return r;
}

/** Report how the run ended and set the exit code. */
function finish(cli: Cli, r: ProgressRenderer, verb: "apply" | "destroy", result: ApplyResult): void {
  const outcome = result.outcome;
  const hints = hintContext(cli);
  for (const f of outcome?.failed ?? []) {
    const cancelled = cli.interrupted !== undefined && /was cancelled/.test(f.error.message);
    r.failure(f.address, f.error, cancelled ? undefined : hintFor(f.error, hints), cancelled);
  }
  const ok = result.confirmed && (outcome?.ok ?? true) && !cli.interrupted;
  cli.exitCode = cli.interrupted ? cli.interruptExitCode() : ok ? EXIT.ok : EXIT.error;
  r.summary({
    verb,
    plan: result.plan,
    ok,
    exitCode: cli.exitCode,
    done: outcome?.done ?? 0,
    failed: outcome?.failed.length ?? 0,
    skipped: outcome?.skipped.length ?? 0,
    cancelled: !result.confirmed && !cli.interrupted,
    interrupted: cli.interrupted,
  });
}

/** Run `fn` with the renderer; a thrown error is also reported in the JSON stream. */
async function rendering(cli: Cli, r: ProgressRenderer, json: boolean, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    r.close();
    if (json && err instanceof LagoError) {
      cli.out.write(`${JSON.stringify({ time: new Date().toISOString(), type: "error", error: errorJson(err, hintFor(err, hintContext(cli))) })}\n`);
    }
    throw err;
  } finally {
    r.close();
    cli.onInterrupt = undefined;
  }
}

export async function validate(cli: Cli, opts: InitFileOpts): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const env = cli.env();
  if (env.config.templateRepoPath) await resolveTemplates(spec, env.config.templateRepoPath);
  cli.out.write(`${path.relative(process.cwd(), spec.file) || spec.file} is valid: ${spec.domains.length} domain(s), ${spec.nets.length} net(s).\n`);
}

export interface PlanOpts extends InitFileOpts {
  json?: boolean;
  out?: string;
  detailedExitcode?: boolean;
  target?: string[];
  replace?: string[];
  restart?: boolean;
  destroy?: boolean;
  refresh: boolean;
  upgradeTemplates?: boolean;
}

export async function plan(cli: Cli, opts: PlanOpts): Promise<void> {
  const env = cli.env();
  const { plan, recovered, spec } = await planEnv(session(cli, env, () => undefined), {
    spec: opts.destroy ? undefined : () => loadInitFile(cli, opts),
    refresh: opts.refresh,
    targets: opts.target,
    replace: opts.replace,
    destroy: opts.destroy,
    restart: opts.restart,
    upgradeTemplates: opts.upgradeTemplates,
  });
  if (opts.json) cli.out.write(`${stringify(planToJson(plan), null, 2)}\n`);
  else {
    for (const r of recovered) cli.out.write(`${cli.style().yellow(`An interrupted apply was found: ${r}`)}\n`);
    cli.out.write(renderPlan(plan, cli.style()));
  }
  if (opts.out) {
    const saved: SavedPlan = { kind: "lago-plan", formatVersion: 1, env: env.name, workdir: env.workdir, initFile: spec?.file ?? null, restart: opts.restart ?? false, plan, template: spec?.template ?? null };
    writeSavedPlan(opts.out, saved);
    if (!opts.json) cli.out.write(`\nSaved the plan to ${opts.out}. Apply exactly this plan with: lago apply ${opts.out}\n`);
  }
  if (opts.detailedExitcode && hasChanges(plan)) cli.exitCode = EXIT.changes;
}

export interface ApplyOpts extends InitFileOpts {
  autoApprove?: boolean;
  parallelism: number;
  restart?: boolean;
  target?: string[];
  replace?: string[];
  refresh: boolean;
  json?: boolean;
  upgradeTemplates?: boolean;
}

/** Options that shape a plan: with a saved plan they would be ignored, so they are refused. */
const PLAN_SHAPING: readonly (readonly [key: string, flag: string])[] = [
  ["file", "-f/--file"],
  ["var", "--var"],
  ["varFile", "--var-file"],
  ["target", "--target"],
  ["replace", "--replace"],
  ["refresh", "--no-refresh"],
  ["restart", "--restart"],
  ["templateRepoPath", "--template-repo-path"],
  ["domainType", "--domain-type"],
  ["upgradeTemplates", "--upgrade-templates"],
];

export async function apply(cli: Cli, planfile: string | undefined, opts: ApplyOpts): Promise<void> {
  const json = opts.json === true;
  const r = await renderer(cli, json);
  await rendering(cli, r, json, async () => {
    const env = cli.env();
    let saved: SavedPlan | undefined;
    if (planfile) {
      const refused = PLAN_SHAPING.filter(([key]) => cli.given(key)).map(([, flag]) => flag);
      if (refused.length) {
        throw new UsageError(`${refused.join(", ")} cannot be used with a saved plan: ${planfile} already says exactly what to do`, {
          hint: `apply it as it is (lago apply ${planfile}), or make a new plan with those options (lago plan … --out ${planfile})`,
        });
      }
      saved = readSavedPlan(planfile);
      if (saved.env !== env.name || saved.workdir !== env.workdir) throw new UsageError(`${planfile} was made for environment ${saved.env} in ${saved.workdir}, not ${env.name} in ${env.workdir}`);
    }
    let shown = false;
    const result = await applyEnv(session(cli, env, r.emit, opts.parallelism), {
      spec: saved ? undefined : () => loadInitFile(cli, opts),
      saved,
      refresh: opts.refresh,
      targets: opts.target,
      replace: opts.replace,
      restart: opts.restart ?? saved?.restart,
      upgradeTemplates: opts.upgradeTemplates,
      confirm: async (plan, recovered) => {
        r.plan(plan, recovered);
        shown = true;
        return saved !== undefined || confirm(cli, opts.autoApprove === true, "Do you want to perform these actions?");
      },
    });
    if (!shown) r.plan(result.plan, []);
    finish(cli, r, "apply", result);
  });
}

export async function destroy(cli: Cli, opts: { autoApprove?: boolean; parallelism: number; target?: string[]; json?: boolean }): Promise<void> {
  const json = opts.json === true;
  const r = await renderer(cli, json);
  await rendering(cli, r, json, async () => {
    const env = cli.env();
    let shown = false;
    const result = await applyEnv(session(cli, env, r.emit, opts.parallelism), {
      spec: undefined,
      destroy: true,
      refresh: true,
      targets: opts.target,
      confirm: async (plan, recovered) => {
        r.plan(plan, recovered);
        shown = true;
        return confirm(cli, opts.autoApprove === true, `Do you really want to destroy environment ${env.name}? Every VM, disk and network in it will be deleted.`);
      },
    });
    if (!shown) r.plan(result.plan, []);
    finish(cli, r, "destroy", result);
  });
}

export function show(cli: Cli, opts: { json?: boolean }): void {
  const env = cli.env();
  const state = showState(env);
  if (opts.json) {
    const resources = [...state.resources.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
    cli.out.write(`${JSON.stringify({ env: env.name, workdir: env.workdir, lineage: state.lineage || null, serial: state.serial, resources }, null, 2)}\n`);
    return;
  }
  const st = cli.style();
  if (!state.resources.size) {
    cli.out.write(`Environment ${env.name} (${env.dir}) has no resources.\n`);
    return;
  }
  cli.out.write(`Environment ${st.bold(env.name)} (${env.dir}), serial ${state.serial}\n\n`);
  for (const r of [...state.resources.values()].sort((a, b) => (a.address < b.address ? -1 : 1))) {
    cli.out.write(`${st.bold(r.address)}${r.status === "tainted" ? st.red(` (tainted: ${r.reason ?? ""})`) : ""}\n`);
    for (const [k, v] of Object.entries(r.attrs)) cli.out.write(`    ${k}: ${JSON.stringify(v)}\n`);
    for (const [k, v] of Object.entries(r.outputs)) cli.out.write(`    ${st.dim(`${k}: ${JSON.stringify(v)}`)}\n`);
  }
}

export async function graph(cli: Cli, opts: InitFileOpts): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const env = cli.env();
  const { desired } = await compileSpec(spec, showState(env), env);
  cli.out.write(toDot(desired));
}
