/**
 * ssh2, loaded on first use: most commands (`plan`, `--version`, `status`) never
 * open a connection or read a key, and loading ssh2 costs tens of milliseconds.
 */
import type ssh2 from "ssh2";

export type Ssh2 = typeof ssh2;

let loading: Promise<Ssh2> | undefined;

/** The ssh2 module (loaded once). */
export function loadSsh2(): Promise<Ssh2> {
  loading ??= import("ssh2").then((m) => m.default);
  return loading;
}
