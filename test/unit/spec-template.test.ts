/**
 * Init files written as Jinja2 templates: rendering (compared with Python's
 * Jinja2 where it is installed), variables, undefined values, positions mapped
 * back to the template, the sandbox, and the CLI flags.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { ConfigError, UsageError } from "../../src/errors.ts";
import { parseSpec, type LoadOptions } from "../../src/spec/load.ts";
import { isTemplate, renderTemplate } from "../../src/spec/template.ts";
import { parseVarArg, readVarFile, templateVars } from "../../src/spec/template-vars.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = path.resolve(ROOT, "..", "shared", "corpus");
const FILE = "/env/LagoInitFile";

function problems(text: string, options: LoadOptions = {}, file = FILE): string[] {
  try {
    parseSpec(text, file, { env: {}, ...options });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`);
  }
  return [];
}

const VM = (name: string, extra = ""): string[] => [`  ${name}:`, "    nics: [{net: lago}]", ...(extra ? [extra] : [])];
const NETS = ["nets:", "  lago: {type: nat}"];

test("which files are templates: any `{{`, `{%` or `{#`", () => {
  assert.equal(isTemplate("domains: {}\nnets: {}\n"), false);
  assert.equal(isTemplate('{"domains": {"a": {}}}'), false);
  for (const t of ["a: {{ x }}", "{% if x %}{% endif %}", "{# note #}"]) assert.equal(isTemplate(t), true, t);
});

test("corpus templates render exactly as Python's Jinja2 renders them", (t) => {
  try {
    execFileSync("python3", ["-c", "import jinja2"], { stdio: "ignore" });
  } catch {
    t.skip("python3 with jinja2 is not installed");
    return;
  }
  const vars = { hostCount: 3, templates: { engine: "e", host: "h" }, lago_vm_image: "img", nested_vm_template: "n", root_disk_path: "" };
  const env = { suite_name: "s", use_lago_ost_plugin: "0", use_ost_images: "1", coverage: "true", engine_image: "/e", host_image: "/h", he_image: "/he", upgrade_image: "/u", engine_installed_image: "/ei", host_installed_image: "/hi", he_installed_image: "/hei", add_plain_repos: "x" };
  const ctx = path.join(mkdtempSync(path.join(os.tmpdir(), "lago-jinja-")), "ctx.json");
  writeFileSync(ctx, JSON.stringify({ ...vars, env }));
  const templates = readdirSync(CORPUS).filter((f) => f !== "SOURCES.md" && isTemplate(readFileSync(path.join(CORPUS, f), "utf8")));
  assert.equal(templates.length, 9);
  for (const f of templates) {
    const file = path.join(CORPUS, f);
    const expected = execFileSync(
      "python3",
      ["-c", "import jinja2,json,sys; c=json.load(open(sys.argv[1])); sys.stdout.write(jinja2.Environment(keep_trailing_newline=True).from_string(open(sys.argv[2]).read()).render(**c))", ctx, file],
      { encoding: "utf8" },
    );
    const r = renderTemplate(readFileSync(file, "utf8"), file, { vars, env }, CORPUS);
    assert.ok(r.ok, f);
    assert.equal(r.rendered.text, expected, f);
  }
  rmSync(path.dirname(ctx), { recursive: true, force: true });
});

test("Jinja2's semantics for what is undefined: conditions are false, `is defined` and `default` work, loops run zero times", () => {
  const text = [
    "domains:",
    "{% if env.coverage == 'true' %}",
    ...VM("coverage"),
    "{% endif %}",
    "{% if not env.OST_USE_VDSMFAKE is defined %}",
    ...VM("host-{{ env.suite|default('s') }}"),
    "{% endif %}",
    "{% for x in nothing %}",
    ...VM("never{{ x }}"),
    "{% endfor %}",
    "{% for i in range(env.N|default(count)|int) %}",
    ...VM("vm{{ i }}{% if loop.first %}-first{% endif %}"),
    "{% endfor %}",
    ...NETS,
  ].join("\n");
  const spec = parseSpec(text, FILE, { env: { HOME: "/root" }, vars: { count: "2" } });
  assert.deepEqual(spec.domains.map((d) => d.name), ["host-s", "vm0-first", "vm1"]);
  assert.deepEqual(spec.template?.vars, { count: "2" });
  assert.deepEqual(spec.template?.env, {});
  assert.match(spec.template?.renderedSha256 ?? "", /^[0-9a-f]{64}$/);
});

test("an undefined value printed or passed to range() is an error naming it, at its position", () => {
  const text = ["domains:", "{% for i in range(hostCount) %}", ...VM("h{{ i }}"), "{% endfor %}", ...VM("e-{{ env.suite_name }}"), ...NETS].join("\n");
  assert.deepEqual(problems(text), [
    "2:18: undefined template variable `hostCount` passed to range(): give it with --var hostCount=VALUE or --var-file, or guard it (`is defined`, `|default(…)`)",
  ]);
  assert.deepEqual(problems(text, { vars: { hostCount: 1 } }), [
    "6:5: undefined template variable `env.suite_name` printed: set the environment variable suite_name, or guard it (`is defined`, `|default(…)`)",
  ]);
  assert.deepEqual(problems(text, { vars: { hostCount: 1 }, env: { suite_name: "x" } }), []);
  assert.deepEqual(problems("domains:\n  a: {{ templates.engine }}\n", { vars: { templates: {} } }), [
    "2:6: undefined template variable `templates.engine` printed: give it with --var templates.engine=VALUE or --var-file, or guard it (`is defined`, `|default(…)`)",
  ]);
});

test("problems in the rendered file point to the template line they came from", () => {
  const text = [
    "domains:",
    "{%- for i in range(3) %}",
    "  vm{{ i }}:",
    "    memory: {{ 'lots' if i == 1 else 512 }}",
    "    nics: [{net: lago}]",
    "    {% if loop.last -%}",
    "    vcpu: many",
    "    {%- endif %}",
    "{%- endfor %}",
    ...NETS,
  ].join("\n");
  assert.deepEqual(problems(text), [
    '4:13: `domains.vm1.memory` must be a positive whole number of MiB, like 2048 or "2048", got "lots"',
    '7:11: `domains.vm2.vcpu` must be a positive whole number of CPUs, like 2 or "2", got "many"',
  ]);
  // A YAML syntax error in the second iteration of a loop.
  assert.deepEqual(problems(["domains:", "{% for i in [1, 2] %}", "  vm{{ i }}: {{ '[' if i == 2 else '{}' }}", "{% endfor %}"].join("\n")), [
    "3:1: syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]",
  ]);
});

test("property: template-only lines inserted into a file move its diagnostics by exactly those lines", () => {
  const base = ["domains:", "  vm01:", "    memory: lots", "    nics: [{net: nowhere}]", "  vm02:", "    vcpu: -1", "    nics: [{net: lago}]", "nets:", "  lago: {type: nat, bogus: 1}", ""];
  const plain = problems(base.join("\n"));
  assert.equal(plain.length, 4);
  const tagLine = fc.constantFrom("{# a comment #}", "{% if true %}{% endif %}", "{% set x = 1 %}", "{{ '' }}");
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), tagLine), { minLength: 1, maxLength: 6 }), (inserts) => {
      const lines: string[] = [];
      const shift: number[] = [];
      let added = 0;
      base.forEach((line, i) => {
        for (const [at, tag] of inserts) {
          if (at === i) {
            lines.push(tag);
            added++;
          }
        }
        shift.push(added);
        lines.push(line);
      });
      const expected = plain.map((p) => {
        const [, l, c, msg] = /^(\d+):(\d+): (.*)$/.exec(p) ?? [];
        return `${Number(l) + (shift[Number(l) - 1] ?? 0)}:${c}: ${msg}`;
      });
      assert.deepEqual(problems(lines.join("\n")), expected);
    }),
    { numRuns: 100 },
  );
});

test("the sandbox: no way into JavaScript, includes only inside the init file's directory, bounded loops", () => {
  const g = globalThis as { lagoPwned?: unknown };
  const escape = "domains:\n  a: {{ ''.constructor.constructor('globalThis.lagoPwned = 1')() }}\n";
  assert.equal(problems(escape).length, 1);
  assert.equal(g.lagoPwned, undefined);
  assert.deepEqual(problems("domains:\n  a: {{ range.constructor('return 1')() }}\n").length, 1);
  assert.deepEqual(problems("{% for i in range(1000000) %}{% endfor %}"), ["1:18: template error: range() would produce more than 100000 numbers in one render"]);
  assert.deepEqual(problems("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").map((p) => p.replace(/^\d+:\d+: /, "")), ["the template recurses too deeply"]);

  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "lago-tpl-")));
  try {
    mkdirSync(path.join(dir, "env"));
    writeFileSync(path.join(dir, "env", "vm.yaml"), "  included:\n    nics: [{net: lago}]\n");
    writeFileSync(path.join(dir, "secret"), "  stolen: {}\n");
    symlinkSync(path.join(dir, "secret"), path.join(dir, "env", "link"));
    const file = path.join(dir, "env", "LagoInitFile");
    const spec = parseSpec(["domains:", "{% include 'vm.yaml' %}", ...NETS].join("\n"), file, { env: {} });
    assert.deepEqual(spec.domains.map((d) => d.name), ["included"]);
    for (const name of ["../secret", "link", "/etc/passwd"]) {
      const got = problems(["domains:", `{% include '${name}' %}`, ...NETS].join("\n"), {}, file);
      assert.equal(got.length, 1, name);
      assert.match(got[0] ?? "", /cannot include/, name);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("template syntax errors have positions", () => {
  assert.deepEqual(problems("domains:\n  a: {{ x("), ["2:11: template syntax error: the template ends inside an unfinished tag or expression"]);
  assert.deepEqual(problems("a: 1\n{# open"), ["2:8: template syntax error: expected end of comment, got end of file"]);
  assert.deepEqual(problems("a: 1\n{% for %}"), ["2:8: template error: unexpected token: %}"]);
});

test("variables: --var NAME=VALUE, --var-file (YAML or JSON), later ones win, `env` is reserved", () => {
  assert.deepEqual(parseVarArg("hostCount=2"), ["hostCount", "2"]);
  assert.deepEqual(parseVarArg("x=a=b"), ["x", "a=b"]);
  for (const bad of ["noequals", "1x=2", "a-b=1", "env=1"]) assert.throws(() => parseVarArg(bad), UsageError, bad);
  const dir = mkdtempSync(path.join(os.tmpdir(), "lago-vars-"));
  try {
    const yaml = path.join(dir, "main.yml");
    writeFileSync(yaml, "hostCount: 2\ntemplates: &t\n  engine: el8\ncopy: *t\n");
    const json = path.join(dir, "more.json");
    writeFileSync(json, '{"hostCount": 4, "extra": [1, 2]}');
    assert.deepEqual(templateVars([yaml, json], ["extra=x"]), { hostCount: 4, templates: { engine: "el8" }, copy: { engine: "el8" }, extra: "x" });
    const bad = path.join(dir, "bad.yml");
    writeFileSync(bad, "ok: 1\nenv: {HOME: /}\n");
    assert.throws(() => readVarFile(bad), (err: unknown) => err instanceof ConfigError && err.diagnostics[0]?.pos.line === 2 && /`env` cannot be a template variable name/.test(err.message));
    writeFileSync(bad, "[1, 2]\n");
    assert.throws(() => readVarFile(bad), (err: unknown) => err instanceof ConfigError && /must be a mapping/.test(err.message));
    assert.throws(() => readVarFile(path.join(dir, "missing.yml")), (err: unknown) => err instanceof UsageError && /no such file/.test(err.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function lago(args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, "bin", "lago.js"), "--workdir", cwd, ...args], { cwd, timeout: 60_000, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}

test("the CLI: validate, plan and graph take --var/--var-file; the saved plan records what the template read", async () => {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), "lago-tcli-")));
  try {
    const file = path.join(dir, "LagoInitFile");
    writeFileSync(
      file,
      ["domains:", "{% for i in range(hostCount|int) %}", "  {{ env.LAGO_TEST_SUITE }}-{{ i }}:", "    nics: [{net: lago}]", "    disks: [{name: root, type: empty, size: 1G, dev: vda}]", "{% endfor %}", ...NETS, ""].join("\n"),
    );
    writeFileSync(path.join(dir, "vars.yml"), "hostCount: 1\n");
    const missing = await lago(["validate"], dir);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr.split("\n")[0], `${file}:2:18: undefined template variable \`hostCount\` passed to range(): give it with --var hostCount=VALUE or --var-file, or guard it (\`is defined\`, \`|default(…)\`)`);
    const env = { LAGO_TEST_SUITE: "suite" };
    const ok = await lago(["validate", "--var-file", "vars.yml"], dir, env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /is valid: 1 domain\(s\), 1 net\(s\)/);
    const graph = await lago(["graph", "--var-file", "vars.yml", "--var", "hostCount=2"], dir, env);
    assert.equal(graph.code, 0, graph.stderr);
    assert.match(graph.stdout, /domain\.suite-1/);
    const plan = await lago(["plan", "--no-refresh", "--var-file", "vars.yml", "--var", "hostCount=2", "--out", "p.json"], dir, env);
    assert.equal(plan.code, 0, plan.stderr);
    const saved = JSON.parse(readFileSync(path.join(dir, "p.json"), "utf8")) as { template: { vars: unknown; env: unknown } };
    assert.deepEqual(saved.template.vars, { hostCount: "2" });
    assert.deepEqual(saved.template.env, { LAGO_TEST_SUITE: "suite" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
