import { test } from "node:test";
import assert from "node:assert/strict";
import { parseTransfer, withBar } from "../../src/cli/progress/progress-message.ts";
import { fit, liveLine } from "../../src/cli/progress/tty-renderer.ts";
import { clock } from "../../src/cli/progress/line-renderer.ts";

const plain = { green: (s: string) => s, yellow: (s: string) => s, red: (s: string) => s, magenta: (s: string) => s, bold: (s: string) => s, dim: (s: string) => s };

test("download progress gets a bar and numbers", () => {
  assert.equal(withBar("downloading r:t:v1: 50% (12.0/24.0 MB)", 10), "downloading r:t:v1: [#####-----] 50% (12.0/24.0 MB)");
  assert.equal(withBar("downloading r:t:v1: 100% (24.0/24.0 MB)", 4), "downloading r:t:v1: [####] 100% (24.0/24.0 MB)");
  assert.equal(withBar("waiting for SSH on 192.168.200.2"), "waiting for SSH on 192.168.200.2");
  assert.deepEqual(parseTransfer("downloading r:t:v1: 42% (12.6/30.0 MB)"), { percent: 42, doneMiB: 12.6, totalMiB: 30 });
  assert.equal(parseTransfer("downloading r:t:v1: 12.6 MB"), undefined);
});

test("a live line shows spinner, address, action, elapsed time and progress, cut to the width", () => {
  const f = { address: "template.repo:tiny:v1", verb: "Creating", started: 1000, message: "downloading repo:tiny:v1: 50% (1.0/2.0 MB)" };
  assert.equal(liveLine(f, "⠋", 4200, 200, plain), "⠋ template.repo:tiny:v1: Creating… 3.2s  downloading repo:tiny:v1: [##########----------] 50% (1.0/2.0 MB)");
  const cut = liveLine(f, "⠋", 4200, 40, plain);
  assert.equal([...cut].length, 40);
  assert.ok(cut.endsWith("…"));
  assert.equal(fit("abc", 3), "abc");
  assert.equal(fit("abcd", 3), "ab…");
});

test("plain lines carry the local time", () => {
  assert.equal(clock(new Date(2026, 0, 2, 3, 4, 5)), "03:04:05");
});
