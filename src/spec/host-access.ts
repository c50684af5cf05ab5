/**
 * What an init file makes lago do on the host, checked at validate time (after
 * the schema, after prototypes): build steps use only allowed virt-customize
 * operations and read host files only inside the init file's directory; disk
 * and template images by `path` stay out of system directories and are not
 * devices. Every problem is reported with the position of the key or value.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { BUILD_OPERATIONS, REFUSED_OPTIONS, hostPathsOf, type BuildOperation } from "./build-ops.ts";
import type { DiagnosticSink } from "./diagnostics.ts";
import { didYouMean } from "./did-you-mean.ts";
import { checkBuildHostPath, imagePathProblem } from "./host-paths.ts";
import { expandVars } from "./normalize.ts";
import { isRecord, joinPointer } from "./pointer.ts";

export interface HostAccessPolicy {
  /** Build steps may read host files outside the init file's directory (`--allow-outside-paths`). */
  allowOutsidePaths: boolean;
  /** Disk and template images may lie in system directories (`--allow-system-paths`). */
  allowSystemPaths: boolean;
}

export const STRICT_HOST_ACCESS: HostAccessPolicy = { allowOutsidePaths: false, allowSystemPaths: false };

/** Largest commands file (`commands-from-file`) lago reads to check it. */
const MAX_COMMANDS_FILE = 1024 * 1024;

export interface HostAccess {
  /** Resolved real host paths each build option reads, by the pointer of its argument. */
  hostPaths: Map<string, string[]>;
}

interface Ctx {
  sink: DiagnosticSink;
  dir: string;
  env: Record<string, string | undefined>;
  policy: HostAccessPolicy;
  out: HostAccess;
}

function tick(s: string): string {
  return `\`${s}\``;
}

/**
 * Checks every build step and image path of `doc` (validated, prototypes
 * applied) against `policy`, reporting into `sink`; returns the resolved host
 * paths of build options for the normalized spec. Reads the file system
 * (realpath, stat, commands files), never writes.
 *
 * @param file absolute path of the init file: relative paths are relative to its directory.
 */
export function checkHostAccess(doc: unknown, file: string, env: Record<string, string | undefined>, policy: HostAccessPolicy, sink: DiagnosticSink): HostAccess {
  const dir = path.dirname(file);
  const ctx: Ctx = { sink, dir, env: { ...env, LAGO_INITFILE_PATH: dir }, policy, out: { hostPaths: new Map() } };
  if (!isRecord(doc) || !isRecord(doc.domains)) return ctx.out;
  for (const [name, domain] of Object.entries(doc.domains)) {
    if (!isRecord(domain) || !Array.isArray(domain.disks)) continue;
    const disksPointer = joinPointer(joinPointer("/domains", name), "disks");
    domain.disks.forEach((disk: unknown, i) => {
      if (!isRecord(disk)) return;
      const pointer = joinPointer(disksPointer, i);
      if (typeof disk.path === "string") checkImagePath(ctx, disk.path, joinPointer(pointer, "path"));
      if (!Array.isArray(disk.build)) return;
      disk.build.forEach((step: unknown, j) => {
        const options = isRecord(step) ? step["virt-customize"] : undefined;
        if (isRecord(options)) checkStep(ctx, options, joinPointer(joinPointer(joinPointer(pointer, "build"), j), "virt-customize"));
      });
    });
  }
  return ctx.out;
}

function checkImagePath(ctx: Ctx, written: string, pointer: string): void {
  const expanded = expandVars(written, ctx.env);
  // An unknown `$VAR` is reported by the compiler, which cannot resolve the path either.
  if (expanded.startsWith("$")) return;
  const problem = imagePathProblem(path.resolve(ctx.dir, expanded), ctx.policy.allowSystemPaths);
  if (problem !== undefined) ctx.sink.at(pointer, `disk image \`path\`: ${problem}`);
}

function checkStep(ctx: Ctx, options: Record<string, unknown>, pointer: string): void {
  for (const [name, value] of Object.entries(options)) {
    // Malformed names and values are the schema's to report.
    if (!OPTION_NAME.test(name) || !isArgument(value)) continue;
    const optionPointer = joinPointer(pointer, name);
    const op = operation(ctx, name, optionPointer);
    if (!op) continue;
    const args = Array.isArray(value) ? value.map((v, k) => ({ v, p: joinPointer(optionPointer, k) })) : [{ v: value, p: optionPointer }];
    for (const { v, p } of args) {
      const arg = v === null || v === undefined || v === "" ? undefined : String(v);
      if (op.flag && arg !== undefined) {
        ctx.sink.at(p, `virt-customize operation ${tick(name)} takes no argument: write \`${name}: ''\``);
        continue;
      }
      if (!op.flag && arg === undefined && name !== "ssh-inject") {
        ctx.sink.at(p, `virt-customize operation ${tick(name)} needs an argument`);
        continue;
      }
      const reads = hostPathsOf(op, arg);
      if (reads.outside !== undefined && !ctx.policy.allowOutsidePaths) {
        ctx.sink.at(p, `${tick(`${name}: ${arg ?? ""}`)} reads ${reads.outside}, outside the init file's directory; name a key file instead (\`USER:file:KEYFILE\`), or run lago with --allow-outside-paths`);
        continue;
      }
      const resolved: string[] = [];
      for (const written of reads.paths) {
        const check = checkBuildHostPath(ctx.dir, written, ctx.policy.allowOutsidePaths);
        if (!check.ok) {
          const hint = check.reason.includes("outside") ? "; keep build inputs beside the init file, or run lago with --allow-outside-paths" : "";
          ctx.sink.at(p, `${tick(name)} reads a host file: ${check.reason}${hint}`);
          continue;
        }
        resolved.push(check.path);
        if (name === "commands-from-file") checkCommandsFile(ctx, check.path, p);
      }
      if (resolved.length) ctx.out.hostPaths.set(p, resolved);
    }
  }
}

const OPTION_NAME = /^[a-z][a-z0-9-]*$/;

function isArgument(value: unknown): boolean {
  const scalar = (v: unknown): boolean => typeof v === "string" || typeof v === "number";
  return value === null || scalar(value) || (Array.isArray(value) && value.every(scalar));
}

function operation(ctx: Ctx, name: string, pointer: string): BuildOperation | undefined {
  const op = BUILD_OPERATIONS.get(name);
  if (op) return op;
  const refused = REFUSED_OPTIONS.get(name);
  if (refused !== undefined) {
    ctx.sink.atKey(pointer, `virt-customize option ${tick(name)} is not allowed in a build step: it ${refused}`);
  } else {
    const hint = didYouMean(name, [...BUILD_OPERATIONS.keys()]);
    ctx.sink.atKey(pointer, `unknown virt-customize operation ${tick(name)}${hint || " (see virt-customize(1), \"Customization options\")"}`);
  }
  return undefined;
}

/**
 * A commands file holds more operations, one per line (`#` comments, `\`
 * continuations). They get the same allow-list; since virt-customize would
 * resolve their host paths against its working directory, not the init file's,
 * operations that read host files are refused there: write them in the init
 * file instead.
 */
function checkCommandsFile(ctx: Ctx, file: string, pointer: string): void {
  let text: string;
  try {
    if (statSync(file).size > MAX_COMMANDS_FILE) {
      ctx.sink.at(pointer, `commands file ${file} is larger than ${MAX_COMMANDS_FILE} bytes`);
      return;
    }
    text = readFileSync(file, "utf8");
  } catch (err) {
    ctx.sink.at(pointer, `cannot read commands file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    return;
  }
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i] ?? "";
    while (line.endsWith("\\") && i + 1 < lines.length) line = line.slice(0, -1) + (lines[++i] ?? "");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const space = trimmed.indexOf(" ");
    const name = space < 0 ? trimmed : trimmed.slice(0, space);
    const arg = space < 0 ? undefined : trimmed.slice(space + 1);
    const where = `commands file ${file}, line ${lineNo}`;
    const op = BUILD_OPERATIONS.get(name);
    if (!op) {
      const refused = REFUSED_OPTIONS.get(name);
      ctx.sink.at(pointer, `${where}: virt-customize option ${tick(name)} is not allowed in a build step${refused === undefined ? "" : `: it ${refused}`}`);
      continue;
    }
    const reads = hostPathsOf(op, arg);
    if (reads.paths.length || reads.outside !== undefined) {
      ctx.sink.at(pointer, `${where}: ${tick(name)} reads host files, which a commands file may not do (virt-customize would resolve them against its working directory); write it as a build option of the init file`);
    }
  }
}
