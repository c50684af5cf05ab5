/**
 * Every real-world init file of the shared corpus (see its SOURCES.md) with its
 * expected outcome. A corpus file missing from the table fails the test, so new
 * files get looked at.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.ts";
import { parseSpec } from "../../src/spec/load.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CORPUS = path.resolve(repoRoot, "..", "shared", "corpus");
/** Files of the corpus directory that are not init files. */
const NOT_INIT_FILES = new Set(["SOURCES.md"]);

/** How a file is turned into an init file before loading. */
type Render =
  /** As is. */
  | "none"
  /** sed-style placeholders (`@SUITE@`, `__ENGINE__`), replaced by safe values as the suites' scripts did. */
  | "sed"
  /** A Jinja2 template whose only syntax is `{{ name }}`: the names get these values. */
  | { jinja: Record<string, string> };

type Expected =
  | { render: Render; valid: { domains: number; nets: number } }
  /** Fails with exactly these diagnostics (`line:col: message`), each naming a real mistake in the file. */
  | { render: Render; errors: string[] }
  | { skip: string };

const BAD_IP = (line: number, col: number, domain: string, ip: string): string =>
  `${line}:${col}: \`domains.${domain}.nics[0].ip\` must be an IPv4 address like 192.168.200.3, got "${ip}"`;

const TABLE: Record<string, Expected> = {
  "fabianvf__forklift__lago__foreman-el7.json": { render: "none", valid: { domains: 2, nets: 2 } },
  "kubevirt__kubevirt-ansible__LagoInitFile.yml": { render: "none", valid: { domains: 3, nets: 1 } },
  "kubevirt__kubevirt-ansible__playbooks__provider__lago__LagoInitFile.yml.j2": {
    skip: "Jinja2 `{% if storage_role … %}` blocks at column 0 toggle groups, disks and dns_records",
  },
  "lago-project__lago-demo__LagoInitFile": { render: "none", valid: { domains: 3, nets: 1 } },
  "lago-project__lago-demo__automation__lago-init.yaml": { render: "none", valid: { domains: 3, nets: 1 } },
  "lago-project__lago-demo__roles__run_lago_env__templates__init-nested.j2": {
    render: { jinja: { nested_vm_template: "el7.6-base" } },
    valid: { domains: 1, nets: 1 },
  },
  "lago-project__lago-examples__init-files__init_1_vm_1_net.yaml": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago-examples__init-files__init_1_vm_2_disks_2_nets.yaml": { render: "none", valid: { domains: 1, nets: 2 } },
  "lago-project__lago-examples__init-files__init_3_vms_3_nets.yaml": { render: "none", valid: { domains: 3, nets: 3 } },
  "lago-project__lago-examples__init-files__init_complex_lago_ost_plugin.yaml": { render: "none", valid: { domains: 3, nets: 3 } },
  "lago-project__lago-examples__pytest__init_fixutre__init-myapp.yaml": { render: "none", valid: { domains: 2, nets: 1 } },
  "lago-project__lago-ost-plugin__tests__functional__fixtures__ovirt.runtest__suite.yaml": { render: "none", valid: { domains: 2, nets: 1 } },
  "lago-project__lago-workshop__LagoInitFile": { render: "none", valid: { domains: 4, nets: 2 } },
  "lago-project__lago-workshop__intro__init-simple.yaml": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago__docs__lago-tutorial__init.json": {
    render: "none",
    errors: [BAD_IP(10, 27, "vm0-server", "300.300.300.17")],
  },
  "lago-project__lago__tests__functional__fixtures__basic__suite.json": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__basic__suite_multi_vm.yaml": { render: "none", valid: { domains: 2, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__collect__suite.yaml": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__deploy__suite_1host.yaml": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__export__exported_suite.json": { render: "none", valid: { domains: 1, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__ovirt.collect__suite.yaml": { render: "none", valid: { domains: 2, nets: 1 } },
  "lago-project__lago__tests__functional__fixtures__start__1vm_bridged.json": { render: "none", valid: { domains: 1, nets: 1 } },
  "oVirt__gerrit-admin__LagoInitFile": { render: "none", valid: { domains: 1, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_appliance_2_nodes_el7.yml": {
    render: "none",
    errors: [BAD_IP(6, 13, "__ENGINE__", "192,168.200.3")],
  },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos6_engine_2_centos7_hosts.json": { render: "none", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos6_engine_2_centos7_hosts.yml": { render: "none", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_2_centos7_hosts.yml@cdb70ed3": {
    skip: "Jinja2: `{% for %}` over hostCount, `{% if %}/{% elif %}/{% else %}`, filters (`default`, `length`), `is defined`, `loop.first`",
  },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_2_centos7_hosts.yml@d9dc1626": { render: "none", valid: { domains: 3, nets: 3 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_4_centos7_hosts.json": { render: "none", valid: { domains: 7, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_only.json": { render: "none", valid: { domains: 1, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_engine_2_hosts.yml": {
    skip: "Jinja2: `{% for i in range(hostCount) %}` host loop and `{{ env.* }}` variables",
  },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_2_hosts.yml": {
    skip: "Jinja2: host loop with `{% if %}/{% elif %}/{% else %}` inside a disk mapping",
  },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_4.1_2_centos7_hosts.yml@095e47ad": { render: "none", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_4.1_2_centos7_hosts.yml@54540be2": {
    skip: "Jinja2: host loop, conditional list items and conditional disk paths",
  },
  "oVirt__ovirt-system-tests__hc-basic-suite-4.1__LagoInitFile.in": { render: "sed", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__hc-basic-suite-master__LagoInitFile.in": {
    skip: "Jinja2: host loop with a conditional disk (`{% if loop.first %}`)",
  },
  "oVirt__ovirt-system-tests__image_suite_3.6__init.json.in": {
    render: "sed",
    errors: [BAD_IP(28, 27, "engine", "192,168.200.3")],
  },
  "oVirt__ovirt-system-tests__performance-suite-master__LagoInitFile.in": {
    skip: "Jinja2: host loop inside `{% if not env.OST_USE_VDSMFAKE is defined %}`, `range(…|default(hostCount)|int)`",
  },
  "oVirt__ovirt-system-tests__tr-suite-master__LagoInitFile.in": {
    skip: "Jinja2: `{% for %}` host loop",
  },
  "oVirt__ovirt-system-tests__vdsm_functional__init.json.in": { render: "sed", valid: { domains: 3, nets: 1 } },
};

/** Values for `@NAME@` placeholders (the suites' scripts substituted paths). */
const AT_PLACEHOLDERS: Record<string, string> = { SUITE: "/srv/ost/image_suite_3.6" };

/** Renders sed-style placeholders: `@SUITE@` from the table above, `__LAGO_NET__` → `lago-net`. */
function renderSed(text: string): string {
  return text
    .replace(/@([A-Z][A-Z0-9_]*)@/g, (whole: string, name: string) => {
      const value = AT_PLACEHOLDERS[name];
      assert.ok(value !== undefined, `no test value for placeholder ${whole}`);
      return value;
    })
    .replace(/__([A-Z][A-Z0-9_]*?)__/g, (_whole: string, name: string) => name.toLowerCase().replace(/_/g, "-"));
}

function renderJinja(text: string, values: Record<string, string>): string {
  assert.ok(!text.includes("{%"), "a template with control blocks is not trivial: skip it instead");
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (whole: string, name: string) => {
    const value = values[name];
    assert.ok(value !== undefined, `no test value for ${whole}`);
    return value;
  });
}

function render(text: string, how: Render): string {
  if (how === "none") return text;
  const out = how === "sed" ? renderSed(text) : renderJinja(text, how.jinja);
  assert.doesNotMatch(out, /\{\{|\{%|@[A-Z_]+@|__[A-Z][A-Z0-9_]*__/, "placeholders left after rendering");
  return out;
}

function corpusFiles(): string[] {
  assert.ok(existsSync(CORPUS) && statSync(CORPUS).isDirectory(), `the corpus directory ${CORPUS} is missing`);
  return readdirSync(CORPUS)
    .filter((f) => !NOT_INIT_FILES.has(f))
    .sort();
}

test("the corpus table lists exactly the files of the corpus directory", () => {
  const files = corpusFiles();
  assert.deepEqual(
    files.filter((f) => !Object.hasOwn(TABLE, f)),
    [],
    "corpus files missing from the table (add each with its expected outcome)",
  );
  assert.deepEqual(
    Object.keys(TABLE).filter((f) => !files.includes(f)),
    [],
    "table entries without a corpus file",
  );
});

test("the table's rendering matches each file's template syntax", () => {
  for (const file of corpusFiles()) {
    const expected = TABLE[file];
    if (!expected) continue;
    const text = readFileSync(path.join(CORPUS, file), "utf8");
    const jinja = /\{%|\{\{/.test(text);
    if ("skip" in expected) {
      assert.ok(text.includes("{%"), `${file} is skipped as a Jinja2 template but has no {% … %} block`);
    } else if (expected.render === "none") {
      assert.ok(!jinja, `${file} is Jinja2: render it or skip it`);
      assert.ok(!file.endsWith(".in"), `${file} is a .in template: render it with "sed"`);
    } else if (expected.render === "sed") {
      assert.ok(!jinja, `${file} is Jinja2, not sed-style`);
    }
  }
});

for (const [file, expected] of Object.entries(TABLE)) {
  if ("skip" in expected) {
    test(`corpus: ${file}`, { skip: expected.skip }, () => {});
    continue;
  }
  test(`corpus: ${file}`, () => {
    const absolute = path.join(CORPUS, file);
    const text = render(readFileSync(absolute, "utf8"), expected.render);
    if ("valid" in expected) {
      const spec = parseSpec(text, absolute, { env: {} });
      assert.deepEqual({ domains: spec.domains.length, nets: spec.nets.length }, expected.valid);
      return;
    }
    assert.throws(
      () => parseSpec(text, absolute, { env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        for (const d of err.diagnostics) assert.equal(d.pos.file, absolute);
        assert.deepEqual(
          err.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`),
          expected.errors,
        );
        return true;
      },
    );
  });
}
