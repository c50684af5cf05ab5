/**
 * Template variables from the command line: `--var-file FILE` (a YAML or JSON
 * mapping, read like an init file: PyYAML rules, anchors, positions in
 * errors) and `--var NAME=VALUE` (a string), merged in that order — variables
 * files first, in the order given, then `--var`s, each overriding what came
 * before.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { ConfigError, UsageError, errorMessage } from "../errors.ts";
import { isRecord } from "./pointer.ts";
import { readDocument } from "./read-document.ts";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses one `--var NAME=VALUE`. @throws UsageError for a malformed one. */
export function parseVarArg(arg: string): [string, string] {
  const eq = arg.indexOf("=");
  const name = eq < 0 ? arg : arg.slice(0, eq);
  if (eq < 0 || !NAME.test(name)) {
    throw new UsageError(`--var takes NAME=VALUE with NAME a template variable name (letters, digits, _), got ${JSON.stringify(arg)}`);
  }
  if (name === "env") throw new UsageError("--var env=…: `env` is the process environment in templates and cannot be set");
  return [name, arg.slice(eq + 1)];
}

/**
 * Reads a variables file. @throws UsageError when it cannot be read,
 * ConfigError (with positions) when it is not a mapping of variable names.
 */
export function readVarFile(file: string): Record<string, unknown> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read variables file ${absolute}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : errorMessage(err)}`, { cause: err });
  }
  const read = readDocument(text, absolute);
  if (read.value === undefined || read.diagnostics.length) throw new ConfigError(read.diagnostics);
  if (read.value === null) return {};
  if (!isRecord(read.value)) {
    throw new ConfigError([{ pos: read.map.locate(""), pointer: "", message: "a variables file must be a mapping of variable names to values" }]);
  }
  for (const name of Object.keys(read.value)) {
    if (!NAME.test(name) || name === "env") {
      throw new ConfigError([
        { pos: read.map.locateKey(`/${name}`), pointer: `/${name}`, message: `\`${name}\` cannot be a template variable name${name === "env" ? " (`env` is the process environment)" : " (letters, digits and _, not starting with a digit)"}` },
      ]);
    }
  }
  return read.value;
}

/** Merges variables files and `--var`s (later ones win). */
export function templateVars(varFiles: readonly string[] = [], varArgs: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (k: string, v: unknown): void => {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  for (const file of varFiles) for (const [k, v] of Object.entries(readVarFile(file))) set(k, v);
  for (const arg of varArgs) {
    const [k, v] = parseVarArg(arg);
    set(k, v);
  }
  return out;
}
