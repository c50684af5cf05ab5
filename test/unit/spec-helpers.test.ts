import { test } from "node:test";
import assert from "node:assert/strict";
import { suggest } from "../../src/spec/did-you-mean.ts";
import { unsafeNameReasons } from "../../src/spec/names.ts";
import { expandVars } from "../../src/spec/normalize.ts";
import { pointerLabel } from "../../src/spec/pointer.ts";
import { parseSize } from "../../src/spec/size.ts";

test("parseSize reads sizes as qemu-img does", () => {
  assert.deepEqual(parseSize("10G"), { bytes: 10 * 1024 ** 3, suffixed: true, amount: "10" });
  assert.deepEqual(parseSize("512M"), { bytes: 512 * 1024 ** 2, suffixed: true, amount: "512" });
  assert.deepEqual(parseSize("1.5k"), { bytes: 1536, suffixed: true, amount: "1.5" });
  assert.deepEqual(parseSize("4096b"), { bytes: 4096, suffixed: false, amount: "4096" });
  assert.deepEqual(parseSize("1048576"), { bytes: 1048576, suffixed: false, amount: "1048576" });
  assert.deepEqual(parseSize(2048), { bytes: 2048, suffixed: false, amount: "2048" });
  assert.equal(parseSize("10 GB"), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(parseSize(true), undefined);
});

test("suggest ignores case and -/_ spelling, and stays quiet for far-off words", () => {
  const keys = ["vcpu", "memory", "ssh-user", "template_name", "nics"];
  assert.equal(suggest("vCpu", keys), "vcpu");
  assert.equal(suggest("ssh_user", keys), "ssh-user");
  assert.equal(suggest("memroy", keys), "memory");
  assert.equal(suggest("templatename", keys), "template_name");
  assert.equal(suggest("flavour", keys), undefined);
});

test("unsafe name reasons; dotted names are fine", () => {
  assert.deepEqual(unsafeNameReasons("foreman.example.com"), []);
  assert.deepEqual(unsafeNameReasons("__ENGINE__"), []);
  assert.deepEqual(unsafeNameReasons(""), ["is empty"]);
  assert.deepEqual(unsafeNameReasons(".hidden"), ["starts with `.`"]);
  assert.deepEqual(unsafeNameReasons("a;b c"), ["contains `;`", "contains a space"]);
  assert.deepEqual(unsafeNameReasons("é"), ["contains `é`"]);
});

test("expandVars is os.path.expandvars: unknown variables stay", () => {
  const env = { A: "/a", B: "b" };
  assert.equal(expandVars("$A/${B}/$C/${D}/$", env), "/a/b/$C/${D}/$");
});

test("pointerLabel prints indexes and odd keys readably", () => {
  const doc = { domains: { "foreman.example.com": { nics: [{ net: "x" }] } } };
  assert.equal(pointerLabel("/domains/foreman.example.com/nics/0/net", doc), 'domains["foreman.example.com"].nics[0].net');
  assert.equal(pointerLabel("", doc), "(top level)");
});
