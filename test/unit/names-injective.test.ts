/**
 * Names that reach the file system or libvirt are injective: two different
 * (vm, disk) pairs, or (env, net) pairs, never map to the same name — for
 * adversarial names too (underscores, dashes, dots, long names, names that
 * differ only in case).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { bridgeName, envPaths, libvirtName, makeEnvContext } from "../../src/env/context.ts";
import { unsafeNameReasons } from "../../src/spec/names.ts";
import { loadConfig } from "../../src/config/config.ts";

const config = loadConfig({}, {}, []);
const envA = makeEnvContext("/w/.lago", "default", config);
const envB = makeEnvContext("/w/.lago", "other", config);

/** Valid init-file names, biased towards the characters that caused collisions. */
const name = fc
  .array(fc.constantFrom("a", "b", "c", "A", "B", "_", "-", ".", "0", "x"), { minLength: 1, maxLength: 63 })
  .map((cs) => cs.join(""))
  .filter((n) => unsafeNameReasons(n).length === 0);
const longName = fc.string({ unit: fc.constantFrom("a", "_", "-", "b"), minLength: 60, maxLength: 63 }).filter((n) => unsafeNameReasons(n).length === 0);
const anyName = fc.oneof(name, longName);

test("the regression: VM a_b's disk c and VM a's disk b_c are different files", () => {
  assert.notEqual(envPaths.disk(envA, "a_b", "c", "qcow2"), envPaths.disk(envA, "a", "b_c", "qcow2"));
});

test("disk files are injective in (vm, disk, format)", () => {
  fc.assert(
    fc.property(anyName, anyName, anyName, anyName, fc.constantFrom("qcow2", "raw"), fc.constantFrom("qcow2", "raw"), (vm1, d1, vm2, d2, f1, f2) => {
      fc.pre(vm1 !== vm2 || d1 !== d2 || f1 !== f2);
      assert.notEqual(envPaths.disk(envA, vm1, d1, f1), envPaths.disk(envA, vm2, d2, f2));
    }),
    { numRuns: 2000 },
  );
});

test("per-VM files (console logs) never collide with another VM's disks", () => {
  fc.assert(
    fc.property(anyName, anyName, anyName, (vm1, vm2, disk) => {
      assert.notEqual(envPaths.consoleLog(envA, vm1), envPaths.disk(envA, vm2, disk, "qcow2"));
    }),
  );
});

test("libvirt names are injective in (env, name); case matters", () => {
  fc.assert(
    fc.property(fc.constantFrom(envA, envB), fc.constantFrom(envA, envB), anyName, anyName, (e1, e2, n1, n2) => {
      fc.pre(e1 !== e2 || n1 !== n2);
      assert.notEqual(libvirtName(e1, n1), libvirtName(e2, n2));
    }),
    { numRuns: 2000 },
  );
  assert.notEqual(libvirtName(envA, "Net"), libvirtName(envA, "net"));
});

test("bridge names fit Linux's 15 characters and are injective in (env, bridge index)", () => {
  fc.assert(
    fc.property(fc.constantFrom(envA, envB), fc.constantFrom(envA, envB), fc.nat(36 ** 4 - 1), fc.nat(36 ** 4 - 1), (e1, e2, i1, i2) => {
      fc.pre(e1 !== e2 || i1 !== i2);
      assert.ok(bridgeName(e1, i1).length <= 15);
      assert.notEqual(bridgeName(e1, i1), bridgeName(e2, i2));
    }),
    { numRuns: 2000 },
  );
});
