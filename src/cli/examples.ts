/**
 * Examples in `lago VERB --help`. A verb file attaches its examples with
 * {@link examples}; a test checks that every verb has some.
 */
import type { Command } from "commander";

/** One example: the command line and what it does. */
export type Example = readonly [command: string, what: string];

const registered = new WeakMap<Command, readonly Example[]>();

/** Attach examples to a verb: shown after its options in `--help`. Returns the command for chaining. */
export function examples(cmd: Command, list: readonly Example[]): Command {
  registered.set(cmd, list);
  const width = Math.max(...list.map(([c]) => c.length));
  const text = list.map(([c, what]) => (c.length + what.length > 96 ? `  $ ${c}\n      ${what}` : `  $ ${c.padEnd(width)}   ${what}`)).join("\n");
  cmd.addHelpText("after", `\nExamples:\n${text}`);
  return cmd;
}

/**
 * Attach the examples of `table` (keyed by the words after `lago`, e.g.
 * `template list`) to the verbs below `parent`, nested ones too.
 */
export function attachExamples(parent: Command, table: Readonly<Record<string, readonly Example[]>>, prefix = ""): void {
  for (const cmd of parent.commands) {
    const name = prefix + cmd.name();
    const list = table[name];
    if (list) examples(cmd, list);
    attachExamples(cmd, table, `${name} `);
  }
}

/** The examples attached to `cmd` (empty when none). */
export function examplesOf(cmd: Command): readonly Example[] {
  return registered.get(cmd) ?? [];
}

/** Examples of the core verbs, by verb name. */
export const CORE_EXAMPLES: Readonly<Record<string, readonly Example[]>> = {
  validate: [
    ["lago validate", "check ./LagoInitFile, every problem as FILE:LINE:COL"],
    ["lago validate -f envs/ci.yaml --template-repo-path /srv/templates/repo.metadata", "also resolve the templates"],
  ],
  plan: [
    ["lago plan", "what `lago apply` would change, and drift found in reality"],
    ["lago plan --out tonight.plan", "save the plan; `lago apply tonight.plan` does exactly that later"],
    ["lago plan --json | jq .summary", "the plan as JSON (schemas/plan.schema.json)"],
    ["lago plan --detailed-exitcode", "exit 2 when there are changes (for scripts and CI)"],
    ["lago plan --target domain.vm01 --replace disk.vm01.root", "only vm01 and what it needs, with a fresh root disk"],
  ],
  apply: [
    ["lago apply", "show the plan, ask, converge"],
    ["lago apply --auto-approve --parallelism 8", "no question, eight resources at a time"],
    ["lago apply --restart", "also restart VMs whose changes wait for a restart"],
    ["lago apply tonight.plan", "apply a saved plan (refused if anything changed since)"],
    ["lago apply --auto-approve --json > events.jsonl", "a stream of JSON events (schemas/events.schema.json)"],
  ],
  destroy: [
    ["lago destroy", "delete every VM, disk, network and lease of the environment, after asking"],
    ["lago destroy --auto-approve --env ci-42", "destroy another environment of this workdir"],
  ],
  show: [
    ["lago show", "what the state records, per resource"],
    ["lago show --json", "the same as JSON"],
  ],
  ssh: [
    ["lago ssh vm01 uptime", "run a command on vm01"],
    ["lago ssh vm01 ls -la /root", "options after the VM name go to the remote command"],
  ],
  graph: [["lago graph | dot -Tsvg > graph.svg", "draw the resource graph"]],
};
