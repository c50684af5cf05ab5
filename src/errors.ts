/**
 * The error taxonomy. Every error lago raises on purpose is a {@link LagoError}
 * with a stable `code`, an optional `hint` and `cause`. The CLI's single
 * top-level handler maps them to exit codes and friendly output; anything else
 * is an internal error (a bug) and is reported as such.
 */

/** A position in a source file, 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export interface LagoErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
}

export class LagoError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: LagoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }
}

/** One problem found in an init file, with its position. */
export interface Diagnostic {
  pos: SourcePos;
  /** JSON pointer into the document, e.g. `/domains/vm01/memory`. */
  pointer: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.pos.file}:${d.pos.line}:${d.pos.col}: ${d.message}`;
}

/** The init file (or a config file) is invalid; carries every diagnostic found. */
export class ConfigError extends LagoError {
  readonly diagnostics: Diagnostic[];

  constructor(diagnostics: Diagnostic[], options: LagoErrorOptions = {}) {
    const first = diagnostics[0];
    super(
      "CONFIG_INVALID",
      diagnostics.length === 1 && first
        ? formatDiagnostic(first)
        : `${diagnostics.length} problems:\n${diagnostics.map(formatDiagnostic).join("\n")}`,
      options,
    );
    this.diagnostics = diagnostics;
  }
}

/** A usage error: bad flags, missing files, a refused saved plan. */
export class UsageError extends LagoError {
  constructor(message: string, options: LagoErrorOptions = {}) {
    super("USAGE", message, options);
  }
}

/** An external command failed. */
export class CommandError extends LagoError {
  readonly command: string[];
  readonly exitCode: number | undefined;
  readonly stderr: string;

  constructor(command: string[], exitCode: number | undefined, stderr: string, detail?: string, options: LagoErrorOptions = {}) {
    const shown = command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ");
    const why = detail ?? (exitCode === undefined ? "failed" : `exited with code ${exitCode}`);
    const err = stderr.trim();
    super("COMMAND_FAILED", `command \`${shown}\` ${why}${err ? `:\n${indent(lastLines(err, 20))}` : ""}`, options);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** A resource's reconciler failed; names the resource address. */
export class ProviderError extends LagoError {
  readonly address: string;

  constructor(address: string, message: string, options: LagoErrorOptions = {}) {
    super("PROVIDER_FAILED", `${address}: ${message}`, options);
    this.address = address;
  }
}

/** The environment (or a shared store) is locked by another process. */
export class LockError extends LagoError {
  constructor(message: string, options: LagoErrorOptions = {}) {
    super("LOCKED", message, options);
  }
}

/** A bug in lago (an impossible situation detected on purpose): exit code 3. */
export class InternalError extends LagoError {
  constructor(message: string, options: LagoErrorOptions = {}) {
    super("INTERNAL", message, options);
  }
}

/** The recorded state is unreadable or inconsistent. */
export class StateError extends LagoError {
  constructor(message: string, options: LagoErrorOptions = {}) {
    super("STATE", message, options);
  }
}

export function indent(text: string, by = "  "): string {
  return text
    .split("\n")
    .map((l) => (l ? by + l : l))
    .join("\n");
}

function lastLines(text: string, n: number): string {
  const lines = text.split("\n");
  return lines.length <= n ? text : ["…", ...lines.slice(-n)].join("\n");
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
