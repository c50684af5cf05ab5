/**
 * The resource model and the reconciler contract every resource kind implements.
 *
 * Attributes are canonical JSON: named collections are objects keyed by name
 * (disks by name, NICs by `<net>#<n>`), never arrays, so that diffs are by key.
 */
import type { Drivers } from "../drivers/types.ts";
import type { EnvContext } from "../env/context.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Attrs = { [key: string]: Json };

export const KINDS = ["keypair", "template", "lease", "network", "disk", "build", "domain"] as const;
export type Kind = (typeof KINDS)[number];

/** A resource as the init file asks for it. */
export interface DesiredResource {
  address: string;
  kind: Kind;
  attrs: Attrs;
  /** Addresses this resource depends on, sorted. */
  dependsOn: string[];
  /** JSON pointer into the init file this resource comes from (for error positions). */
  pointer: string;
}

/** A resource as the state file records it. */
export interface RecordedResource {
  address: string;
  kind: Kind;
  attrs: Attrs;
  /** What reality assigned on create: paths, subnets, host keys, names. */
  outputs: Attrs;
  dependsOn: string[];
  /** `tainted`: exists but cannot be trusted (interrupted or failed create); the next plan replaces it. */
  status: "ready" | "tainted";
  /** Why it is tainted. */
  reason?: string;
  /**
   * An update (or release) that failed or was interrupted part-way, and why:
   * reality may match the attributes while what the update does beyond them
   * (e.g. the order of a VM's devices) did not happen. The next plan updates
   * it again; a successful update clears it.
   */
  unfinished?: string;
}

/** What `read` observed. */
export interface Observed {
  /** The attributes as they are in reality, same shape as the recorded ones. */
  attrs: Attrs;
  outputs: Attrs;
  /** False when the object exists but is incomplete or damaged; it will be replaced. */
  healthy: boolean;
  /** Why it is not healthy. */
  reason?: string;
}

/** One attribute change, by JSON pointer. */
export interface AttrChange {
  path: string;
  before: Json | undefined;
  after: Json | undefined;
  forcesReplacement: boolean;
  /** Why it forces replacement, or why a dependency makes this change. */
  reason?: string;
  requiresRestart?: boolean;
}

/** Everything a reconciler may use. Reconcilers touch the world only through `drivers`. */
export interface ReconcileContext {
  address: string;
  env: EnvContext;
  drivers: Drivers;
  /** Current state of this resource's dependencies, by address (after they were applied). */
  deps: ReadonlyMap<string, { kind: Kind; attrs: Attrs; outputs: Attrs }>;
  /** Report progress of a long step (a download, a boot). */
  progress: (message: string) => void;
  signal: AbortSignal;
  /** `apply --restart`: restart VMs whose changes wait for a restart. */
  restart: boolean;
  /**
   * Run `fn` without holding one of the apply's parallelism slots: for waits
   * that cost this machine nothing (a VM booting, SSH coming up), so that
   * every VM of an environment boots at once whatever `--parallelism` is.
   */
  idle<T>(fn: () => Promise<T>): Promise<T>;
  /** Shared by every reconciler call of one command: batched reads are memoized here. */
  cache: Map<string, Promise<unknown>>;
}

export interface ReplacementRule {
  /** JSON pointer prefix of an attribute: a change at or below it forces replacement. */
  path: string;
  reason: string;
  /** Only the changes this accepts force it (default: every change). Pure. */
  when?: (change: { before: Json | undefined; after: Json | undefined }) => boolean;
}

/** How a dependency is disrupted: replaced (deleted, then created again), or restarted in place. */
export type Disruption = "replace" | "restart";

/**
 * How a resource reacts when one of its dependencies is disrupted:
 * - `replace`: it is replaced too;
 * - `reattach`: it lets go of the dependency before the disruption (its
 *   `withoutDependency` attributes are applied with `update`) and takes it
 *   again after (a VM's NICs on a network that restarts);
 * - `restart`: like `reattach`, and letting go disrupts its own dependents
 *   in turn (a network whose subnet lease is replaced stops, then starts in
 *   its new subnet: the VMs on it let go of it first).
 * `undefined`: unaffected.
 */
export type DependencyReaction = { action: "replace" | "reattach" | "restart"; reason: string } | undefined;

/**
 * A resource kind. Its reconciler is idempotent in every method:
 * - `read` observes; returns `undefined` when the object is absent. It must find
 *   the object from `attrs` and the environment alone (outputs may be missing
 *   after an interrupted create).
 * - `create` on an object that already exists converges it; a failed create
 *   leaves nothing behind where it can (the engine reads back otherwise).
 * - `update` converges an existing object to `desired`; it may be retried.
 * - `delete` of an absent object succeeds; after a failed delete the object is
 *   assumed to exist.
 */
export interface ResourceKind {
  kind: Kind;
  /**
   * About how long one create or update of this kind takes on a warm machine, in milliseconds. It only
   * orders the steps ready at the same time: the one heading the longest chain to the end of the apply
   * goes first (a subnet lease before a disk: a network, then the VMs, wait for it). Nothing waits on it.
   */
  typicalMs: number;
  /** Attribute changes that force a replacement instead of an in-place update. */
  replaceOn: ReplacementRule[];
  /** Attribute paths (prefixes) whose in-place update takes effect only after a VM restart. */
  restartOn?: string[];
  /** Other changes that take effect only after a restart, judged with the whole attributes. Pure. */
  restartWhen?: (change: { path: string; before: Json | undefined; after: Json | undefined }, before: Attrs, after: Attrs) => boolean;
  /**
   * Attribute changes applied in place that interrupt the resources depending
   * on this one (a network restarted for a new MTU): they react as to a
   * disruption (see {@link DependencyReaction}).
   */
  disruptiveOn?: ReplacementRule[];
  /** Reaction to a dependency being disrupted. */
  onDependencyDisrupted?: (dep: { address: string; kind: Kind; how: Disruption }, self: Attrs) => DependencyReaction;
  /**
   * For `reattach`: these attributes without whatever uses `dependency`
   * (pure). The engine applies them with `update` before the dependency is
   * disrupted, and the desired attributes after.
   */
  withoutDependency?: (attrs: Attrs, dependency: string) => Attrs;
  /**
   * A note for the plan about creating `desired` (e.g. a build whose layer is cached). Reads only;
   * `ctx.deps` holds what the state records, `graph` the whole desired graph.
   */
  planNote?: (ctx: ReconcileContext, desired: Attrs, graph: ReadonlyMap<string, DesiredResource>) => Promise<string | undefined>;
  /** Attribute paths holding secrets: shown as `(sensitive)` in plans. */
  sensitive?: string[];
  /** When a create of this kind was interrupted, taint this dependency instead of reading back. */
  taintOnInterruptedCreate?: (self: { attrs: Attrs; dependsOn: string[] }) => string | undefined;
  read(ctx: ReconcileContext, current: { attrs: Attrs; outputs: Attrs | undefined }): Promise<Observed | undefined>;
  create(ctx: ReconcileContext, desired: Attrs): Promise<Attrs>;
  update(ctx: ReconcileContext, desired: Attrs, prior: RecordedResource, changes: AttrChange[]): Promise<Attrs>;
  delete(ctx: ReconcileContext, prior: { attrs: Attrs; outputs: Attrs | undefined }): Promise<void>;
}
