import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { LagoError } from "../../src/errors.ts";
import { loadTemplateRepo, parseTemplateRepo, resolveTemplate, templateStoreKey } from "../../src/templates/repo.ts";

const GOOD = {
  name: "ovirt-tested",
  sources: {
    remote: { type: "http", args: { baseurl: "http://templates.example.org/repo/" } },
    local: { type: "file", args: { root: "/srv/templates" } },
  },
  templates: {
    "el7-base": {
      versions: {
        v1: { source: "remote", handle: "el7-base-v1.qcow2", timestamp: 1466505318 },
        v3: { source: "remote", handle: "el7-base-v3.qcow2", timestamp: 1500000000 },
        v2: { source: "local", handle: "sub/el7-base-v2.qcow2", timestamp: 1480000000 },
      },
    },
    "fc25-base": { versions: { v1: { source: "local", handle: "fc25.qcow2", timestamp: 1 } } },
  },
};

function errorOf(fn: () => unknown): LagoError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LagoError, `expected a LagoError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected an error");
}

test("parses a valid repo.metadata", () => {
  const repo = parseTemplateRepo(GOOD, "/x/repo.metadata");
  assert.equal(repo.name, "ovirt-tested");
  assert.deepEqual(repo.sources.get("remote"), { type: "http", location: "http://templates.example.org/repo/" });
  assert.deepEqual(repo.sources.get("local"), { type: "file", location: "/srv/templates" });
  assert.deepEqual([...(repo.templates.get("el7-base")?.versions.keys() ?? [])], ["v1", "v3", "v2"]);
});

test("resolves the newest version by timestamp, or the one asked for", () => {
  const repo = parseTemplateRepo(GOOD, "/x/repo.metadata");
  assert.deepEqual(resolveTemplate(repo, "el7-base"), {
    repo: "ovirt-tested",
    name: "el7-base",
    version: "v3",
    handle: "el7-base-v3.qcow2",
    source: { type: "http", location: "http://templates.example.org/repo/" },
  });
  assert.deepEqual(resolveTemplate(repo, "el7-base", "v2"), {
    repo: "ovirt-tested",
    name: "el7-base",
    version: "v2",
    handle: "sub/el7-base-v2.qcow2",
    source: { type: "file", location: "/srv/templates" },
  });
  assert.equal(templateStoreKey(resolveTemplate(repo, "el7-base")), "ovirt-tested:el7-base:v3");
});

test("unknown template and version errors list what exists, sorted", () => {
  const repo = parseTemplateRepo(GOOD, "/x/repo.metadata");
  const e1 = errorOf(() => resolveTemplate(repo, "el8-base"));
  assert.equal(e1.code, "TEMPLATE_NOT_FOUND");
  assert.equal(e1.message, 'template "el8-base" is not in repository "ovirt-tested" (/x/repo.metadata); templates: el7-base, fc25-base');
  const e2 = errorOf(() => resolveTemplate(repo, "el7-base", "v9"));
  assert.equal(e2.message, 'template "el7-base" has no version "v9" in repository "ovirt-tested"; versions: v1, v2, v3');
});

test("structural problems are all reported with their JSON paths", () => {
  const bad = {
    name: 7,
    sources: {
      a: { type: "ftp", args: {} },
      b: { type: "http", args: { baseurl: "not a url" } },
      c: { type: "file" },
    },
    templates: {
      t: {
        versions: {
          v1: { source: "zzz", handle: "x", timestamp: 1 },
          v2: { source: "b", timestamp: "soon" },
        },
      },
      u: [],
    },
  };
  const e = errorOf(() => parseTemplateRepo(bad, "repo.metadata"));
  assert.equal(e.code, "TEMPLATE_REPO_INVALID");
  assert.equal(
    e.message,
    [
      "template repository repo.metadata: 8 problems:",
      "  name: expected a string, got number 7",
      '  sources.a.type: expected "http" or "file", got string "ftp"',
      '  sources.b.args.baseurl: expected an http(s) URL, got "not a url"',
      "  sources.c.args: is missing",
      '  templates.t.versions.v1.source: names the source "zzz", which is not defined (sources: a, b, c)',
      "  templates.t.versions.v2.handle: is missing",
      '  templates.t.versions.v2.timestamp: expected a number (seconds since 1970), got string "soon"',
      "  templates.u: expected an object, got an array",
    ].join("\n"),
  );
  assert.equal(errorOf(() => parseTemplateRepo([], "r")).message, "template repository r: expected a JSON object, got an array");
  assert.equal(errorOf(() => parseTemplateRepo({ name: "x", sources: {} }, "r")).message, "template repository r: templates: is missing");
});

test("rejects handles and names that could escape the store or the source root", () => {
  const withVersion = (tplName: string, ver: string, handle: string): unknown => ({
    name: "r",
    sources: { s: { type: "file", args: { root: "/srv" } } },
    templates: { [tplName]: { versions: { [ver]: { source: "s", handle, timestamp: 1 } } } },
  });
  const cases: [unknown, string][] = [
    [withVersion("t", "v1", "../etc/shadow"), "templates.t.versions.v1.handle: \"../etc/shadow\" contains a '..' segment; it must stay inside the source root"],
    [withVersion("t", "v1", "a/../../b"), "templates.t.versions.v1.handle: \"a/../../b\" contains a '..' segment; it must stay inside the source root"],
    [withVersion("t", "v1", "/etc/shadow"), 'templates.t.versions.v1.handle: "/etc/shadow" is an absolute path; it must be relative to the source root'],
    [withVersion("t", "v1", "a\u0000b"), 'templates.t.versions.v1.handle: "a\\u0000b" contains a control character'],
    [withVersion("a/b", "v1", "x"), 'templates["a/b"]: template name "a/b" contains \'/\''],
    [withVersion("..", "v1", "x"), 'templates[".."]: template name ".." is a \'.\' or \'..\' path segment'],
    [withVersion("t", "v\n1", "x"), 'templates.t.versions["v\\n1"]: version name "v\\n1" contains a control character'],
  ];
  for (const [doc, message] of cases) {
    assert.equal(errorOf(() => parseTemplateRepo(doc, "r")).message, `template repository r: ${message}`);
  }
  const badRepoName = { name: "../x", sources: {}, templates: {} };
  assert.equal(errorOf(() => parseTemplateRepo(badRepoName, "r")).message, "template repository r: name: \"../x\" contains '/'");
});

test("a relative file root is taken relative to the metadata file", () => {
  const repo = parseTemplateRepo({ name: "r", sources: { s: { type: "file", args: { root: "images" } } }, templates: {} }, "/data/repo/repo.metadata");
  assert.deepEqual(repo.sources.get("s"), { type: "file", location: "/data/repo/images" });
});

test("loads from a path, a file:// URL and an http URL; reports HTTP errors", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-repo-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "repo.metadata");
  await writeFile(file, JSON.stringify(GOOD));
  assert.equal((await loadTemplateRepo(file)).name, "ovirt-tested");
  assert.equal((await loadTemplateRepo(pathToFileURL(file).href)).origin, file);

  await writeFile(path.join(dir, "broken.metadata"), "{nope");
  await assert.rejects(loadTemplateRepo(path.join(dir, "broken.metadata")), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.match(err.message, /^template repository .*broken\.metadata: invalid JSON: /);
    return true;
  });
  await assert.rejects(loadTemplateRepo(path.join(dir, "missing")), /cannot read template repository .*missing: ENOENT/);

  const server = createServer((req, res) => {
    if (req.url === "/repo.metadata") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(GOOD));
    } else if (req.url === "/slow") {
      setTimeout(() => res.end("{}"), 2000);
    } else {
      res.writeHead(404, "Not Found");
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const repo = await loadTemplateRepo(`${base}/repo.metadata`);
  assert.equal(repo.origin, `${base}/repo.metadata`);
  assert.equal(resolveTemplate(repo, "fc25-base").handle, "fc25.qcow2");
  await assert.rejects(loadTemplateRepo(`${base}/nothing.metadata`), {
    message: `cannot load template repository ${base}/nothing.metadata: HTTP 404 Not Found`,
  });
  await assert.rejects(loadTemplateRepo(`${base}/slow`, { timeoutMs: 300 }), {
    message: `cannot load template repository ${base}/slow: timed out after 0.3s`,
  });
});
