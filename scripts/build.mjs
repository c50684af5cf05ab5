#!/usr/bin/env node
// Compiles lago to dist/: one ESM bundle per entry point with code splitting, so that
// each verb loads only the modules it needs (`lago --version` loads commander and kleur).
// Dependencies are bundled except those with native parts or dynamic requires, and `yaml`, which is
// required only when an init file needs it (src/spec/yaml-package.ts).
import { build } from "esbuild";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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
await build({
  absWorkingDir: root,
  // lago: the CLI; sdk: `import { Environment } from "lago"` (package.json exports).
  entryPoints: { lago: "src/cli/run.ts", sdk: "src/sdk/index.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  minifyWhitespace: true,
  minifySyntax: true,
  chunkNames: "chunks/[name]-[hash]",
  external: ["ssh2", "cpu-features", "nunjucks", "yaml"],
  // Bundled CommonJS dependencies call require() for Node's built-ins.
  banner: { js: 'import { createRequire as __lagoCreateRequire } from "node:module"; const require = __lagoCreateRequire(import.meta.url);' },
  logLevel: "warning",
});
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
