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
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config/config.ts";
import { declareHeldLocksDeadForTesting } from "../../src/util/dir-lock.ts";
import { FakeWorld, emptyWorld, type WorldData } from "../../src/drivers/fake/world.ts";
import { FsKeyStore } from "../../src/drivers/real/key-store.ts";
import { FsLeaseStore } from "../../src/drivers/real/lease-store.ts";
import { FsTemplateStore } from "../../src/drivers/real/template-store.ts";
import type { Drivers } from "../../src/drivers/types.ts";
import { envPaths, makeEnvContext, type EnvContext } from "../../src/env/context.ts";
import type { EngineEvent } from "../../src/engine/events.ts";
import { applyEnv, planEnv, type ApplyResult, type Session } from "../../src/engine/session.ts";
import type { Plan } from "../../src/plan/plan.ts";
import { parseSpec } from "../../src/spec/load.ts";
import type { State } from "../../src/state/state.ts";
import { loadState } from "../../src/state/store.ts";

/** Where the property tests keep their files: tmpfs when there is one (fsync is free there). */
export function scratchRoot(): string {
  const base = existsSync("/dev/shm") ? "/dev/shm" : (process.env.TMPDIR ?? "/tmp");
  return mkdtempSync(path.join(base, "lago-inproc-"));
}

/** The test template repository: two templates, v1/v2 of one of them, and `extra` ones (v1 only). */
function makeRepo(dir: string, extra: readonly string[] = []): string {
  mkdirSync(dir, { recursive: true });
  const image = (handle: string, content: string): void => {
    writeFileSync(path.join(dir, handle), content);
    writeFileSync(path.join(dir, `${handle}.hash`), createHash("sha1").update(content).digest("hex"));
    writeFileSync(path.join(dir, `${handle}.metadata`), JSON.stringify({ distro: "fake" }));
  };
  image("tiny-v1.img", "tiny image, version 1");
  image("tiny-v2.img", "tiny image, version 2");
  image("other-v1.img", "another image");
  const metadata = path.join(dir, "repo.metadata");
  writeFileSync(
    metadata,
    JSON.stringify({
      name: "test-repo",
      sources: { local: { type: "file", args: { root: dir } } },
      templates: {
        tiny: { versions: { v1: { source: "local", handle: "tiny-v1.img", timestamp: 1000 }, v2: { source: "local", handle: "tiny-v2.img", timestamp: 2000 } } },
        other: { versions: { v1: { source: "local", handle: "other-v1.img", timestamp: 1000 } } },
        ...Object.fromEntries(extra.map((name) => [name, { versions: { v1: { source: "local", handle: `${name}-v1.img`, timestamp: 1000 } } }])),
      },
    }),
  );
  for (const name of extra) image(`${name}-v1.img`, `template ${name}`);
  return metadata;
}

export interface StepOptions {
  /** Crash at this driver call of the step (1-based, counted from the step's start). */
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
  /** Driver calls it made. */
  calls: number;
  events: EngineEvent[];
}

export class InProcessEnv {
  readonly root: string;
  readonly work: string;
  readonly env: EnvContext;
  readonly initFile: string;
  world: WorldData = emptyWorld();

  constructor(root = scratchRoot(), options: { templates?: readonly string[]; leaseRange?: string } = {}) {
    this.root = root;
    this.work = path.join(root, "work");
    mkdirSync(this.work, { recursive: true });
    const repo = makeRepo(path.join(root, "repo"), options.templates);
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

  private session(opts: StepOptions, events: EngineEvent[], onCrash: () => void): { session: Session; world: FakeWorld; alive: () => boolean } {
    let alive = true;
    const world = new FakeWorld(undefined, {
      data: this.world,
      faults: opts.faults ?? [],
      crash: opts.crash ? { ...opts.crash, onCrash: () => {
        alive = false;
        onCrash();
      } } : undefined,
    });
    const fake = world.drivers();
    const config = this.env.config;
    const drivers: Drivers = {
      ...fake,
      templates: new FsTemplateStore(config.templateStore, fake.images),
      leases: new FsLeaseStore(config.leaseDir, config.leaseRange),
      keys: new FsKeyStore(),
    };
    const session: Session = {
      env: this.env,
      drivers,
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
      lockTimeoutMs: 0,
      parallelism: opts.parallelism ?? 4,
      alive: () => alive,
    };
    return { session, world, alive: () => alive };
  }

  /** Run one command; a crash abandons it mid-way (its promises never settle) and frees its lock. */
  private async step<T>(opts: StepOptions, fn: (s: Session) => Promise<T>): Promise<StepResult<T>> {
    const events: EngineEvent[] = [];
    let crashed!: () => void;
    const crash = new Promise<"crashed">((resolve) => {
      crashed = () => resolve("crashed");
    });
    const { session, world } = this.session(opts, events, () => crashed());
    const run = fn(session).then(
      (result) => ({ result, error: undefined }),
      (error: unknown) => ({ result: undefined, error }),
    );
    const outcome = await Promise.race([run, crash]);
    if (outcome === "crashed") {
      // The process "died": its locks die with it (the environment's, the lease store's, the template
      // store's). A real process stops at once; here its file-system calls already under way settle
      // first (then it waits forever on the dead world, and its state writes are dropped).
      await new Promise((r) => setTimeout(r, 25));
      for (const where of [this.env.dir, this.env.config.leaseDir, this.env.config.templateStore]) declareHeldLocksDeadForTesting(where);
      return { result: undefined, error: undefined, crashed: true, calls: world.calls, events };
    }
    return { ...outcome, crashed: false, calls: world.calls, events };
  }

  /** `lago plan` of `text` (with refresh). */
  plan(text: string, opts: StepOptions = {}): Promise<StepResult<Plan>> {
    writeFileSync(this.initFile, text);
    return this.step(opts, async (s) => (await planEnv(s, { spec: parseSpec(text, this.initFile, { env: {} }), refresh: true, restart: opts.restart })).plan);
  }

  /** `lago apply --auto-approve` of `text`. */
  apply(text: string, opts: StepOptions = {}): Promise<StepResult<ApplyResult>> {
    writeFileSync(this.initFile, text);
    return this.step(opts, (s) => applyEnv(s, { spec: parseSpec(text, this.initFile, { env: {} }), refresh: true, restart: opts.restart, confirm: async () => true }));
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
