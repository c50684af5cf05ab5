/**
 * lago's engine run inside the test process, against the in-memory fake
 * world, with its files on tmpfs: thousands of plan/apply steps in seconds,
 * for the property tests. The lease, template and key stores are the real
 * ones (on tmpfs).
 *
 * A crash can be injected at any driver call (before or after it is
 * performed, so also between two calls of one reconciler): from then on the
 * world answers nothing and no file is written, exactly as if the process had
 * been SIGKILLed; the harness then releases the dead session's lock, as the
 * operating system would.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config/config.ts";
import { declareHeldLocksDeadForTesting } from "../../src/util/dir-lock.ts";
import { LagoError } from "../../src/errors.ts";
import { FakeWorld, emptyWorld, type WorldData } from "../../src/drivers/fake/world.ts";
import { FsKeyStore } from "../../src/drivers/real/key-store.ts";
import { FsLeaseStore } from "../../src/drivers/real/lease-store.ts";
import { FsTemplateStore } from "../../src/drivers/real/template-store.ts";
import { FsLayerStore } from "../../src/drivers/real/layer-store.ts";
import type { CallOptions, Drivers, LayerRequest, LayerStoreDriver } from "../../src/drivers/types.ts";
import { envPaths, makeEnvContext, type EnvContext } from "../../src/env/context.ts";
import type { EngineEvent } from "../../src/engine/events.ts";
import { applyEnv, planEnv, type ApplyResult, type Session } from "../../src/engine/session.ts";
import type { Plan } from "../../src/plan/plan.ts";
import { parseSpec } from "../../src/spec/load.ts";
import type { EnvSpec } from "../../src/spec/types.ts";
import type { State } from "../../src/state/state.ts";
import { loadState } from "../../src/state/store.ts";
import { makeTestRepo } from "./sandbox.ts";

/** Where the property tests keep their files: tmpfs when there is one (fsync is free there). */
export function scratchRoot(): string {
  const base = existsSync("/dev/shm") ? "/dev/shm" : (process.env.TMPDIR ?? "/tmp");
  return mkdtempSync(path.join(base, "lago-inproc-"));
}

export interface StepOptions {
  /** Crash at this driver call of the step (1-based, counted from the step's start, stores included). */
  crash?: { at: number; when: "before" | "after" } | undefined;
  /** Fail driver calls: `fail:<method>[@<substring>]`, as LAGO_FAKE_FAULTS. */
  faults?: string[] | undefined;
  restart?: boolean | undefined;
  parallelism?: number | undefined;
}

export interface StepResult<T> {
  /** The step's result, when it ran to the end. */
  result: T | undefined;
  /** The LagoError (or bug) it ended with, if any. */
  error: unknown;
  /** It was killed by an injected crash. */
  crashed: boolean;
  /** It stopped making progress (no driver call, no event) and was abandoned: a hang or a deadlock. */
  hung: boolean;
  /** Driver calls it made (the fake world's and the stores'). */
  calls: number;
  /** `driver.method` of every call, in order (for failure reports). */
  trace: string[];
  events: EngineEvent[];
}

/** One step's driver calls: counted, crashed at a chosen one, their in-flight promises tracked. */
interface Guard {
  /** `fail:<driver>.<method>` faults (the stores: `fail:leases.acquire`); the fake world handles the others. */
  fail: string[];
  count: number;
  dead: boolean;
  crash: { at: number; when: "before" | "after" } | undefined;
  onCrash: () => void;
  trace: string[];
  inflight: Set<Promise<unknown>>;
  /** Layer builds under way: a layer store call waiting on its build's own driver calls, which a crash never answers. */
  building: number;
}

const never = (): Promise<never> => new Promise<never>(() => undefined);

/** Calls one at a time: a store's own lock would otherwise make concurrent callers of one process sleep and retry. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * `inner` with every method call counted as a driver call: a crash before or
 * after it kills the step (from then on nothing answers), as a SIGKILL would.
 */
function guard<T extends object>(name: string, inner: T, g: Guard, mutex?: Mutex): T {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function" || typeof prop !== "string") return value;
      // A hint (start connecting) changes nothing a crash could lose: not a driver call.
      if (prop === "warmUp") return (value as () => void).bind(target);
      return (...args: unknown[]): Promise<unknown> => {
        if (g.dead) return never();
        const n = ++g.count;
        g.trace.push(`${name}.${prop}`);
        const die = (): Promise<never> => {
          g.dead = true;
          g.onCrash();
          return never();
        };
        if (g.crash?.at === n && g.crash.when === "before") return die();
        if (g.fail.includes(`${name}.${prop}`)) return Promise.reject(new LagoError("INJECTED", `injected failure in ${name}.${prop}`));
        const call = (): Promise<unknown> => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        const run = mutex ? mutex.run(call) : call();
        g.inflight.add(run);
        const settled = (): void => {
          g.inflight.delete(run);
        };
        run.then(settled, settled);
        return run.then(
          (result) => (g.dead ? never() : g.crash?.at === n && g.crash.when === "after" ? die() : result),
          (err: unknown) => (g.dead ? never() : Promise.reject(err)),
        );
      };
    },
  });
}

/**
 * The layer store with its builds counted: a build runs the reconciler's (guarded) driver calls,
 * so once the step crashed, a store call waiting on its build never settles and is not waited for.
 */
function buildTracking(inner: LayerStoreDriver, g: Guard): LayerStoreDriver {
  return Object.assign(Object.create(inner) as LayerStoreDriver, {
    ensure: (req: LayerRequest, opts?: CallOptions) =>
      inner.ensure(
        {
          ...req,
          build: async (tmp: string) => {
            g.building += 1;
            try {
              await req.build(tmp);
            } finally {
              g.building -= 1;
            }
          },
        },
        opts,
      ),
  });
}

export class InProcessEnv {
  readonly root: string;
  readonly work: string;
  readonly env: EnvContext;
  readonly initFile: string;
  world: WorldData = emptyWorld();
  private readonly specs = new Map<string, EnvSpec>();
  /** A command without a driver call or an event for this long hangs. */
  hangMs = 10_000;

  /** `cloudInit`: templates whose metadata declares a cloud-init bootstrap (`other`: its handle is `other-v1.img`). */
  constructor(root = scratchRoot(), options: { templates?: readonly string[]; leaseRange?: string; cloudInit?: readonly string[] } = {}) {
    this.root = root;
    this.work = path.join(root, "work");
    mkdirSync(this.work, { recursive: true });
    const repo = makeTestRepo(path.join(root, "repo"), options.templates);
    for (const name of options.cloudInit ?? []) writeFileSync(path.join(root, "repo", `${name}-v1.img.metadata`), JSON.stringify({ distro: "fake", bootstrap: "cloud-init" }));
    const config = loadConfig({}, {
      "init.template_repo_path": repo,
      "init.template_store": path.join(root, "store"),
      "lago.lease_dir": path.join(root, "leases"),
      "lago.lease_range": options.leaseRange,
      "lago.domain_type": "qemu",
    }, []);
    this.env = makeEnvContext(path.join(this.work, ".lago"), "default", config);
    this.initFile = path.join(this.work, "LagoInitFile");
  }

  private session(opts: StepOptions, events: EngineEvent[], g: Guard): Session {
    const world = new FakeWorld(undefined, { data: this.world, faults: opts.faults ?? [] });
    const fake = world.drivers();
    const config = this.env.config;
    const images = guard("images", fake.images, g);
    const templates = guard("templates", new FsTemplateStore(config.templateStore, fake.images), g, new Mutex());
    const drivers: Drivers = {
      libvirt: guard("libvirt", fake.libvirt, g),
      images,
      customize: guard("customize", fake.customize, g),
      ssh: guard("ssh", fake.ssh, g),
      // The store reads images itself (read-only): not calls of their own, which could die under its lock.
      templates,
      // The layer store reads and writes layer images itself (not calls of their own); its build's calls are the reconciler's.
      layers: guard("layers", buildTracking(new FsLayerStore(config.templateStore, fake.images, templates), g), g, new Mutex()),
      seeds: guard("seeds", fake.seeds, g),
      leases: guard("leases", new FsLeaseStore(config.leaseDir, config.leaseRange), g, new Mutex()),
      keys: guard("keys", new FsKeyStore(), g),
    };
    return {
      env: this.env,
      drivers,
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
      lockTimeoutMs: 0,
      parallelism: opts.parallelism ?? 4,
      alive: () => !g.dead,
    };
  }

  /** Run one command; a crash abandons it mid-way (its promises never settle) and frees its locks. */
  private async step<T>(opts: StepOptions, fn: (s: Session) => Promise<T>): Promise<StepResult<T>> {
    const events: EngineEvent[] = [];
    let crashed!: () => void;
    const crash = new Promise<"crashed">((resolve) => {
      crashed = () => resolve("crashed");
    });
    const g: Guard = { fail: (opts.faults ?? []).filter((f) => f.startsWith("fail:") && f.includes(".")).map((f) => f.slice(5)), count: 0, dead: false, crash: opts.crash, onCrash: () => crashed(), trace: [], inflight: new Set(), building: 0 };
    const session = this.session(opts, events, g);
    const run = fn(session).then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    // A command that stops making progress would otherwise leave the test waiting on nothing.
    let lastProgress = Date.now();
    let seen = -1;
    let hungTimer: NodeJS.Timeout | undefined;
    const hung = new Promise<"hung">((resolve) => {
      hungTimer = setInterval(() => {
        const progress = g.count + events.length;
        if (progress !== seen) {
          seen = progress;
          lastProgress = Date.now();
        } else if (Date.now() - lastProgress > this.hangMs) resolve("hung");
      }, 100);
    });
    const outcome = await Promise.race([run, crash, hung]);
    clearInterval(hungTimer);
    if (outcome === "hung") {
      g.dead = true;
      this.releaseLocks();
      return { result: undefined, error: new Error(`no progress for ${this.hangMs} ms: the command hangs`), crashed: false, hung: true, calls: g.count, trace: g.trace, events };
    }
    if (outcome === "crashed") {
      // The process "died": its calls already under way settle first (a real process stops at once;
      // here only its file-system work in the stores can still be running), then its locks die with
      // it. Its state writes are dropped.
      const deadline = Date.now() + 5_000;
      while (g.inflight.size > g.building && Date.now() < deadline) await Promise.race([Promise.allSettled([...g.inflight]), new Promise((r) => setTimeout(r, 50))]);
      await new Promise((r) => setImmediate(r));
      this.releaseLocks();
      return { result: undefined, error: undefined, crashed: true, hung: false, calls: g.count, trace: g.trace, events };
    }
    return { ...outcome, crashed: false, hung: false, calls: g.count, trace: g.trace, events };
  }

  /** The locks a dead process held die with it: the environment's, the lease store's, the template store's. */
  private releaseLocks(): void {
    for (const where of [this.env.dir, this.env.config.leaseDir, this.env.config.templateStore]) declareHeldLocksDeadForTesting(where);
  }

  /** The init file parsed (memoized: the property tests plan and apply each text several times). */
  spec(text: string): EnvSpec {
    let spec = this.specs.get(text);
    if (!spec) {
      spec = parseSpec(text, this.initFile, { env: {} });
      this.specs.set(text, spec);
      if (this.specs.size > 32) this.specs.delete(this.specs.keys().next().value as string);
    }
    return spec;
  }

  /** `lago plan` of `text` (with refresh). */
  plan(text: string, opts: StepOptions = {}): Promise<StepResult<Plan>> {
    writeFileSync(this.initFile, text);
    return this.step(opts, async (s) => (await planEnv(s, { spec: this.spec(text), refresh: true, restart: opts.restart })).plan);
  }

  /** `lago apply --auto-approve` of `text`. */
  apply(text: string, opts: StepOptions = {}): Promise<StepResult<ApplyResult>> {
    writeFileSync(this.initFile, text);
    return this.step(opts, (s) => applyEnv(s, { spec: this.spec(text), refresh: true, restart: opts.restart, confirm: async () => true }));
  }

  /** `lago destroy --auto-approve`. */
  destroy(opts: StepOptions = {}): Promise<StepResult<ApplyResult>> {
    return this.step(opts, (s) => applyEnv(s, { spec: undefined, destroy: true, refresh: true, confirm: async () => true }));
  }

  /** The recorded state (checkpoint + journal). */
  state(): State {
    return loadState({ state: envPaths.state(this.env), journal: envPaths.journal(this.env) }).state;
  }

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
