/** Reading the init file of a verb: `-f`, template variables and the host-path policy of lago.conf. */
import path from "node:path";
import type { EnvSpec } from "../spec/types.ts";
import type { Cli } from "./main.ts";

/** What {@link initFileOptions} (global-options.ts) gives a verb. */
export interface InitFileOpts {
  file: string;
  var?: string[];
  varFile?: string[];
}

/** Load and validate the verb's init file, as every verb that reads one does. */
export async function loadInitFile(cli: Cli, opts: InitFileOpts): Promise<EnvSpec> {
  const { config } = cli.env();
  // Loaded here, not at the top: only the verbs that read an init file pay for YAML, the schema and templates.
  const [{ loadSpec }, { templateVars }] = await Promise.all([import("../spec/load.ts"), import("../spec/template-vars.ts")]);
  return loadSpec(path.resolve(opts.file), {
    vars: templateVars(opts.varFile, opts.var),
    hostAccess: { allowOutsidePaths: config.allowOutsidePaths, allowSystemPaths: config.allowSystemPaths },
  });
}
