import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { PassThrough, Writable } from "node:stream";
import ssh2 from "ssh2";
import { generatePair } from "../../src/drivers/real/key-store.ts";
import type { ParsedKey } from "ssh2";
import type { SshTarget } from "../../src/drivers/types.ts";
import { HostKeyMismatchError } from "../../src/drivers/real/ssh.ts";
import { SshSession } from "../../src/drivers/real/ssh-session.ts";

type Ctx = { after: (fn: () => Promise<void> | void) => void };

function parsed(key: string): ParsedKey {
  const k = ssh2.utils.parseKey(key);
  assert.ok(!(k instanceof Error), String(k));
  return k;
}

/**
 * An SSH server on 127.0.0.1: exec requests run with `sh -c` (stdin, stdout,
 * stderr, exit status or signal passed through); a shell on a PTY reports
 * the terminal it was given and each window change, and echoes input in
 * capitals until it reads `exit`, then exits 7.
 */
async function startServer(t: Ctx, clientPublicKey: string): Promise<{ port: number; hostKey: string }> {
  const host = generatePair(ssh2);
  const allowed = parsed(clientPublicKey);
  const server = new ssh2.Server({ hostKeys: [host.private] }, (client) => {
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      if (ctx.method === "publickey" && ctx.key.data.equals(allowed.getPublicSSH()) && (!ctx.signature || (ctx.blob && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)))) ctx.accept();
      else ctx.reject(["publickey"]);
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        let pty = "";
        session.on("pty", (acceptPty, _reject, info) => {
          pty = `PTY ${info.term} ${info.rows} ${info.cols}\n`;
          acceptPty?.();
        });
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          if (pty) stream.write(pty);
          const child = spawn("sh", ["-c", info.command], { stdio: ["pipe", "pipe", "pipe"] });
          stream.pipe(child.stdin);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          child.on("close", (code, signal) => {
            if (signal) stream.exit(signal.replace(/^SIG/, ""), false, "");
            else stream.exit(code ?? 255);
            stream.end();
          });
        });
        session.on("shell", (acceptShell) => {
          const stream = acceptShell();
          stream.write(pty);
          session.on("window-change", (acceptWc, _reject, info) => {
            stream.write(`WINCH ${info.rows} ${info.cols}\n`);
            acceptWc?.();
          });
          stream.on("data", (d: Buffer) => {
            const text = d.toString();
            stream.write(text.toUpperCase());
            if (text.includes("exit")) {
              stream.exit(7);
              stream.end();
            }
          });
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, hostKey: parsed(host.public).getPublicSSH().toString("base64") };
}

async function target(t: Ctx, pinned?: string): Promise<SshTarget> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-ssh-session-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pair = generatePair(ssh2);
  const privateKeyPath = path.join(dir, "id_ed25519");
  await writeFile(privateKeyPath, pair.private, { mode: 0o600 });
  const server = await startServer(t, pair.public);
  return { host: "127.0.0.1", port: server.port, user: "root", privateKeyPath, pinnedHostKey: pinned ?? server.hostKey };
}

test("exec streams output as it comes, feeds stdin, and passes the exit status or the signal back", async (t) => {
  const session = await SshSession.open(await target(t));
  try {
    // The command goes on only once the first line reached us (or gives up after 10 s): streamed, not buffered.
    const flag = path.join(await mkdtemp(path.join(os.tmpdir(), "lago-stream-")), "seen");
    t.after(() => rm(path.dirname(flag), { recursive: true, force: true }));
    const chunks: string[] = [];
    const script = `echo first; i=0; while [ ! -e ${flag} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; [ -e ${flag} ] && echo second || echo not-streamed; echo err >&2; exit 3`;
    const status = await session.exec(script, {
      onStdout: (d) => {
        chunks.push(d.toString());
        if (d.toString().includes("first")) void writeFile(flag, "");
      },
      onStderr: (d) => chunks.push(`stderr:${d.toString()}`),
    });
    assert.deepEqual(status, { code: 3, signal: undefined });
    assert.deepEqual(chunks.join(""), "first\nsecond\nstderr:err\n", "the first line arrived before the command ended");
    const out: Buffer[] = [];
    assert.deepEqual(await session.exec("tr a-z A-Z", { stdin: "quoted 'input' $HOME\n", onStdout: (d) => out.push(d) }), { code: 0, signal: undefined });
    assert.equal(Buffer.concat(out).toString(), "QUOTED 'INPUT' $HOME\n");
    assert.deepEqual(await session.exec("kill -TERM $$"), { code: -1, signal: "SIGTERM" });
  } finally {
    session.close();
  }
});

test("an interactive session gets a PTY of the terminal's size, follows its resizes, forwards input and returns the exit code", async (t) => {
  const session = await SshSession.open(await target(t));
  try {
    const input = new PassThrough();
    let output = "";
    const out = new Writable({
      write(chunk: Buffer, _enc, cb): void {
        output += chunk.toString();
        cb();
      },
    });
    let resize: ((rows: number, cols: number) => void) | undefined;
    let unregistered = false;
    const done = session.interactive(undefined, {
      term: "xterm-256color",
      rows: 40,
      cols: 120,
      input,
      output: out,
      onResize: (listener) => {
        resize = listener;
        return () => {
          unregistered = true;
        };
      },
    });
    const until = async (text: string): Promise<void> => {
      for (let i = 0; i < 100 && !output.includes(text); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(output.includes(text), `${JSON.stringify(text)} in ${JSON.stringify(output)}`);
    };
    await until("PTY xterm-256color 40 120\n");
    input.write("hello\n");
    await until("HELLO\n");
    resize?.(33, 101);
    await until("WINCH 33 101\n");
    input.write("exit\n");
    assert.deepEqual(await done, { code: 7, signal: undefined });
    assert.ok(unregistered, "the resize listener is removed when the session ends");
    assert.equal(input.listenerCount("data"), 0, "input is no longer forwarded");
  } finally {
    session.close();
  }
});

test("a command on a PTY gets the terminal too", async (t) => {
  const session = await SshSession.open(await target(t));
  try {
    let output = "";
    const status = await session.interactive("echo ran", {
      term: "vt100",
      rows: 24,
      cols: 80,
      input: new PassThrough(),
      output: new Writable({
        write(chunk: Buffer, _enc, cb): void {
          output += chunk.toString();
          cb();
        },
      }),
    });
    assert.deepEqual(status, { code: 0, signal: undefined });
    assert.equal(output, "PTY vt100 24 80\nran\n");
  } finally {
    session.close();
  }
});

test("a host key other than the pinned one is refused before anything runs", async (t) => {
  const other = parsed(generatePair(ssh2).public).getPublicSSH().toString("base64");
  await assert.rejects(SshSession.open(await target(t, other)), HostKeyMismatchError);
});
