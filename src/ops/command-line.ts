/**
 * How `lago ssh VM -- CMD…` turns its arguments into the one command string
 * SSH carries: a single argument is a command line for the remote shell, as
 * written (pipes, `$VAR` and globs work, as with `ssh host 'CMD'`); several
 * arguments are an argument vector, each quoted so that it arrives exactly
 * as given (spaces, quotes and `$` kept).
 */

/** Quote `arg` for a POSIX shell: unchanged when it is plainly safe, else in single quotes. Pure. */
export function shellQuote(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'"'"'`)}'`;
}

/** The remote command for `argv` (see the module comment); a leading `--` separator is dropped. Pure. */
export function remoteCommand(argv: readonly string[]): string {
  const args = argv[0] === "--" ? argv.slice(1) : argv;
  if (args.length === 1) return args[0] ?? "";
  return args.map(shellQuote).join(" ");
}
