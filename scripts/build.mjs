#!/usr/bin/env node
// Compiles lago to dist/: the CLI as one CommonJS file with V8's code cache of it (bin/lago.js starts
// it), the SDK as ES modules with code splitting.
// Dependencies are bundled except those with native parts or dynamic requires, and `yaml`, which is
// required only when an init file needs it (src/spec/yaml-package.ts).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { VALIDATORS, generate as generateValidator } from "./gen-schema-validator.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = path.join(root, "dist");
// Built beside dist/ and swapped in, so that a CLI started meanwhile never finds half a dist/.
const outdir = path.join(root, `.dist-${process.pid}`);
rmSync(outdir, { recursive: true, force: true });
// The schemas, precompiled: no command pays for Ajv's compiler at run time. Each validator is
// written only when it changed, and atomically (tests may be reading it while another build runs).
for (const validator of VALIDATORS) {
  const source = generateValidator(validator);
  let current;
  try {
    current = readFileSync(validator.output, "utf8");
  } catch {
    current = undefined;
  }
  if (current !== source) {
    writeFileSync(`${validator.output}.${process.pid}.tmp`, source);
    renameSync(`${validator.output}.${process.pid}.tmp`, validator.output);
  }
}
const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  minifyWhitespace: true,
  minifySyntax: true,
  external: ["ssh2", "cpu-features", "nunjucks", "yaml"],
  logLevel: "warning",
};
// The CLI: one CommonJS file, because V8 keeps a code cache only for scripts (bin/lago.js starts it from
// the cache recorded below); the verbs' modules inside it are evaluated only when a verb needs them.
await build({
  ...common,
  entryPoints: { lago: "src/cli/run.ts" },
  outExtension: { ".js": ".cjs" },
  charset: "ascii",
  format: "cjs",
  define: { "import.meta.url": "__lagoImportMetaUrl" },
  banner: { js: 'const __lagoImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});
// The SDK (`import { Environment } from "lago"`, package.json exports): ES modules, with code splitting.
await build({
  ...common,
  entryPoints: { sdk: "src/sdk/index.ts" },
  splitting: true,
  format: "esm",
  chunkNames: "chunks/[name]-[hash]",
  // Bundled CommonJS dependencies call require() for Node's built-ins.
  banner: { js: 'import { createRequire as __lagoCreateRequire } from "node:module"; const require = __lagoCreateRequire(import.meta.url);' },
});
// bin/lago.js reads the CLI's bundle as latin1, which is ASCII's superset: esbuild escapes everything else.
if (/[^\x00-\x7f]/.test(readFileSync(path.join(outdir, "lago.cjs"), "latin1"))) throw new Error("dist/lago.cjs is not ASCII: bin/lago.js would misread it");
const old = path.join(root, `.dist-old-${process.pid}`);
try {
  renameSync(dist, old);
} catch (err) {
  if (err.code !== "ENOENT") throw err;
}
// dist/types (the SDK's declarations, `npm run build:types`) changes only with the SDK's API: it is kept.
try {
  renameSync(path.join(old, "types"), path.join(outdir, "types"));
} catch (err) {
  if (err.code !== "ENOENT") throw err;
}
renameSync(outdir, dist);
rmSync(old, { recursive: true, force: true });
// V8's code cache of the CLI, recorded from a command that reads, checks and compiles an init file:
// what it compiled (most of what any verb runs) is what later commands need not compile. A CLI started
// before the cache exists compiles the bundle, as it would without one; so does every CLI if this run fails
// (a broken system-wide lago.conf, say): the build goes on, and says so.
const scratch = mkdtempSync(path.join(os.tmpdir(), "lago-build-"));
try {
  execFileSync(process.execPath, [path.join(root, "bin/lago.js"), "validate", "--file", path.join(root, "examples/two-vms/LagoInitFile")], {
    cwd: scratch,
    env: { PATH: process.env.PATH, HOME: scratch, LAGO_RECORD_CODE_CACHE: "1", NO_COLOR: "1" },
    stdio: ["ignore", "ignore", "pipe"],
  });
} catch (err) {
  process.stderr.write(`build: recording the CLI's code cache failed (the CLI works; it may start slower):\n${err.stderr || err.message}\n`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
