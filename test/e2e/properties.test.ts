/**
 * The edit-sequence properties, sampled on the real stack: a few seeded
 * sequences of edits of a 2-VM environment (memory, vCPUs, NICs, a data net's
 * MTU, DNS records, the DHCP range, a data disk added, grown, reformatted or
 * removed, the file rewritten in another style), applied with the real lago
 * CLI against libvirt in the test bed. After every apply: the plan with
 * refresh is empty; every VM the plan did not replace keeps its domain id and
 * answers SSH; `virsh` and `qemu-img info` show what the init file says.
 * Build steps and template changes are left to the in-process properties
 * (each costs a virt-customize run here).
 *
 * `LAGO_PROPERTY_SEED` picks other sequences (default: fixed).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import { applyEdit, type Edit } from "../property/arbitraries.ts";
import { MiB, byName, emptyDomain, repair, toDocument, type EnvModel } from "../property/model.ts";
import { render } from "../property/render.ts";
import { propertySeed } from "../helpers/fast-check-seed.ts";
import { makeEnv, planActions, requireTestbed, virsh } from "./helpers.ts";

const { repoHttp } = requireTestbed();
const SEQUENCES = 3;
const STEPS = 3;

const initialArb: fc.Arbitrary<EnvModel> = fc
  .record({ data: fc.constantFrom<"nat" | "bridge" | undefined>("nat", "bridge", undefined), onData: fc.boolean(), extra: fc.constantFrom<"qcow2" | "raw" | undefined>("qcow2", "raw", undefined) })
  .map(({ data, onData, extra }) => {
    const m: EnvModel = { nets: {}, domains: {}, nextOctet: 250 };
    m.nets.lago = { type: "nat", management: true, octet: 250, gw: undefined, dhcp: undefined, dnsDomain: undefined, dnsRecords: {}, mtu: undefined };
    if (data) m.nets.data = { type: data, management: false, octet: 249, gw: undefined, dhcp: undefined, dnsDomain: undefined, dnsRecords: {}, mtu: undefined };
    for (const vm of ["vm01", "vm02"]) {
      const base = emptyDomain();
      m.domains[vm] = {
        ...base,
        memory: 256,
        vcpu: 1,
        nics: [{ net: "lago", host: undefined, mtu: undefined }, ...(data && onData && vm === "vm02" ? [{ net: "data", host: undefined, mtu: undefined }] : [])],
        disks: [
          ...base.disks,
          ...(extra && vm === "vm02" ? [{ name: "extra", dev: "vdb", type: "empty" as const, template: undefined, format: extra, size: 64 * MiB, image: undefined, build: [] }] : []),
        ],
      };
    }
    return repair(m);
  });

const vm = fc.nat(1);
/** Edits that keep every VM (no template or build change: those are the in-process tests' job). */
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("memory" as const), vm, value: fc.constantFrom(256, 320) }),
  fc.record({ kind: fc.constant("vcpu" as const), vm, value: fc.constantFrom(1, 2) }),
  fc.record({ kind: fc.constant("add-nic" as const), vm, net: fc.constant(0), host: fc.constant(undefined), at: fc.constant(9) }),
  fc.record({ kind: fc.constant("remove-nic" as const), vm, nic: fc.constant(1) }),
  fc.record({ kind: fc.constant("net-mtu" as const), net: fc.constant(0), value: fc.constantFrom(1400, 1500, undefined) }),
  fc.record({ kind: fc.constant("net-dns" as const), net: fc.constant(1), domain: fc.constant(undefined), records: fc.array(fc.integer({ min: 2, max: 250 }), { maxLength: 2 }) }),
  fc.record({ kind: fc.constant("net-dhcp" as const), net: fc.constant(1), value: fc.constantFrom({ start: 100, end: 254 }, { start: 120, end: 200 }) }),
  fc.record({
    kind: fc.constant("add-disk" as const),
    vm,
    disk: fc.constantFrom<"qcow2" | "raw">("qcow2", "raw").map((format) => ({ name: "extra", dev: "vdb", type: "empty" as const, template: undefined, format, size: 64 * MiB, image: undefined, build: [] })),
    at: fc.constant(1),
  }),
  fc.record({ kind: fc.constant("remove-disk" as const), vm, disk: fc.constant(1) }),
  fc.record({ kind: fc.constant("grow-disk" as const), vm, disk: fc.constant(1), by: fc.constant(64 * MiB) }),
  fc.record({ kind: fc.constant("disk-format" as const), vm, disk: fc.constant(1), value: fc.constantFrom<"qcow2" | "raw">("qcow2", "raw") }),
);

/** `edit`, unless it would touch a VM's root disk or the VMs themselves (then nothing). */
function keepVms(m: EnvModel, edit: Edit): EnvModel {
  const next = applyEdit(m, edit);
  const roots = (x: EnvModel): string => JSON.stringify(Object.keys(x.domains).sort(byName).map((n) => x.domains[n]?.disks[0]));
  return roots(next) === roots(m) ? next : m;
}

const sequenceArb = fc.record({ initial: initialArb, style: fc.nat(), steps: fc.array(fc.record({ edits: fc.array(editArb, { minLength: 1, maxLength: 2 }), style: fc.nat() }), { minLength: STEPS - 1, maxLength: STEPS - 1 }) });

function text(m: EnvModel, style: number): string {
  const doc = toDocument(m);
  for (const d of Object.values(doc.domains) as { disks: Record<string, unknown>[] }[]) for (const disk of d.disks) if (disk.template_name) disk.template_name = "lago-tiny";
  return render(doc, style);
}

const seed = propertySeed();
const sequences = fc.sample(sequenceArb, { seed, numRuns: SEQUENCES });
const env = makeEnv("properties", repoHttp);
after(async () => {
  await env.lago(["destroy", "--auto-approve"]);
});

async function plan(): Promise<{ actions: Record<string, string>; drift: unknown[] }> {
  const r = await env.lago(["plan", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return { actions: planActions(r.stdout), drift: (JSON.parse(r.stdout) as { drift?: unknown[] }).drift ?? [] };
}

async function domId(name: string): Promise<string | undefined> {
  const r = await virsh("domid", name);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** What virsh and qemu-img show is what `m` describes. */
async function checkReal(m: EnvModel, step: string): Promise<void> {
  const state = env.state().resources;
  for (const [vmName, d] of Object.entries(m.domains)) {
    const name = String(state[`domain.${vmName}`]?.outputs.libvirt_name);
    const xml = (await virsh("dumpxml", "--inactive", name)).stdout;
    assert.match(xml, new RegExp(`<memory unit='KiB'>${(d.memory ?? 1024) * 1024}</memory>`), `${step}: ${vmName}'s memory`);
    assert.match(xml, new RegExp(`<vcpu[^>]*>${d.vcpu ?? 2}</vcpu>`), `${step}: ${vmName}'s vCPUs`);
    // NICs: how many on each network, in the persistent and the live definition.
    const want = d.nics.map((n) => String(state[`network.${n.net}`]?.outputs.libvirt_name)).sort();
    for (const flag of ["--inactive", ""]) {
      const list = (await virsh("domiflist", ...(flag ? [flag] : []), name)).stdout
        .split("\n")
        .map((l) => l.trim().split(/\s+/))
        .filter((cols) => cols.length >= 5)
        .map((cols) => cols[2] ?? "")
        .sort();
      assert.deepEqual(list, want, `${step}: ${vmName}'s NICs ${flag || "(live)"}`);
    }
    for (const disk of d.disks) {
      const path = String(state[`disk.${vmName}.${disk.name}`]?.outputs.path);
      const info = JSON.parse(execFileSync("qemu-img", ["info", "-U", "--output=json", path], { encoding: "utf8" })) as { format: string; "virtual-size": number; "backing-filename"?: string };
      if (disk.type === "template") {
        assert.equal(info.format, "qcow2", `${step}: ${vmName}.${disk.name} format`);
        assert.match(info["backing-filename"] ?? "", /lago-tiny/, `${step}: ${vmName}.${disk.name} is an overlay on the template`);
      } else {
        assert.equal(info.format, disk.format ?? "qcow2", `${step}: ${vmName}.${disk.name} format`);
        assert.equal(info["virtual-size"], disk.size, `${step}: ${vmName}.${disk.name} size`);
      }
      assert.match(xml, new RegExp(`<source file='${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}'/>`), `${step}: ${vmName} uses ${path}`);
    }
  }
  for (const [net, n] of Object.entries(m.nets)) {
    const xml = (await virsh("net-dumpxml", String(state[`network.${net}`]?.outputs.libvirt_name))).stdout;
    if (n.mtu) assert.match(xml, new RegExp(`<mtu size='${n.mtu}'/>`), `${step}: ${net}'s MTU`);
    else assert.doesNotMatch(xml, /<mtu /, `${step}: ${net} has no MTU`);
  }
}

test(`${SEQUENCES} sampled edit sequences of ${STEPS} steps on 2 VMs (seed ${seed}): empty plan after each apply, kept VMs keep their domain and answer SSH`, async () => {
  const files: string[] = [];
  for (const [i, seq] of sequences.entries()) {
    let model = seq.initial;
    const models = [model];
    const styles = [seq.style];
    for (const step of seq.steps) {
      for (const e of step.edits) model = keepVms(model, e);
      models.push(model);
      styles.push(step.style);
    }
    for (const [k, m] of models.entries()) {
      const where = `sequence ${i + 1} step ${k + 1}`;
      const t = text(m, styles[k] ?? 0);
      files.push(`--- ${where}\n${t}`);
      env.init(t);
      const context = (): string => `\ninit files so far:\n${files.join("")}`;
      const planned = await plan();
      const ids = new Map<string, string | undefined>();
      for (const vmName of Object.keys(m.domains)) {
        const name = env.state().resources[`domain.${vmName}`]?.outputs.libvirt_name;
        if (typeof name === "string") ids.set(vmName, await domId(name));
      }
      const r = await env.lago(["apply", "--auto-approve"]);
      assert.equal(r.code, 0, `${where}: apply failed\n${r.stdout}\n${r.stderr}${context()}`);
      const again = await plan();
      if (Object.keys(again.actions).length) {
        const human = await env.lago(["plan"]);
        assert.fail(`${where}: the plan after the apply is not empty:\n${human.stdout}${context()}`);
      }
      assert.deepEqual(again.drift, [], `${where}: drift after the apply${context()}`);
      for (const vmName of Object.keys(m.domains)) {
        const action = planned.actions[`domain.${vmName}`] ?? "no-op";
        const before = ids.get(vmName);
        const name = String(env.state().resources[`domain.${vmName}`]?.outputs.libvirt_name);
        if (before !== undefined && (action === "update" || action === "no-op")) assert.equal(await domId(name), before, `${where}: ${vmName} was planned as ${action} but its domain id changed${context()}`);
        const ssh = await env.lago(["ssh", vmName, "hostname"]);
        assert.equal(ssh.stdout.trim(), vmName, `${where}: ${vmName} does not answer SSH: ${ssh.stderr}${context()}`);
      }
      await checkReal(m, where);
    }
  }
});
