import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSpec } from "../../src/spec/load.ts";
import { ConfigError, formatDiagnostic } from "../../src/errors.ts";

function problems(text: string): string[] {
  try {
    parseSpec(text, "/t/LagoInitFile", { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.diagnostics.map(formatDiagnostic);
    throw err;
  }
  return [];
}

const base = (disks: string, extra = ""): string => `domains:
  vm01:
${extra}    nics:
      - net: lago
    disks:
      - template_name: t
        name: root
        dev: vda
${disks}nets:
  lago:
    type: nat
`;

test("an ISO image on a virtio device is refused: libvirt has no virtio CD-ROM", () => {
  assert.deepEqual(problems(base("      - name: cd\n        type: file\n        format: iso\n        path: /images/x.iso\n        dev: vdb\n")), [
    "/t/LagoInitFile:13:14: disk `cd` of domain `vm01` is an ISO image (a CD-ROM), which cannot sit on a virtio device like `vdb`: use an `sd*` (SCSI) or `hd*` (IDE) device",
  ]);
  assert.deepEqual(problems(base("      - name: cd\n        type: file\n        format: iso\n        path: /images/x.iso\n        dev: sdb\n")), []);
});

test("cpu_custom keys must be usable as CPU XML names", () => {
  const cpu = "    cpu_custom:\n      '@mode': custom\n      model:\n        '#text': Westmere\n        'bad name': 1\n      'x><evil/>': 2\n";
  assert.deepEqual(problems(base("", cpu)), [
    "/t/LagoInitFile:7:9: `bad name` cannot be a CPU XML element name: use letters, digits, `_`, `-` and `.` (`@name` for an attribute, `#text` for text)",
    "/t/LagoInitFile:8:7: `x><evil/>` cannot be a CPU XML element name: use letters, digits, `_`, `-` and `.` (`@name` for an attribute, `#text` for text)",
  ]);
});
