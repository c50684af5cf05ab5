/**
 * The verbs' implementations. Loaded on demand by `main.ts`, so that `lago
 * --version` and `--help` never pay for the engine, the YAML and schema
 * libraries or the drivers.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { stringify } from "safe-stable-stringify";
import { UsageError } from "../errors.ts";
import { envPaths, type EnvContext } from "../env/context.ts";
import { createDrivers } from "../drivers/factory.ts";
import { loadSpec } from "../spec/load.ts";
import type { EnvSpec } from "../spec/types.ts";
import { applyEnv, compileSpec, planEnv, resolveTemplates, showState, type SavedPlan, type Session } from "../engine/session.ts";
import { hasChanges, type Plan } from "../plan/plan.ts";
import { planToJson } from "../plan/json.ts";
import { renderPlan, summaryLine } from "../plan/render.ts";
import { toDot } from "../graph/graph.ts";
import { eventRenderer } from "./events.ts";
import type { Emit } from "../engine/events.ts";
import { readState } from "../state/state.ts";
import { EXIT } from "./exit-codes.ts";
import type { Cli } from "./main.ts";

function session(cli: Cli, env: EnvContext, emit: Emit, parallelism = 4, signal = cli.interruptible()): Session {
  const timeout = Number(cli.globals().lockTimeout);
  if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`--lock-timeout takes seconds, got ${cli.globals().lockTimeout}`);
  return { env, drivers: createDrivers(env), emit, signal, lockTimeoutMs: timeout * 1000, parallelism };
}

async function loadInitFile(file: string | undefined): Promise<EnvSpec> {
  return loadSpec(path.resolve(file ?? "LagoInitFile"));
}

async function confirm(autoApprove: boolean, question: string): Promise<boolean> {
  if (autoApprove) return true;
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new UsageError("refusing to change anything without confirmation: standard input is not a terminal", { hint: "pass --auto-approve to apply without asking" });
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(`${question}\n  Only 'yes' will be accepted: `);
    return answer.trim() === "yes";
  } finally {
    rl.close();
  }
}

function printOutcome(cli: Cli, plan: Plan, result: Awaited<ReturnType<typeof applyEnv>>, verb: string): void {
  const st = cli.style();
  if (!result.confirmed) {
    cli.out.write(`${verb} cancelled.\n`);
    cli.exitCode = EXIT.error;
    return;
  }
  const outcome = result.outcome;
  // Without an outcome nothing needed doing, and the plan said so.
  if (!outcome) return;
  if (outcome.ok) {
    cli.out.write(`\n${st.green(st.bold(`${verb} complete!`))} ${summaryLine(plan).replace("Plan: ", "Resources: ").replace("to add", "added").replace("to change", "changed").replace("to replace", "replaced").replace("to destroy", "destroyed")}\n`);
    return;
  }
  cli.exitCode = EXIT.error;
  cli.err.write(`\n${st.red(st.bold(`${verb} failed.`))} ${outcome.failed.length} resource(s) failed, ${outcome.skipped.length} not attempted; the state records what was done.\n`);
  for (const f of outcome.failed) {
    cli.err.write(`\n${st.red("Error:")} ${f.error.message}\n`);
    if (f.error.hint) cli.err.write(`${st.dim(`hint: ${f.error.hint}`)}\n`);
  }
}

export async function validate(cli: Cli, opts: { file: string }): Promise<void> {
  const spec = await loadInitFile(opts.file);
  const env = cli.env();
  if (env.config.templateRepoPath) await resolveTemplates(spec, env.config.templateRepoPath);
  cli.out.write(`${path.relative(process.cwd(), spec.file) || spec.file} is valid: ${spec.domains.length} domain(s), ${spec.nets.length} net(s).\n`);
}

export interface PlanOpts {
  file: string;
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
  const spec = opts.destroy ? undefined : await loadInitFile(opts.file);
  const env = cli.env();
  const { plan, recovered } = await planEnv(session(cli, env, () => undefined), {
    spec,
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
    const saved: SavedPlan = { kind: "lago-plan", formatVersion: 1, env: env.name, workdir: env.workdir, initFile: spec?.file ?? null, restart: opts.restart ?? false, plan };
    writeFileSync(opts.out, `${JSON.stringify(saved)}\n`, { mode: 0o600 });
    if (!opts.json) cli.out.write(`\nSaved the plan to ${opts.out}. Apply exactly this plan with: lago apply ${opts.out}\n`);
  }
  if (opts.detailedExitcode && hasChanges(plan)) cli.exitCode = EXIT.changes;
}

export interface ApplyOpts {
  file: string;
  autoApprove?: boolean;
  parallelism: number;
  restart?: boolean;
  target?: string[];
  replace?: string[];
  refresh: boolean;
  json?: boolean;
  upgradeTemplates?: boolean;
}

export async function apply(cli: Cli, planfile: string | undefined, opts: ApplyOpts): Promise<void> {
  const env = cli.env();
  const st = cli.style();
  let saved: SavedPlan | undefined;
  if (planfile) {
    try {
      saved = JSON.parse(readFileSync(planfile, "utf8")) as SavedPlan;
    } catch (err) {
      throw new UsageError(`cannot read plan ${planfile}: ${(err as Error).message}`);
    }
    if (saved.kind !== "lago-plan" || saved.formatVersion !== 1) throw new UsageError(`${planfile} is not a lago plan`);
    if (saved.env !== env.name || saved.workdir !== env.workdir) throw new UsageError(`${planfile} was made for environment ${saved.env} in ${saved.workdir}, not ${env.name} in ${env.workdir}`);
  }
  const spec = saved ? undefined : await loadInitFile(opts.file);
  const result = await applyEnv(session(cli, env, eventRenderer(cli.out, st, opts.json === true), opts.parallelism), {
    spec,
    saved,
    refresh: opts.refresh,
    targets: opts.target,
    replace: opts.replace,
    restart: opts.restart ?? saved?.restart,
    upgradeTemplates: opts.upgradeTemplates,
    confirm: async (plan, recovered) => {
      if (!opts.json) {
        for (const r of recovered) cli.out.write(`${st.yellow(`An interrupted apply was found: ${r}`)}\n`);
        cli.out.write(renderPlan(plan, st));
        cli.out.write("\n");
      }
      return saved !== undefined || confirm(opts.autoApprove === true, "Do you want to perform these actions?");
    },
  });
  if (!opts.json && !result.outcome && result.confirmed) cli.out.write(renderPlan(result.plan, st));
  printOutcome(cli, result.plan, result, "Apply");
}

export async function destroy(cli: Cli, opts: { autoApprove?: boolean; parallelism: number; target?: string[]; json?: boolean }): Promise<void> {
  const env = cli.env();
  const st = cli.style();
  const result = await applyEnv(session(cli, env, eventRenderer(cli.out, st, opts.json === true), opts.parallelism), {
    spec: undefined,
    destroy: true,
    refresh: true,
    targets: opts.target,
    confirm: async (plan) => {
      if (!opts.json) cli.out.write(`${renderPlan(plan, st)}\n`);
      return confirm(opts.autoApprove === true, `Do you really want to destroy environment ${env.name}? Every VM, disk and network in it will be deleted.`);
    },
  });
  printOutcome(cli, result.plan, result, "Destroy");
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

export async function graph(cli: Cli, opts: { file: string }): Promise<void> {
  const spec = await loadInitFile(opts.file);
  const env = cli.env();
  const { desired } = await compileSpec(spec, showState(env), env);
  cli.out.write(toDot(desired));
}
