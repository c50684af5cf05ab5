/**
 * Loading a LagoInitFile: read (YAML or JSON, by content) with source
 * positions → JSON Schema validation → prototypes → semantic validation →
 * normalization. Every problem found is reported at once, each with its
 * `file:line:col`.
 */
import { sha256 } from "../util/hash.ts";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError, UsageError, errorMessage } from "../errors.ts";
import { DiagnosticSink } from "./diagnostics.ts";
import { checkHostAccess, STRICT_HOST_ACCESS, type HostAccessPolicy } from "./host-access.ts";
import { normalize } from "./normalize.ts";
import { applyPrototypes } from "./prototypes.ts";
import { readDocument } from "./read-document.ts";
import { isTemplate, renderTemplate } from "./template.ts";
import { validateSchema } from "./schema-validate.ts";
import type { PositionMapper } from "./read-document.ts";
import type { EnvSpec, TemplateInfo } from "./types.ts";
import { validateSemantics } from "./validate.ts";

export interface LoadOptions {
  /**
   * Variables for `$VAR`/`${VAR}` expansion in disk paths (default: `process.env`).
   * `LAGO_INITFILE_PATH` is always the init file's directory.
   */
  env?: Record<string, string | undefined>;
  /**
   * What the file may make lago read on the host (default: build steps read
   * only inside the init file's directory, no images in system directories).
   */
  hostAccess?: HostAccessPolicy;
  /**
   * Variables for an init file written as a Jinja2 template (see
   * `template.ts`; `templateVars` builds them from `--var`/`--var-file`).
   * Templates also see `env` (`options.env`, default `process.env`).
   */
  vars?: Record<string, unknown>;
}

function build(text: string, file: string, digest: string, options: LoadOptions): EnvSpec {
  const env = options.env ?? process.env;
  let source = text;
  let template: TemplateInfo | undefined;
  let mapPos: PositionMapper | undefined;
  if (isTemplate(text)) {
    const vars = options.vars ?? {};
    const result = renderTemplate(text, file, { vars, env }, path.dirname(file));
    if (!result.ok) throw new ConfigError(result.diagnostics);
    source = result.rendered.text;
    mapPos = (line, col) => result.rendered.lines.map(line, col);
    const used: Record<string, unknown> = {};
    for (const name of result.rendered.used.vars) Object.defineProperty(used, name, { value: vars[name], enumerable: true, writable: true, configurable: true });
    const usedEnv: Record<string, string> = {};
    for (const name of result.rendered.used.env) {
      const value = env[name];
      if (value !== undefined) Object.defineProperty(usedEnv, name, { value, enumerable: true, writable: true, configurable: true });
    }
    template = { vars: used, env: usedEnv, renderedSha256: sha256(source) };
  }
  const read = readDocument(source, file, mapPos);
  const sink = new DiagnosticSink(read.map);
  for (const d of read.diagnostics) sink.add(d);
  if (read.value === undefined) throw new ConfigError(sink.sorted());

  validateSchema(read.value, sink);
  const doc = applyPrototypes(read.value, read.map, sink);
  validateSemantics(doc, sink);
  const access = checkHostAccess(doc, file, env, options.hostAccess ?? STRICT_HOST_ACCESS, sink);
  if (sink.size > 0) throw new ConfigError(sink.sorted());

  const spec = normalize({
    doc,
    file,
    sha256: digest,
    locate: (pointer) => read.map.locate(pointer),
    env,
    hostPaths: access.hostPaths,
  });
  if (template) spec.template = template;
  return spec;
}

/**
 * Parses and validates an init file's text. Pure apart from reading
 * `process.env` when `options.env` is not given and from looking at the host
 * files the init file names (build inputs, image paths: realpath and stat).
 *
 * @param file absolute path of the file, used in diagnostics, to resolve
 *   relative disk paths and as `$LAGO_INITFILE_PATH` (its directory).
 * @throws ConfigError with every problem found (syntax, schema and semantic).
 */
export function parseSpec(text: string, file: string, options: LoadOptions = {}): EnvSpec {
  return build(text, file, sha256(text), options);
}

/**
 * Reads, validates and normalizes the init file at `file` (resolved against
 * the current directory). `sha256` is the hash of the file's bytes.
 *
 * @throws UsageError when the file cannot be read.
 * @throws ConfigError with every problem found in it.
 */
export async function loadSpec(file: string, options: LoadOptions = {}): Promise<EnvSpec> {
  const absolute = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "it is a directory"
          : code === "EACCES" || code === "EPERM"
            ? "permission denied"
            : errorMessage(err);
    throw new UsageError(`cannot read init file ${absolute}: ${why}`, {
      hint: code === "ENOENT" ? "pass the path of a LagoInitFile (YAML or JSON)" : undefined,
      cause: err,
    });
  }
  const text = new TextDecoder("utf-8").decode(bytes);
  const bad = text.indexOf("\uFFFD");
  if (bad >= 0 && !bytes.includes(Buffer.from("\uFFFD"))) {
    const before = text.slice(0, bad).split("\n");
    const line = before.length;
    const col = (before[before.length - 1] ?? "").length + 1;
    throw new ConfigError([{ pos: { file: absolute, line, col }, pointer: "", message: "the file is not valid UTF-8 text" }]);
  }
  return build(text, absolute, sha256(bytes), options);
}
