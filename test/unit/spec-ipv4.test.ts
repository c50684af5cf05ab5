/** The IPv4 helpers agree with the schema's `ipv4` format and with plain dotted-quad arithmetic. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { hostNumber, isIpv4, subnet24 } from "../../src/spec/ipv4.ts";

const AJV_IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

test("isIpv4 accepts exactly what the schema's ipv4 format accepts", () => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom("01", "00", "-1", "1a", "", " 1", "255"));
  const text = fc.oneof(fc.array(octet, { minLength: 1, maxLength: 5 }).map((o) => o.join(".")), fc.string(), fc.constantFrom("1.2.3.4/24", "::1", "1.2.3.4 "));
  fc.assert(fc.property(text, (s) => assert.equal(isIpv4(s), AJV_IPV4.test(s), s)), { numRuns: 2000 });
  assert.equal(isIpv4(12), false);
});

test("host number and /24 of any address", () => {
  fc.assert(
    fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
      const ip = `${a}.${b}.${c}.${d}`;
      assert.equal(hostNumber(ip), d);
      assert.equal(subnet24(ip), `${a}.${b}.${c}.0/24`);
    }),
    { numRuns: 1000 },
  );
});
