/**
 * First-boot builds (resources/first-boot.ts): which steps can run in the guest, the script's
 * exact text, and what it does when busybox runs it in a throwaway root (its own mount and UTS
 * namespaces: `hostname` cannot reach the host), as the test template's first boot runs it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { firstBootBlocker, firstBootScript, MAX_EMBEDDED_BYTES, parseStatus, statusProbe, type FirstBootOption, type HostFile } from "../../src/resources/first-boot.ts";

const op = (option: string, arg: string | null = null, hostPaths: string[] = []): FirstBootOption => ({ option, arg, hostPaths });

test("firstBootBlocker: the steps with an in-guest equivalent pass, appliance settings are ignored, anything else says why", () => {
  const fine = [op("touch", "/a"), op("mkdir", "/b"), op("write", "/c:x"), op("append-line", "/c:y"), op("chmod", "0644:/c"), op("delete", "/d"), op("link", "/c:/e"), op("copy", "/c:/f"), op("move", "/f:/g")];
  const more = [op("hostname", "h"), op("run-command", "true"), op("run", "/s", ["/s"]), op("upload", "/u:/v", ["/u"]), op("ssh-inject", ""), op("ssh-inject", "bob:file:/k", ["/k"]), op("ssh-inject", "bob:string:ssh-ed25519 AAAA")];
  const settings = [op("no-network"), op("network"), op("memsize", "2048"), op("smp", "2"), op("no-logfile"), op("no-selinux-relabel"), op("root-password", "password:x"), op("root-password", "file:/p", ["/p"])];
  assert.equal(firstBootBlocker([...fine, ...more, ...settings]), undefined);
  assert.equal(firstBootBlocker([op("touch", "/a"), op("install", "nginx")]), "`install` runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("selinux-relabel")]), "`selinux-relabel` runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("firstboot-command", "x")]), "`firstboot-command` runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("delete", "/var/log/*.log")]), "`delete` with a glob pattern runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("root-password", "random")]), "`root-password` other than password: or file: runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("ssh-inject", "bob")]), "`ssh-inject USER` reads the invoking user's ~/.ssh: it runs only in virt-customize's appliance");
  assert.equal(firstBootBlocker([op("upload", "/u:/v", ["/u"])], MAX_EMBEDDED_BYTES + 1), `the host files the steps send (${MAX_EMBEDDED_BYTES + 1} bytes) exceed the seed's ${MAX_EMBEDDED_BYTES} bytes`);
});

test("firstBootScript: exactly this text for two steps", () => {
  const script = firstBootScript("0123456789abcdef", [op("no-network"), op("touch", "/root/x"), op("write", "/etc/motd:it's\nhere")], { publicKey: undefined, injectUser: "root", files: new Map() });
  assert.equal(
    script,
    [
      "# lago first-boot build 0123456789abcdef: 2 step(s), once",
      "(",
      "d=/var/lib/lago/build; st=$d/0123456789abcdef.status; log=$d/0123456789abcdef.log",
      '[ -e "$st" ] && exit 0',
      'mkdir -p "$d" && chmod 755 "$d" && : >> "$log" && chmod 600 "$log" || exit 0',
      `fin() { printf '%s\\n' "$*" > "$st.tmp" && chmod 644 "$st.tmp" && mv -f "$st.tmp" "$st"; sync; exit 0; }`,
      "umask 022",
      `echo '== step 1 of 2 (--touch /root/x)' >> "$log"`,
      "( set -e",
      "touch -- '/root/x'",
      ') >> "$log" 2>&1 < /dev/null',
      "r=$?; [ $r -eq 0 ] || fin 'failed: step 1 of 2 (--touch /root/x) exited with' $r",
      `echo '== step 2 of 2 (--write /etc/motd:it'\\''s here)' >> "$log"`,
      "( set -e",
      `printf '%s' 'it'\\''s\nhere' > '/etc/motd'`,
      ') >> "$log" 2>&1 < /dev/null',
      "r=$?; [ $r -eq 0 ] || fin 'failed: step 2 of 2 (--write /etc/motd:it'\\''s here) exited with' $r",
      "fin ok",
      ")",
      "",
    ].join("\n"),
  );
  assert.match(firstBootScript("0123456789abcdef", [op("root-password", "password:hunter2")], { publicKey: undefined, injectUser: "root", files: new Map() }), /step 1 of 1 \(--root-password \(secret\)\)/);
});

test("parseStatus reads what statusProbe prints", () => {
  assert.deepEqual(parseStatus("ok\n"), { state: "ok" });
  assert.deepEqual(parseStatus("missing\n"), { state: "missing" });
  assert.deepEqual(parseStatus("failed: step 2 of 3 (--run-command false) exited with 1\n== step 1\n== step 2\n"), { state: "failed", message: "step 2 of 3 (--run-command false) exited with 1", log: "== step 1\n== step 2" });
});

/** A root with busybox only; `run(script)` runs it there as root, in new mount and UTS namespaces. */
function busyboxRoot(t: { after: (fn: () => void) => void }): { root: string; run: (script: string) => string } {
  const root = mkdtempSync(path.join(os.tmpdir(), "lago-first-boot-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p)) ?? "busybox";
  for (const d of ["bin", "dev", "etc", "root", "tmp", "var/lib", "srv"]) mkdirSync(path.join(root, d), { recursive: true });
  writeFileSync(path.join(root, "dev", "null"), "");
  chmodSync(path.join(root, "tmp"), 0o1777);
  writeFileSync(path.join(root, "bin", "busybox"), readFileSync(busybox), { mode: 0o755 });
  for (const applet of execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter((a) => a && a !== "busybox")) symlinkSync("busybox", path.join(root, "bin", applet));
  writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(path.join(root, "etc", "shadow"), "root:*:19000:0:99999:7:::\n", { mode: 0o600 });
  const asRoot = process.geteuid?.() === 0;
  return {
    root,
    run: (script: string) => {
      writeFileSync(path.join(root, "tmp", "script.sh"), script);
      // The host's /dev/null bound over a placeholder, then chroot: only inside the new namespaces.
      const inside = 'mount --bind /dev/null "$1/dev/null" && exec chroot "$1" /bin/sh /tmp/script.sh';
      const ns = ["--mount", "--uts", "--", "/bin/sh", "-c", inside, "sh", root];
      return execFileSync("unshare", asRoot ? ns : ["-r", ...ns], { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } });
    },
  };
}

test("the script under busybox: every in-guest step does what virt-customize's does; it runs once; status and log", (t) => {
  const { root, run } = busyboxRoot(t);
  const host = mkdtempSync(path.join(os.tmpdir(), "lago-first-boot-host-"));
  t.after(() => rmSync(host, { recursive: true, force: true }));
  const uploaded = path.join(host, "motd.txt");
  writeFileSync(uploaded, "uploaded\n");
  chmodSync(uploaded, 0o751);
  const runScript = path.join(host, "setup.sh");
  writeFileSync(runScript, "#!/bin/sh\necho \"ran as $0\" > /srv/ran\n");
  const hostFile = (p: string): [string, HostFile] => {
    const st = statSync(p);
    return [p, { data: readFileSync(p), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }];
  };
  const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITestKeyOnly lago\n";
  const steps = [
    op("no-network"),
    op("mkdir", "/srv/a/b"),
    op("write", "/srv/a/b/f:hello world"),
    op("append-line", "/srv/a/b/f:second"),
    op("append-line", "/srv/new:line"),
    op("chmod", "0640:/srv/a/b/f"),
    op("chmod", "448:/srv/new"),
    op("link", "/srv/a/b/f:/srv/l1:/srv/l2"),
    op("copy", "/srv/a:/srv/c"),
    op("move", "/srv/new:/srv/moved"),
    op("delete", "/srv/c/b"),
    op("touch", "/srv/t"),
    op("upload", `${uploaded}:/srv`, [uploaded]),
    op("upload", `${uploaded}:/srv/renamed`, [uploaded]),
    op("run", runScript, [runScript]),
    op("run-command", `echo "$((1+2)) it's" > /srv/cmd`),
    op("ssh-inject", ""),
    op("root-password", "password:s3cret"),
    op("hostname", "built-host"),
  ];
  const script = firstBootScript("feedc0ffee123456", steps, { publicKey, injectUser: "root", files: new Map([hostFile(uploaded), hostFile(runScript)]) });
  assert.equal(run(script), "");
  const at = (p: string): string => path.join(root, p);
  assert.equal(readFileSync(at("srv/a/b/f"), "utf8"), "hello world\nsecond\n");
  assert.equal(statSync(at("srv/a/b/f")).mode & 0o7777, 0o640);
  assert.equal(readFileSync(at("srv/moved"), "utf8"), "line\n");
  assert.equal(statSync(at("srv/moved")).mode & 0o7777, 0o700, "448 is decimal, as virt-customize reads it");
  assert.equal(existsSync(at("srv/new")), false);
  assert.equal(readlinkSync(at("srv/l1")), "/srv/a/b/f");
  assert.equal(readlinkSync(at("srv/l2")), "/srv/a/b/f");
  assert.equal(existsSync(at("srv/c")), true);
  assert.equal(existsSync(at("srv/c/b")), false);
  assert.equal(statSync(at("srv/t")).size, 0);
  for (const p of ["srv/motd.txt", "srv/renamed"]) {
    assert.equal(readFileSync(at(p), "utf8"), "uploaded\n");
    assert.equal(statSync(at(p)).mode & 0o7777, 0o751, `${p} keeps the host file's mode`);
  }
  assert.match(readFileSync(at("srv/ran"), "utf8"), /^ran as \/tmp\/tmp\.\w+\n$/);
  assert.equal(readFileSync(at("srv/cmd"), "utf8"), "3 it's\n");
  assert.equal(readFileSync(at("root/.ssh/authorized_keys"), "utf8"), publicKey);
  assert.equal(statSync(at("root/.ssh")).mode & 0o777, 0o700);
  assert.equal(statSync(at("root/.ssh/authorized_keys")).mode & 0o777, 0o600);
  assert.match(readFileSync(at("etc/shadow"), "utf8"), /^root:\$6\$[^:]+:19000:/);
  assert.equal(readFileSync(at("etc/hostname"), "utf8"), "built-host\n");
  assert.equal(readFileSync(at("var/lib/lago/build/feedc0ffee123456.status"), "utf8"), "ok\n");
  assert.equal(statSync(at("var/lib/lago/build/feedc0ffee123456.status")).mode & 0o777, 0o644);
  assert.equal(lstatSync(at("var/lib/lago/build/feedc0ffee123456.log")).mode & 0o777, 0o600);
  assert.deepEqual(parseStatus(run(statusProbe("feedc0ffee123456"))), { state: "ok" });
  // Once: a second boot changes nothing (append-line would append again).
  run(script);
  assert.equal(readFileSync(at("srv/a/b/f"), "utf8"), "hello world\nsecond\n");
  assert.deepEqual(parseStatus(run(statusProbe("0000000000000000"))), { state: "missing" });
});

test("the script under busybox: a failing step stops the build, and the status names it with the end of its output", (t) => {
  const { root, run } = busyboxRoot(t);
  const script = firstBootScript("badc0ffee1234567", [op("touch", "/srv/x1"), op("run-command", "echo boom >&2; exit 3"), op("touch", "/srv/x2")], { publicKey: undefined, injectUser: "root", files: new Map() });
  run(script);
  assert.equal(existsSync(path.join(root, "srv/x1")), true);
  assert.equal(existsSync(path.join(root, "srv/x2")), false);
  const status = parseStatus(run(statusProbe("badc0ffee1234567")));
  assert.deepEqual(status, {
    state: "failed",
    message: "step 2 of 3 (--run-command echo boom >&2; exit 3) exited with 3",
    log: "== step 1 of 3 (--touch /srv/x1)\n== step 2 of 3 (--run-command echo boom >&2; exit 3)\nboom",
  });
  // A step that fails under `set -e` midway (here: writing into a directory that does not exist).
  const second = firstBootScript("badc0ffee7654321", [op("write", "/nope/f:x"), op("touch", "/srv/x3")], { publicKey: undefined, injectUser: "root", files: new Map() });
  run(second);
  assert.equal(existsSync(path.join(root, "srv/x3")), false);
  assert.match(JSON.stringify(parseStatus(run(statusProbe("badc0ffee7654321")))), /"message":"step 1 of 2 \(--write \/nope\/f:x\) exited with [12]"/);
});
