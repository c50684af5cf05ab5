/**
 * The `lago` command line. The only layer that prints or exits: one top-level
 * handler maps errors to exit codes and friendly output. Verbs are loaded on
 * demand (`commands.ts`): `lago --version` and `--help` load commander and
 * kleur only.
 */
import { Command, Option, CommanderError } from "commander";
import { ConfigError, LagoError, UsageError, formatDiagnostic, indent } from "../errors.ts";
import { loadConfig, type ConfigOverrides } from "../config/config.ts";
import { findWorkdir, makeEnvContext, type EnvContext } from "../env/context.ts";
import { currentEnvName } from "../env/current.ts";
import type { Style } from "../plan/render.ts";
import { makeStyle } from "./output.ts";
import { EXIT } from "./exit-codes.ts";
import type { ApplyOpts, PlanOpts } from "./commands.ts";
import { addOpsCommands } from "./ops-commands.ts";

export { EXIT };

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


const commands = (): Promise<typeof import("./commands.ts")> => import("./commands.ts");

export class Cli {
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
    const workdir = findWorkdir(process.cwd(), g.workdir);
    // Without --env, the environment `lago env select` made current (Lago's set-current), else "default".
    const name = this.program.getOptionValueSource("env") === "default" ? (currentEnvName(workdir) ?? g.env) : g.env;
    return makeEnvContext(workdir, name, config);
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
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`expected a positive whole number, got ${JSON.stringify(value)}`);
  return n;
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
    .action(async (opts: { file: string }) => (await commands()).validate(cli, opts));

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
    .option("--upgrade-templates", "move template disks without a template_version to the repository's newest version")
    .action(async (opts: PlanOpts) => (await commands()).plan(cli, opts));

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
    .option("--upgrade-templates", "move template disks without a template_version to the repository's newest version")
    .action(async (planfile: string | undefined, opts: ApplyOpts) => (await commands()).apply(cli, planfile, opts));

  program
    .command("destroy")
    .description("destroy every resource of the environment")
    .option("--auto-approve", "do not ask for confirmation")
    .option("--parallelism <n>", "resources destroyed at the same time", positiveInt, 4)
    .option("--target <address>", "only this resource (repeatable)", collect)
    .option("--json", "stream events as JSON lines")
    .action(async (opts: { autoApprove?: boolean; parallelism: number; target?: string[]; json?: boolean }) => (await commands()).destroy(cli, opts));

  program
    .command("show")
    .description("show what the state records, per resource")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await commands()).show(cli, opts));

  program
    .command("graph")
    .description("print the resource graph in Graphviz DOT")
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .action(async (opts: { file: string }) => (await commands()).graph(cli, opts));
  addOpsCommands(program, cli);
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
    cli.err.write(`${st.red(err.code === "INTERNAL" ? "Internal error:" : "Error:")} ${err.message}\n`);
    if (err.hint) cli.err.write(`${st.dim(`hint: ${err.hint}`)}\n`);
    return err.code === "INTERNAL" ? EXIT.internal : EXIT.error;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  cli.err.write(`${st.red("Internal error:")} ${e.message}\n${st.dim("This is a bug in lago. Run with LAGO_DEBUG=1 for the stack trace.")}\n`);
  if (process.env.LAGO_DEBUG) cli.err.write(`${indent(e.stack ?? "")}\n`);
  return EXIT.internal;
}
