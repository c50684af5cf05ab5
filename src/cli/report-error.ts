/**
 * The single top-level handler: maps any error to an exit code and friendly
 * output on stderr — what failed, where, why, and the next step when lago
 * knows one ({@link hintFor}). Never a stack trace unless LAGO_DEBUG is set.
 */
import { CommanderError } from "commander";
import { ConfigError, LagoError, formatDiagnostic, indent } from "../errors.ts";
import { hintFor, isEnvironmentError, type HintContext } from "../error-hints.ts";
import type { Cli } from "./cli.ts";
import { EXIT } from "./exit-codes.ts";

/** Where the environment keeps shared files, for hints; empty when the configuration itself is unreadable. */
export function hintContext(cli: Cli): HintContext {
  try {
    const { config } = cli.env();
    return { templateStore: config.templateStore, leaseDir: config.leaseDir, libvirtUri: config.libvirtUri };
  } catch {
    return {};
  }
}

/** An error that wraps one lago raised on purpose (e.g. a failed command while recovering) is not a bug. */
function causedByLagoError(err: unknown): err is Error {
  for (let e: unknown = err instanceof Error ? err.cause : undefined; e instanceof Error; e = e.cause) {
    if (e instanceof LagoError || isEnvironmentError(e)) return true;
  }
  return false;
}

/** Print `err` on stderr; returns the exit code. */
export function reportError(cli: Cli, err: unknown): number {
  const st = cli.style(cli.err);
  if (err instanceof CommanderError) {
    return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help" ? EXIT.ok : EXIT.error;
  }
  if (err instanceof ConfigError) {
    for (const d of err.diagnostics) cli.err.write(`${formatDiagnostic(d)}\n`);
    cli.err.write(`${st.red(`${err.diagnostics.length} problem${err.diagnostics.length === 1 ? "" : "s"} found.`)}\n`);
    if (err.hint) cli.err.write(`${st.dim(`hint: ${err.hint}`)}\n`);
    return EXIT.error;
  }
  if (cli.interrupted) {
    cli.err.write(`${st.yellow("Interrupted.")} ${err instanceof Error ? err.message.split("\n")[0] : String(err)}\n`);
    return cli.interruptExitCode();
  }
  if (err instanceof LagoError && err.code === "INTERNAL") {
    // A bug detected on purpose (e.g. a cycle in the execution graph): said as such, exit 3.
    cli.err.write(`${st.red("Internal error:")} ${err.message}\n`);
    if (err.hint) cli.err.write(`${st.dim(`hint: ${err.hint}`)}\n`);
    return EXIT.internal;
  }
  if (err instanceof LagoError || isEnvironmentError(err) || causedByLagoError(err)) {
    cli.err.write(`${st.red("Error:")} ${err.message}\n`);
    const hint = hintFor(err, hintContext(cli));
    if (hint) cli.err.write(`${st.dim(`hint: ${hint}`)}\n`);
    if (process.env.LAGO_DEBUG && err.stack) cli.err.write(`${indent(err.stack)}\n`);
    return EXIT.error;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  cli.err.write(`${st.red("Internal error:")} ${e.message}\n${st.dim("This is a bug in lago. Run with LAGO_DEBUG=1 for the stack trace.")}\n`);
  if (process.env.LAGO_DEBUG) cli.err.write(`${indent(e.stack ?? "")}\n`);
  return EXIT.internal;
}
