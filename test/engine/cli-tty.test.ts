/**
 * The CLI on a real terminal (a tmux pane): the live progress renderer, Ctrl-C
 * typed at the keyboard, and the confirmation prompt, which never goes to stdout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { makeSandbox, actions, REPO_ROOT } from "../helpers/sandbox.ts";
import { openTerminal } from "../helpers/tmux.ts";
import { BASE } from "./fixtures.ts";

const LAGO = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(REPO_ROOT, "bin", "lago.js"))}`;
const SPINNER = "[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]";
/** The pane's shell survives the Ctrl-C typed at lago (the terminal sends SIGINT to the whole foreground group). */
const SHELL = "trap : INT;";

test("on a terminal: one live line per resource in flight with spinner and elapsed time; Ctrl-C stops it with exit 130", async () => {
  const sb = makeSandbox();
  const env = sb.env({ LAGO_FAKE_FAULTS: "hang:startDomain@vm02" });
  delete env.NO_COLOR;
  const term = openTerminal(sb.root, sb.work, env, `${SHELL} ${LAGO} apply --auto-approve; echo "EXIT=$?"; sleep 600`);
  try {
    sb.init(BASE);
    const live = await term.waitFor(/domain\.vm02: Creating… [1-9][0-9.]*s/);
    const rows = live.split("\n");
    // Finished steps scrolled up as permanent lines, the one in flight is redrawn in place.
    assert.equal(rows.filter((r) => r.includes("domain.vm02: Creating…")).length, 1, live);
    assert.match(rows.at(-1) ?? "", new RegExp(`^${SPINNER} domain\\.vm02: Creating… \\d+(\\.\\d)?s$`), live);
    assert.match(live, /^\d\d:\d\d:\d\d domain\.vm01: Creation complete after /m);
    assert.match(live, /^\d\d:\d\d:\d\d template\.test-repo:tiny:v2: Creation complete after /m);
    assert.doesNotMatch(live, /domain\.vm01: Creating…/, "a finished step has no live line left");
    // Time goes on on the live line.
    const later = await term.waitFor(/domain\.vm02: Creating… ([3-9]|\d\d)(\.\d)?s/);
    assert.equal(later.split("\n").filter((r) => r.includes("domain.vm02: Creating…")).length, 1, later);
    term.keys("C-c");
    const end = await term.waitFor(/EXIT=\d+/);
    assert.match(end, /EXIT=130/, end);
    assert.match(end, /Interrupted \(SIGINT\): no new step starts; cancelling 1 running step/);
    assert.match(end, /Apply interrupted: 11 step\(s\) done, 1 cancelled or failed, 0 not started/);
    assert.doesNotMatch(end, new RegExp(`${SPINNER} domain`), "the live block is gone");
    assert.equal(sb.state().resources["domain.vm02"]?.status, "tainted");
    const again = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(actions((await sb.lago(["plan", "--json"])).stdout), {});
  } finally {
    term.close();
    sb.cleanup();
  }
});

test("on a terminal, the question goes to the terminal, not to stdout: --json output stays pure JSON", async () => {
  const sb = makeSandbox();
  const term = openTerminal(sb.root, sb.work, sb.env(), `${SHELL} ${LAGO} apply --json > events.jsonl; echo "EXIT=$?"; sleep 600`);
  try {
    sb.init(BASE);
    await term.waitFor(/Do you want to perform these actions\?\n {2}Only 'yes' will be accepted:/);
    term.keys("yes", true);
    term.keys("Enter");
    const end = await term.waitFor(/EXIT=\d+/);
    assert.match(end, /EXIT=0/, end);
    const lines = readFileSync(path.join(sb.work, "events.jsonl"), "utf8").trimEnd().split("\n");
    const types = lines.map((l) => (JSON.parse(l) as { type: string }).type);
    assert.ok(types.includes("plan") && types.at(-1) === "summary", types.join(","));
  } finally {
    term.close();
    sb.cleanup();
  }
});

test("on a terminal: answering no cancels (exit 1), Ctrl-C at the question exits 130; neither changes anything", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    for (const [answer, code, said] of [["no", 1, /Apply cancelled\./], ["C-c", 130, /Only 'yes' will be accepted:.*\n+Apply cancelled \(SIGINT\): nothing was changed\./]] as const) {
      const term = openTerminal(sb.root, sb.work, sb.env(), `${SHELL} ${LAGO} apply; echo "EXIT=$?"; sleep 600`);
      try {
        await term.waitFor(/Only 'yes' will be accepted:/);
        if (answer === "no") {
          term.keys("no", true);
          term.keys("Enter");
        } else term.keys(answer);
        const end = await term.waitFor(/EXIT=\d+/);
        assert.match(end, new RegExp(`EXIT=${code}$`), end);
        assert.match(end, said, end);
        assert.doesNotMatch(end, /Internal error|\n\s+at /);
      } finally {
        term.close();
      }
    }
    assert.equal(existsSync(path.join(sb.work, ".lago", "default", "state.json")), false);
    assert.deepEqual(sb.world().calls.filter((c) => !c.startsWith("list")), []);
  } finally {
    sb.cleanup();
  }
});
