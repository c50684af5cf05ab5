/** Doing one thing on several VMs at once, and reporting every VM that failed in one error. */
import { LagoError, errorMessage } from "../errors.ts";
import type { VmView } from "./view.ts";

/** Run `fn` for every VM at once; collect each outcome or error. */
export async function eachVm<T>(vms: VmView[], fn: (vm: VmView) => Promise<T>): Promise<{ vm: VmView; value?: T; error?: unknown }[]> {
  const settled = await Promise.allSettled(vms.map((vm) => fn(vm)));
  return settled.map((s, i) => {
    const vm = vms[i] as VmView;
    return s.status === "fulfilled" ? { vm, value: s.value } : { vm, error: s.reason };
  });
}

/** Throw one error naming every VM that failed (after the others were recorded). */
export function throwIfFailed(verb: string, results: { vm: VmView; error?: unknown }[]): void {
  const failed = results.filter((r) => r.error !== undefined);
  if (!failed.length) return;
  const first = failed[0]?.error;
  throw new LagoError(
    "OPERATION_FAILED",
    `${verb} failed on ${failed.length} VM${failed.length === 1 ? "" : "s"}:\n${failed.map((f) => `  ${f.vm.name}: ${errorMessage(f.error).replaceAll("\n", "\n    ")}`).join("\n")}`,
    { hint: first instanceof LagoError ? first.hint : undefined, cause: first },
  );
}
