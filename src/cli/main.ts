/**
 * The `lago` command line. The only layer that prints or exits: one top-level
 * handler maps errors to exit codes and friendly output.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline/promises";
import { Command, Option, CommanderError } from "commander";
import { stringify } from "safe-stable-stringify";
import { ConfigError, LagoError, UsageError, formatDiagnostic, indent } from "../errors.ts";
import { loadConfig, type ConfigOverrides } from "../config/config.ts";
import { envPaths, findWorkdir, makeEnvContext, type EnvContext } from "../env/context.ts";
import { createDrivers } from "../drivers/factory.ts";
import { loadSpec } from "../spec/load.ts";
import type { EnvSpec } from "../spec/types.ts";
import { applyEnv, compileSpec, planEnv, resolveTemplates, showState, type SavedPlan, type Session } from "../engine/session.ts";
import { hasChanges, type Plan } from "../plan/plan.ts";
import { planToJson } from "../plan/json.ts";
import { renderPlan, summaryLine, type Style } from "../plan/render.ts";
import { toDot } from "../graph/graph.ts";
import { makeStyle } from "./output.ts";
import { eventRenderer } from "./events.ts";
import type { Emit } from "../engine/events.ts";
import { readState } from "../state/state.ts";
import { recordedSshTarget } from "../resources/domain.ts";

interface GlobalOpts {
  workdir?: string;
  env: string;
  color: boolean;
  templateRepoPath?: string;
  templateStore?: string;
  leaseDir?: string;
  domainType?: string;
  lockTimeout: string;
}

const EXIT = { ok: 0, error: 1, changes: 2, internal: 3 } as const;

class Cli {
  readonly out = process.stdout;
  readonly err = process.stderr;
  exitCode: number = EXIT.ok;

  constructor(private readonly program: Command) {}

  globals(): GlobalOpts {
    return this.program.opts<GlobalOpts>();
  }

  style(stream: NodeJS.WriteStream = this.out): Style {
    return makeStyle(stream, !this.globals().color);
  }

  env(): EnvContext {
    const g = this.globals();
    const overrides: ConfigOverrides = {
      "init.template_repo_path": g.templateRepoPath,
      "init.template_store": g.templateStore,
      "lago.lease_dir": g.leaseDir,
      "lago.domain_type": g.domainType,
    };
    const config = loadConfig(process.env, overrides);
    return makeEnvContext(findWorkdir(process.cwd(), g.workdir), g.env, config);
  }

  /**
   * Ctrl-C cancels what runs (commands are killed, nothing new starts) and lets
   * the state and journal record it; a second Ctrl-C exits at once.
   */
  interruptible(): AbortSignal {
    const controller = new AbortController();
    process.once("SIGINT", () => {
      this.err.write("\nInterrupted: cancelling running steps and saving the state (Ctrl-C again to quit now)...\n");
      controller.abort();
      process.once("SIGINT", () => process.exit(130));
    });
    return controller.signal;
  }

  session(env: EnvContext, emit: Emit, parallelism = 4, signal = this.interruptible()): Session {
    const timeout = Number(this.globals().lockTimeout);
    if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`--lock-timeout takes seconds, got ${this.globals().lockTimeout}`);
    return { env, drivers: createDrivers(env), emit, signal, lockTimeoutMs: timeout * 1000, parallelism };
  }

  async spec(file: string | undefined): Promise<EnvSpec> {
    return loadSpec(path.resolve(file ?? "LagoInitFile"));
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
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

export function buildProgram(): { program: Command; cli: Cli } {
  const program = new Command();
  const cli = new Cli(program);
  program
    .name("lago")
    .description("Build and evolve local libvirt VM test environments from a LagoInitFile: plan, then apply.")
    .version("0.1.0")
    .option("--workdir <dir>", "the .lago working directory (default: found from the current directory upwards)")
    .option("--env <name>", "environment name inside the workdir", "default")
    .option("--template-repo-path <path|url>", "Lago template repository metadata (repo.metadata)")
    .option("--template-store <dir>", "shared template store")
    .option("--lease-dir <dir>", "shared subnet lease store")
    .addOption(new Option("--domain-type <type>", "libvirt domain type").choices(["kvm", "qemu"]))
    .option("--lock-timeout <seconds>", "wait this long for the environment lock", "0")
    .option("--no-color", "disable colors")
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();

  program
    .command("validate")
    .description("check a LagoInitFile and report every problem as FILE:LINE:COL")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .action(async (opts: { file: string }) => {
      const spec = await cli.spec(opts.file);
      const env = cli.env();
      if (env.config.templateRepoPath) await resolveTemplates(spec, env.config.templateRepoPath);
      cli.out.write(`${path.relative(process.cwd(), spec.file) || spec.file} is valid: ${spec.domains.length} domain(s), ${spec.nets.length} net(s).\n`);
    });

  program
    .command("plan")
    .description("show what apply would change")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--json", "print the plan as JSON (schemas/plan.schema.json)")
    .option("--out <planfile>", "save the plan for `lago apply PLANFILE`")
    .option("--detailed-exitcode", "exit 0 when there are no changes, 2 when there are, 1 on error")
    .option("--target <address>", "only this resource and what it depends on (repeatable)", collect)
    .option("--replace <address>", "force replacing this resource (repeatable)", collect)
    .option("--restart", "plan restarting VMs whose changes wait for a restart")
    .option("--destroy", "plan destroying everything")
    .option("--no-refresh", "do not read reality, trust the state")
    .action(async (opts: { file: string; json?: boolean; out?: string; detailedExitcode?: boolean; target?: string[]; replace?: string[]; restart?: boolean; destroy?: boolean; refresh: boolean }) => {
      const spec = opts.destroy ? undefined : await cli.spec(opts.file);
      const env = cli.env();
      const { plan, recovered } = await planEnv(cli.session(env, () => undefined), {
        spec,
        refresh: opts.refresh,
        targets: opts.target,
        replace: opts.replace,
        destroy: opts.destroy,
        restart: opts.restart,
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
    });

  program
    .command("apply")
    .description("converge the environment to the init file (or apply a saved plan)")
    .argument("[planfile]", "a plan saved with `lago plan --out`")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--auto-approve", "do not ask for confirmation")
    .option("--parallelism <n>", "resources changed at the same time", positiveInt, 4)
    .option("--restart", "restart VMs whose changes wait for a restart (gracefully first)")
    .option("--target <address>", "only this resource and what it depends on (repeatable)", collect)
    .option("--replace <address>", "force replacing this resource (repeatable)", collect)
    .option("--no-refresh", "do not read reality, trust the state")
    .option("--json", "stream events as JSON lines")
    .action(async (planfile: string | undefined, opts: { file: string; autoApprove?: boolean; parallelism: number; restart?: boolean; target?: string[]; replace?: string[]; refresh: boolean; json?: boolean }) => {
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
      const spec = saved ? undefined : await cli.spec(opts.file);
      const result = await applyEnv(cli.session(env, eventRenderer(cli.out, st, opts.json === true), opts.parallelism), {
        spec,
        saved,
        refresh: opts.refresh,
        targets: opts.target,
        replace: opts.replace,
        restart: opts.restart ?? saved?.restart,
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
    });

  program
    .command("destroy")
    .description("destroy every resource of the environment")
    .option("--auto-approve", "do not ask for confirmation")
    .option("--parallelism <n>", "resources destroyed at the same time", positiveInt, 4)
    .option("--target <address>", "only this resource (repeatable)", collect)
    .option("--json", "stream events as JSON lines")
    .action(async (opts: { autoApprove?: boolean; parallelism: number; target?: string[]; json?: boolean }) => {
      const env = cli.env();
      const st = cli.style();
      const result = await applyEnv(cli.session(env, eventRenderer(cli.out, st, opts.json === true), opts.parallelism), {
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
    });

  program
    .command("show")
    .description("show what the state records, per resource")
    .option("--json", "as JSON")
    .action((opts: { json?: boolean }) => {
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
    });

  program
    .command("ssh")
    .description("run a command on a VM over SSH with the environment's key (host key pinned)")
    .argument("<vm>", "VM name from the init file")
    .argument("<command...>", "the command and its arguments, run by the VM's shell")
    .option("--timeout <seconds>", "give up after this long", positiveInt, 60)
    .passThroughOptions()
    .action(async (vm: string, command: string[], opts: { timeout: number }) => {
      const env = cli.env();
      const state = showState(env);
      const domain = state.resources.get(`domain.${vm}`);
      const keys = state.resources.get("keypair");
      if (!domain || !keys) throw new UsageError(`no VM ${vm} in environment ${env.name}`, { hint: "see `lago show`" });
      const target = recordedSshTarget(domain, keys);
      if (!target) throw new UsageError(`VM ${vm} has no address on a management net lago can reach`);
      const result = await createDrivers(env).ssh.exec(target, command.join(" "), { timeoutMs: opts.timeout * 1000 });
      cli.out.write(result.stdout);
      cli.err.write(result.stderr);
      cli.exitCode = result.code;
    });

  program
    .command("graph")
    .description("print the resource graph in Graphviz DOT")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .action(async (opts: { file: string }) => {
      const spec = await cli.spec(opts.file);
      const env = cli.env();
      const desired = await compileSpec(spec, readState(envPaths.state(env)), env);
      cli.out.write(toDot(desired));
    });
  return { program, cli };
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { program, cli } = buildProgram();
  try {
    await program.parseAsync(argv);
    return cli.exitCode;
  } catch (err) {
    return reportError(cli, err);
  }
}

function reportError(cli: Cli, err: unknown): number {
  const st = cli.style(process.stderr);
  if (err instanceof CommanderError) {
    return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help" ? EXIT.ok : EXIT.error;
  }
  if (err instanceof ConfigError) {
    for (const d of err.diagnostics) cli.err.write(`${formatDiagnostic(d)}\n`);
    cli.err.write(`${st.red(`${err.diagnostics.length} problem${err.diagnostics.length === 1 ? "" : "s"} found.`)}\n`);
    return EXIT.error;
  }
  if (err instanceof LagoError) {
    cli.err.write(`${st.red("Error:")} ${err.message}\n`);
    if (err.hint) cli.err.write(`${st.dim(`hint: ${err.hint}`)}\n`);
    return EXIT.error;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  cli.err.write(`${st.red("Internal error:")} ${e.message}\n${st.dim("This is a bug in lago. Run with LAGO_DEBUG=1 for the stack trace.")}\n`);
  if (process.env.LAGO_DEBUG) cli.err.write(`${indent(e.stack ?? "")}\n`);
  return EXIT.internal;
}
