import { test } from "node:test";
import assert from "node:assert/strict";
import { diffAttrs } from "../../src/plan/diff.ts";
import { displayPath } from "../../src/plan/render.ts";
import { kindOf } from "../../src/resources/registry.ts";
import type { Attrs } from "../../src/resources/types.ts";

const disk = (dev: string, boot: boolean): Attrs => ({ dev, bus: "virtio", format: "qcow2", device: "disk", boot, kind: boot ? "template" : "data" });

test("removing the first of two disks removes that key; the second is not changed", () => {
  const before: Attrs = { disks: { data1: disk("vdb", false), data2: disk("vdc", false) } };
  const after: Attrs = { disks: { data2: disk("vdc", false) } };
  assert.deepEqual(diffAttrs(before, after), [{ path: "/disks/data1", before: disk("vdb", false), after: undefined, forcesReplacement: false }]);
});

test("adding a key is an add with no before value", () => {
  assert.deepEqual(diffAttrs({ hosts: {} }, { hosts: { "vm02#lago#0": { vm: "vm02", host: 3 } } }), [
    { path: "/hosts/vm02#lago#0", before: undefined, after: { vm: "vm02", host: 3 }, forcesReplacement: false },
  ]);
});

test("a changed leaf is reported at its own path with both values", () => {
  assert.deepEqual(diffAttrs({ nics: { "lago#0": { net: "lago", host: 2 } } }, { nics: { "lago#0": { net: "lago", host: 5 } } }), [
    { path: "/nics/lago#0/host", before: 2, after: 5, forcesReplacement: false },
  ]);
});

test("keys with `/` and `~` are escaped in pointers and shown unescaped", () => {
  const changes = diffAttrs({ dns_records: {} }, { dns_records: { "a/b~c": "192.168.200.9" } });
  assert.deepEqual(changes, [{ path: "/dns_records/a~1b~0c", before: undefined, after: "192.168.200.9", forcesReplacement: false }]);
  assert.equal(displayPath(changes[0]?.path ?? ""), "dns_records.a/b~c");
});

test("equal attributes give no changes, whatever the key order", () => {
  assert.deepEqual(diffAttrs({ a: 1, b: { c: 2, d: 3 } }, { b: { d: 3, c: 2 }, a: 1 }), []);
});

test("output is sorted by path", () => {
  const changes = diffAttrs({ z: 1, a: 1, m: { y: 1, b: 1 } }, { z: 2, a: 2, m: { y: 2, b: 2 } });
  assert.deepEqual(
    changes.map((c) => c.path),
    ["/a", "/m/b", "/m/y", "/z"],
  );
});

test("domain: memory, vcpu and cpu require a restart; name forces replacement with its reason", () => {
  const domain = kindOf("domain");
  const before: Attrs = { name: "vm01", domain_type: "kvm", memory: 1024, vcpu: 2, cpu: { mode: "host-passthrough" }, running: true };
  const after: Attrs = { name: "vm01", domain_type: "kvm", memory: 2048, vcpu: 2, cpu: { mode: "model", model: "Haswell" }, running: true };
  assert.deepEqual(diffAttrs(before, after, domain), [
    { path: "/cpu/mode", before: "host-passthrough", after: "model", forcesReplacement: false, requiresRestart: true },
    { path: "/cpu/model", before: undefined, after: "Haswell", forcesReplacement: false, requiresRestart: true },
    { path: "/memory", before: 1024, after: 2048, forcesReplacement: false, requiresRestart: true },
  ]);
  assert.deepEqual(diffAttrs(before, { ...before, domain_type: "qemu" }, domain), [
    { path: "/domain_type", before: "kvm", after: "qemu", forcesReplacement: true, reason: "the libvirt domain type changes" },
  ]);
});

test("a replaceOn rule with `when` forces replacement only for the changes it accepts", () => {
  const kind = { replaceOn: [{ path: "/flag", reason: "lost", when: (c: { after: unknown }) => c.after === undefined }] };
  assert.deepEqual(
    diffAttrs({ a: 1 }, { a: 1, flag: true }, kind).map((c) => [c.path, c.forcesReplacement]),
    [["/flag", false]],
  );
  assert.deepEqual(
    diffAttrs({ a: 1, flag: true }, { a: 1 }, kind).map((c) => [c.path, c.forcesReplacement, c.reason]),
    [["/flag", true, "lost"]],
  );
});

test("replaceOn prefixes match whole path segments only", () => {
  const domain = kindOf("domain");
  // `/name` must not match `/names` (a hypothetical sibling attribute).
  assert.deepEqual(diffAttrs({ names: "a" }, { names: "b" }, domain), [{ path: "/names", before: "a", after: "b", forcesReplacement: false }]);
  // `/memory` must not match `/memory_extra`.
  assert.deepEqual(diffAttrs({ memory_extra: 1 }, { memory_extra: 2 }, domain), [{ path: "/memory_extra", before: 1, after: 2, forcesReplacement: false }]);
});

test("disk: a template change forces replacement, a size change updates in place", () => {
  const diskKind = kindOf("disk");
  const before: Attrs = { vm: "vm01", name: "root", type: "template", format: "qcow2", size: null, template: "template.r:a:v1", path: null, build_sha256: null };
  assert.deepEqual(diffAttrs(before, { ...before, template: "template.r:a:v2", size: 1024 }, diskKind), [
    { path: "/size", before: null, after: 1024, forcesReplacement: false },
    {
      path: "/template",
      before: "template.r:a:v1",
      after: "template.r:a:v2",
      forcesReplacement: true,
      reason: "the template changes: a fresh overlay is needed",
    },
  ]);
});

test("a rule on the whole resource (path \"\") forces replacement for any change", () => {
  const build = kindOf("build");
  assert.deepEqual(diffAttrs({ steps: [] }, { steps: [{ builder: "virt-customize", options: [] }] }, build), [
    {
      path: "/steps/0",
      before: undefined,
      after: { builder: "virt-customize", options: [] },
      forcesReplacement: true,
      reason: "build steps run once, into a fresh layer",
    },
  ]);
  const template = kindOf("template");
  assert.deepEqual(diffAttrs({ version: "v1" }, { version: "v2" }, template), [
    { path: "/version", before: "v1", after: "v2", forcesReplacement: true, reason: "a template version is immutable" },
  ]);
});

test("network: host additions and gateway/MTU changes are in place; only the type and the bridge force replacement", () => {
  const network = kindOf("network");
  const before: Attrs = { net: "lago", type: "nat", gateway: 1, mtu: null, hosts: { "vm01#lago#0": { vm: "vm01", host: 2 } } };
  const after: Attrs = { net: "lago", type: "bridge", gateway: 254, mtu: 9000, hosts: { "vm01#lago#0": { vm: "vm01", host: 2 }, "vm02#lago#0": { vm: "vm02", host: 3 } } };
  assert.deepEqual(diffAttrs(before, after, network), [
    { path: "/gateway", before: 1, after: 254, forcesReplacement: false },
    { path: "/hosts/vm02#lago#0", before: undefined, after: { vm: "vm02", host: 3 }, forcesReplacement: false },
    { path: "/mtu", before: null, after: 9000, forcesReplacement: false },
    { path: "/type", before: "nat", after: "bridge", forcesReplacement: true, reason: "the network type changes" },
  ]);
  // The in-place ones that restart the network are named, with why.
  assert.deepEqual(
    network.disruptiveOn?.map((r) => r.path),
    ["/mtu", "/gateway", "/dns_domain", "/dns_forward", "/active"],
  );
});

test("without a kind nothing forces replacement or a restart", () => {
  assert.deepEqual(diffAttrs({ name: "a", memory: 1 }, { name: "b", memory: 2 }), [
    { path: "/memory", before: 1, after: 2, forcesReplacement: false },
    { path: "/name", before: "a", after: "b", forcesReplacement: false },
  ]);
});
