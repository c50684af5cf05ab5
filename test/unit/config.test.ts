import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { configPaths, envSections, loadConfig, parseIni, resolveQemuUser, type LagoConfig } from "../../src/config/config.ts";
import { UsageError } from "../../src/errors.ts";
import { diagnosticsOf } from "../helpers/diagnostics.ts";

const dir = mkdtempSync(path.join(tmpdir(), "lago-config-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

function plain(sections: Map<string, Map<string, string>>): Record<string, Record<string, string>> {
  return Object.fromEntries([...sections].map(([s, m]) => [s, Object.fromEntries(m)]));
}

const DEFAULT_CONFIG: LagoConfig = {
  leaseDir: "/var/lib/lago/subnets",
  leaseRange: { first: 200, last: 255 },
  templateStore: "/var/lib/lago/store",
  templateRepoPath: undefined,
  domainType: "kvm",
  qemuUser: process.geteuid?.() === 0 ? "libvirt" : "invoking",
  libvirtUri: "qemu:///system",
  bootTimeout: 600,
  shutdownTimeout: 60,
  allowOutsidePaths: false,
  allowSystemPaths: false,
  bootstrap: "auto",
  build: "auto",
  sources: ["defaults"],
};

test("parseIni: sections, both separators, comments, blank lines, CRLF, case and dashes in keys", () => {
  const text = [
    "# a comment",
    "; another comment",
    "[lago]",
    "lease_dir = /srv/subnets",
    "Domain-Type: qemu",
    "",
    "[ INIT ]",
    "template_store=/srv/store",
    "template_repo_path = http://templates.example.com/repo.metadata",
    "[lago]",
    "boot_timeout = 30  ",
    "empty =",
  ].join("\r\n");
  assert.deepEqual(plain(parseIni(text, "/etc/lago/lago.conf")), {
    lago: { lease_dir: "/srv/subnets", domain_type: "qemu", boot_timeout: "30", empty: "" },
    init: { template_store: "/srv/store", template_repo_path: "http://templates.example.com/repo.metadata" },
  });
});

test("parseIni: a value keeps its `=` and `:` characters after the first separator", () => {
  assert.deepEqual(plain(parseIni("[lago]\nlibvirt_uri = qemu+ssh://root@host:22/system?x=1\n", "f")), {
    lago: { libvirt_uri: "qemu+ssh://root@host:22/system?x=1" },
  });
});

test("parseIni: a setting before any section and a line without a separator are ConfigErrors with file:line", () => {
  assert.deepEqual(diagnosticsOf(() => parseIni("# top\nkey = value\n", "/etc/lago/lago.conf")), [
    "/etc/lago/lago.conf:2:1: a setting before any [section]",
  ]);
  assert.deepEqual(diagnosticsOf(() => parseIni("[lago]\nlease_dir /srv\n", "/home/u/.config/lago/lago.conf")), [
    "/home/u/.config/lago/lago.conf:2:1: expected `key = value`",
  ]);
});

test("envSections: LAGO_X is [lago] x, LAGO__SECTION__KEY is [section] key; others are ignored", () => {
  const env = {
    LAGO_LEASE_DIR: "/srv/subnets",
    LAGO_DOMAIN_TYPE: "qemu",
    LAGO__INIT__TEMPLATE_REPO_PATH: "/srv/repo.metadata",
    LAGO__INIT__TEMPLATE_STORE: "/srv/store",
    LAGO_TEST_CRASH_AFTER_JOURNAL: "3",
    LAGOON: "x",
    lago_lower: "x",
    PATH: "/usr/bin",
    LAGO_UNSET: undefined,
  };
  assert.deepEqual(plain(envSections(env)), {
    lago: { lease_dir: "/srv/subnets", domain_type: "qemu" },
    init: { template_repo_path: "/srv/repo.metadata", template_store: "/srv/store" },
  });
});

test("configPaths: /etc, then XDG_CONFIG_DIRS in reverse (most important last), then the user's", () => {
  assert.deepEqual(configPaths({ XDG_CONFIG_DIRS: "/etc/xdg-a:/etc/xdg-b", XDG_CONFIG_HOME: "/home/u/.cfg", HOME: "/home/u" }), [
    "/etc/lago/lago.conf",
    "/etc/xdg-b/lago/lago.conf",
    "/etc/xdg-a/lago/lago.conf",
    "/home/u/.cfg/lago/lago.conf",
  ]);
  assert.deepEqual(configPaths({ HOME: "/home/u" }), ["/etc/lago/lago.conf", "/etc/xdg/lago/lago.conf", "/home/u/.config/lago/lago.conf"]);
});

test("loadConfig without files, environment or flags gives Lago's defaults", () => {
  assert.deepEqual(loadConfig({}, {}, [path.join(dir, "absent.conf")]), DEFAULT_CONFIG);
});

test("files are read in order and the later one wins; missing files are skipped", () => {
  const system = file("system.conf", "[lago]\nlease_dir = /srv/system\nboot_timeout = 100\n[init]\ntemplate_store = /srv/store-system\n");
  const user = file("user.conf", "[lago]\nboot_timeout = 200\n");
  const config = loadConfig({}, {}, [system, path.join(dir, "missing.conf"), user]);
  assert.deepEqual(config, {
    ...DEFAULT_CONFIG,
    leaseDir: "/srv/system",
    templateStore: "/srv/store-system",
    bootTimeout: 200,
    sources: ["defaults", system, user],
  });
});

test("the environment overrides files, and CLI overrides come last", () => {
  const conf = file("layered.conf", "[lago]\ndomain_type = kvm\nboot_timeout = 100\nshutdown_timeout = 10\n[init]\ntemplate_repo_path = /from/file\n");
  const env = { LAGO_BOOT_TIMEOUT: "200", LAGO_DOMAIN_TYPE: "qemu", LAGO__INIT__TEMPLATE_REPO_PATH: "/from/env" };
  assert.deepEqual(loadConfig(env, {}, [conf]), {
    ...DEFAULT_CONFIG,
    domainType: "qemu",
    bootTimeout: 200,
    shutdownTimeout: 10,
    templateRepoPath: "/from/env",
    sources: ["defaults", conf, "environment"],
  });
  const flags = { "lago.boot_timeout": "300", "init.template_repo_path": "/from/flag", "lago.lease_range": undefined };
  assert.deepEqual(loadConfig(env, flags, [conf]), {
    ...DEFAULT_CONFIG,
    domainType: "qemu",
    bootTimeout: 300,
    shutdownTimeout: 10,
    templateRepoPath: "/from/flag",
    sources: ["defaults", conf, "environment", "command line"],
  });
});

test("bootstrap: auto by default, one method for all VMs when set, anything else refused", () => {
  assert.equal(loadConfig({ LAGO_BOOTSTRAP: "ssh" }, {}, []).bootstrap, "ssh");
  assert.equal(loadConfig({}, { "lago.bootstrap": "cloud-init" }, []).bootstrap, "cloud-init");
  assert.throws(() => loadConfig({ LAGO_BOOTSTRAP: "sysprep" }, {}, []), /configuration lago\.bootstrap \(set by the environment \(LAGO_… variables\)\): expected auto, cloud-init, ssh or virt-customize, got "sysprep"/);
});

test("build: auto by default, offline when set, anything else refused", () => {
  assert.equal(loadConfig({}, {}, []).build, "auto");
  assert.equal(loadConfig({ LAGO_BUILD: "offline" }, {}, []).build, "offline");
  assert.throws(() => loadConfig({ LAGO_BUILD: "first-boot" }, {}, []), /configuration lago\.build \(set by the environment \(LAGO_… variables\)\): expected auto or offline, got "first-boot"/);
});

test("paths are made absolute and lease_range is parsed", () => {
  const config = loadConfig({ LAGO_LEASE_DIR: "relative/subnets", LAGO_LEASE_RANGE: "100-150" }, {}, []);
  assert.equal(config.leaseDir, path.resolve("relative/subnets"));
  assert.deepEqual(config.leaseRange, { first: 100, last: 150 });
});

test("a bad config file is reported with its position", () => {
  const bad = file("bad.conf", "[lago]\nboot_timeout = 1\nnot a setting\n");
  assert.deepEqual(diagnosticsOf(() => loadConfig({}, {}, [bad])), [`${bad}:3:1: expected \`key = value\``]);
});

function usageProblem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  return assert.fail("expected a UsageError");
}

test("bad values name the setting and where it was set", () => {
  const env = "the environment (LAGO_… variables)";
  assert.equal(usageProblem(() => loadConfig({ LAGO_BOOT_TIMEOUT: "ten" }, {}, [])), `configuration lago.boot_timeout (set by ${env}): expected a whole number, got "ten"`);
  assert.equal(usageProblem(() => loadConfig({}, { "lago.shutdown_timeout": "-5" }, [])), 'configuration lago.shutdown_timeout (set by the command line): expected a whole number, got "-5"');
  assert.equal(usageProblem(() => loadConfig({ LAGO_DOMAIN_TYPE: "xen" }, {}, [])), `configuration lago.domain_type (set by ${env}): expected kvm or qemu, got "xen"`);
  assert.equal(usageProblem(() => loadConfig({ LAGO_QEMU_USER: "nobody" }, {}, [])), `configuration lago.qemu_user (set by ${env}): expected auto, libvirt or invoking, got "nobody"`);
  const conf = file("range.conf", "[lago]\nlease_range = 255-200\n");
  assert.equal(usageProblem(() => loadConfig({}, {}, [conf])), `configuration lago.lease_range (set by ${conf}): expected FIRST-LAST third octets within 0-255, e.g. 200-255`);
  for (const range of ["255-200", "200-300", "200", "a-b", "1000-1001"]) {
    assert.equal(
      usageProblem(() => loadConfig({ LAGO_LEASE_RANGE: range }, {}, [])),
      `configuration lago.lease_range (set by ${env}): expected FIRST-LAST third octets within 0-255, e.g. 200-255`,
      range,
    );
  }
});

test("qemu_user: auto never runs qemu as root (libvirt's qemu user under root, else the invoking user); explicit values stay", () => {
  assert.equal(resolveQemuUser("auto", 0), "libvirt");
  assert.equal(resolveQemuUser("auto", 1000), "invoking");
  assert.equal(resolveQemuUser("invoking", 0), "invoking");
  assert.equal(resolveQemuUser("libvirt", 1000), "libvirt");
  assert.equal(resolveQemuUser("root", 0), undefined);
  assert.equal(resolveQemuUser(undefined, 0), undefined);
  assert.equal(loadConfig({ LAGO_QEMU_USER: "invoking" }, {}, []).qemuUser, "invoking");
});
