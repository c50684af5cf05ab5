/** What one size's child process reports to bench/run.ts. */
export const RESULT_PREFIX = "BENCH_RESULT ";

export const STEPS = ["parse", "resolve", "compile", "planEmpty", "planState", "planRefreshed", "render"] as const;
export type StepName = (typeof STEPS)[number];

export interface SizeResult {
  domains: number;
  nets: number;
  /** Resources in the compiled graph. */
  resources: number;
  yamlKiB: number;
  renderedKiB: number;
  repeats: number;
  /** Median milliseconds per step. */
  steps: Record<StepName, number>;
  /** Median CPU milliseconds (user + system, every thread of the process) per step. */
  cpuSteps: Record<StepName, number>;
  /** High-water mark of the child's resident set (whole process, all repeats). */
  peakRssMiB: number;
  /** heapUsed after a forced GC with every artifact alive; null without --expose-gc. */
  heapAfterGcMiB: number | null;
  /** Number of artifacts kept alive for the heap measurement. */
  retained: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parse a child's result line; throws when it is not a SizeResult. */
export function parseResult(json: string): SizeResult {
  const v: unknown = JSON.parse(json);
  if (!isRecord(v) || typeof v.domains !== "number" || !isRecord(v.steps) || !isRecord(v.cpuSteps) || typeof v.peakRssMiB !== "number") {
    throw new Error(`malformed bench result: ${json.slice(0, 200)}`);
  }
  for (const s of STEPS) {
    if (typeof v.steps[s] !== "number" || typeof v.cpuSteps[s] !== "number") throw new Error(`bench result lacks step ${s}`);
  }
  return v as unknown as SizeResult;
}
