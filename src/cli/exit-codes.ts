/** lago's exit codes: 0 success, 1 error (bad input, a failed step), 2 changes pending (`plan --detailed-exitcode`), 3 internal error (a bug). */
export const EXIT = { ok: 0, error: 1, changes: 2, internal: 3 } as const;
