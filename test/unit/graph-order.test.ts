import { test } from "node:test";
import assert from "node:assert/strict";
import { dependencyOrder } from "../../src/graph/graph.ts";
import type { DesiredResource } from "../../src/resources/types.ts";

const r = (address: string, dependsOn: string[] = []): DesiredResource => ({ address, kind: "disk", attrs: {}, dependsOn, pointer: "" });

test("dependencies come before their dependents, ties broken by address", () => {
  const order = dependencyOrder([r("domain.b", ["disk.b", "network.n"]), r("domain.a", ["disk.a", "network.n"]), r("disk.b", ["template.t"]), r("disk.a", ["template.t"]), r("network.n", ["lease.n"]), r("lease.n"), r("template.t")]);
  assert.deepEqual(order, ["template.t", "disk.a", "disk.b", "lease.n", "network.n", "domain.a", "domain.b"]);
});

test("dependencies outside the resources given and repeated ones are ignored", () => {
  assert.deepEqual(dependencyOrder([r("b", ["a", "a", "elsewhere"]), r("a")]), ["a", "b"]);
});

test("a cycle is named with its resources, sorted", () => {
  assert.throws(() => dependencyOrder([r("a", ["b"]), r("b", ["c"]), r("c", ["a"]), r("d", ["a"])]), { message: "dependency cycle: a → b → c" });
  assert.throws(() => dependencyOrder([r("a", ["a"])]), { message: "dependency cycle: a" });
});
