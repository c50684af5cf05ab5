/**
 * Global options: defined once on the program and accepted before or after
 * any verb (`lago --env x plan` and `lago plan --env x`), including verbs that
 * other files register later. {@link shareGlobalOptions} copies them, hidden,
 * onto every subcommand once all verbs are registered; {@link globalOptionValues}
 * reads the value given closest to the verb that runs.
 */
import { Command, InvalidArgumentError, Option } from "commander";

/** Values of the global options, as `Cli.globals()` returns them. */
export interface GlobalOpts {
  workdir?: string;
  env: string;
  color: boolean;
  templateRepoPath?: string;
  templateStore?: string;
  leaseDir?: string;
  domainType?: string;
  lockTimeout: number;
  allowOutsidePaths?: boolean;
  allowSystemPaths?: boolean;
}

/** commander's parser of a number of seconds, 0 or more (an InvalidArgumentError is reported as bad usage, exit 1). */
export function seconds(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number of seconds (0 or more).");
  return n;
}

/** {@link seconds}, more than 0. */
export function positiveSeconds(value: string): number {
  const n = seconds(value);
  if (n === 0) throw new InvalidArgumentError("expected a number of seconds (more than 0).");
  return n;
}

/** commander's collector of a repeatable option. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `-f FILE` and the variables of an init file written as a Jinja2 template, for every verb that reads one. */
export function initFileOptions(command: Command): Command {
  return command
    .option("-f, --file <file>", "init file", "LagoInitFile")
    .option("--var <name=value>", "a variable for an init file written as a Jinja2 template (repeatable)", collect)
    .option("--var-file <file>", "a YAML or JSON file of template variables (repeatable; --var wins)", collect);
}

/** Define the global options on the program (the root command). */
export function addGlobalOptions(program: Command): void {
  program
    .option("--workdir <dir>", "the .lago working directory (default: found from the current directory upwards)")
    .option("--env <name>", "environment name inside the workdir", "default")
    .option("--template-repo-path <path|url>", "Lago template repository metadata (repo.metadata)")
    .option("--template-store <dir>", "shared template store")
    .option("--lease-dir <dir>", "shared subnet lease store")
    .addOption(new Option("--domain-type <type>", "libvirt domain type (qemu where KVM is unusable)").choices(["kvm", "qemu"]))
    .option("--lock-timeout <seconds>", "wait this long for the environment lock", seconds, 0)
    .option("--no-color", "disable colors")
    .option("--allow-outside-paths", "let build steps read host files outside the init file's directory")
    .option("--allow-system-paths", "let disk and template images lie in system directories (/dev, /etc, /usr, …)");
}

function optionKey(o: Option): string {
  return o.attributeName();
}

/** The copies {@link shareGlobalOptions} made (a verb's own option of the same name is not one). */
const copies = new WeakSet<Option>();

function hiddenCopy(o: Option): Option {
  const copy = new Option(o.flags, o.description).hideHelp();
  copies.add(copy);
  if (o.argChoices) copy.argChoices = [...o.argChoices];
  if (o.parseArg) copy.argParser(o.parseArg);
  return copy;
}

/**
 * Copy the program's options onto every subcommand (recursively), hidden from
 * the subcommand's own option list: its help shows them as "Global Options".
 * A subcommand that defines the same flag keeps its own. Call once, after every
 * verb is registered.
 */
export function shareGlobalOptions(program: Command): void {
  const globals = program.options.filter((o) => !o.hidden && o.long !== "--version" && o.long !== "--help");
  const visit = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      const taken = new Set(sub.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined)));
      for (const g of globals) {
        if ((g.long && taken.has(g.long)) || (g.short && taken.has(g.short))) continue;
        sub.addOption(hiddenCopy(g));
      }
      visit(sub);
    }
  };
  visit(program);
  program.configureHelp({ showGlobalOptions: true });
  const share = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.configureHelp({ showGlobalOptions: true });
      share(sub);
    }
  };
  share(program);
}

/** Whether the user gave this option on the command line or through its environment variable. */
function given(cmd: Command, key: string): boolean {
  const source = cmd.getOptionValueSource(key);
  return source === "cli" || source === "env";
}

/**
 * The global options' values for the verb `action`: for each option, the value
 * given on the command closest to the verb (the verb itself, then its parents),
 * else the program's default.
 */
export function globalOptionValues(program: Command, action: Command | undefined): GlobalOpts {
  const values: Record<string, unknown> = { ...program.opts() };
  for (const o of program.options) {
    const key = optionKey(o);
    for (let cmd: Command | null = action ?? null; cmd && cmd !== program; cmd = cmd.parent) {
      if (cmd.options.some((x) => copies.has(x) && optionKey(x) === key) && given(cmd, key)) {
        values[key] = cmd.getOptionValue(key);
        break;
      }
    }
  }
  return values as unknown as GlobalOpts;
}

/**
 * Whether option `key` (camelCase) was given on the command line of `cmd` or
 * of a command above it (a global option before the verb), as opposed to
 * defaulted.
 */
export function optionGiven(cmd: Command | undefined, key: string): boolean {
  for (let c: Command | null = cmd ?? null; c; c = c.parent) if (given(c, key)) return true;
  return false;
}
