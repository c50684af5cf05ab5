import { test } from "node:test";
import assert from "node:assert/strict";
import { CommandError } from "../../src/errors.ts";
import { debianPackageFor, run } from "../../src/drivers/real/exec.ts";

test("run returns output, passes input and LC_ALL=C, and streams stdout lines", async () => {
  const lines: string[] = [];
  const res = await run("sh", ["-c", 'echo "$LC_ALL"; echo "$EXTRA"; cat; echo oops >&2'], {
    input: "in\n",
    env: { EXTRA: "x y" },
    onStdoutLine: (l) => lines.push(l),
  });
  assert.equal(res.stdout, "C\nx y\nin\n");
  assert.equal(res.stderr, "oops\n");
  assert.deepEqual(lines, ["C", "x y", "in"]);
});

test("failures name the command, exit code and stderr", async () => {
  await assert.rejects(run("sh", ["-c", "echo bad thing >&2; exit 4", "arg with space"]), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.deepEqual(err.command, ["sh", "-c", "echo bad thing >&2; exit 4", "arg with space"]);
    assert.equal(err.exitCode, 4);
    assert.equal(err.stderr, "bad thing\n");
    assert.equal(err.message, 'command `sh -c "echo bad thing >&2; exit 4" "arg with space"` exited with code 4:\n  bad thing');
    return true;
  });
  await assert.rejects(run("sleep", ["5"], { timeoutMs: 200 }), { message: "command `sleep 5` timed out after 0.2s" });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(run("sleep", ["5"], { signal: ac.signal }), { message: "command `sleep 5` was cancelled" });
});

test("a missing binary names the Debian package that provides it", async () => {
  assert.equal(debianPackageFor("qemu-img"), "qemu-utils");
  assert.equal(debianPackageFor("virsh"), "libvirt-clients");
  assert.equal(debianPackageFor("virt-customize"), "libguestfs-tools");
  assert.equal(debianPackageFor("xz"), "xz-utils");
  await assert.rejects(run("lago-no-such-tool", ["x"]), {
    message: "command `lago-no-such-tool x` failed: lago-no-such-tool is not installed or not in PATH",
  });
  await assert.rejects(run("qemu-img", ["--version"], { env: { PATH: "/nonexistent" } }), (err: unknown) => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.message, "command `qemu-img --version` failed: qemu-img is not installed (Debian package qemu-utils)");
    assert.equal(err.hint, "install it with: apt-get install qemu-utils");
    return true;
  });
});
