/**
 * What a verb's implementation gets from the command line: the output
 * streams, the global options (given before or after the verb), styling, the
 * environment, the exit code it sets, and graceful interruption.
 */
import type { Command } from "commander";
import { loadConfig, type ConfigOverrides } from "../config/config.ts";
import { findWorkdir, makeEnvContext, type EnvContext } from "../env/context.ts";
import { currentEnvName } from "../env/current.ts";
import type { Style } from "../plan/render.ts";
import { makeStyle } from "./output.ts";
import { EXIT } from "./exit-codes.ts";
import { globalOptionValues, optionGiven, type GlobalOpts } from "./global-options.ts";

export type { GlobalOpts };

const SIGNAL_NUMBER: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export class Cli {
  readonly out = process.stdout;
  readonly err = process.stderr;
  exitCode: number = EXIT.ok;
  /** The verb being run (set by the program's preAction hook). */
  command: Command | undefined;
  /** The signal that interrupted the command, if one did. */
  interrupted: NodeJS.Signals | undefined;
  /** Called once when the command is interrupted (renderers say what happens next). */
  onInterrupt: ((signal: NodeJS.Signals) => void) | undefined;
  private controller: AbortController | undefined;

  constructor(private readonly program: Command) {}

  /** The global options, wherever on the command line they were given. */
  globals(): GlobalOpts {
    return globalOptionValues(this.program, this.command);
  }

  /** Whether the verb's option `key` (camelCase) was given on the command line rather than defaulted. */
  given(key: string): boolean {
    return optionGiven(this.command, key);
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
      "lago.allow_outside_paths": g.allowOutsidePaths ? "yes" : undefined,
      "lago.allow_system_paths": g.allowSystemPaths ? "yes" : undefined,
    };
    const config = loadConfig(process.env, overrides);
    const workdir = findWorkdir(process.cwd(), g.workdir);
    // Without --env, the environment `lago env select` made current (Lago's set-current), else the default.
    const name = optionGiven(this.command, "env") ? g.env : (currentEnvName(workdir) ?? g.env);
    return makeEnvContext(workdir, name, config);
  }

  /**
   * An abort signal for the engine that Ctrl-C (SIGINT), SIGTERM or SIGHUP
   * fires: what runs is cancelled, nothing new starts, the state and the
   * journal record it, and the command exits with 128 + the signal's number
   * (130 for Ctrl-C). A second signal exits at once; the journal lets the next
   * run finish the picture. The same signal for every call.
   */
  interruptible(): AbortSignal {
    if (this.controller) return this.controller.signal;
    const controller = new AbortController();
    this.controller = controller;
    const handler = (signal: NodeJS.Signals): void => {
      if (this.interrupted) {
        this.err.write(`\nInterrupted again: exiting now. The next \`lago apply\` reads back what was left half-done.\n`);
        process.exit(this.interruptExitCode());
      }
      this.interrupted = signal;
      this.onInterrupt?.(signal);
      if (!this.onInterrupt) this.err.write(`\nInterrupted: cancelling running steps and saving the state (Ctrl-C again to quit now)...\n`);
      controller.abort(new Error(`interrupted by ${signal}`));
    };
    // Listeners stay installed (never `once`): libraries that restore the
    // terminal on exit (signal-exit) kill the process when they are alone.
    for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(s, handler);
    return controller.signal;
  }

  /** 128 + the signal's number once interrupted (130 for Ctrl-C). */
  interruptExitCode(): number {
    return this.interrupted ? 128 + (SIGNAL_NUMBER[this.interrupted] ?? 2) : EXIT.ok;
  }
}
