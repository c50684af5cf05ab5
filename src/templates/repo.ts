/**
 * Lago template repositories: the `repo.metadata` JSON document that names the
 * repository, its sources (`http` with `args.baseurl`, `file` with
 * `args.root`) and, per template, its versions (`source`, `handle`,
 * `timestamp`). Everything in it is untrusted: names end up in file names of
 * the shared store and handles in paths and URLs, so both are checked here.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LagoError, errorMessage } from "../errors.ts";
import type { TemplateRef, TemplateSourceRef } from "../drivers/types.ts";
import { isRecord } from "../util/read.ts";

export interface TemplateVersionSpec {
  /** Name of the repository source it is fetched from. */
  source: string;
  /** Path relative to the source root (or base URL). */
  handle: string;
  /** Seconds since the epoch; the newest version is the default. */
  timestamp: number;
}

export interface TemplateSpec {
  versions: ReadonlyMap<string, TemplateVersionSpec>;
}

export interface TemplateRepo {
  name: string;
  /** Where the metadata was loaded from (path or URL), for messages. */
  origin: string;
  sources: ReadonlyMap<string, TemplateSourceRef>;
  templates: ReadonlyMap<string, TemplateSpec>;
}

export interface LoadTemplateRepoOptions {
  signal?: AbortSignal | undefined;
  /** For http(s) URLs; default 30 s. */
  timeoutMs?: number | undefined;
}

const MAX_NAME = 80;

/** Lago's store key for a template version: `<repo>:<name>:<version>`. */
export function templateStoreKey(ref: Pick<TemplateRef, "repo" | "name" | "version">): string {
  return `${ref.repo}:${ref.name}:${ref.version}`;
}

/**
 * Why `name` (a repository, template or version name from untrusted metadata)
 * cannot be used as part of a store file name, or undefined when it can.
 */
export function checkTemplateName(name: string): string | undefined {
  if (name === "") return "must not be empty";
  if (name.length > MAX_NAME) return `is longer than ${MAX_NAME} characters`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return "contains a control character";
  if (name.includes("/")) return "contains '/'";
  if (name === "." || name === "..") return "is a '.' or '..' path segment";
  return undefined;
}

/**
 * Why `handle` cannot be used below a source root, or undefined when it can:
 * it must be relative, without `.`/`..`/empty segments or control characters.
 */
export function checkTemplateHandle(handle: string): string | undefined {
  if (handle === "") return "must not be empty";
  if (/[\u0000-\u001f\u007f]/.test(handle)) return "contains a control character";
  if (handle.startsWith("/")) return "is an absolute path; it must be relative to the source root";
  if (handle.includes("\\")) return "contains '\\'";
  const segments = handle.split("/");
  if (segments.includes("..")) return "contains a '..' segment; it must stay inside the source root";
  if (segments.some((s) => s === "" || s === ".")) return "contains an empty or '.' segment";
  return undefined;
}

/**
 * Load and validate `repo.metadata` from a local path, a `file://` URL or an
 * `http(s)://` URL. Rejects with a LagoError naming the path/URL and the
 * problem (HTTP status, I/O error, invalid JSON, invalid structure).
 */
export async function loadTemplateRepo(pathOrUrl: string, opts: LoadTemplateRepoOptions = {}): Promise<TemplateRepo> {
  let text: string;
  let origin = pathOrUrl;
  if (/^https?:\/\//i.test(pathOrUrl)) {
    text = await fetchText(pathOrUrl, opts);
  } else {
    const file = pathOrUrl.startsWith("file:") ? fileURLToPath(pathOrUrl) : path.resolve(expandUser(pathOrUrl));
    origin = file;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new LagoError("TEMPLATE_REPO_UNREADABLE", `cannot read template repository ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new LagoError("TEMPLATE_REPO_INVALID", `template repository ${origin}: invalid JSON: ${errorMessage(err)}`, { cause: err });
  }
  return parseTemplateRepo(json, origin);
}

async function fetchText(url: string, opts: LoadTemplateRepoOptions): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  try {
    const res = await fetch(url, { signal, redirect: "follow" });
    if (!res.ok) {
      await res.body?.cancel();
      throw new LagoError("TEMPLATE_REPO_UNREADABLE", `cannot load template repository ${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
    }
    return await res.text();
  } catch (err) {
    if (err instanceof LagoError) throw err;
    if (timeout.aborted) {
      throw new LagoError("TEMPLATE_REPO_UNREADABLE", `cannot load template repository ${url}: timed out after ${timeoutMs / 1000}s`, { cause: err });
    }
    if (opts.signal?.aborted) throw new LagoError("CANCELLED", `loading template repository ${url} was cancelled`, { cause: err });
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
    throw new LagoError("TEMPLATE_REPO_UNREADABLE", `cannot load template repository ${url}: ${errorMessage(err)}${cause}`, { cause: err });
  }
}

function expandUser(p: string): string {
  return p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
}

/** Lago runs `expanduser(expandvars(root))` on file roots. */
function expandRoot(root: string, origin: string): string {
  const vars = root.replace(/\$(\w+)|\$\{(\w+)\}/g, (all, a: string | undefined, b: string | undefined) => {
    const v = process.env[a ?? b ?? ""];
    return v === undefined ? all : v;
  });
  const expanded = expandUser(vars);
  if (path.isAbsolute(expanded)) return path.normalize(expanded);
  // A relative root is taken relative to the metadata file when it is local.
  const base = /^[a-z][a-z0-9+.-]*:\/\//i.test(origin) ? process.cwd() : path.dirname(origin);
  return path.resolve(base, expanded);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`;
}

/** A JSON path for messages: `templates["a b"].versions.v1`. */
function key(parent: string, k: string): string {
  const part = /^[A-Za-z_][\w-]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`;
  return parent ? `${parent}${part}` : part.replace(/^\./, "");
}

/**
 * Validate a parsed `repo.metadata` document. Collects every problem and throws
 * one LagoError (`TEMPLATE_REPO_INVALID`) listing them with their JSON paths.
 * Pure apart from expanding `~` and `$VAR` in file roots, as Lago does.
 */
export function parseTemplateRepo(json: unknown, origin: string): TemplateRepo {
  const problems: string[] = [];
  const bad = (where: string, what: string): void => {
    problems.push(`${where || "(document)"}: ${what}`);
  };

  if (!isRecord(json)) {
    throw new LagoError("TEMPLATE_REPO_INVALID", `template repository ${origin}: expected a JSON object, got ${describe(json)}`);
  }

  let name = "";
  if (typeof json.name !== "string") bad("name", json.name === undefined ? "is missing" : `expected a string, got ${describe(json.name)}`);
  else {
    const why = checkTemplateName(json.name);
    if (why) bad("name", `${JSON.stringify(json.name)} ${why}`);
    else name = json.name;
  }

  const sources = new Map<string, TemplateSourceRef>();
  if (!isRecord(json.sources)) {
    bad("sources", json.sources === undefined ? "is missing" : `expected an object, got ${describe(json.sources)}`);
  } else {
    for (const [srcName, spec] of Object.entries(json.sources)) {
      const where = key("sources", srcName);
      if (!isRecord(spec)) {
        bad(where, `expected an object, got ${describe(spec)}`);
        continue;
      }
      const args = spec.args;
      if (spec.type !== "http" && spec.type !== "file") {
        bad(key(where, "type"), `expected "http" or "file", got ${spec.type === undefined ? "nothing" : describe(spec.type)}`);
        continue;
      }
      if (!isRecord(args)) {
        bad(key(where, "args"), args === undefined ? "is missing" : `expected an object, got ${describe(args)}`);
        continue;
      }
      if (spec.type === "http") {
        const baseurl = args.baseurl;
        if (typeof baseurl !== "string") {
          bad(key(key(where, "args"), "baseurl"), baseurl === undefined ? "is missing" : `expected a string, got ${describe(baseurl)}`);
        } else if (!/^https?:\/\/[^\s]+$/i.test(baseurl) || !URL.canParse(baseurl)) {
          bad(key(key(where, "args"), "baseurl"), `expected an http(s) URL, got ${JSON.stringify(baseurl)}`);
        } else {
          sources.set(srcName, { type: "http", location: baseurl });
        }
      } else {
        const root = args.root;
        if (typeof root !== "string" || root === "") {
          bad(key(key(where, "args"), "root"), root === undefined ? "is missing" : `expected a non-empty string, got ${describe(root)}`);
        } else if (/[\u0000-\u001f\u007f]/.test(root)) {
          bad(key(key(where, "args"), "root"), "contains a control character");
        } else {
          sources.set(srcName, { type: "file", location: expandRoot(root, origin) });
        }
      }
    }
  }
  const sourceNames = isRecord(json.sources) ? Object.keys(json.sources).sort() : [];

  const templates = new Map<string, TemplateSpec>();
  if (!isRecord(json.templates)) {
    bad("templates", json.templates === undefined ? "is missing" : `expected an object, got ${describe(json.templates)}`);
  } else {
    for (const [tplName, tpl] of Object.entries(json.templates)) {
      const where = key("templates", tplName);
      const whyName = checkTemplateName(tplName);
      if (whyName) {
        bad(where, `template name ${JSON.stringify(tplName)} ${whyName}`);
        continue;
      }
      if (!isRecord(tpl)) {
        bad(where, `expected an object, got ${describe(tpl)}`);
        continue;
      }
      if (!isRecord(tpl.versions)) {
        bad(key(where, "versions"), tpl.versions === undefined ? "is missing" : `expected an object, got ${describe(tpl.versions)}`);
        continue;
      }
      const versions = new Map<string, TemplateVersionSpec>();
      for (const [ver, spec] of Object.entries(tpl.versions)) {
        const vwhere = key(key(where, "versions"), ver);
        const whyVer = checkTemplateName(ver);
        if (whyVer) {
          bad(vwhere, `version name ${JSON.stringify(ver)} ${whyVer}`);
          continue;
        }
        if (!isRecord(spec)) {
          bad(vwhere, `expected an object, got ${describe(spec)}`);
          continue;
        }
        let ok = true;
        const { source, handle, timestamp } = spec;
        if (typeof source !== "string") {
          bad(key(vwhere, "source"), source === undefined ? "is missing" : `expected a string, got ${describe(source)}`);
          ok = false;
        } else if (!sourceNames.includes(source)) {
          bad(key(vwhere, "source"), `names the source ${JSON.stringify(source)}, which is not defined (sources: ${sourceNames.join(", ") || "none"})`);
          ok = false;
        }
        if (typeof handle !== "string") {
          bad(key(vwhere, "handle"), handle === undefined ? "is missing" : `expected a string, got ${describe(handle)}`);
          ok = false;
        } else {
          const whyHandle = checkTemplateHandle(handle);
          if (whyHandle) {
            bad(key(vwhere, "handle"), `${JSON.stringify(handle)} ${whyHandle}`);
            ok = false;
          }
        }
        let ts = Number.NaN;
        if (typeof timestamp === "number") ts = timestamp;
        else if (typeof timestamp === "string" && /^\d+(\.\d+)?$/.test(timestamp)) ts = Number(timestamp);
        if (!Number.isFinite(ts)) {
          bad(key(vwhere, "timestamp"), timestamp === undefined ? "is missing" : `expected a number (seconds since 1970), got ${describe(timestamp)}`);
          ok = false;
        }
        if (ok && typeof source === "string" && typeof handle === "string") versions.set(ver, { source, handle, timestamp: ts });
      }
      templates.set(tplName, { versions });
    }
  }

  if (problems.length > 0) {
    throw new LagoError(
      "TEMPLATE_REPO_INVALID",
      problems.length === 1
        ? `template repository ${origin}: ${problems[0]}`
        : `template repository ${origin}: ${problems.length} problems:\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
  }
  return { name, origin, sources, templates };
}

/**
 * The template version `name` (at `version`, or the newest by timestamp; ties
 * go to the greatest version string). Unknown names and versions are errors
 * listing what exists.
 */
export function resolveTemplate(repo: TemplateRepo, name: string, version?: string): TemplateRef {
  const tpl = repo.templates.get(name);
  if (!tpl) {
    const known = [...repo.templates.keys()].sort();
    throw new LagoError(
      "TEMPLATE_NOT_FOUND",
      `template ${JSON.stringify(name)} is not in repository ${JSON.stringify(repo.name)} (${repo.origin}); templates: ${known.join(", ") || "none"}`,
    );
  }
  let chosen: [string, TemplateVersionSpec] | undefined;
  if (version !== undefined) {
    const spec = tpl.versions.get(version);
    if (!spec) {
      const known = [...tpl.versions.keys()].sort();
      throw new LagoError(
        "TEMPLATE_NOT_FOUND",
        `template ${JSON.stringify(name)} has no version ${JSON.stringify(version)} in repository ${JSON.stringify(repo.name)}; versions: ${known.join(", ") || "none"}`,
      );
    }
    chosen = [version, spec];
  } else {
    for (const entry of tpl.versions) {
      if (!chosen || entry[1].timestamp > chosen[1].timestamp || (entry[1].timestamp === chosen[1].timestamp && entry[0] > chosen[0])) {
        chosen = entry;
      }
    }
    if (!chosen) {
      throw new LagoError("TEMPLATE_NOT_FOUND", `template ${JSON.stringify(name)} in repository ${JSON.stringify(repo.name)} has no versions`);
    }
  }
  const [ver, spec] = chosen;
  const source = repo.sources.get(spec.source);
  if (!source) {
    throw new LagoError("TEMPLATE_REPO_INVALID", `template repository ${repo.origin}: source ${JSON.stringify(spec.source)} is not defined`);
  }
  return { repo: repo.name, name, version: ver, handle: spec.handle, source: { ...source } };
}
