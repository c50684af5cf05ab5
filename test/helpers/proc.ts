/** Processes as /proc shows them (Linux), for tests that watch the children they start. */
import { readdirSync, readFileSync } from "node:fs";

/** A process's command name, state and parent (`/proc/<pid>/stat`); undefined once it is gone. */
export function procStat(pid: number | string): { comm: string; state: string; ppid: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // pid (comm) state ppid …: comm may hold spaces and parentheses, so fields are counted after its last ')'.
  const [state = "", ppid = ""] = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { comm: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")), state, ppid: Number(ppid) };
}

/** The pids of `parent`'s children whose command is `comm`. */
export function childrenNamed(comm: string, parent = process.pid): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      const stat = procStat(entry);
      return stat?.comm === comm && stat.ppid === parent;
    })
    .map(Number);
}

/** Whether `pid` has exited: gone, or a zombie not yet reaped. */
export function exited(pid: number | string): boolean {
  const state = procStat(pid)?.state;
  return state === undefined || state === "Z" || state === "X";
}
