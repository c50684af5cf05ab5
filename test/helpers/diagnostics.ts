import assert from "node:assert/strict";
import { ConfigError, formatDiagnostic } from "../../src/errors.ts";

/** The `FILE:LINE:COL: message` lines of the ConfigError `fn` throws; fails if it throws none. */
export function diagnosticsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  return assert.fail("expected a ConfigError");
}
