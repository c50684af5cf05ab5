/**
 * lago's exit codes, the same for every verb. Documented in the README and in
 * `lago --help` (from {@link EXIT_CODES_HELP}).
 */
export const EXIT = {
  /** Success (for `plan --detailed-exitcode`: success and no changes). */
  ok: 0,
  /** An error: bad input or flags, a failed step, a refused or stale saved plan, a lock held by another process. */
  error: 1,
  /** `plan --detailed-exitcode` only: success, and there are changes to apply. */
  changes: 2,
  /** An internal error: a bug in lago (run with LAGO_DEBUG=1 for the stack trace). */
  internal: 3,
  /** Interrupted by Ctrl-C (SIGINT); the state records what was done (143 for SIGTERM, 129 for SIGHUP). */
  interrupted: 130,
} as const;

/** The exit codes as `lago --help` lists them. */
export const EXIT_CODES_HELP = `Exit codes:
  0    success (plan --detailed-exitcode: no changes)
  1    error: bad input, a failed step, a refused saved plan, a held lock
  2    plan --detailed-exitcode: success, with changes to apply
  3    internal error (a bug in lago; LAGO_DEBUG=1 prints the stack trace)
  130  interrupted by Ctrl-C, after saving the state (143 SIGTERM, 129 SIGHUP)`;
