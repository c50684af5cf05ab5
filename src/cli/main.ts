/**
 * The `lago` command line. The only layer that prints or exits: one top-level
 * handler (`report-error.ts`) maps errors to exit codes and friendly output.
 * Verbs are loaded on demand (`commands.ts`): `lago --version` and `--help`
 * load commander and kleur only.
 *
 * How a verb joins: a file exports a {@link RegisterVerbs} function that adds
 * its commands to the program (their actions import the implementation
 * lazily) and attaches examples with `attachExamples()`; one line in `VERB_FILES`
 * registers the file. Everything else is generic: the global options are
 * copied onto every verb (nested ones too) after all files registered, so they
 * work before or after it and show in its help; `cli.globals()` reads them,
 * `cli.given(key)` tells a flag given from a default, `cli.interruptible()`
 * gives the engine its abort signal (Ctrl-C → exit 130).
 */
import { Command, InvalidArgumentError } from "commander";
import { EXIT, EXIT_CODES_HELP } from "./exit-codes.ts";
import { VERSION } from "../version.ts";
import { DEFAULT_PARALLELISM } from "../engine/parallelism.ts";
import { Cli } from "./cli.ts";
import { addGlobalOptions, collect, initFileOptions, shareGlobalOptions } from "./global-options.ts";
import { CORE_EXAMPLES, attachExamples } from "./examples.ts";
import { reportError } from "./report-error.ts";
import { addOpsCommands } from "./ops-commands.ts";
import type { ApplyOpts, InitFileOpts, PlanOpts } from "./commands.ts";

export { EXIT, Cli };

/**
 * A file of verbs: registers them on the program. Verb implementations are
 * imported lazily inside their actions, so that `lago --version` stays fast.
 */
export type RegisterVerbs = (program: Command, cli: Cli) => void;

const commands = (): Promise<typeof import("./commands.ts")> => import("./commands.ts");

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a positive whole number.");
  return n;
}

/**
 * Verbs registered from other files, in the order `lago --help` lists them:
 * add one line per file (e.g. `addOpsCommands` from `./ops-commands.ts`).
 */
const VERB_FILES: RegisterVerbs[] = [addOpsCommands];

/**
 * The whole command line: global options, the core verbs, then each file of
 * `verbFiles`; finally what applies to every verb whoever registered it
 * (global options accepted after it, listed in its help).
 */
export function buildProgram(verbFiles: readonly RegisterVerbs[] = VERB_FILES): { program: Command; cli: Cli } {
  const program = new Command();
  const cli = new Cli(program);
  program
    .name("lago")
    .description("Build and evolve local libvirt VM test environments from a LagoInitFile: plan, then apply.")
    .version(VERSION)
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride()
    .addHelpText("after", `\nGlobal options go before or after the verb: \`lago --env ci plan\` = \`lago plan --env ci\`.\n\n${EXIT_CODES_HELP}`)
    .hook("preAction", (_program, action) => {
      cli.command = action;
    });
  addGlobalOptions(program);

  initFileOptions(
    program
      .command("validate")
      .description("check a LagoInitFile and report every problem as FILE:LINE:COL"),
  )
    .action(async (opts: InitFileOpts) => (await commands()).validate(cli, opts));

  initFileOptions(
    program
      .command("plan")
      .description("show what apply would change"),
  )
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

  initFileOptions(
    program
      .command("apply")
      .description("converge the environment to the init file (or apply a saved plan)")
      .argument("[planfile]", "a plan saved with `lago plan --out`"),
  )
    .option("--auto-approve", "do not ask for confirmation")
    .option("--parallelism <n>", "resources changed at the same time", positiveInt, DEFAULT_PARALLELISM)
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
    .option("--parallelism <n>", "resources destroyed at the same time", positiveInt, DEFAULT_PARALLELISM)
    .option("--target <address>", "only this resource (repeatable)", collect)
    .option("--json", "stream events as JSON lines")
    .action(async (opts: { autoApprove?: boolean; parallelism: number; target?: string[]; json?: boolean }) => (await commands()).destroy(cli, opts));

  program
    .command("show")
    .description("show what the state records, per resource")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }) => (await commands()).show(cli, opts));

  initFileOptions(
    program
      .command("graph")
      .description("print the resource graph in Graphviz DOT"),
  )
    .action(async (opts: InitFileOpts) => (await commands()).graph(cli, opts));

  attachExamples(program, CORE_EXAMPLES);
  for (const register of verbFiles) register(program, cli);
  shareGlobalOptions(program);
  return { program, cli };
}

/**
 * A reader that goes away (`lago plan --json | head`) costs the rest of the output, not the command: what it
 * was doing goes on and ends with its own exit code, instead of dying on an unhandled EPIPE.
 */
function tolerateClosedReaders(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE" && err.code !== "ERR_STREAM_DESTROYED") throw err;
    });
  }
}

/** Run the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  tolerateClosedReaders();
  const { program, cli } = buildProgram();
  try {
    await program.parseAsync(argv);
    return cli.interrupted ? cli.interruptExitCode() : cli.exitCode;
  } catch (err) {
    const code = reportError(cli, err);
    return cli.interrupted ? cli.interruptExitCode() : code;
  }
}
