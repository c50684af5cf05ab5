/**
 * ssh2, loaded on first use: most commands (`plan`, `--version`, `status`) never
 * open a connection or read a key, and loading ssh2 costs tens of milliseconds.
 */
import type ssh2 from "ssh2";
import { lazy } from "../../util/lazy.ts";

export type Ssh2 = typeof ssh2;

/** The ssh2 module (loaded once). */
export const loadSsh2: () => Promise<Ssh2> = lazy(() => import("ssh2").then((m) => m.default));
