/**
 * Running the edit-sequence properties: seeds, run counts and replay. A
 * failure prints the seed, the shrunk sequence's init files and the one
 * command that replays it.
 *
 * Environment:
 * - `LAGO_PROPERTY_SEED` — the seed (see test/helpers/fast-check-seed.ts);
 * - `LAGO_PROPERTY_PATH` — replay one counterexample (with its seed);
 * - `LAGO_PROPERTY_RUNS` — sequences per property (defaults in the tests);
 * - `LAGO_PROPERTY` — only this property (`edits`, `faults`); the others skip.
 */
import fc from "fast-check";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { sequenceArb, applyEdit, type Sequence } from "./arbitraries.ts";
import { shrinks, toDocument } from "./model.ts";
import { render } from "./render.ts";
import { propertySeed } from "../helpers/fast-check-seed.ts";
import { PropertyFailure, runSequence, stats, type StepInput } from "./runner.ts";


/** The texts and apply options of a generated sequence. Pure. */
export function sequenceSteps(seq: Sequence): StepInput[] {
  let model = seq.initial;
  const steps: StepInput[] = [{ text: render(toDocument(model), seq.initialStyle), fault: seq.initialFault }];
  for (const step of seq.steps) {
    let next = model;
    for (const edit of step.edits) next = applyEdit(next, edit);
    const { grown, shrunk } = shrinks(model, next);
    // An edit that shrinks a kept disk: sometimes first check that lago refuses it, then grow it instead.
    if (shrunk && step.style % 2 === 0) steps.push({ text: render(toDocument(next), step.style), refused: "/disks/\\d+/size$" });
    model = grown;
    steps.push({ text: render(toDocument(model), step.style), fault: step.fault, restart: step.restart, parallelism: step.parallelism });
  }
  return steps;
}

export interface PropertyOptions {
  /** Name used by `LAGO_PROPERTY` and in the replay command. */
  name: string;
  faults: boolean;
  runs: number;
  maxSteps?: number;
}

/** Whether this property runs (another one was selected for a replay). */
export function selected(name: string): boolean {
  const only = process.env.LAGO_PROPERTY;
  return !only || only === name;
}

/** Check the property; on failure throw an error with the init files and the replay command. */
export async function checkSequences(opts: PropertyOptions): Promise<{ runs: number; seed: number; stats: typeof stats }> {
  const seed = propertySeed();
  const replayPath = process.env.LAGO_PROPERTY_PATH;
  const runs = Number(process.env.LAGO_PROPERTY_RUNS ?? opts.runs);
  const property = fc.asyncProperty(sequenceArb(opts.faults, (opts.maxSteps ?? 6) - 1), async (seq) => {
    await runSequence(sequenceSteps(seq));
  });
  const details = await fc.check(property, { seed, numRuns: runs, ...(replayPath ? { path: replayPath, endOnFailure: true } : {}) });
  if (!details.failed) return { runs: details.numRuns, seed, stats: { ...stats } };
  const counterexample = details.counterexample?.[0];
  const error = details.errorInstance;
  const saveTo = process.env.LAGO_PROPERTY_SAVE;
  if (saveTo && counterexample) saveFixture(saveTo, error instanceof PropertyFailure ? error.steps : sequenceSteps(counterexample));
  const message = error instanceof Error ? error.message : String(error);
  const command = `LAGO_PROPERTY=${opts.name} LAGO_PROPERTY_SEED=${details.seed} LAGO_PROPERTY_PATH=${details.counterexamplePath ?? ""} npm run test:property`;
  throw new Error(
    `property "${opts.name}" failed after ${details.numRuns} sequence(s) (seed ${details.seed}, shrunk ${details.numShrinks} times)\n` +
      `replay: ${command}\n` +
      `save it as a fixture: LAGO_PROPERTY_SAVE=test/fixtures/NNN-what ${command}\n\n${message}`,
    { cause: error },
  );
}

/**
 * Write a sequence as a fixture folder: `steps/NN.LagoInitFile` and
 * `sequence.json` (the apply options of each step), replayed by
 * test/engine/properties-fixtures.test.ts.
 */
export function saveFixture(dir: string, steps: StepInput[]): void {
  mkdirSync(path.join(dir, "steps"), { recursive: true });
  const entries = steps.map((s, i) => {
    const file = `${String(i + 1).padStart(2, "0")}.LagoInitFile`;
    writeFileSync(path.join(dir, "steps", file), s.text);
    return { file: `steps/${file}`, ...(s.refused ? { refused: s.refused } : {}), ...(s.fault ? { fault: s.fault } : {}), ...(s.restart ? { restart: true } : {}), ...(s.parallelism ? { parallelism: s.parallelism } : {}) };
  });
  writeFileSync(path.join(dir, "sequence.json"), `${JSON.stringify({ bug: "TODO: what went wrong", steps: entries }, null, 2)}\n`);
}
