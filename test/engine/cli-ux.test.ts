/**
 * The everyday experience of the CLI, run as a child process against the fake
 * world: global options anywhere, help with examples, the JSON event stream,
 * plain progress lines, saved plan files, and Ctrl-C.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, constants, existsSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import path from "node:path";
import { spawn } from "node:child_process";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { Command } from "commander";
import { makeSandbox, actions, REPO_ROOT, type Sandbox } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";
import { buildProgram } from "../../src/cli/main.ts";
import { examples, examplesOf } from "../../src/cli/examples.ts";

const BIN = path.join(REPO_ROOT, "bin", "lago.js");
const schema = (name: string): Record<string, unknown> => JSON.parse(readFileSync(path.join(REPO_ROOT, "schemas", name), "utf8")) as Record<string, unknown>;

function eventValidator(): (line: unknown) => string | undefined {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats.default(ajv);
  ajv.addSchema(schema("plan.schema.json"));
  const validate = ajv.compile(schema("events.schema.json"));
  return (line) => (validate(line) ? undefined : ajv.errorsText(validate.errors));
}

async function converged(sb: Sandbox): Promise<void> {
  const plan = await sb.lago(["plan", "--json"]);
  assert.equal(plan.code, 0, plan.stderr);
  assert.deepEqual(actions(plan.stdout), {});
}

function leafCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => (c.commands.length ? leafCommands(c) : [c]));
}

/** A verb's words after `lago` (`template list`). */
function verbPath(cmd: Command): string {
  const words: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) words.unshift(c.name());
  return words.join(" ");
}

test("global options are accepted before or after the verb, for every verb", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const after = await sb.lago(["apply", "--auto-approve", "--env", "second", "--lock-timeout", "5"]);
    assert.equal(after.code, 0, after.stderr);
    assert.ok(existsSync(path.join(sb.work, ".lago", "second", "state.json")), "--env after the verb chose the environment");
    assert.ok(!existsSync(path.join(sb.work, ".lago", "default")));
    const before = await sb.lago(["--env", "second", "show", "--json"]);
    assert.equal(JSON.parse(before.stdout).env, "second");
    const show = await sb.lago(["show", "--json", "--env", "second", "--workdir", sb.work]);
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).resources.length, 12);
    // The value closest to the verb wins.
    const both = await sb.lago(["--env", "nope", "show", "--json", "--env", "second"]);
    assert.equal(JSON.parse(both.stdout).env, "second");
    const bad = await sb.lago(["plan", "--domain-type", "xen"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /option '--domain-type <type>' argument 'xen' is invalid\. Allowed choices are kvm, qemu/);
    const badTimeout = await sb.lago(["plan", "--lock-timeout", "soon"]);
    assert.equal(badTimeout.code, 1);
    assert.match(badTimeout.stderr, /--lock-timeout <seconds>' argument 'soon' is invalid\. expected a number of seconds/);
    assert.equal((await sb.lago(["destroy", "--auto-approve", "--env", "second"])).code, 0);
  } finally {
    sb.cleanup();
  }
});

test("every verb, including ones registered from other files, takes the global options and has examples in its help", () => {
  const { program } = buildProgram();
  const leaves = leafCommands(program).filter((c) => c.name() !== "help");
  assert.ok(leaves.length >= 7);
  for (const cmd of leaves) {
    const longs = cmd.options.map((o) => o.long);
    for (const g of ["--workdir", "--env", "--template-repo-path", "--template-store", "--lease-dir", "--domain-type", "--lock-timeout", "--no-color"]) {
      assert.ok(longs.includes(g), `lago ${cmd.name()} does not take ${g}`);
    }
    const verb = verbPath(cmd);
    assert.ok(examplesOf(cmd).length > 0, `lago ${verb} --help has no examples`);
    for (const [line] of examplesOf(cmd)) assert.match(line, new RegExp(`^lago ${verb}\\b`), `an example of ${verb} runs another verb: ${line}`);
  }
});

test("a verb file's verbs, nested ones too, get the global options; a verb's own flag of the same name wins", async () => {
  let seen: unknown;
  const { program, cli } = buildProgram([
    (p, c) => {
      const group = p.command("group").description("a verb with subcommands");
      examples(group.command("sub").option("--lease-dir <mine>", "the verb's own --lease-dir").action(() => {
        seen = { ...c.globals(), own: group.commands[0]?.opts() };
      }), [["lago group sub", "runs"]]);
    },
  ]);
  const sub = program.commands.find((c) => c.name() === "group")?.commands[0];
  assert.ok(sub);
  assert.equal(sub.options.filter((o) => o.long === "--lease-dir").length, 1, "the verb keeps its own --lease-dir");
  program.exitOverride();
  await program.parseAsync(["node", "lago", "--env", "a", "group", "sub", "--template-store", "/s", "--lease-dir", "/mine", "--no-color"]);
  assert.deepEqual(seen, { env: "a", color: false, lockTimeout: 0, templateStore: "/s", own: { leaseDir: "/mine", color: false, templateStore: "/s" } });
  assert.equal(cli.given("templateStore"), true);
  assert.equal(cli.given("workdir"), false);
});

test("`lago --version` and `-V` print package.json's version, as commander's --version does after a verb's options", async () => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  const sb = makeSandbox();
  try {
    for (const args of [["--version"], ["-V"], ["--workdir", sb.work, "--version"]]) {
      const r = await sb.lago(args);
      assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 0, stdout: `${pkg.version}\n`, stderr: "" }, args.join(" "));
    }
  } finally {
    sb.cleanup();
  }
});

test("a reader that stops reading (`lago plan --json | head`) costs the output, not the command: no EPIPE crash, the plan's own exit code", async () => {
  const sb = makeSandbox();
  try {
    // Far more JSON than a pipe holds (64 KiB), so that lago is still writing when the reader goes away.
    const vms = Array.from({ length: 240 }, (_, i) => `  vm${i}:\n    memory: 256\n    nics:\n      - net: lago\n    disks:\n      - template_name: tiny\n        type: template\n        name: root\n        dev: vda\n`).join("");
    sb.init(`domains:\n${vms}nets:\n  lago:\n    type: nat\n    management: true\n`);
    // A real pipe, as a shell makes (Node's own stdio pipes are socket pairs, whose buffers would hold it all).
    const fifo = path.join(sb.root, "stdout.fifo");
    await execa("mkfifo", [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const child = spawn(process.execPath, [BIN, "plan", "--json", "--detailed-exitcode"], { cwd: sb.work, env: sb.env(), stdio: ["ignore", writer, "pipe"] });
    closeSync(writer);
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    const head = Buffer.alloc(100);
    let got = 0;
    while (got === 0) {
      try {
        got = readSync(reader, head);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        await sleep(10);
      }
    }
    closeSync(reader);
    const code = await closed;
    assert.match(head.toString("utf8", 0, got), /^\{/);
    assert.equal(stderr, "");
    assert.equal(code, 2, "--detailed-exitcode: a plan with changes");
  } finally {
    sb.cleanup();
  }
});

test("`lago VERB --help` lists the global options and examples; `lago --help` the exit codes", async () => {
  const sb = makeSandbox();
  try {
    const help = await sb.lago(["apply", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Global Options:\n(.|\n)*--template-repo-path <path\|url>/);
    assert.match(help.stdout, /Examples:\n {2}\$ lago apply/);
    const top = await sb.lago(["--help"]);
    assert.match(top.stdout, /Exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*plan --detailed-exitcode.*\n {2}3 .*internal error.*\n {2}130 .*interrupted/);
  } finally {
    sb.cleanup();
  }
});

test("--json: stdout is a stream of JSON events valid against schemas/events.schema.json, from plan to summary", async () => {
  const sb = makeSandbox();
  const check = eventValidator();
  try {
    sb.init(BASE);
    for (const args of [["apply", "--auto-approve", "--json"], ["apply", "--auto-approve", "--json"], ["destroy", "--auto-approve", "--json"]]) {
      const r = await sb.lago(args, { env: { LAGO_FAKE_FAULTS: "" } });
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      const events = lines.map((l) => JSON.parse(l) as { type: string; [k: string]: unknown });
      for (const e of events) assert.equal(check(e), undefined, `${JSON.stringify(e)}: ${check(e)}`);
      assert.equal(events.filter((e) => e.type !== "refresh" && e.type !== "recovered")[0]?.type, "plan");
      assert.equal(events.at(-1)?.type, "summary");
      assert.equal(events.at(-1)?.exit_code, 0);
    }
    // A failure: the failed event carries the error and the summary the exit code.
    const failed = await sb.lago(["apply", "--auto-approve", "--json"], { env: { LAGO_FAKE_FAULTS: "fail:createNetwork@-data" } });
    assert.equal(failed.code, 1);
    const events = failed.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) assert.equal(check(e), undefined, `${JSON.stringify(e)}: ${check(e)}`);
    const f = events.find((e) => e.type === "failed");
    assert.deepEqual((f?.error as { code: string }).code, "PROVIDER_FAILED");
    assert.ok(events.some((e) => e.type === "skipped" && e.address === "domain.vm02"));
    assert.deepEqual(events.at(-1), { ...events.at(-1), type: "summary", ok: false, exit_code: 1 });
    // An error before anything is applied is an event too.
    sb.init("domains: {vm01: {memory: lots}}\n");
    const bad = await sb.lago(["apply", "--auto-approve", "--json"]);
    assert.equal(bad.code, 1);
    const last = JSON.parse(bad.stdout.trimEnd().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    assert.equal(check(last), undefined);
    assert.equal((last.error as { code: string }).code, "CONFIG_INVALID");
    assert.ok((last.error as { diagnostics: { line: number; message: string }[] }).diagnostics.some((d) => d.line === 1 && /memory/.test(d.message)));
    assert.match(bad.stderr, /LagoInitFile:1:/);
  } finally {
    sb.cleanup();
  }
});

test("without a terminal: plain timestamped lines", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const r = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(r.code, 0, r.stderr);
    const progress = r.stdout.split("\n").filter((l) => /: (Creating\.\.\.|Creation complete)/.test(l));
    assert.equal(progress.length, 24);
    for (const l of progress) assert.match(l, /^\d\d:\d\d:\d\d [a-z]/);
    assert.doesNotMatch(r.stdout, /\x1b\[/, "no escape codes without a terminal");
    assert.match(r.stdout, /\nApply complete! Resources: 12 added, 0 changed, 0 replaced, 0 destroyed\.\n$/);
  } finally {
    sb.cleanup();
  }
});

test("a saved plan file that is truncated, edited, of another version or not a plan is refused, naming the problem", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["plan", "--out", "good.plan"])).code, 0);
    const file = path.join(sb.work, "good.plan");
    const text = readFileSync(file, "utf8");
    const saved = JSON.parse(text) as Record<string, unknown> & { plan: { resourceChanges: { action: string }[]; serial: number } };
    assert.match(saved.checksum as string, /^sha256:[0-9a-f]{64}$/);
    const refused = async (name: string, content: string, message: RegExp): Promise<void> => {
      writeFileSync(path.join(sb.work, name), content);
      const r = await sb.lago(["apply", name]);
      assert.equal(r.code, 1, `${name}: ${r.stdout}`);
      assert.match(r.stderr, message, name);
      assert.match(r.stderr, new RegExp(`hint: make a new one: lago plan --out ${name}`), name);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.ok(!existsSync(path.join(sb.work, ".lago", "default", "state.json")), `${name}: nothing was applied`);
      assert.deepEqual(sb.world().calls, [], `${name}: the world was not touched`);
    };
    await refused("truncated.plan", text.slice(0, Math.floor(text.length / 2)), /the plan file truncated\.plan is damaged: it is not complete JSON .*was it truncated\?/);
    await refused("empty.plan", "", /the plan file empty\.plan is damaged: it is not complete JSON/);
    const edited = structuredClone(saved);
    const first = edited.plan.resourceChanges[0];
    assert.ok(first);
    first.action = "delete";
    await refused("edited.plan", JSON.stringify(edited), /the plan file edited\.plan was changed after lago saved it \(its checksum does not match\)/);
    const broken = structuredClone(saved) as Record<string, unknown> & { plan: Record<string, unknown> };
    broken.plan.serial = -1;
    delete broken.plan.desired;
    broken.extra = 1;
    await refused("schema.plan", JSON.stringify(broken), /the plan file schema\.plan is damaged: .*unexpected member "extra".*\/plan: must have required property 'desired'.*\/plan\/serial: must be >= 0/);
    await refused("v2.plan", JSON.stringify({ ...saved, formatVersion: 2 }), /the plan file v2\.plan has format version 2; this lago reads version 1/);
    await refused("other.plan", JSON.stringify({ format_version: 1, resource_changes: [] }), /other\.plan is not a lago plan file/);
    const missing = await sb.lago(["apply", "nowhere.plan"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read the plan file nowhere\.plan: ENOENT/);
    // The untouched file still applies.
    const ok = await sb.lago(["apply", "good.plan"]);
    assert.equal(ok.code, 0, ok.stderr);
    await converged(sb);
    // A plan with drift in it (a VM deleted behind lago's back) round-trips too.
    const world = sb.world();
    const vm01 = Object.keys(world.domains).find((n) => n.endsWith("-vm01"));
    assert.ok(vm01);
    delete world.domains[vm01];
    writeFileSync(sb.worldFile, JSON.stringify(world));
    assert.equal((await sb.lago(["plan", "--out", "drift.plan"])).code, 0);
    assert.ok((JSON.parse(readFileSync(path.join(sb.work, "drift.plan"), "utf8")) as { plan: { drift: unknown[] } }).plan.drift.length > 0);
    const fixed = await sb.lago(["apply", "drift.plan"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    await converged(sb);
  } finally {
    sb.cleanup();
  }
});

test("-f, --target, --replace, --no-refresh, --restart given with a plan file are an error, not ignored", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["plan", "--out", "p.plan"])).code, 0);
    const cases: [string[], string][] = [
      [["-f", "LagoInitFile"], "-f/--file"],
      [["--file", "LagoInitFile"], "-f/--file"],
      [["--target", "domain.vm01"], "--target"],
      [["--replace", "disk.vm01.root"], "--replace"],
      [["--no-refresh"], "--no-refresh"],
      [["--restart"], "--restart"],
      [["--domain-type", "qemu"], "--domain-type"],
    ];
    for (const [extra, flag] of cases) {
      for (const args of [["apply", "p.plan", ...extra], ["apply", ...extra, "p.plan"]]) {
        const r = await sb.lago(args);
        assert.equal(r.code, 1, args.join(" "));
        assert.match(r.stderr, new RegExp(`^Error: ${flag.replace(/[-/]/g, "\\$&")} cannot be used with a saved plan: p\\.plan already says exactly what to do\\n`), args.join(" "));
      }
    }
    const two = await sb.lago(["--domain-type", "qemu", "apply", "--target", "keypair", "p.plan"]);
    assert.match(two.stderr, /Error: --target, --domain-type cannot be used with a saved plan/);
    assert.deepEqual(sb.world().calls, []);
    // Options that do not shape the plan are fine.
    const ok = await sb.lago(["apply", "p.plan", "--parallelism", "2", "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    sb.cleanup();
  }
});

/** Start `lago ARGS` as a child process; resolves once its stdout matches `ready`. */
async function startLago(sb: Sandbox, args: string[], env: Record<string, string>, ready: RegExp): Promise<{ pid: number; out: () => string; err: () => string; exit: Promise<[number | null, string | null]> }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: sb.work, env: sb.env(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<[number | null, string | null]>((resolve) => child.on("exit", (code, signal) => resolve([code, signal])));
  const deadline = Date.now() + 30_000;
  while (!ready.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`lago ${args.join(" ")} never got to ${ready}: ${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(child.pid);
  return { pid: child.pid, out: () => out, err: () => err, exit };
}

test("Ctrl-C (SIGINT) during apply: the running step is cancelled and recorded, the state saved, exit 130; the next apply converges", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const run = await startLago(sb, ["apply", "--auto-approve"], { LAGO_FAKE_FAULTS: "hang:startDomain@vm02" }, /domain\.vm02: Creating\.\.\./);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(run.pid, "SIGINT");
    const [code, signal] = await run.exit;
    assert.equal(signal, null);
    assert.equal(code, 130, run.err());
    assert.match(run.err(), /Interrupted \(SIGINT\): no new step starts; cancelling 1 running step/);
    assert.match(run.err(), /Cancelled: domain\.vm02: command `fake startDomain lago-[0-9a-f]+-vm02` was cancelled/);
    assert.match(run.err(), /Apply interrupted: 11 step\(s\) done, 1 cancelled or failed, 0 not started/);
    assert.doesNotMatch(run.err(), /Internal error|\n\s+at /);
    const state = sb.state();
    assert.equal(Object.keys(state.resources).length, 12, "every step that ran is recorded");
    assert.equal(state.resources["domain.vm01"]?.status, "ready");
    assert.equal(state.resources["domain.vm02"]?.status, "tainted", "the cancelled create is recorded, not forgotten");
    // The state and the journal together say the same to the next plan: only the cancelled VM is left to do.
    assert.deepEqual(actions((await sb.lago(["plan", "--json"])).stdout), { "domain.vm02": "replace" });
    const again = await sb.lago(["apply", "--auto-approve"]);
    assert.equal(again.code, 0, again.stderr);
    await converged(sb);
  } finally {
    sb.cleanup();
  }
});

test("Ctrl-C with steps still waiting: they are not started and say why; --json reports the interruption", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    const run = await startLago(sb, ["apply", "--auto-approve", "--json", "--parallelism", "1"], { LAGO_FAKE_FAULTS: "hang:createNetwork@-data" }, /"type":"start","address":"network\.data"/);
    process.kill(run.pid, "SIGINT");
    const [code] = await run.exit;
    assert.equal(code, 130, run.err());
    const check = eventValidator();
    const events = run.out().trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) assert.equal(check(e), undefined, `${JSON.stringify(e)}: ${check(e)}`);
    assert.ok(events.some((e) => e.type === "interrupted" && e.signal === "SIGINT"));
    const skipped = events.filter((e) => e.type === "skipped");
    assert.ok(skipped.length > 0);
    // Not started because of the interruption, or because what they need was not created.
    assert.ok(skipped.every((e) => e.reason === "interrupted" || /\bnot creat/.test(String(e.reason))), JSON.stringify(skipped));
    assert.deepEqual(events.at(-1), { ...events.at(-1), type: "summary", ok: false, exit_code: 130, interrupted: "SIGINT" });
    // Steps journal their intent before they wait for a slot; those never started closed it: the next run has
    // no open intent to resolve from reality.
    const again = await sb.lago(["apply", "--auto-approve", "--json"]);
    assert.equal(again.code, 0, again.stderr);
    const plan = again.stdout.split("\n").map((l) => JSON.parse(l || "{}") as { type?: string; recovered?: unknown[] }).find((e) => e.type === "plan");
    assert.deepEqual(plan?.recovered, []);
    await converged(sb);
  } finally {
    sb.cleanup();
  }
});

test("Ctrl-C during destroy: exit 130, and the next destroy finishes", async () => {
  const sb = makeSandbox();
  try {
    sb.init(BASE);
    assert.equal((await sb.lago(["apply", "--auto-approve"])).code, 0);
    const run = await startLago(sb, ["destroy", "--auto-approve"], { LAGO_FAKE_FAULTS: "hang:deleteNetwork@-lago" }, /network\.lago: Destroying\.\.\./);
    process.kill(run.pid, "SIGTERM");
    const [code] = await run.exit;
    assert.equal(code, 143, run.err());
    assert.match(run.err(), /Destroy interrupted/);
    const done = await sb.lago(["destroy", "--auto-approve"]);
    assert.equal(done.code, 0, done.stderr);
    assert.deepEqual(sb.world().domains, {});
    assert.deepEqual(sb.world().networks, {});
  } finally {
    sb.cleanup();
  }
});
