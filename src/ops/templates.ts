/**
 * `lago template list|fetch|prune`: the shared template store. An image is in
 * use while one of its registered users (the store's `.users`, Lago's
 * registry) still needs it: a lago environment whose state records it, an
 * exported layer backed by it, or any other path that still exists (a Lago
 * prefix). Build layers (the store's `layers/`, see drivers/real/layer-store.ts)
 * are used by the VM disks that overlay them, while those exist. Pruning removes
 * only layers and images nobody uses, each under its lock: layers first, so a
 * template only unused layers held goes in the same run.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { UsageError, errorMessage } from "../errors.ts";
import { loadTemplateRepo, resolveTemplate, templateStoreKey } from "../templates/repo.ts";
import { TemplateStoreAdmin, type StoreImage } from "../drivers/real/template-store-admin.ts";
import type { LayerInfo } from "../drivers/types.ts";
import type { OpsContext } from "./context.ts";

export interface TemplateEntry extends StoreImage {
  /** Users that still need it. */
  liveUsers: string[];
  inUse: boolean;
}

export interface RepoTemplate {
  name: string;
  versions: { version: string; key: string; stored: boolean }[];
}

/**
 * Whether `user` (a path registered in `.users`) still needs the image at
 * `image`: a lago environment while its state mentions the image (its path or
 * store key, wherever a resource records it: templates, layers under a disk);
 * an environment directory without a state yet (being applied); any other
 * path while it exists (an exported layer, a Lago prefix).
 */
export function userNeeds(user: string, image: string): boolean {
  if (!path.isAbsolute(user) || !existsSync(user)) return false;
  if (!statSync(user).isDirectory()) return true;
  const stateFile = path.join(user, "state.json");
  if (!existsSync(stateFile)) return true;
  try {
    const text = readFileSync(stateFile, "utf8");
    return text.includes(JSON.stringify(image).slice(1, -1)) || text.includes(path.basename(image));
  } catch {
    return true;
  }
}

/** Which of `users` still need `image`; `going`: users about to be removed, which no longer count. */
function usage(users: string[], image: string, going: ReadonlySet<string> = new Set()): { liveUsers: string[]; inUse: boolean } {
  const liveUsers = users.filter((u) => !going.has(u) && userNeeds(u, image));
  return { liveUsers, inUse: liveUsers.length > 0 };
}

/** `going`: users about to be removed (the layers a dry run would prune). */
function entry(img: StoreImage, going?: ReadonlySet<string>): TemplateEntry {
  return { ...img, ...usage(img.users, img.path, going) };
}

/** A build layer of the store: the template it overlays, its size on the host and who still needs it. */
export interface LayerEntry {
  key: string;
  path: string;
  template: string;
  bytes: number;
  liveUsers: string[];
  inUse: boolean;
}

function layerEntry(l: LayerInfo): LayerEntry {
  return { key: l.key, path: l.path, template: l.template, bytes: l.bytes, ...usage(l.users, l.path) };
}

const unusedBy = (users: string[], image: string): boolean => !users.some((u) => userNeeds(u, image));

export interface RepositoryListing {
  origin: string;
  templates: RepoTemplate[];
  /** Why the repository could not be read (the store is listed all the same). */
  error?: string | undefined;
}

/** The store's images, and what the configured repository offers (when there is one). Read-only. */
export async function listTemplates(ctx: OpsContext): Promise<{ store: string; images: TemplateEntry[]; layers: LayerEntry[]; repository: RepositoryListing | undefined }> {
  const admin = new TemplateStoreAdmin(ctx.env.config.templateStore);
  const images = (await admin.list()).map((i) => entry(i));
  const layers = (await ctx.drivers.layers.list()).map(layerEntry);
  let repository: RepositoryListing | undefined;
  if (ctx.env.config.templateRepoPath) {
    let repo: Awaited<ReturnType<typeof loadTemplateRepo>>;
    try {
      repo = await loadTemplateRepo(ctx.env.config.templateRepoPath, { signal: ctx.signal });
    } catch (err) {
      return { store: admin.storeDir, images, layers, repository: { origin: ctx.env.config.templateRepoPath, templates: [], error: errorMessage(err) } };
    }
    const stored = new Set(images.map((i) => i.key));
    repository = {
      origin: repo.origin,
      templates: [...repo.templates]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([name, t]) => ({
          name,
          versions: [...t.versions.keys()].sort().map((version) => {
            const key = templateStoreKey({ repo: repo.name, name, version });
            return { version, key, stored: stored.has(key) };
          }),
        })),
    };
  }
  return { store: admin.storeDir, images, layers, repository };
}

/** Download `NAME[:VERSION]` from the configured repository into the store (verified; once). Not registered as used. */
export async function fetchTemplate(ctx: OpsContext, spec: string): Promise<{ key: string; path: string }> {
  const repoPath = ctx.env.config.templateRepoPath;
  if (!repoPath) throw new UsageError("lago template fetch needs a template repository", { hint: "pass --template-repo-path PATH|URL (or set template_repo_path in lago.conf)" });
  const [name, version, extra] = spec.split(":");
  if (!name || extra !== undefined) throw new UsageError(`expected NAME or NAME:VERSION, got ${JSON.stringify(spec)}`);
  const ref = resolveTemplate(await loadTemplateRepo(repoPath, { signal: ctx.signal }), name, version);
  const user = `lago template fetch ${process.pid}`;
  const stored = await ctx.drivers.templates.ensure(ref, user, { signal: ctx.signal, progress: (m) => ctx.emit({ type: "vm", vm: templateStoreKey(ref), message: m }) });
  await ctx.drivers.templates.release(ref, user);
  return { key: templateStoreKey(ref), path: stored.path };
}

/**
 * Remove every build layer, then every store image, nobody uses (each re-checked under its lock).
 * With `dryRun`, only say which.
 */
export async function pruneTemplates(
  ctx: OpsContext,
  opts: { dryRun: boolean },
): Promise<{ removed: TemplateEntry[]; kept: TemplateEntry[]; layers: { removed: LayerEntry[]; kept: LayerEntry[] } }> {
  const layers = (await ctx.drivers.layers.list()).map(layerEntry);
  const gone = new Set(opts.dryRun ? layers.filter((l) => !l.inUse).map((l) => l.key) : await ctx.drivers.layers.prune({ signal: ctx.signal }, unusedBy));
  const layersRemoved = layers.filter((l) => gone.has(l.key));
  const layersKept = layers.filter((l) => !gone.has(l.key));
  const admin = new TemplateStoreAdmin(ctx.env.config.templateStore);
  const images = (await admin.list()).map((i) => entry(i, new Set(opts.dryRun ? layersRemoved.map((l) => l.path) : [])));
  const removed: TemplateEntry[] = [];
  const kept: TemplateEntry[] = [];
  for (const img of images) {
    if (img.inUse) {
      kept.push(img);
      continue;
    }
    if (opts.dryRun) {
      removed.push(img);
      continue;
    }
    const gone = await admin.removeIfUnused(img.key, (users) => unusedBy(users, img.path));
    (gone ? removed : kept).push(img);
  }
  return { removed, kept, layers: { removed: layersRemoved, kept: layersKept } };
}
