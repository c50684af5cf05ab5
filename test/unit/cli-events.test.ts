import { test } from "node:test";
import assert from "node:assert/strict";
import { withBar } from "../../src/cli/events.ts";

test("download progress gets a bar", () => {
  assert.equal(withBar("downloading r:t:v1: 50% (12.0/24.0 MB)", 10), "downloading r:t:v1: [#####-----] 50% (12.0/24.0 MB)");
  assert.equal(withBar("downloading r:t:v1: 100% (24.0/24.0 MB)", 4), "downloading r:t:v1: [####] 100% (24.0/24.0 MB)");
  assert.equal(withBar("waiting for SSH on 192.168.200.2"), "waiting for SSH on 192.168.200.2");
});
