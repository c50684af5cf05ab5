import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { LagoError } from "../../src/errors.ts";
import type { TemplateRef } from "../../src/drivers/types.ts";
import { QemuImg } from "../../src/drivers/real/qemu-img.ts";
import { FsTemplateStore } from "../../src/drivers/real/template-store.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const STORE_MODULE = path.join(ROOT, "src/drivers/real/template-store.ts");
const QEMU_MODULE = path.join(ROOT, "src/drivers/real/qemu-img.ts");

type Ctx = { after: (fn: () => Promise<void> | void) => void };

async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "lago-tpl-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function sha1(data: Buffer): string {
  return createHash("sha1").update(data).digest("hex");
}

/** A small real qcow2 image with some data in it, plus Lago's `.hash` and `.metadata` beside it. */
async function makeTemplate(root: string, handle: string, opts: { hash?: string; backing?: string; metadata?: boolean } = {}): Promise<Buffer> {
  const file = path.join(root, handle);
  await mkdir(path.dirname(file), { recursive: true });
  const args = ["create", "-q", "-f", "qcow2"];
  if (opts.backing) args.push("-b", opts.backing, "-F", "qcow2");
  args.push(file, "4M");
  execFileSync("qemu-img", args);
  execFileSync("qemu-img", ["resize", "-q", file, "5M"]);
  const data = await readFile(file);
  await writeFile(`${file}.hash`, `${opts.hash ?? sha1(data)}\n`);
  if (opts.metadata !== false) await writeFile(`${file}.metadata`, JSON.stringify({ distro: "el7", "root-password": "123456" }));
  return data;
}

function fileRef(root: string, name: string, handle: string): TemplateRef {
  return { repo: "local-repo", name, version: "v1", handle, source: { type: "file", location: root } };
}

test("file source: downloads once, verifies, records Lago's side files; the second call is a no-op", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  const data = await makeTemplate(root, "el7/base.qcow2");
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ref = fileRef(root, "el7-base", "el7/base.qcow2");

  assert.equal(await store.lookup(ref), undefined);
  const messages: string[] = [];
  const stored = await store.ensure(ref, "/envs/a", { progress: (m) => messages.push(m) });
  const image = path.join(storeDir, "local-repo:el7-base:v1");
  assert.deepEqual(stored, { path: image, format: "qcow2", sha1: sha1(data) });
  assert.deepEqual(await readFile(image), data);
  assert.equal(await readFile(`${image}.hash`, "utf8"), sha1(data));
  assert.deepEqual(JSON.parse(await readFile(`${image}.metadata`, "utf8")), { distro: "el7", "root-password": "123456" });
  const users = JSON.parse(await readFile(`${image}.users`, "utf8")) as { users: Record<string, string>; last_access: number };
  assert.deepEqual(Object.keys(users.users), ["/envs/a"]);
  assert.equal(typeof users.last_access, "number");
  assert.equal(messages.filter((m) => m.startsWith("downloading local-repo:el7-base:v1 from ")).length, 1);
  assert.deepEqual((await readdir(storeDir)).sort(), [
    "local-repo:el7-base:v1",
    "local-repo:el7-base:v1.hash",
    "local-repo:el7-base:v1.metadata",
    "local-repo:el7-base:v1.size",
    "local-repo:el7-base:v1.users",
  ]);

  const mtime = (await stat(image)).mtimeMs;
  const again: string[] = [];
  assert.deepEqual(await store.ensure(ref, "/envs/b", { progress: (m) => again.push(m) }), stored);
  assert.deepEqual(again, []);
  assert.equal((await stat(image)).mtimeMs, mtime);
  assert.deepEqual(await store.lookup(ref), stored);
  const users2 = JSON.parse(await readFile(`${image}.users`, "utf8")) as { users: Record<string, string> };
  assert.deepEqual(Object.keys(users2.users), ["/envs/a", "/envs/b"]);

  await store.release(ref, "/envs/a");
  await store.release(ref, "/envs/a");
  const users3 = JSON.parse(await readFile(`${image}.users`, "utf8")) as { users: Record<string, string> };
  assert.deepEqual(Object.keys(users3.users), ["/envs/b"]);
  assert.deepEqual(await store.lookup(ref), stored);

  // A truncated image is not complete: ensure fetches it again.
  await writeFile(image, data.subarray(0, 1000));
  assert.equal(await store.lookup(ref), undefined);
  assert.deepEqual(await store.ensure(ref, "/envs/b"), stored);
  assert.deepEqual(await readFile(image), data);
});

test("a wrong hash is refused and leaves nothing in the store", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  const data = await makeTemplate(root, "bad.qcow2", { hash: "0".repeat(40) });
  const store = new FsTemplateStore(storeDir, new QemuImg());
  await assert.rejects(store.ensure(fileRef(root, "bad", "bad.qcow2"), "/envs/a"), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "TEMPLATE_HASH_MISMATCH");
    assert.equal(
      err.message,
      `template local-repo:bad:v1 (${path.join(root, "bad.qcow2")}) does not match its hash: expected sha1 ${"0".repeat(40)}, got ${sha1(data)}`,
    );
    return true;
  });
  assert.deepEqual(await readdir(storeDir), []);

  // A sha256 hash file is accepted too.
  await writeFile(path.join(root, "bad.qcow2.hash"), createHash("sha256").update(data).digest("hex"));
  assert.equal((await store.ensure(fileRef(root, "bad", "bad.qcow2"), "/envs/a")).sha1, sha1(data));
  assert.equal(await readFile(path.join(storeDir, "local-repo:bad:v1.hash"), "utf8"), sha1(data));
});

test("an image whose header names a backing file is refused", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  await makeTemplate(root, "base.qcow2");
  await makeTemplate(root, "evil.qcow2", { backing: path.join(root, "base.qcow2") });
  const store = new FsTemplateStore(storeDir, new QemuImg());
  await assert.rejects(store.ensure(fileRef(root, "evil", "evil.qcow2"), "/envs/a"), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "TEMPLATE_UNSAFE");
    assert.equal(
      err.message,
      `template local-repo:evil:v1: the image names a backing file ${path.join(root, "base.qcow2")}: it could read files of the host; refusing`,
    );
    return true;
  });
  assert.deepEqual(await readdir(storeDir), []);
});

test("a missing hash file, or metadata, and a handle escaping the root", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  await makeTemplate(root, "nometa.qcow2", { metadata: false });
  const store = new FsTemplateStore(storeDir, new QemuImg());
  await store.ensure(fileRef(root, "nometa", "nometa.qcow2"), "/envs/a");
  assert.equal(await readFile(path.join(storeDir, "local-repo:nometa:v1.metadata"), "utf8"), "{}\n");

  await rm(path.join(root, "nometa.qcow2.hash"));
  await assert.rejects(store.ensure(fileRef(root, "nohash", "nometa.qcow2"), "/envs/a"), {
    code: "TEMPLATE_UNVERIFIABLE",
    message: `template local-repo:nohash:v1: ${path.join(root, "nometa.qcow2")}.hash does not exist; refusing an image that cannot be verified`,
  });
  await assert.rejects(store.ensure(fileRef(root, "escape", "../x.qcow2"), "/envs/a"), { code: "TEMPLATE_INVALID" });
  await assert.rejects(store.ensure({ ...fileRef(root, "a/b", "x.qcow2") }, "/envs/a"), { code: "TEMPLATE_INVALID" });
});

test("concurrent ensure calls in one process download once, served in batches without waiting on the lock", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  const data = await makeTemplate(root, "t.qcow2");
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ref = fileRef(root, "t", "t.qcow2");
  const messages: string[] = [];
  const results = await Promise.all(["/e/1", "/e/2", "/e/3"].map((u) => store.ensure(ref, u, { progress: (m) => messages.push(m) })));
  for (const r of results) assert.equal(r.sha1, sha1(data));
  assert.equal(messages.filter((m) => m.startsWith("downloading local-repo:t:v1 from ")).length, 1);
  // The first call runs alone; the two made while it ran are served together afterwards, in this process.
  assert.deepEqual(
    messages.filter((m) => m.startsWith("waiting")),
    [],
  );
  const users = JSON.parse(await readFile(path.join(storeDir, "local-repo:t:v1.users"), "utf8")) as { users: Record<string, string> };
  assert.deepEqual(Object.keys(users.users), ["/e/1", "/e/2", "/e/3"]);
});

test("two processes needing the same template cause one download", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  // A larger image so that the download takes a while and the processes overlap.
  const file = path.join(root, "big.raw");
  await mkdir(root, { recursive: true });
  const data = Buffer.alloc(48 * 1024 * 1024, 7);
  await writeFile(file, data);
  await writeFile(`${file}.hash`, sha1(data));
  const log = path.join(dir, "progress.log");
  const go = path.join(dir, "go");
  // Both start at the same instant once both are loaded (a fixed start time is missed on a busy machine).
  const script = `
    import { appendFileSync, existsSync, writeFileSync } from "node:fs";
    import { FsTemplateStore } from ${JSON.stringify(STORE_MODULE)};
    import { QemuImg } from ${JSON.stringify(QEMU_MODULE)};
    const [storeDir, root, user, log, go] = process.argv.slice(1);
    const store = new FsTemplateStore(storeDir, new QemuImg());
    writeFileSync(go + "." + process.pid, "");
    while (!existsSync(go)) await new Promise((r) => setTimeout(r, 1));
    const ref = { repo: "r", name: "big", version: "v1", handle: "big.raw", source: { type: "file", location: root } };
    const stored = await store.ensure(ref, user, { progress: (m) => appendFileSync(log, user + " " + m + "\\n") });
    process.stdout.write(JSON.stringify(stored));
  `;
  const run = (user: string): Promise<string> =>
    new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script, storeDir, root, user, log, go],
        { cwd: ROOT, timeout: 120_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${user}: ${err.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
  const both = Promise.all([run("/envs/p1"), run("/envs/p2")]);
  while ((await readdir(dir)).filter((n) => n.startsWith("go.")).length < 2) await new Promise((r) => setTimeout(r, 10));
  await writeFile(go, "");
  const [a, b] = await both;
  const expected = { path: path.join(storeDir, "r:big:v1"), format: "raw", sha1: sha1(data) };
  assert.deepEqual(JSON.parse(a ?? ""), expected);
  assert.deepEqual(JSON.parse(b ?? ""), expected);
  const lines = (await readFile(log, "utf8")).trim().split("\n");
  assert.equal(lines.filter((l) => / downloading r:big:v1 from /.test(l)).length, 1, lines.join("\n"));
  assert.equal(lines.filter((l) => / waiting for another process/.test(l)).length, 1, lines.join("\n"));
  const users = JSON.parse(await readFile(path.join(storeDir, "r:big:v1.users"), "utf8")) as { users: Record<string, string> };
  assert.deepEqual(Object.keys(users.users), ["/envs/p1", "/envs/p2"]);
  assert.equal(existsSync(path.join(storeDir, "r:big:v1.tmp")), false);
});

test("a downloader SIGKILLed mid-download: the process waiting for it takes the lock over at once and downloads", { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t);
  const storeDir = path.join(dir, "store");
  const data = Buffer.alloc(4 * 1024 * 1024, 5);
  // The first download stalls half-way (its downloader is killed there); later ones are served whole.
  let imageRequests = 0;
  const server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "/");
    if (url === "/slow.raw.hash") return void res.end(sha1(data));
    if (url !== "/slow.raw") {
      res.writeHead(404);
      return void res.end();
    }
    res.writeHead(200, { "content-length": String(data.length) });
    if (imageRequests++ > 0) return void res.end(data);
    res.write(data.subarray(0, data.length / 2));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const baseurl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const log = path.join(dir, "progress.log");
  // A stale timeout of an hour: only the dead PID can explain a prompt takeover.
  const script = `
    import { appendFileSync } from "node:fs";
    import { FsTemplateStore } from ${JSON.stringify(STORE_MODULE)};
    import { QemuImg } from ${JSON.stringify(QEMU_MODULE)};
    const [storeDir, baseurl, user, log] = process.argv.slice(1);
    const store = new FsTemplateStore(storeDir, new QemuImg(), { lockStaleMs: 3_600_000 });
    const ref = { repo: "web", name: "slow", version: "v1", handle: "slow.raw", source: { type: "http", location: baseurl } };
    const stored = await store.ensure(ref, user, { progress: (m) => appendFileSync(log, user + " " + m + "\\n") });
    process.stdout.write(JSON.stringify(stored));
  `;
  const start = (user: string) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script, storeDir, baseurl, user, log], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    return { child, stderr: () => err, done: new Promise<{ code: number | null; out: string; err: string }>((resolve) => child.on("exit", (code) => resolve({ code, out, err }))) };
  };
  const lines = async (): Promise<string[]> => (existsSync(log) ? (await readFile(log, "utf8")).trim().split("\n") : []);
  const waitFor = async (prefix: string, who: { stderr: () => string }): Promise<void> => {
    const end = Date.now() + 60_000;
    while (!(await lines()).some((l) => l.startsWith(prefix))) {
      if (Date.now() > end) assert.fail(`no "${prefix}" in:\n${(await lines()).join("\n")}\n${who.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const first = start("/envs/first");
  await waitFor("/envs/first downloading web:slow:v1: ", first);
  const second = start("/envs/second");
  await waitFor("/envs/second waiting for another process", second);
  first.child.kill("SIGKILL");
  await first.done;
  const r = await second.done;
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { path: path.join(storeDir, "web:slow:v1"), format: "raw", sha1: sha1(data) });
  assert.ok((await lines()).some((l) => l.startsWith("/envs/second downloading web:slow:v1 from ")));
  const users = JSON.parse(await readFile(path.join(storeDir, "web:slow:v1.users"), "utf8")) as { users: Record<string, string> };
  assert.deepEqual(Object.keys(users.users), ["/envs/second"]);
  assert.deepEqual((await readdir(storeDir)).sort(), ["web:slow:v1", "web:slow:v1.hash", "web:slow:v1.metadata", "web:slow:v1.size", "web:slow:v1.users"]);
});

test("http source: .xz is fetched and decompressed while streaming; a 404 on .xz falls back to the plain file", async (t) => {
  const dir = await tempDir(t);
  const served = path.join(dir, "served");
  const storeDir = path.join(dir, "store");
  const xzData = await makeTemplate(served, "images/xzd.qcow2");
  execFileSync("xz", ["-k", "-T1", path.join(served, "images/xzd.qcow2")]);
  await rm(path.join(served, "images/xzd.qcow2"));
  const plainData = await makeTemplate(served, "images/plain.qcow2", { metadata: false });
  // A bigger one, to see progress in percent.
  const bigFile = path.join(served, "big.raw");
  const bigData = Buffer.alloc(8 * 1024 * 1024, 3);
  await writeFile(bigFile, bigData);
  await writeFile(`${bigFile}.hash`, sha1(bigData));

  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "/");
    requests.push(url);
    const file = path.join(served, url);
    readFile(file).then(
      (body) => {
        res.writeHead(200, { "content-length": String(body.length) });
        if (url === "/big.raw" && body.length > 1024 * 1024) {
          // Trickle the body so that progress is reported.
          const chunks = Array.from({ length: 8 }, (_, i) => body.subarray((i * body.length) / 8, ((i + 1) * body.length) / 8));
          const next = (): void => {
            const c = chunks.shift();
            if (!c) {
              res.end();
              return;
            }
            res.write(c);
            setTimeout(next, 150);
          };
          next();
        } else {
          res.end(body);
        }
      },
      () => {
        res.writeHead(404);
        res.end("not found");
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const baseurl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ref = (name: string, handle: string): TemplateRef => ({ repo: "web", name, version: "v2", handle, source: { type: "http", location: baseurl } });

  const xz = await store.ensure(ref("xzd", "images/xzd.qcow2"), "/envs/a");
  assert.deepEqual(xz, { path: path.join(storeDir, "web:xzd:v2"), format: "qcow2", sha1: sha1(xzData) });
  assert.deepEqual(await readFile(xz.path), xzData);
  assert.ok(requests.includes("/images/xzd.qcow2.xz"), requests.join(" "));
  assert.ok(!requests.includes("/images/xzd.qcow2"), requests.join(" "));
  assert.deepEqual(
    requests.filter((r) => r.endsWith(".hash")),
    ["/images/xzd.qcow2.xz.hash", "/images/xzd.qcow2.hash"],
  );
  assert.deepEqual(JSON.parse(await readFile(`${xz.path}.metadata`, "utf8")), { distro: "el7", "root-password": "123456" });

  requests.length = 0;
  const plain = await store.ensure(ref("plain", "images/plain.qcow2"), "/envs/a");
  assert.deepEqual(await readFile(plain.path), plainData);
  assert.equal(plain.sha1, sha1(plainData));
  assert.deepEqual(
    requests.filter((r) => !/\.(hash|metadata)$/.test(r)),
    ["/images/plain.qcow2.xz", "/images/plain.qcow2"],
  );
  assert.equal(await readFile(`${plain.path}.metadata`, "utf8"), "{}\n");

  const messages: string[] = [];
  await store.ensure(ref("big", "big.raw"), "/envs/a", { progress: (m) => messages.push(m) });
  assert.ok(messages.some((m) => /^downloading web:big:v2: \d+% \(\d+\.\d\/8\.0 MB\)$/.test(m)), messages.join("\n"));

  await assert.rejects(store.ensure(ref("missing", "nope.qcow2"), "/envs/a"), {
    code: "TEMPLATE_UNVERIFIABLE",
    message: `template web:missing:v2: cannot fetch its hash: ${baseurl}nope.qcow2.hash: HTTP 404`,
  });
  await rm(path.join(served, "images/plain.qcow2"));
  await assert.rejects(store.ensure(ref("gone", "images/plain.qcow2"), "/envs/a"), {
    code: "DOWNLOAD",
    message: `template web:gone:v2: cannot download ${baseurl}images/plain.qcow2: HTTP 404`,
  });
  assert.deepEqual(
    (await readdir(storeDir)).filter((n) => n.includes(":gone:") || n.includes(":missing:") || n.endsWith(".tmp")),
    [],
  );
});

test("corrupt xz data is a CommandError from xz, and nothing is stored", async (t) => {
  const dir = await tempDir(t);
  const served = path.join(dir, "served");
  const storeDir = path.join(dir, "store");
  await mkdir(served, { recursive: true });
  const good = Buffer.alloc(1024 * 1024, 1);
  const xzFile = path.join(served, "img.xz");
  await writeFile(path.join(served, "img"), good);
  execFileSync("xz", ["-T1", path.join(served, "img")]);
  const compressed = await readFile(xzFile);
  compressed.fill(0x55, 100, 200);
  await writeFile(xzFile, compressed);
  await writeFile(path.join(served, "img.hash"), sha1(good));
  const server = createServer((req, res) => {
    readFile(path.join(served, req.url ?? "/")).then(
      (body) => res.end(body),
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ref: TemplateRef = { repo: "web", name: "img", version: "1", handle: "img", source: { type: "http", location: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } };
  await assert.rejects(store.ensure(ref, "/envs/a"), (err: unknown) => {
    assert.ok(err instanceof LagoError);
    assert.equal(err.code, "COMMAND_FAILED");
    assert.match(err.message, /^command `xz --decompress --stdout` exited with code 1:\n {2}xz: \(stdin\): (Compressed data is corrupt|File format not recognized)/);
    return true;
  });
  assert.deepEqual(await readdir(storeDir), []);
});

test("a cancelled download leaves nothing behind", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  await mkdir(root, { recursive: true });
  const data = Buffer.alloc(64 * 1024 * 1024, 9);
  await writeFile(path.join(root, "big.raw"), data);
  await writeFile(path.join(root, "big.raw.hash"), sha1(data));
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ac = new AbortController();
  const pending = store.ensure(fileRef(root, "big", "big.raw"), "/envs/a", {
    signal: ac.signal,
    progress: (m) => {
      if (m.startsWith("downloading")) ac.abort();
    },
  });
  await assert.rejects(pending, { code: "CANCELLED" });
  assert.deepEqual(await readdir(storeDir), []);
});

test("an image stored by Lago itself (.hash, no .size) is adopted when it matches its hash", async (t) => {
  const dir = await tempDir(t);
  const root = path.join(dir, "repo");
  const storeDir = path.join(dir, "store");
  const data = await makeTemplate(root, "t.qcow2");
  await mkdir(storeDir, { recursive: true });
  const image = path.join(storeDir, "local-repo:t:v1");
  await writeFile(image, data);
  await writeFile(`${image}.hash`, sha1(data));
  await writeFile(`${image}.users`, JSON.stringify({ users: { "/old/uuid": "abc" }, last_access: 1 }));
  const store = new FsTemplateStore(storeDir, new QemuImg());
  const ref = fileRef(root, "t", "t.qcow2");
  assert.equal(await store.lookup(ref), undefined);
  const messages: string[] = [];
  assert.deepEqual(await store.ensure(ref, "/envs/a", { progress: (m) => messages.push(m) }), { path: image, format: "qcow2", sha1: sha1(data) });
  assert.deepEqual(messages, []);
  assert.equal(await readFile(`${image}.size`, "utf8"), `${data.length}\n`);
  const users = JSON.parse(await readFile(`${image}.users`, "utf8")) as { users: Record<string, string> };
  assert.deepEqual(users.users, { "/envs/a": "", "/old/uuid": "abc" });
});
