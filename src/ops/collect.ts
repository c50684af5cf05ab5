/**
 * `lago collect`: copy each VM's `artifacts` (paths on the VM, from the init
 * file) to `<output>/<vm>/<path>`, mirroring the VM's tree (`/var/log` goes
 * to `<output>/vm01/var/log`). A missing path is reported and skipped, or
 * fails the VM with `strict`.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { LagoError, UsageError } from "../errors.ts";
import type { EnvSpec } from "../spec/types.ts";
import type { SshSession } from "../drivers/real/ssh-session.ts";
import { messageWithHint, openSession } from "./remote.ts";
import { download, emptyReport, remoteStat, type CopyReport } from "../drivers/real/sftp-copy.ts";
import type { OpsContext } from "./context.ts";
import { readView, selectVms } from "./view.ts";

export interface CollectResult {
  vm: string;
  /** Artifacts copied, with where they went. */
  copied: { artifact: string; destination: string }[];
  /** Artifacts that do not exist on the VM. */
  missing: string[];
  report: CopyReport;
  /** Why the VM could not be collected from (unreachable, a copy failed). */
  error: string | undefined;
}

/** Where an artifact of `vm` goes under `output`: its path inside the VM, kept. Pure; refuses paths that leave the VM's directory. */
export function artifactDestination(output: string, vm: string, artifact: string): string {
  const rel = path.posix.normalize(artifact).replace(/^\/+/, "");
  if (!rel || rel === "." || rel === ".." || rel.startsWith("../")) throw new UsageError(`VM ${vm}: artifact ${JSON.stringify(artifact)} is not a path lago can copy`);
  return path.join(output, vm, ...rel.split("/"));
}

/**
 * Collect the artifacts of the VMs named (all when none) into `output`. VMs
 * are collected at once. Throws, after every VM was tried, when a VM could
 * not be collected from, or (with `strict`) an artifact was missing.
 */
export async function collect(ctx: OpsContext, spec: EnvSpec, output: string, names: readonly string[], opts: { strict: boolean }): Promise<CollectResult[]> {
  const view = readView(ctx);
  const vms = selectVms(view, names);
  const specs = new Map(spec.domains.map((d) => [d.name, d]));
  const out = path.resolve(output);
  const plans = vms.flatMap((vm) => {
    const artifacts = specs.get(vm.name)?.artifacts ?? [];
    return artifacts.length ? [{ vm, artifacts: artifacts.map((a) => ({ artifact: a, destination: artifactDestination(out, vm.name, a) })) }] : [];
  });
  const results = await Promise.all(
    plans.map(async ({ vm, artifacts }): Promise<CollectResult> => {
      const result: CollectResult = { vm: vm.name, copied: [], missing: [], report: emptyReport(), error: undefined };
      let session: SshSession | undefined;
      try {
        session = await openSession(ctx, vm);
        const sftp = await session.sftp();
        for (const { artifact, destination } of artifacts) {
          if (!(await remoteStat(sftp, artifact, false))) {
            result.missing.push(artifact);
            ctx.emit({ type: "warning", vm: vm.name, message: `artifact ${artifact} does not exist on the VM${opts.strict ? "" : ": skipped"}` });
            continue;
          }
          mkdirSync(path.dirname(destination), { recursive: true });
          ctx.emit({ type: "vm", vm: vm.name, message: `collecting ${artifact}` });
          await download(sftp, artifact, destination, result.report);
          result.copied.push({ artifact, destination });
        }
      } catch (err) {
        result.error = messageWithHint(err);
      } finally {
        session?.close();
      }
      return result;
    }),
  );
  const bad = results.filter((r) => r.error || (opts.strict && r.missing.length));
  if (bad.length) {
    throw new LagoError(
      "COLLECT_FAILED",
      `collect failed on ${bad.map((r) => r.vm).join(", ")}:\n${bad.map((r) => `  ${r.vm}: ${r.error ?? `missing ${r.missing.join(", ")}`}`).join("\n")}`,
      { hint: bad.some((r) => !r.error) ? "without --strict, missing artifacts are skipped" : undefined },
    );
  }
  return results;
}
