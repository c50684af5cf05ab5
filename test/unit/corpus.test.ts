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
import { compile } from "../../src/graph/compile.ts";
import { computePlan } from "../../src/plan/plan.ts";
import { emptyState } from "../../src/state/state.ts";
import { resolveTemplatesIn } from "../../src/engine/session.ts";
import { benchTemplateRepo } from "../../bench/generate.ts";

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
  /** A Jinja2 template, rendered by lago itself with these variables (`--var`/`--var-file`) and environment. */
  | { template: { vars: Record<string, unknown>; env: Record<string, string> } };

type Expected =
  /** Loads; a templated file must also plan (`plan`: "ok", or the diagnostics `plan` refuses it with). */
  | { render: Render; valid: { domains: number; nets: number }; plan?: "ok" | string[] }
  /** Fails with exactly these diagnostics (`line:col: message`), each naming a real mistake in the file. */
  | { render: Render; errors: string[] }
  | { skip: string };

const BAD_IP = (line: number, col: number, domain: string, ip: string): string =>
  `${line}:${col}: \`domains.${domain}.nics[0].ip\` must be an IPv4 address like 192.168.200.3, got "${ip}"`;

/** Test values for OST's templates: `vars/main.yml` (hostCount, templates) and the suite's environment. */
const OST_VARS = { hostCount: 2, templates: { engine: "el8-base", host: "el7.6-base" } };
const OST_ENV = {
  suite_name: "basic-suite-master",
  use_lago_ost_plugin: "1",
  use_ost_images: "1",
  coverage: "false",
  engine_image: "/srv/ost/images/engine.qcow2",
  host_image: "/srv/ost/images/host.qcow2",
  he_image: "/srv/ost/images/he.qcow2",
  upgrade_image: "/srv/ost/images/upgrade.qcow2",
  engine_installed_image: "/srv/ost/images/engine-installed.qcow2",
  host_installed_image: "/srv/ost/images/host-installed.qcow2",
  he_installed_image: "/srv/ost/images/he-installed.qcow2",
};
const OST = { template: { vars: OST_VARS, env: OST_ENV } } as const;
const SSH_ENGINE = (line: number, col: number): string => `${line}:${col}: vm-provider "ssh" is not supported: lago manages local libvirt VMs only`;

const TABLE: Record<string, Expected> = {
  "fabianvf__forklift__lago__foreman-el7.json": { render: "none", valid: { domains: 2, nets: 2 } },
  "kubevirt__kubevirt-ansible__LagoInitFile.yml": { render: "none", valid: { domains: 3, nets: 1 } },
  "kubevirt__kubevirt-ansible__playbooks__provider__lago__LagoInitFile.yml.j2": { render: { template: { vars: { lago_vm_image: "el8-base" }, env: {} } }, valid: { domains: 3, nets: 1 }, plan: "ok" },
  "lago-project__lago-demo__LagoInitFile": { render: "none", valid: { domains: 3, nets: 1 } },
  "lago-project__lago-demo__automation__lago-init.yaml": { render: "none", valid: { domains: 3, nets: 1 } },
  "lago-project__lago-demo__roles__run_lago_env__templates__init-nested.j2": {
    render: { template: { vars: { nested_vm_template: "el7.6-base" }, env: {} } },
    valid: { domains: 1, nets: 1 },
    plan: "ok",
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
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_2_centos7_hosts.yml@cdb70ed3": { render: OST, valid: { domains: 3, nets: 3 }, plan: "ok" },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_2_centos7_hosts.yml@d9dc1626": { render: "none", valid: { domains: 3, nets: 3 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_4_centos7_hosts.json": { render: "none", valid: { domains: 7, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_centos7_engine_only.json": { render: "none", valid: { domains: 1, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_engine_2_hosts.yml": { render: OST, valid: { domains: 3, nets: 3 }, plan: "ok" },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_2_hosts.yml": { render: { template: { vars: { ...OST_VARS, root_disk_path: "" }, env: OST_ENV } }, valid: { domains: 3, nets: 2 }, plan: "ok" },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_4.1_2_centos7_hosts.yml@095e47ad": { render: "none", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__common__init-configs__1_hosted_engine_4.1_2_centos7_hosts.yml@54540be2": { render: { template: { vars: { ...OST_VARS, root_disk_path: "" }, env: OST_ENV } }, valid: { domains: 4, nets: 2 }, plan: [SSH_ENGINE(3, 18)] },
  "oVirt__ovirt-system-tests__hc-basic-suite-4.1__LagoInitFile.in": { render: "sed", valid: { domains: 4, nets: 1 } },
  "oVirt__ovirt-system-tests__hc-basic-suite-master__LagoInitFile.in": { render: OST, valid: { domains: 3, nets: 1 }, plan: [SSH_ENGINE(3, 18)] },
  "oVirt__ovirt-system-tests__image_suite_3.6__init.json.in": {
    render: "sed",
    errors: [BAD_IP(28, 27, "engine", "192,168.200.3")],
  },
  "oVirt__ovirt-system-tests__performance-suite-master__LagoInitFile.in": { render: OST, valid: { domains: 3, nets: 3 }, plan: "ok" },
  "oVirt__ovirt-system-tests__tr-suite-master__LagoInitFile.in": { render: OST, valid: { domains: 3, nets: 3 }, plan: "ok" },
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

/** The file's text as lago loads it: sed placeholders replaced here; Jinja2 templates are rendered by lago. */
function render(text: string, how: Render): string {
  if (how !== "sed") return text;
  const out = renderSed(text);
  assert.doesNotMatch(out, /\{\{|\{%|@[A-Z_]+@|__[A-Z][A-Z0-9_]*__/, "placeholders left after rendering");
  return out;
}

function loadOptions(how: Render): { env: Record<string, string>; vars?: Record<string, unknown> } {
  return typeof how === "object" ? { env: how.template.env, vars: how.template.vars } : { env: {} };
}

/** Plans `spec` against an empty state (templates from an in-memory repository): "ok" or the diagnostics. */
function planOutcome(spec: ReturnType<typeof parseSpec>): "ok" | string[] {
  try {
    const desired = compile({ spec, templates: resolveTemplatesIn(spec, { repo: benchTemplateRepo() }).templates, prior: emptyState(), domainType: "kvm" });
    const plan = computePlan({ desired, state: emptyState(), observed: undefined, initFileSha256: spec.sha256 });
    for (const d of spec.domains) assert.ok(plan.resourceChanges.some((c) => c.address === `domain.${d.name}` && c.action === "create"), `no create for domain.${d.name}`);
    return "ok";
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.diagnostics.map((d) => `${d.pos.line}:${d.pos.col}: ${d.message}`);
  }
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
    if ("skip" in expected) continue;
    if (typeof expected.render === "object") {
      assert.ok(jinja, `${file} is rendered as a Jinja2 template but has no {{ … }} or {% … %}`);
    } else if (expected.render === "none") {
      assert.ok(!jinja, `${file} is Jinja2: render it as a template`);
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
      const spec = parseSpec(text, absolute, loadOptions(expected.render));
      assert.deepEqual({ domains: spec.domains.length, nets: spec.nets.length }, expected.valid);
      if (typeof expected.render === "object") {
        assert.ok(spec.template, "a templated file records its render");
        assert.deepEqual(planOutcome(spec), expected.plan ?? "ok");
      }
      return;
    }
    assert.throws(
      () => parseSpec(text, absolute, loadOptions(expected.render)),
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
