import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { remoteCommand, shellQuote } from "../../src/ops/command-line.ts";

test("shellQuote leaves plain words alone and single-quotes everything else", () => {
  assert.equal(shellQuote("ping"), "ping");
  assert.equal(shellQuote("-c1"), "-c1");
  assert.equal(shellQuote("/var/log/x.log"), "/var/log/x.log");
  assert.equal(shellQuote(""), "''");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("$HOME"), "'$HOME'");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
  assert.equal(shellQuote('say "hi"; rm -rf /'), `'say "hi"; rm -rf /'`);
  assert.equal(shellQuote("*"), "'*'");
});

test("remoteCommand: one argument is a shell command line as written; several are an argument vector; a leading -- goes", () => {
  assert.equal(remoteCommand(["echo $HOME | wc -c"]), "echo $HOME | wc -c");
  assert.equal(remoteCommand(["--", "echo $HOME | wc -c"]), "echo $HOME | wc -c");
  assert.equal(remoteCommand(["ping", "-c1", "-W5", "vm02"]), "ping -c1 -W5 vm02");
  assert.equal(remoteCommand(["--", "printf", "%s\\n", "a b", "$HOME", "it's"]), `printf '%s\\n' 'a b' '$HOME' 'it'"'"'s'`);
});

test("every argument arrives exactly as given through a real POSIX shell", () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }).map((s) => s.replaceAll("\0", "")), { minLength: 1, maxLength: 6 }), (args) => {
      const command = remoteCommand(["printf", "<%s>", ...args]);
      const out = execFileSync("sh", ["-c", command], { encoding: "utf8" });
      assert.equal(out, args.map((a) => `<${a}>`).join(""));
    }),
    { numRuns: 200, seed: 8 },
  );
});
