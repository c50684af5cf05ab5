/**
 * A real terminal for CLI tests: a private tmux server (its own socket) runs a
 * command in a pane of a given size; tests read the screen as a person sees it
 * and type keys (Ctrl-C included, which the terminal turns into SIGINT).
 */
import { execFileSync } from "node:child_process";
import path from "node:path";

export interface Terminal {
  /** The visible screen, one string per row, trailing spaces removed. */
  screen(): string;
  /** Type keys (tmux key names: "C-c", "Enter", or literal text with `literal`). */
  keys(keys: string, literal?: boolean): void;
  /** Wait until the screen matches `re`; returns the screen. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  close(): void;
}

/**
 * Run `shellCommand` (through `sh -c`) in a new tmux pane of `cols`×`rows`,
 * with `cwd` and exactly the environment `env` (plus TERM).
 */
export function openTerminal(dir: string, cwd: string, env: Record<string, string>, shellCommand: string, cols = 110, rows = 40): Terminal {
  const socket = path.join(dir, "tmux.sock");
  const tmux = (...args: string[]): string => execFileSync("tmux", ["-S", socket, ...args], { encoding: "utf8", env: { ...env, TERM: "xterm-256color" } });
  // On a loaded machine tmux's client sometimes loses its freshly forked server before the session
  // exists ("server exited unexpectedly", nothing started): start it again, at most twice more.
  for (let attempt = 1; ; attempt++) {
    try {
      tmux("-f", "/dev/null", "new-session", "-d", "-x", String(cols), "-y", String(rows), "-c", cwd, "sh", "-c", shellCommand);
      break;
    } catch (err) {
      if (attempt >= 3 || !/server exited unexpectedly/.test(String((err as { stderr?: unknown }).stderr ?? ""))) throw err;
    }
  }
  const screen = (): string =>
    tmux("capture-pane", "-p", "-t", "0")
      .split("\n")
      .map((l) => l.trimEnd())
      .join("\n")
      .trimEnd();
  return {
    screen,
    keys(keys, literal = false) {
      tmux("send-keys", "-t", "0", ...(literal ? ["-l", keys] : [keys]));
    },
    async waitFor(re, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const s = screen();
        if (re.test(s)) return s;
        if (Date.now() > deadline) throw new Error(`the terminal never showed ${re}:\n${s}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    close() {
      try {
        tmux("kill-server");
      } catch {
        // Already gone with its last pane.
      }
    },
  };
}
