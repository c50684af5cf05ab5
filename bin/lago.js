#!/usr/bin/env node
// The compiled CLI: dist/lago.cjs (`npm run build`), started from V8's code cache of it that the build
// recorded (dist/lago.cjs.cache), so that each command skips parsing and compiling the bundle again.
// The cache is used only for the bundle it was recorded from: it starts with that bundle's SHA-256,
// because V8 itself checks only the source's length (and refuses a cache that another V8 made, in which
// case the bundle compiles as usual).
import { createHash } from "node:crypto";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
  // The one answer that needs nothing else (src/version.ts agrees with package.json: a test checks).
  process.stdout.write(`${JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version}\n`);
} else {
  const bundle = fileURLToPath(new URL("../dist/lago.cjs", import.meta.url));
  const cacheFile = `${bundle}.cache`;
  let code;
  try {
    code = readFileSync(bundle);
  } catch (err) {
    process.stderr.write(`lago: cannot read ${bundle} (${err.code ?? err.message}): in a source checkout, run \`npm run build\` first\n`);
    process.exit(1);
  }
  const digest = createHash("sha256").update(code).digest();
  let cachedData;
  try {
    const cache = readFileSync(cacheFile);
    if (cache.subarray(0, digest.length).equals(digest)) cachedData = cache.subarray(digest.length);
  } catch {
    // no cache: compile
  }
  // esbuild writes ASCII only (scripts/build.mjs checks), which latin1 decodes several times faster than utf8.
  const script = new Script(Module.wrap(code.toString("latin1")), { filename: bundle, cachedData });
  // `npm run build` runs one command with LAGO_RECORD_CODE_CACHE set: what it compiled becomes the cache.
  if (process.env.LAGO_RECORD_CODE_CACHE) {
    process.once("beforeExit", () => {
      writeFileSync(`${cacheFile}.${process.pid}`, Buffer.concat([digest, script.createCachedData()]));
      renameSync(`${cacheFile}.${process.pid}`, cacheFile);
    });
  }
  // A CommonJS module's arguments; the bundle exports nothing, and requires from dist/ (ssh2, yaml, …).
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
}
