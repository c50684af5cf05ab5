/**
 * What `npm pack` ships, installed the way a user installs it (`npm install -g ./lago-*.tgz`, here under a
 * private prefix): the compiled CLI and SDK, the schemas, the README and the licence; no sources, tests or
 * bench; no tsx at run time. The installed `lago` then brings an environment up and down on the fake world,
 * and the installed package's SDK loads by its name.
 *
 * Packs the `dist/` that `npm run test:unit` has just built (`npm pack --ignore-scripts`: `prepack` would
 * rebuild it under the other tests' feet) and the SDK's declarations (`npm run build:types`, what `prepack`
 * adds). The install takes the package's dependencies from npm's cache (`--prefer-offline`: `npm ci` filled
 * it), or from the registry.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { makeSandbox, actions, REPO_ROOT } from "../helpers/sandbox.ts";
import { BASE } from "./fixtures.ts";

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { name: string; version: string; types: string; dependencies: Record<string, string> };

test("`npm pack` + `npm install -g` of the tarball gives a working lago CLI and SDK, without sources or tsx", { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-pack-"));
  const sb = makeSandbox();
  try {
    await execa("npm", ["run", "-s", "build:types"], { cwd: REPO_ROOT });
    const packed = await execa("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: REPO_ROOT });
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    assert.ok(info);
    const files = info.files.map((f) => f.path);
    for (const f of ["package.json", "README.md", "LICENSE", "bin/lago.js", "dist/lago.cjs", "dist/sdk.js", pkg.types.replace(/^\.\//, ""), "schemas/lago-init-file.schema.json"]) {
      assert.ok(files.includes(f), `the tarball has ${f}`);
    }
    assert.deepEqual(
      files.filter((f) => /^(src|test|bench|scripts|examples)\//.test(f) || (f.endsWith(".ts") && !f.endsWith(".d.ts"))),
      [],
      "no sources, tests, bench or scripts",
    );

    const prefix = path.join(dir, "prefix");
    await execa("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", path.join(dir, info.filename)], { cwd: dir });
    const installed = path.join(prefix, "lib", "node_modules", pkg.name);
    const deps = new Set(Object.keys(pkg.dependencies));
    assert.ok(!existsSync(path.join(installed, "node_modules", "tsx")), "tsx is not installed with lago");
    assert.ok(!deps.has("tsx"));
    const lago = path.join(prefix, "bin", "lago");

    const version = await execa(lago, ["--version"]);
    assert.equal(version.stdout, pkg.version);
    const help = await execa(lago, ["--help"]);
    assert.match(help.stdout, /^\s+apply\b/m);

    // The installed CLI against the fake world: apply, a no-op plan, destroy.
    sb.init(BASE);
    const run = (args: string[]) => execa(lago, args, { cwd: sb.work, env: sb.env(), extendEnv: false, reject: false });
    const apply = await run(["apply", "--auto-approve"]);
    assert.equal(apply.exitCode, 0, apply.stderr);
    assert.ok(Object.keys(sb.world().domains).length === 2, "both VMs exist in the fake world");
    const plan = await run(["plan", "--json"]);
    assert.equal(plan.exitCode, 0, plan.stderr);
    assert.deepEqual(actions(plan.stdout), {});
    const destroy = await run(["destroy", "--auto-approve"]);
    assert.equal(destroy.exitCode, 0, destroy.stderr);
    assert.deepEqual(Object.keys(sb.world().domains), []);

    // The SDK by its package name, from a directory whose node_modules holds the installed package.
    const sdk = await execa(process.execPath, ["--input-type=module", "-e", `const m = await import(${JSON.stringify(pkg.name)}); console.log(typeof m.Environment, typeof m.LagoError);`], {
      cwd: path.join(prefix, "lib"),
    });
    assert.equal(sdk.stdout, "function function");
  } finally {
    sb.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
