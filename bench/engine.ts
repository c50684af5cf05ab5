/**
 * Engine overhead: `lago apply` of N generated domains from an empty state on
 * the zero-latency in-memory fake world (libvirt, qemu-img, virt-customize and
 * SSH cost nothing), with the real journal, state, lease, template and key
 * stores on tmpfs. What remains is lago's own cost: compile, plan, scheduling,
 * journaling, checkpoints.
 *
 *   node --import tsx bench/engine.ts [N…]      (default 100 1000)
 *
 * Prints one JSON line per size: { domains, resources, applyMs, planMs, records }.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../src/config/config.ts";
import { FakeWorld } from "../src/drivers/fake/world.ts";
import { FsKeyStore } from "../src/drivers/real/key-store.ts";
import { FsLeaseStore } from "../src/drivers/real/lease-store.ts";
import { FsTemplateStore } from "../src/drivers/real/template-store.ts";
import { makeEnvContext } from "../src/env/context.ts";
import { applyEnv, planEnv, type Session } from "../src/engine/session.ts";
import { parseSpec } from "../src/spec/load.ts";
import { generateInitFile, TEMPLATES } from "./generate.ts";

export interface EngineResult {
  domains: number;
  resources: number;
  applyMs: number;
  /** CPU time (user + system) of the apply: steadier than wall time on a busy machine. */
  applyCpuMs: number;
  /** A no-op plan with refresh right after. */
  planMs: number;
}

/** Apply `count` generated domains on the in-memory world; returns wall times. */
export async function measureEngine(count: number): Promise<EngineResult> {
  const root = mkdtempSync(path.join("/dev/shm", "lago-bench-engine-"));
  try {
    const repo = path.join(root, "repo");
    mkdirSync(repo, { recursive: true });
    const templates: Record<string, unknown> = {};
    for (const name of TEMPLATES) {
      const content = `template ${name}`;
      writeFileSync(path.join(repo, name), content);
      writeFileSync(path.join(repo, `${name}.hash`), createHash("sha1").update(content).digest("hex"));
      templates[name] = { versions: { v1: { source: "local", handle: name, timestamp: 1 } } };
    }
    writeFileSync(path.join(repo, "repo.metadata"), JSON.stringify({ name: "bench", sources: { local: { type: "file", args: { root: repo } } }, templates }));
    const config = loadConfig({}, {
      "init.template_repo_path": path.join(repo, "repo.metadata"),
      "init.template_store": path.join(root, "store"),
      "lago.lease_dir": path.join(root, "leases"),
      "lago.lease_range": "0-255",
      "lago.domain_type": "qemu",
    }, []);
    const env = makeEnvContext(path.join(root, "work", ".lago"), "default", config);
    const world = new FakeWorld(undefined);
    const fake = world.drivers();
    const session: Session = {
      env,
      drivers: { ...fake, templates: new FsTemplateStore(config.templateStore, fake.images), leases: new FsLeaseStore(config.leaseDir, config.leaseRange), keys: new FsKeyStore() },
      emit: () => undefined,
      signal: new AbortController().signal,
      lockTimeoutMs: 0,
      parallelism: 4,
    };
    const file = path.join(root, "work", "LagoInitFile");
    mkdirSync(path.dirname(file), { recursive: true });
    const { text } = generateInitFile(count);
    writeFileSync(file, text);
    const spec = parseSpec(text, file, { env: {} });
    const started = performance.now();
    const cpu = process.cpuUsage();
    const result = await applyEnv(session, { spec, refresh: true, confirm: async () => true });
    const applyMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    const applyCpuMs = (used.user + used.system) / 1000;
    if (!result.outcome?.ok) throw new Error(`the apply of ${count} domains failed: ${result.outcome?.failed.map((f) => f.error.message).join("; ")}`);
    const planStarted = performance.now();
    await planEnv(session, { spec, refresh: true });
    return { domains: count, resources: result.plan.resourceChanges.length, applyMs, applyCpuMs, planMs: performance.now() - planStarted };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  for (const n of sizes.length ? sizes : [100, 1000]) console.log(JSON.stringify(await measureEngine(n)));
}
