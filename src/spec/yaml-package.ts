/**
 * The `yaml` package, loaded on first use (synchronously: the YAML readers are). Most init
 * files never need it — js-yaml reads them (yaml-tree.ts) — and loading it costs every
 * `lago plan` about 8 ms. It is a run-time dependency, not in the bundle (scripts/build.mjs).
 */
import { createRequire } from "node:module";
import type * as Yaml from "yaml";

let loaded: typeof Yaml | undefined;

export function yamlPackage(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)("yaml") as typeof Yaml;
  return loaded;
}
