/**
 * Every sequence the property tests found a bug with, replayed with the same
 * checks: `test/fixtures/NNN-*\/sequence.json` names the init file of each step
 * (`steps/NN.LagoInitFile`) and how its apply is run (a fault, `--restart`,
 * `--parallelism`). A fixture with `"todo"` is a known bug not fixed yet: it
 * runs, and reports as a todo instead of failing the suite.
 */
import { test } from "node:test";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { runSequence, type StepInput } from "../property/runner.ts";
import { FIXTURES_DIR } from "../unit/plan-fixture-support.ts";

interface SequenceFixture {
  /** What the sequence showed. */
  bug: string;
  /** Set while the bug is not fixed: why. */
  todo?: string;
  steps: (Omit<StepInput, "text"> & { file: string })[];
}

const folders = readdirSync(FIXTURES_DIR).filter((f) => /^\d{3}-/.test(f) && existsSync(path.join(FIXTURES_DIR, f, "sequence.json")));

test("there are sequence fixtures", () => {
  if (!folders.length) throw new Error(`no sequence fixtures in ${FIXTURES_DIR}`);
});

for (const folder of folders.sort()) {
  const dir = path.join(FIXTURES_DIR, folder);
  const fixture = JSON.parse(readFileSync(path.join(dir, "sequence.json"), "utf8")) as SequenceFixture;
  test(`${folder}: ${fixture.bug}`, { todo: fixture.todo }, async () => {
    await runSequence(fixture.steps.map(({ file, ...rest }) => ({ ...rest, text: readFileSync(path.join(dir, file), "utf8") })));
  });
}
