/**
 * `lago deploy`: run each VM's `metadata.deploy-scripts` on it, in order, as
 * Lago and oVirt's system tests do. Script paths may use `$LAGO_INITFILE_PATH`
 * and other environment variables and are relative to the init file. Each
 * script is fed to its interpreter (its `#!` line, else `sh`) on standard
 * input, so the guest needs no copy of it. VMs deploy at once; on a VM, the
 * first failing script stops the ones after it.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { LagoError, UsageError } from "../errors.ts";
import type { EnvSpec } from "../spec/types.ts";
import { expandVars as expandSpecVars } from "../spec/normalize.ts";
import type { SshSession } from "../drivers/real/ssh-session.ts";
import { messageWithHint, openSession } from "./remote.ts";
import type { OpsContext } from "./context.ts";
import { shellQuote } from "./command-line.ts";
import { readView, selectVms } from "./view.ts";

export interface ScriptRun {
  script: string;
  code: number;
  elapsedMs: number;
}

export interface DeployResult {
  vm: string;
  runs: ScriptRun[];
  /** The script that failed (its runs entry has the exit code), if one did. */
  failed: string | undefined;
  /** Why the VM could not be deployed at all (unreachable…). */
  error: string | undefined;
}

const SHELLS = new Set(["sh", "bash", "ash", "dash", "ksh", "zsh", "busybox"]);

/** Expand `$VAR` and `${VAR}` from `vars`; an undefined variable is an error naming it. Pure. */
export function expandVars(text: string, vars: Record<string, string | undefined>): string {
  return expandSpecVars(text, vars, (name) => {
    throw new UsageError(`undefined variable $${name} in ${JSON.stringify(text)}`);
  });
}

/** The deploy scripts of a domain's metadata, as written. Pure. */
export function deployScriptsOf(metadata: unknown): string[] {
  if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) return [];
  const scripts = (metadata as Record<string, unknown>)["deploy-scripts"];
  if (scripts === undefined || scripts === null) return [];
  if (!Array.isArray(scripts) || !scripts.every((s) => typeof s === "string")) throw new UsageError("metadata.deploy-scripts must be a list of paths");
  return scripts;
}

/**
 * The command that runs a script read from standard input: the interpreter
 * of its `#!` line (a shell gets `-s`), else `sh -s`. Pure.
 */
export function interpreterCommand(script: string): string {
  const first = script.split("\n", 1)[0] ?? "";
  if (!first.startsWith("#!")) return "sh -s";
  const argv = first.slice(2).trim().split(/\s+/).filter(Boolean);
  if (!argv.length) return "sh -s";
  const base = (i: number): string => path.posix.basename(argv[i] ?? "");
  const program = base(0) === "env" && argv.length > 1 ? base(1) : base(0);
  return [...argv, ...(SHELLS.has(program) ? ["-s"] : [])].map(shellQuote).join(" ");
}

/** Resolve the script paths of one VM against the init file; every script must be a readable file. */
export function resolveScripts(spec: EnvSpec, vm: string, scripts: string[], env: Record<string, string | undefined>): string[] {
  const base = path.dirname(spec.file);
  return scripts.map((s) => {
    const file = path.resolve(base, expandVars(s, { ...env, LAGO_INITFILE_PATH: base }));
    let ok = false;
    try {
      ok = statSync(file).isFile();
    } catch {
      ok = false;
    }
    if (!ok) throw new UsageError(`VM ${vm}: deploy script ${s} (${file}) is not a readable file`);
    return file;
  });
}

/**
 * Deploy the VMs named (all that have scripts when none). Streams each
 * script's output as `output` events; resolves with what ran on each VM.
 * Throws when any script failed or a VM could not be reached (after all VMs
 * finished).
 */
export async function deploy(ctx: OpsContext, spec: EnvSpec, names: readonly string[], env: Record<string, string | undefined> = process.env): Promise<DeployResult[]> {
  const view = readView(ctx);
  const vms = selectVms(view, names);
  const specs = new Map(spec.domains.map((d) => [d.name, d]));
  // Check every script of every VM before running any.
  const plans = vms.flatMap((vm) => {
    const d = specs.get(vm.name);
    if (!d) {
      if (names.includes(vm.name)) throw new UsageError(`VM ${vm.name} is not in ${spec.file}`);
      return [];
    }
    const scripts = resolveScripts(spec, vm.name, deployScriptsOf(d.metadata), env);
    return scripts.length ? [{ vm, scripts }] : [];
  });
  const results = await Promise.all(
    plans.map(async ({ vm, scripts }): Promise<DeployResult> => {
      const result: DeployResult = { vm: vm.name, runs: [], failed: undefined, error: undefined };
      let session: SshSession | undefined;
      try {
        session = await openSession(ctx, vm);
        for (const file of scripts) {
          const text = readFileSync(file, "utf8");
          ctx.emit({ type: "vm", vm: vm.name, message: `running ${file}` });
          const started = Date.now();
          const status = await session.exec(interpreterCommand(text), {
            stdin: text,
            signal: ctx.signal,
            onStdout: (d) => ctx.emit({ type: "output", vm: vm.name, stream: "stdout", text: d.toString("utf8") }),
            onStderr: (d) => ctx.emit({ type: "output", vm: vm.name, stream: "stderr", text: d.toString("utf8") }),
          });
          result.runs.push({ script: file, code: status.code, elapsedMs: Date.now() - started });
          if (status.code !== 0) {
            result.failed = file;
            break;
          }
        }
      } catch (err) {
        result.error = messageWithHint(err);
      } finally {
        session?.close();
      }
      return result;
    }),
  );
  const bad = results.filter((r) => r.failed || r.error);
  if (bad.length) {
    throw new LagoError(
      "DEPLOY_FAILED",
      `deploy failed on ${bad.map((r) => r.vm).join(", ")}:\n${bad
        .map((r) => (r.error ? `  ${r.vm}: ${r.error}` : `  ${r.vm}: ${r.failed} exited with code ${r.runs[r.runs.length - 1]?.code ?? "?"}; the scripts after it did not run`))
        .join("\n")}`,
    );
  }
  return results;
}
