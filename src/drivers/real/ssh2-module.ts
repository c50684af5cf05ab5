/**
 * ssh2, loaded on first use: most commands (`plan`, `--version`, `status`) never
 * open a connection or read a key, and loading ssh2 costs tens of milliseconds.
 */
import { createRequire } from "node:module";
import type ssh2 from "ssh2";
import { lazy } from "../../util/lazy.ts";

export type Ssh2 = typeof ssh2;

/**
 * The ssh2 module (loaded once). Required, not imported: ssh2 is CommonJS, outside the bundle, and the
 * CLI's bundle runs as a script (bin/lago.js), where `import()` has no loader.
 */
export const loadSsh2: () => Promise<Ssh2> = lazy(async () => createRequire(import.meta.url)("ssh2") as Ssh2);
