/**
 * One seed for every fast-check property of a test run, so that CI is
 * reproducible: `LAGO_PROPERTY_SEED` (a number, or `random` for a fresh one;
 * default {@link DEFAULT_SEED}). fast-check prints the seed and the path of a
 * failure, and the same seed replays it. Loaded with `--import` by the unit
 * and property test scripts; the edit-sequence properties read the same seed.
 */
import fc from "fast-check";

export const DEFAULT_SEED = 20261123;

export function propertySeed(): number {
  const env = process.env.LAGO_PROPERTY_SEED;
  if (env === "random") return Math.floor(Math.random() * 2 ** 31);
  return env ? Number(env) : DEFAULT_SEED;
}

fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: propertySeed() });
