import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { EventEmitter } from "node:events";
import net, { createServer as createTcpServer } from "node:net";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import ssh2 from "ssh2";
import { generatePair } from "../../src/drivers/real/key-store.ts";
import type { ParsedKey } from "ssh2";
import { LagoError } from "../../src/errors.ts";
import type { SshTarget } from "../../src/drivers/types.ts";
import { HostKeyMismatchError, Ssh2Client, openPort } from "../../src/drivers/real/ssh.ts";

type Ctx = { after: (fn: () => Promise<void> | void) => void };

function parsed(key: string): ParsedKey {
  const k = ssh2.utils.parseKey(key);
  assert.ok(!(k instanceof Error), String(k));
  return k;
}

/**
 * An SSH server on 127.0.0.1 accepting only `clientKey` (or, when given, `password`), running exec
 * requests with `sh -c` (stdin included).
 */
async function startServer(t: Ctx, clientPublicKey: string, port = 0, password?: string): Promise<{ port: number; hostKey: string }> {
  const host = generatePair(ssh2);
  const allowed = parsed(clientPublicKey);
  const server = new ssh2.Server({ hostKeys: [host.private] }, (client) => {
    client.on("error", () => undefined);
    client.on("authentication", (ctx) => {
      if (ctx.method === "password" && password !== undefined) {
        if (ctx.password === password) ctx.accept();
        else ctx.reject(["publickey", "password"]);
        return;
      }
      if (ctx.method !== "publickey" || ctx.key.algo !== allowed.type || !ctx.key.data.equals(allowed.getPublicSSH())) {
        ctx.reject(password === undefined ? ["publickey"] : ["publickey", "password"]);
        return;
      }
      if (ctx.signature && ctx.blob) {
        if (allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) ctx.accept();
        else ctx.reject(["publickey"]);
      } else {
        ctx.accept();
      }
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const child = spawn("sh", ["-c", info.command], { stdio: ["pipe", "pipe", "pipe"] });
          stream.pipe(child.stdin);
          child.stdin.on("error", () => undefined);
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          stream.on("close", () => child.kill());
          child.on("close", (code) => {
            stream.exit(code ?? 255);
            stream.end();
          });
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, hostKey: parsed(host.public).getPublicSSH().toString("base64") };
}

async function clientKey(t: Ctx): Promise<{ privateKeyPath: string; publicKey: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-ssh-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pair = generatePair(ssh2);
  const privateKeyPath = path.join(dir, "id_ed25519");
  await writeFile(privateKeyPath, pair.private, { mode: 0o600 });
  return { privateKeyPath, publicKey: pair.public };
}

async function freePort(): Promise<number> {
  const srv = createTcpServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test("waitReady returns the host key; pinned connections work; exec collects output and exit code", async (t) => {
  const key = await clientKey(t);
  const server = await startServer(t, key.publicKey);
  const ssh = new Ssh2Client();
  const target: SshTarget = { host: "127.0.0.1", port: server.port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: undefined };

  const hostKey = await ssh.waitReady(target, 10_000);
  assert.equal(hostKey, server.hostKey);

  const pinned = { ...target, pinnedHostKey: hostKey };
  assert.equal(await ssh.waitReady(pinned, 10_000), hostKey);
  assert.deepEqual(await ssh.exec(pinned, "echo out; echo err >&2; exit 3"), { code: 3, stdout: "out\n", stderr: "err\n" });
  assert.deepEqual(await ssh.exec(pinned, "printf '%s' \"$((6 * 7))\""), { code: 0, stdout: "42", stderr: "" });
});

test("a wrong pinned host key fails at once with a clear message", async (t) => {
  const key = await clientKey(t);
  const server = await startServer(t, key.publicKey);
  const ssh = new Ssh2Client();
  const other = generatePair(ssh2);
  const wrong = parsed(other.public).getPublicSSH().toString("base64");
  const target: SshTarget = { host: "127.0.0.1", port: server.port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: wrong };
  const started = Date.now();
  await assert.rejects(ssh.waitReady(target, 20_000), (err: unknown) => {
    assert.ok(err instanceof HostKeyMismatchError);
    assert.equal(err.message, `host key mismatch for 127.0.0.1:${server.port}: expected ${wrong}, got ${server.hostKey}`);
    return true;
  });
  assert.ok(Date.now() - started < 5_000, "a host key mismatch must not be retried");
  await assert.rejects(ssh.exec(target, "true"), HostKeyMismatchError);
});

test("waitReady retries until the server comes up", async (t) => {
  const key = await clientKey(t);
  const port = await freePort();
  const ssh = new Ssh2Client();
  const target: SshTarget = { host: "127.0.0.1", port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: undefined };
  const late = new Promise<string>((resolve) => {
    setTimeout(() => {
      void startServer(t, key.publicKey, port).then((s) => resolve(s.hostKey));
    }, 2_500);
  });
  const progress: string[] = [];
  const hostKey = await ssh.waitReady(target, 15_000, { progress: (m) => progress.push(m) });
  assert.equal(hostKey, await late);
  assert.ok(progress.some((m) => m.includes("ECONNREFUSED")), progress.join("\n"));
});

test("waitReady times out naming the last error when nothing listens", async (t) => {
  const key = await clientKey(t);
  const port = await freePort();
  const ssh = new Ssh2Client();
  const target: SshTarget = { host: "127.0.0.1", port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: undefined };
  await assert.rejects(ssh.waitReady(target, 2_500), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "SSH_TIMEOUT");
    assert.match(err.message, new RegExp(`^timed out after 2\\.5s waiting for SSH on root@127\\.0\\.0\\.1:${port} \\(\\d+ attempts?\\); last error: ECONNREFUSED: `));
    return true;
  });
});

test("authentication with an unknown key is reported; exec times out and can be cancelled", async (t) => {
  const key = await clientKey(t);
  const stranger = await clientKey(t);
  const server = await startServer(t, key.publicKey);
  const ssh = new Ssh2Client();
  const target: SshTarget = { host: "127.0.0.1", port: server.port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: server.hostKey };

  await assert.rejects(ssh.waitReady({ ...target, privateKeyPath: stranger.privateKeyPath }, 2_000), /last error: authentication failed/);

  await assert.rejects(ssh.exec(target, "sleep 5", { timeoutMs: 1_000 }), {
    code: "SSH_TIMEOUT",
    message: `command \`sleep 5\` on root@127.0.0.1:${server.port} timed out after 1s`,
  });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 300);
  await assert.rejects(ssh.exec(target, "sleep 5", { signal: ac.signal }), { code: "CANCELLED" });
  await assert.rejects(ssh.waitReady({ ...target, privateKeyPath: "/nonexistent/key" }, 1_000), { code: "SSH_KEY" });
});

test("waitLogin tries the key, then each password, and says which one logged in; exec feeds stdin", async (t) => {
  const key = await clientKey(t);
  const stranger = await clientKey(t);
  const server = await startServer(t, key.publicKey, 0, "s3cret: pw");
  const ssh = new Ssh2Client();
  const target: SshTarget = { host: "127.0.0.1", port: server.port, user: "root", privateKeyPath: key.privateKeyPath, pinnedHostKey: undefined };
  assert.deepEqual(await ssh.waitLogin({ ...target, passwords: ["s3cret: pw"] }, 10_000), { hostKey: server.hostKey, credential: -1, output: "" });
  const byPassword = { ...target, privateKeyPath: stranger.privateKeyPath, passwords: ["wrong", "s3cret: pw"] };
  assert.deepEqual(await ssh.waitLogin(byPassword, 10_000), { hostKey: server.hostKey, credential: 1, output: "" });
  // A probe instead of `true`: its output comes back with the login.
  assert.deepEqual(await ssh.waitLogin(target, 10_000, { probe: "printf 'ok\\n'" }), { hostKey: server.hostKey, credential: -1, output: "ok\n" });
  assert.deepEqual(await ssh.exec(byPassword, "read -r line; printf '<%s>' \"$line\"", { input: "from stdin\n" }), { code: 0, stdout: "<from stdin>", stderr: "" });
  // No password in any message: a failed login names the method, not the secret.
  await assert.rejects(ssh.waitLogin({ ...byPassword, passwords: ["nope-secret"] }, 2_000), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.match(err.message, /last error: authentication failed/);
    assert.doesNotMatch(err.message, /nope-secret/);
    return true;
  });
});

/** Sockets that connect, refuse or never answer, as `openPort` dials them. */
function fakeDialer(answers: Array<"hang" | "connect" | "refuse">): { dial: (host: string, port: number) => net.Socket; sockets: Array<EventEmitter & { destroyed: boolean }> } {
  const sockets: Array<EventEmitter & { destroyed: boolean }> = [];
  const dial = (): net.Socket => {
    const answer = answers[Math.min(sockets.length, answers.length - 1)];
    const sock = Object.assign(new EventEmitter(), { destroyed: false, destroy() { sock.destroyed = true; } });
    sockets.push(sock);
    if (answer === "connect") setImmediate(() => sock.emit("connect"));
    if (answer === "refuse") setImmediate(() => sock.emit("error", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })));
    return sock as unknown as net.Socket;
  };
  return { dial, sockets };
}

const portTarget: SshTarget = { host: "192.0.2.1", port: 22, user: "root", privateKeyPath: "/nonexistent", pinnedHostKey: undefined };

test("openPort starts a fresh connect while an earlier one hangs, keeps the first that connects and drops the rest", async () => {
  const { dial, sockets } = fakeDialer(["hang", "hang", "connect"]);
  const sock = await openPort(portTarget, 5_000, undefined, dial);
  assert.equal(sockets.length, 3);
  assert.equal(sock as unknown, sockets[2]);
  assert.deepEqual(sockets.map((s) => s.destroyed), [true, true, false]);
});

test("openPort keeps retrying a refused port for its window, then rejects with the last error; silence is ETIMEDOUT", async () => {
  const refused = fakeDialer(["refuse"]);
  await assert.rejects(openPort(portTarget, 700, undefined, refused.dial), /ECONNREFUSED/);
  // A refusal is retried after 50 ms, not at the next 200 ms tick (at most 5 attempts in 700 ms), and one such
  // retry is pending at a time: about 700/50 + 700/200, never a growing number of chains.
  assert.ok(refused.sockets.length >= 8 && refused.sockets.length <= 25, `${refused.sockets.length} attempts`);
  const silent = fakeDialer(["hang"]);
  await assert.rejects(openPort(portTarget, 500, undefined, silent.dial), (err: Error & { code?: string }) => err.code === "ETIMEDOUT" && err.message === "connect ETIMEDOUT 192.0.2.1:22");
  assert.ok(silent.sockets.length >= 2 && silent.sockets.every((s) => s.destroyed));
});

test("openPort stops at once when cancelled, dropping every pending connect", async () => {
  const { dial, sockets } = fakeDialer(["hang"]);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 450);
  await assert.rejects(openPort(portTarget, 60_000, ac.signal, dial), (err: unknown) => err instanceof LagoError && err.code === "CANCELLED");
  assert.ok(sockets.length >= 2 && sockets.every((s) => s.destroyed));
});
