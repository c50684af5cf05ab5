/**
 * The everyday verbs' implementations: parse what the user gave, call the
 * operations layer (src/ops), print. Progress goes to stderr, data to stdout.
 */
import path from "node:path";
import { UsageError } from "../errors.ts";
import { makeOpsContext, type OpsContext } from "../ops/context.ts";
import type { OpsEvent } from "../ops/events.ts";
import { envStatus } from "../ops/status.ts";
import { startVms, stopVms, type PowerResult } from "../ops/power.ts";
import { remoteCommand } from "../ops/command-line.ts";
import { captureOnVm, interactiveOnVm, runOnVm } from "../ops/remote.ts";
import { sshConfig as renderSshConfig, sshConfigFile } from "../ops/ssh-config.ts";
import { copyFromVm, copyToVm } from "../ops/copy.ts";
import { deploy as deployOp } from "../ops/deploy.ts";
import { collect as collectOp } from "../ops/collect.ts";
import { DEFAULT_INVENTORY_KEYS, ansibleInventory, dynamicInventory, renderIni } from "../ops/inventory.ts";
import { listSnapshots, revertSnapshot, takeSnapshot } from "../ops/snapshots.ts";
import { exportVms as exportOp } from "../ops/export.ts";
import { fetchTemplate, listTemplates, pruneTemplates } from "../ops/templates.ts";
import { listEnvs, selectEnv } from "../ops/envs.ts";
import { doctor as doctorOp } from "../ops/doctor.ts";
import { envPaths } from "../env/context.ts";
import { readState } from "../state/state.ts";
import { envView, oneVm } from "../ops/view.ts";
import { formatDuration, formatMiB as mib } from "./output.ts";
import { EXIT } from "./exit-codes.ts";
import type { Cli } from "./main.ts";
import { loadInitFile, type InitFileOpts } from "./init-file.ts";

function json(cli: Cli, value: unknown): void {
  cli.out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Renders operation events: progress and warnings on stderr, remote output line by line, prefixed with the VM's name. */
function renderer(cli: Cli, quiet = false): { emit: (e: OpsEvent) => void; flush: () => void } {
  const st = cli.style(process.stderr);
  const partial = new Map<string, string>();
  const width = { n: 0 };
  const writeLine = (vm: string, stream: "stdout" | "stderr", line: string): void => {
    width.n = Math.max(width.n, vm.length);
    (stream === "stdout" ? cli.out : cli.err).write(`${vm.padEnd(width.n)} | ${line}\n`);
  };
  return {
    emit: (e) => {
      if (e.type === "output") {
        const key = `${e.vm}\0${e.stream}`;
        const lines = `${partial.get(key) ?? ""}${e.text}`.split("\n");
        partial.set(key, lines.pop() ?? "");
        for (const l of lines) writeLine(e.vm, e.stream, l);
      } else if (e.type === "warning") {
        cli.err.write(`${st.yellow("warning:")} ${e.vm ? `${e.vm}: ` : ""}${e.message}\n`);
      } else if (!quiet) {
        cli.err.write(`${st.bold(e.vm)}: ${e.message}\n`);
      }
    },
    flush: () => {
      for (const [key, rest] of partial) {
        const [vm, stream] = key.split("\0");
        if (rest) writeLine(vm ?? "", stream === "stderr" ? "stderr" : "stdout", rest);
      }
      partial.clear();
    },
  };
}

function context(cli: Cli, emit: (e: OpsEvent) => void = () => undefined): OpsContext {
  return makeOpsContext(cli.env(), { signal: cli.interruptible(), lockTimeoutMs: cli.globals().lockTimeout * 1000, emit });
}

/** `lago status [--json]`: the environment's VMs and nets as they are now. */
export async function status(cli: Cli, opts: { json?: boolean }): Promise<void> {
  const s = await envStatus(context(cli));
  if (opts.json) return json(cli, s);
  const st = cli.style();
  if (!s.vms.length && !s.nets.length) {
    cli.out.write(`Environment ${s.env} (${s.dir}) has no VMs or nets. Create them with \`lago apply\`.\n`);
    return;
  }
  const out: string[] = [`Environment ${st.bold(s.env)} (${s.dir})`, "", st.bold("VMs:")];
  const w = Math.max(...s.vms.map((v) => v.name.length), 2);
  for (const v of s.vms) {
    const state = v.state === "running" ? st.green(v.state) : v.state === "missing" ? st.red(v.state) : st.yellow(v.state);
    const ssh = v.sshAnswers === null ? "" : v.sshAnswers ? "  ssh: answers" : `  ssh: ${st.red("no answer")}`;
    const nics = v.nics.map((n) => `${n.net}: ${n.ip ?? "no address"} (${n.device})`).join(", ");
    out.push(`  ${v.name.padEnd(w)}  ${state}${ssh}  ${nics}`);
    if (v.stoppedOnPurpose) out.push(`  ${" ".repeat(w)}  stopped on purpose: \`lago start ${v.name}\` starts it`);
    if (v.pendingRestart.length) out.push(`  ${" ".repeat(w)}  ${st.yellow(`pending restart: ${v.pendingRestart.join(", ")}`)} (lago apply --restart, or lago shutdown --reboot ${v.name})`);
    if (v.snapshots.length) out.push(`  ${" ".repeat(w)}  snapshots: ${v.snapshots.join(", ")}`);
  }
  out.push("", st.bold("Nets:"));
  const nw = Math.max(...s.nets.map((n) => n.name.length), 2);
  for (const n of s.nets) {
    const state = n.state === "active" ? st.green(n.state) : st.red(n.state);
    out.push(`  ${n.name.padEnd(nw)}  ${n.type}${n.management ? ", management" : ""}  ${n.subnet ?? "no addresses"}${n.gateway ? `  gateway ${n.gateway}` : ""}  bridge ${n.bridge}  ${state}`);
  }
  if (s.templates.length) {
    out.push("", st.bold("Templates in use:"));
    for (const t of s.templates) out.push(`  ${t.address}${t.path ? `  ${t.path}` : ""}`);
  }
  cli.out.write(`${out.join("\n")}\n`);
}

/** `lago start|stop|shutdown [--reboot] [VM…]`: power, recorded in the state; one line per VM. */
export async function power(cli: Cli, action: "start" | "stop" | "shutdown" | "reboot", vms: string[], opts: { json?: boolean }): Promise<void> {
  const r = renderer(cli);
  const ctx = context(cli, r.emit);
  const results: PowerResult[] = action === "start" ? await startVms(ctx, vms) : await stopVms(ctx, vms, { graceful: action !== "stop", reboot: action === "reboot" });
  if (opts.json) return json(cli, results);
  for (const res of results) cli.out.write(`${res.vm}: ${res.outcome}\n`);
}

function exitCodeOf(status: { code: number; signal: string | undefined }): number {
  // Like OpenSSH: a command killed by a signal (no exit status) gives 255.
  return status.code >= 0 ? status.code : 255;
}

/** `lago shell VM [COMMAND…]`: an interactive session on a remote terminal the size of ours; exits with its code. */
export async function shell(cli: Cli, vm: string, command: string[]): Promise<void> {
  const ctx = context(cli);
  const stdin = process.stdin;
  const stdout = process.stdout;
  const tty = stdin.isTTY === true;
  if (tty) stdin.setRawMode(true);
  stdin.resume();
  try {
    const rest = command[0] === "--" ? command.slice(1) : command;
    const status = await interactiveOnVm(ctx, vm, rest.length ? remoteCommand(rest) : undefined, {
      term: process.env.TERM ?? "xterm-256color",
      rows: stdout.rows ?? 24,
      cols: stdout.columns ?? 80,
      input: stdin,
      output: stdout,
      onResize: (listener) => {
        const onResize = (): void => listener(stdout.rows ?? 24, stdout.columns ?? 80);
        stdout.on("resize", onResize);
        return () => stdout.off("resize", onResize);
      },
    });
    cli.exitCode = exitCodeOf(status);
  } finally {
    if (tty) stdin.setRawMode(false);
    stdin.pause();
  }
}

/** `lago ssh VM -- CMD…`: output streamed and exit code passed through (`--json`: collected). */
export async function ssh(cli: Cli, vm: string, command: string[], opts: { timeout?: number; json?: boolean }): Promise<void> {
  const ctx = context(cli);
  const line = remoteCommand(command);
  const timeoutMs = opts.timeout === undefined ? undefined : opts.timeout * 1000;
  if (opts.json) {
    const r = await captureOnVm(ctx, vm, line, { timeoutMs });
    json(cli, r);
    cli.exitCode = r.code >= 0 ? r.code : 255;
    return;
  }
  const status = await runOnVm(ctx, vm, line, { timeoutMs, onStdout: (d) => cli.out.write(d), onStderr: (d) => cli.err.write(d) });
  if (status.signal) cli.err.write(`lago: the command on ${vm} was killed by signal ${status.signal}\n`);
  cli.exitCode = exitCodeOf(status);
}

/** `lago ssh-config [--path]`: the OpenSSH configuration, or the path of the file it was written to. */
export async function sshConfig(cli: Cli, opts: { path?: boolean }): Promise<void> {
  const ctx = context(cli);
  const text = renderSshConfig(ctx);
  cli.out.write(opts.path ? `${sshConfigFile(ctx)}\n` : text);
}

/** `lago console VM`: virsh's serial console on our terminal. */
export async function serialConsole(cli: Cli, vm: string): Promise<void> {
  const ctx = context(cli);
  const target = oneVm(envView(ctx.env, readState(envPaths.state(ctx.env))), vm);
  if (!process.stdin.isTTY) throw new UsageError("lago console needs a terminal: virsh attaches it to the VM's serial port");
  cli.err.write(`Connected to ${vm}'s serial console; leave with Ctrl-]\n`);
  cli.exitCode = await ctx.virsh.console(target.libvirtName);
}

/** `lago copy-to-vm` / `lago copy-from-vm`: one recursive SFTP copy; a summary line. */
export async function copy(cli: Cli, direction: "to" | "from", vm: string, source: string, destination: string, opts: { json?: boolean }): Promise<void> {
  const ctx = context(cli);
  const r = direction === "to" ? await copyToVm(ctx, vm, source, destination) : await copyFromVm(ctx, vm, source, destination);
  if (opts.json) return json(cli, r);
  const where = direction === "to" ? `${vm}:${r.destination}` : r.destination;
  cli.out.write(`Copied ${r.files} file(s), ${r.directories} director${r.directories === 1 ? "y" : "ies"}${r.links ? `, ${r.links} link(s)` : ""} (${r.bytes} bytes) to ${where}\n`);
  for (const s of r.skipped) cli.err.write(`skipped ${s.path}: ${s.reason}\n`);
}

/** `lago deploy [VM…]`: deploy scripts, their output prefixed with the VM's name. */
export async function deploy(cli: Cli, vms: string[], opts: InitFileOpts & { json?: boolean }): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const r = renderer(cli, opts.json === true);
  const ctx = context(cli, opts.json ? () => undefined : r.emit);
  try {
    const results = await deployOp(ctx, spec, vms);
    if (opts.json) return json(cli, results);
    if (!results.length) cli.out.write("No VM has deploy scripts (metadata.deploy-scripts).\n");
    for (const res of results) cli.err.write(`${res.vm}: ${res.runs.length} script(s) done in ${formatDuration(res.runs.reduce((a, x) => a + x.elapsedMs, 0))}\n`);
  } finally {
    r.flush();
  }
}

/** `lago collect --output DIR [VM…]`: artifacts into DIR/<vm>/. */
export async function collect(cli: Cli, vms: string[], opts: InitFileOpts & { output: string; strict?: boolean; json?: boolean }): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const r = renderer(cli, opts.json === true);
  const results = await collectOp(context(cli, r.emit), spec, opts.output, vms, { strict: opts.strict === true });
  if (opts.json) return json(cli, results);
  if (!results.length) cli.out.write("No VM has artifacts to collect.\n");
  for (const res of results) {
    cli.out.write(`${res.vm}: ${res.copied.length} artifact(s), ${res.report.files} file(s), ${res.report.bytes} bytes${res.missing.length ? `; missing: ${res.missing.join(", ")}` : ""}\n`);
  }
}

/** `lago ansible_hosts`: the INI inventory, or Ansible's inventory-script JSON (`--json`, `--list`, `--host`). */
export async function ansibleHosts(cli: Cli, opts: InitFileOpts & { keys?: string[]; json?: boolean; list?: boolean; host?: string }): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const inv = ansibleInventory(context(cli), spec, opts.keys?.length ? opts.keys : DEFAULT_INVENTORY_KEYS);
  if (opts.host !== undefined) {
    const h = inv.hosts.find((x) => x.name === opts.host);
    return json(cli, h?.vars ?? {});
  }
  if (opts.json || opts.list) return json(cli, dynamicInventory(inv));
  cli.out.write(renderIni(inv));
}

/** `lago snapshot NAME [VM…]` and `lago snapshot --list`. */
export async function snapshot(cli: Cli, name: string | undefined, vms: string[], opts: { list?: boolean; json?: boolean }): Promise<void> {
  if (opts.list) {
    if (name !== undefined) throw new UsageError("lago snapshot --list takes no snapshot name");
    const { snapshots, lost } = await listSnapshots(context(cli));
    if (opts.json) return json(cli, { snapshots, lost });
    if (!snapshots.length) cli.out.write("No snapshots.\n");
    for (const s of snapshots) cli.out.write(`${s.name}  ${s.created}  ${s.vms.map((v) => `${v.vm} (${v.state})`).join(", ")}\n`);
    for (const l of lost) cli.err.write(`warning: the state records snapshot ${l.snapshot} of ${l.vm}, but libvirt has no such snapshot\n`);
    return;
  }
  if (name === undefined) throw new UsageError("lago snapshot needs a snapshot name (or --list)");
  const r = renderer(cli, opts.json === true);
  const res = await takeSnapshot(context(cli, r.emit), name, vms);
  if (opts.json) return json(cli, res);
  cli.out.write(`Snapshot ${res.name} of ${res.vms.map((v) => `${v.vm} (${v.state})`).join(", ")} taken in ${formatDuration(res.elapsedMs)}.\n`);
}

/** `lago revert NAME [VM…]`. */
export async function revert(cli: Cli, name: string, vms: string[], opts: { json?: boolean }): Promise<void> {
  const r = renderer(cli, opts.json === true);
  const res = await revertSnapshot(context(cli, r.emit), name, vms);
  if (opts.json) return json(cli, res);
  cli.out.write(`Reverted ${res.vms.map((v) => `${v.vm} (${v.state})`).join(", ")} to ${res.name} in ${formatDuration(res.elapsedMs)}.\n`);
}

/** `lago export --output DIR [VM…] [--standalone]`. */
export async function exportVms(cli: Cli, vms: string[], opts: InitFileOpts & { output: string; standalone?: boolean; initFileName: string; json?: boolean }): Promise<void> {
  const spec = await loadInitFile(cli, opts);
  const r = renderer(cli, opts.json === true);
  const res = await exportOp(context(cli, r.emit), spec, opts.output, vms, { standalone: opts.standalone === true, initFileName: opts.initFileName });
  if (opts.json) return json(cli, res);
  for (const d of res.disks) cli.out.write(`${d.vm}/${d.disk}: ${d.file}${d.backing ? ` (a layer on ${d.backing})` : " (standalone)"}\n`);
  cli.out.write(`Init file: ${res.initFile}\nRecreate the VMs with: lago apply -f ${res.initFile} --env NAME\n`);
}

/** `lago template list [--json]`. */
export async function templateList(cli: Cli, opts: { json?: boolean }): Promise<void> {
  const res = await listTemplates(context(cli));
  if (opts.json) return json(cli, res);
  cli.out.write(`Template store ${res.store}:\n`);
  if (!res.images.length) cli.out.write("  (empty)\n");
  for (const i of res.images) {
    cli.out.write(`  ${i.key}  ${mib(i.size)}  ${i.inUse ? `in use by ${i.liveUsers.join(", ")}` : "unused"}\n`);
  }
  if (res.layers.length) {
    cli.out.write(`\nBuild layers (${path.join(res.store, "layers")}):\n`);
    for (const l of res.layers) cli.out.write(`  ${l.key.slice(0, 12)}  on ${path.basename(l.template)}  ${mib(l.bytes)}  ${l.inUse ? `in use by ${l.liveUsers.join(", ")}` : "unused (a cache for re-creates)"}\n`);
  }
  if (res.repository) {
    cli.out.write(`\nRepository ${res.repository.origin}:\n`);
    if (res.repository.error) cli.out.write(`  cannot read it: ${res.repository.error}\n`);
    for (const t of res.repository.templates) cli.out.write(`  ${t.name}: ${t.versions.map((v) => `${v.version}${v.stored ? " (stored)" : ""}`).join(", ")}\n`);
  }
}

/** `lago template fetch NAME[:VERSION]`. */
export async function templateFetch(cli: Cli, ref: string): Promise<void> {
  const r = renderer(cli);
  const res = await fetchTemplate(context(cli, r.emit), ref);
  cli.out.write(`${res.key} is in the store: ${res.path}\n`);
}

/** `lago template prune [--dry-run]`. */
export async function templatePrune(cli: Cli, opts: { dryRun?: boolean; json?: boolean }): Promise<void> {
  const res = await pruneTemplates(context(cli), { dryRun: opts.dryRun === true });
  if (opts.json) return json(cli, res);
  const verb = opts.dryRun ? "would remove" : "removed";
  for (const l of res.layers.removed) cli.out.write(`${verb} build layer ${l.key.slice(0, 12)} (${mib(l.bytes)})\n`);
  for (const i of res.removed) cli.out.write(`${verb} ${i.key} (${mib(i.size)})\n`);
  for (const l of res.layers.kept) cli.out.write(`kept build layer ${l.key.slice(0, 12)}: in use by ${l.liveUsers.join(", ") || "a process working on it"}\n`);
  for (const i of res.kept) cli.out.write(`kept ${i.key}: in use by ${i.liveUsers.join(", ") || "a process working on it"}\n`);
  if (!res.removed.length && !res.layers.removed.length) cli.out.write("Nothing to remove.\n");
}

/** `lago env list [--json]`. */
export async function envList(cli: Cli, opts: { json?: boolean }): Promise<void> {
  const workdir = cli.env().workdir;
  const envs = listEnvs(workdir);
  if (opts.json) return json(cli, { workdir, envs });
  if (!envs.length) cli.out.write(`No environments in ${workdir}.\n`);
  for (const e of envs) cli.out.write(`${e.current ? "*" : " "} ${e.name}  ${e.vms.length} VM(s)${e.vms.length ? `: ${e.vms.join(", ")}` : ""}\n`);
}

/** `lago env select NAME`. */
export async function envSelect(cli: Cli, name: string): Promise<void> {
  const workdir = cli.env().workdir;
  selectEnv(workdir, name);
  cli.out.write(`Environment ${name} is now the current one in ${workdir}.\n`);
}

/** `lago doctor [--json]`: exit 1 when a check fails. */
export async function doctor(cli: Cli, opts: { json?: boolean }): Promise<void> {
  const checks = await doctorOp(context(cli));
  if (checks.some((c) => c.status === "fail")) cli.exitCode = EXIT.error;
  if (opts.json) return json(cli, checks);
  const st = cli.style();
  for (const c of checks) {
    const mark = c.status === "ok" ? st.green("ok  ") : c.status === "warn" ? st.yellow("warn") : st.red("FAIL");
    cli.out.write(`${mark}  ${c.name}: ${c.detail}\n`);
    if (c.fix) cli.out.write(`      → ${c.fix}\n`);
  }
}
