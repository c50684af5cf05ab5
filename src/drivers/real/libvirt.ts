/**
 * LibvirtDriver over `virsh` (argument arrays; XML passed as files or as
 * single arguments, never through a shell). Reads are batched: one `virsh`
 * process reads every object of the environment (virsh-session.ts).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CommandError, LagoError } from "../../errors.ts";
import type { CallOptions, DefineOptions, DomainDef, DomainDiskDef, DomainInfo, DomainNicDef, DomainView, Inventory, LibvirtDriver, NetworkDef, NetworkEdit, NetworkInfo } from "../types.ts";
import { warmUpVirsh, withVirshSession, type VirshRound } from "./virsh-session.ts";
import { ParsedXmlCache } from "./parsed-xml-cache.ts";
import { run } from "./exec.ts";
import { imageChain } from "./qcow2-header.ts";
import { lazy } from "../../util/lazy.ts";
import { renderXml } from "../../util/xml.ts";
import { grantQemuAccess, type ManagedRoots, type QemuIdentity } from "./qemu-access.ts";

/** libvirt's XML (and fast-xml-parser), loaded on first use: a plan of an empty state reads and writes none. */
const libvirtXml = lazy(() => import("./libvirt-xml.ts"));

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TIMEOUT = 120_000;
/** virsh's words for a domain or network that does not exist. */
const NOT_FOUND = { domain: /failed to get domain|Domain not found/i, network: /failed to get network|Network not found/i } as const;
/** libvirt refusing a definition whose name another domain or network has, under another UUID. */
const NAME_TAKEN = /already exists with uuid|is already defined with uuid/i;

/** A network's state from `virsh net-info`; undefined when the text is not one (the command failed). */
function netInfo(text: string): { active: boolean; autostart: boolean } | undefined {
  return /^Active:/m.test(text) ? { active: /^Active:\s+yes/m.test(text), autostart: /^Autostart:\s+yes/m.test(text) } : undefined;
}

/** `net-update` flags: the running network too, when it runs. */
const updateFlags = (active: boolean): string[] => (active ? ["--live", "--config"] : ["--config"]);

/** `name`, if it is safe as a virsh argument. Names are validated at load time; this guards the batched virsh command lines too. */
export function checkName(name: string, what = "libvirt object"): string {
  if (!SAFE_NAME.test(name)) throw new LagoError("INTERNAL", `unsafe ${what} name ${JSON.stringify(name)}`);
  return name;
}

/** How to let qemu reach a domain's files: whose identity it runs with, and which directories are lago's. */
export interface QemuAccessOptions {
  identity: () => Promise<QemuIdentity | undefined>;
  roots: ManagedRoots;
}

export class VirshLibvirt implements LibvirtDriver {
  private identity: Promise<QemuIdentity | undefined> | undefined;

  /**
   * `parsedXmlCache`: the file remembering what the environment's libvirt XML parsed to
   * (parsed-xml-cache.ts); without it every inventory parses every document.
   */
  constructor(
    private readonly uri: string,
    private readonly access?: QemuAccessOptions,
    private readonly parsedXmlCache?: string,
  ) {}

  /** A virsh process connects while the command reads its state and init file (virsh-session.ts). */
  warmUp(): void {
    warmUpVirsh(this.uri);
  }

  /** Before qemu opens them: the images (with their backing chains) and directories reachable by qemu's user, or a clear error. */
  private async grantAccess(disks: DomainDiskDef[], dirs: string[], opts?: CallOptions): Promise<void> {
    if (!this.access) return;
    this.identity ??= this.access.identity();
    const id = await this.identity;
    if (!id) return;
    const images: string[] = [];
    for (const d of disks) {
      // The chain from the headers, in this process; qemu-img for what they cannot tell.
      const known = await imageChain(d.path, d.format);
      if (known) {
        images.push(...known);
        continue;
      }
      try {
        const { stdout } = await run("qemu-img", ["info", "--backing-chain", "--output=json", "-U", "-f", d.format, d.path], { timeoutMs: 60_000, signal: opts?.signal });
        const chain = JSON.parse(stdout) as { filename?: unknown }[];
        for (const layer of chain) if (typeof layer.filename === "string") images.push(layer.filename);
      } catch {
        // Unreadable or missing: qemu's own error will say so.
        images.push(d.path);
      }
    }
    await grantQemuAccess(images, dirs, id, this.access.roots);
  }

  private async virsh(args: string[], opts?: CallOptions, timeoutMs = TIMEOUT): Promise<string> {
    const { stdout } = await run("virsh", ["-c", this.uri, "-q", ...args], { timeoutMs, signal: opts?.signal });
    return stdout;
  }

  private async withXmlFile<T>(xml: string, fn: (file: string) => Promise<T>): Promise<T> {
    return this.withXmlFiles((write) => fn(write("object", xml)));
  }

  /** `fn` with `write(name, xml)`, which puts an XML document in a private temporary directory and returns its path; all removed after. */
  private async withXmlFiles<T>(fn: (write: (name: string, xml: string) => string) => Promise<T>): Promise<T> {
    const dir = mkdtempSync(path.join(os.tmpdir(), "lago-xml-"));
    const write = (name: string, xml: string): string => {
      const file = path.join(dir, `${name}.xml`);
      writeFileSync(file, xml, { mode: 0o600 });
      return file;
    };
    try {
      return await fn(write);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * Every domain and network whose name starts with `prefix`, with the
   * persistent and (when running) live definitions, read in one virsh process.
   */
  async inventory(prefix: string, opts?: CallOptions): Promise<Inventory> {
    return withVirshSession(
      this.uri,
      async (round) => {
        const [domainTable = "", networkTable = ""] = await round([["list", "--all"], ["net-list", "--all"]]);
        const domains = domainTable
          .split("\n")
          .map((l) => l.trim().split(/\s+/))
          .filter((r) => r.length >= 3 && r[1]?.startsWith(prefix))
          .map((r) => ({ name: checkName(r[1] ?? ""), id: r[0] === "-" ? undefined : Number(r[0]), state: r.slice(2).join(" ") }));
        const networks = networkTable
          .split("\n")
          .map((l) => l.trim().split(/\s+/))
          .filter((r) => r.length >= 2 && r[0]?.startsWith(prefix))
          .map((r) => ({ name: checkName(r[0] ?? ""), active: r[1] === "active" }));
        const running = (state: string): boolean => state === "running" || state === "paused" || state === "in shutdown";
        const commands: string[][] = [];
        for (const d of domains) {
          commands.push(["dumpxml", "--inactive", d.name]);
          if (running(d.state)) commands.push(["dumpxml", d.name]);
        }
        for (const n of networks) commands.push(["net-dumpxml", n.name]);
        const outputs = await round(commands);
        // The XML parser loads only when some document was not parsed before.
        const cache = new ParsedXmlCache(this.parsedXmlCache);
        const domainXmls = outputs.slice(0, commands.length - networks.length).filter((x) => x.includes("<domain"));
        const networkXmls = outputs.slice(commands.length - networks.length).filter((x) => x.includes("<network"));
        const parsers = cache.knows("domain", domainXmls) && cache.knows("network", networkXmls) ? undefined : await libvirtXml();
        // `parsers` is undefined only when every document is in the cache: `get` then never parses.
        const loaded = (): NonNullable<typeof parsers> => {
          if (!parsers) throw new LagoError("INTERNAL", "a libvirt XML document missed the cache that claimed to know it");
          return parsers;
        };
        const parseDomain = (text: string) => cache.get("domain", text, (t) => loaded().parseDomainXml(t));
        const parseNetwork = (text: string) => cache.get("network", text, (t) => loaded().parseNetworkXml(t));
        let i = 0;
        const next = (): string => outputs[i++] ?? "";
        const domainInfos: DomainInfo[] = [];
        for (const d of domains) {
          const config = next();
          const live = running(d.state) ? next() : undefined;
          // A domain undefined between the two rounds has no XML: it is gone.
          if (!config.includes("<domain")) continue;
          const parsed = parseDomain(config);
          domainInfos.push({
            name: d.name,
            id: d.id,
            running: running(d.state),
            metadata: parsed.metadata,
            config: parsed.view,
            live: live?.includes("<domain") ? parseDomain(live).view : undefined,
          });
        }
        const networkInfos: NetworkInfo[] = [];
        for (const n of networks) {
          const text = next();
          if (text.includes("<network")) networkInfos.push({ ...parseNetwork(text), active: n.active });
        }
        cache.save();
        return { domains: domainInfos, networks: networkInfos };
      },
      { timeoutMs: TIMEOUT, signal: opts?.signal },
    );
  }

  async listDomains(prefix: string, opts?: CallOptions): Promise<DomainInfo[]> {
    return (await this.inventory(prefix, opts)).domains;
  }

  async listNetworks(prefix: string, opts?: CallOptions): Promise<NetworkInfo[]> {
    return (await this.inventory(prefix, opts)).networks;
  }

  /** virsh's output, or undefined when the domain or network the command names does not exist. */
  private async virshUnlessAbsent(object: "domain" | "network", args: string[], opts?: CallOptions): Promise<string | undefined> {
    try {
      return await this.virsh(args, opts);
    } catch (err) {
      if (err instanceof CommandError && NOT_FOUND[object].test(err.stderr)) return undefined;
      throw err;
    }
  }

  private async domainState(name: string, opts?: CallOptions): Promise<string | undefined> {
    return (await this.virshUnlessAbsent("domain", ["domstate", checkName(name)], opts))?.trim();
  }

  private async domainXmlInactive(name: string, opts?: CallOptions): Promise<DomainView | undefined> {
    const xml = await this.virshUnlessAbsent("domain", ["dumpxml", "--inactive", checkName(name)], opts);
    return xml === undefined ? undefined : (await libvirtXml()).parseDomainXml(xml).view;
  }

  /**
   * `fn`'s answer in one virsh session, or false when the session itself failed (virsh could not start
   * or connect, or timed out): the caller then does the work a command at a time, and the error it
   * reports names the command that failed. A cancellation stays one.
   */
  private async inSession(opts: CallOptions | undefined, fn: (round: VirshRound) => Promise<boolean>): Promise<boolean> {
    try {
      return await withVirshSession(this.uri, fn, { timeoutMs: TIMEOUT, signal: opts?.signal });
    } catch (err) {
      if (opts?.signal?.aborted || !(err instanceof CommandError)) throw err;
      return false;
    }
  }

  /** The UUID a redefinition must keep; undefined when no domain has that name. */
  private async domainUuid(name: string, opts?: CallOptions): Promise<string | undefined> {
    return (await this.virshUnlessAbsent("domain", ["domuuid", checkName(name)], opts))?.trim();
  }

  /**
   * `virsh define`/`net-define` of `xml` (no UUID: a new object); false when libvirt
   * refuses because an object of that name exists, under its own UUID.
   */
  private async defineNew(command: "define" | "net-define", xml: string, opts?: CallOptions): Promise<boolean> {
    try {
      await this.withXmlFile(xml, (file) => this.virsh([command, file], opts));
      return true;
    } catch (err) {
      if (err instanceof CommandError && NAME_TAKEN.test(err.stderr)) return false;
      throw err;
    }
  }

  async defineDomain(def: DomainDef, opts?: DefineOptions): Promise<void> {
    mkdirSync(path.dirname(def.consoleLog), { recursive: true, mode: 0o700 });
    // Independent: access for qemu, the XML module and (unless the domain is expected new) the UUID a redefinition must keep.
    const ready = Promise.all([this.grantAccess(def.disks, [path.dirname(def.consoleLog)], opts), libvirtXml()]);
    let [[, { domainXml }], uuid] = await Promise.all([ready, opts?.expectNew ? undefined : this.domainUuid(def.name, opts)]);
    if (opts?.expectNew) {
      // Defined at once; only if libvirt knows the name after all, again with the UUID it has.
      if (await this.defineNew("define", domainXml(def), opts)) return;
      uuid = await this.domainUuid(def.name, opts);
    }
    await this.withXmlFile(domainXml(def, uuid), (file) => this.virsh(["define", file], opts));
  }

  async startDomain(name: string, opts?: CallOptions): Promise<void> {
    try {
      await this.virsh(["start", checkName(name)], opts);
      return;
    } catch (err) {
      // Running already (nothing to do) or paused (resumed): only then is its state worth a second process.
      if (!(err instanceof CommandError && /already (active|running)/i.test(err.stderr))) throw err;
    }
    if ((await this.domainState(name, opts)) === "paused") await this.virsh(["resume", name], opts);
  }

  async stopDomain(name: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    let state = await this.domainState(name, opts);
    if (state === undefined || state === "shut off") return;
    await this.virsh(["shutdown", checkName(name)], opts).catch(() => undefined);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      state = await this.domainState(name, opts);
      if (state === undefined || state === "shut off") return;
      await new Promise((r) => setTimeout(r, 1000));
    }
    await this.virsh(["destroy", name], opts).catch((err: unknown) => {
      if (!(err instanceof CommandError && /not running/i.test(err.stderr))) throw err;
    });
  }

  async deleteDomain(name: string, opts?: CallOptions): Promise<void> {
    const state = await this.domainState(name, opts);
    if (state === undefined) return;
    if (state !== "shut off") {
      await this.virsh(["destroy", checkName(name)], opts).catch((err: unknown) => {
        if (!(err instanceof CommandError && /not running/i.test(err.stderr))) throw err;
      });
    }
    await this.virsh(["undefine", checkName(name), "--managed-save", "--snapshots-metadata"], opts);
  }

  private async liveFlags(name: string, opts?: CallOptions): Promise<string[]> {
    return (await this.domainState(name, opts)) === "running" ? ["--config", "--live"] : ["--config"];
  }

  async attachNic(domain: string, nic: DomainNicDef, opts?: CallOptions): Promise<void> {
    const info = await this.domainXmlInactive(domain, opts);
    if (!info) throw new CommandError(["virsh", "attach-device", domain], 1, `domain ${domain} does not exist`);
    if (info.nics.some((n) => n.mac === nic.mac.toLowerCase())) return;
    const flags = await this.liveFlags(domain, opts);
    const { nicXml } = await libvirtXml();
    await this.withXmlFile(renderXml(nicXml(nic)), (file) => this.virsh(["attach-device", domain, file, ...flags], opts));
  }

  async detachNic(domain: string, mac: string, opts?: CallOptions): Promise<void> {
    const info = await this.domainXmlInactive(domain, opts);
    if (!info?.nics.some((n) => n.mac === mac.toLowerCase())) return;
    const flags = await this.liveFlags(domain, opts);
    await this.virsh(["detach-interface", domain, "network", "--mac", mac, ...flags], opts);
  }

  async attachDisk(domain: string, disk: DomainDiskDef, opts?: CallOptions): Promise<void> {
    const info = await this.domainXmlInactive(domain, opts);
    if (!info) throw new CommandError(["virsh", "attach-device", domain], 1, `domain ${domain} does not exist`);
    if (info.disks.some((d) => d.dev === disk.dev)) return;
    await this.grantAccess([disk], [], opts);
    const flags = await this.liveFlags(domain, opts);
    const { diskXml } = await libvirtXml();
    await this.withXmlFile(renderXml(diskXml(disk)), (file) => this.virsh(["attach-device", domain, file, ...flags], opts));
  }

  async detachDisk(domain: string, dev: string, opts?: CallOptions): Promise<void> {
    const info = await this.domainXmlInactive(domain, opts);
    if (!info?.disks.some((d) => d.dev === dev)) return;
    const flags = await this.liveFlags(domain, opts);
    await this.virsh(["detach-disk", domain, dev, ...flags], opts);
  }

  async resizeDiskLive(domain: string, path: string, size: number, opts?: CallOptions): Promise<boolean> {
    if ((await this.domainState(domain, opts)) !== "running") return false;
    const live = await this.virsh(["domblklist", checkName(domain), "--details"], opts);
    if (!live.split("\n").some((l) => l.trim().split(/\s+/).slice(3).join(" ") === path)) return false;
    await this.virsh(["blockresize", domain, path, `${size}B`], opts);
    return true;
  }

  /** Whether the network exists, is active and starts with the host, from one `net-info`. */
  private async networkPresence(name: string, opts?: CallOptions): Promise<{ active: boolean; autostart: boolean } | undefined> {
    const info = await this.virshUnlessAbsent("network", ["net-info", checkName(name)], opts);
    return info === undefined ? undefined : netInfo(info);
  }

  /**
   * Most likely new: defined and started in one virsh process, started only once its definition reads
   * back as this one (`virsh -q` prints nothing for `net-define` or `net-start`, failed or not). Otherwise
   * (libvirt knows the name: an interrupted apply made it) the network libvirt has is kept as it is,
   * started, and no longer started with the host — each step a virsh process of its own, so that
   * libvirt's own error is reported. A network defined now does not start with the host (libvirt's default).
   */
  async createNetwork(def: NetworkDef, opts?: CallOptions): Promise<void> {
    const name = checkName(def.name);
    const { networkXml, parseNetworkXml } = await libvirtXml();
    const xml = networkXml(def);
    const started = await this.withXmlFile(xml, (file) =>
      this.inSession(opts, async (round) => {
        await round([["net-define", file]]);
        const [defined = ""] = await round([["net-dumpxml", "--inactive", name]]);
        if (!defined.includes("<network") || parseNetworkXml(defined).metadata !== def.metadata) return false;
        await round([["net-start", name]]);
        const [info = ""] = await round([["net-info", name]]);
        const state = netInfo(info);
        return state?.active === true && !state.autostart;
      }),
    );
    if (started) return;
    const existing = (await this.defineNew("net-define", xml, opts)) ? undefined : await this.networkPresence(def.name, opts);
    if (!existing?.active) await this.virsh(["net-start", def.name], opts);
    if (existing?.autostart) await this.virsh(["net-autostart", def.name, "--disable"], opts).catch(() => undefined);
  }

  async redefineNetwork(def: NetworkDef, opts?: CallOptions): Promise<void> {
    const existing = await this.networkPresence(def.name, opts);
    // A new definition of an existing network must carry its UUID (libvirt: "already exists with uuid …").
    let uuid: string | undefined;
    if (existing) {
      uuid = (await this.virsh(["net-uuid", checkName(def.name)], opts)).trim();
      if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(uuid)) throw new CommandError(["virsh", "net-uuid", def.name], 0, "", `unexpected UUID ${JSON.stringify(uuid)}`);
    }
    if (existing?.active) await this.virsh(["net-destroy", checkName(def.name)], opts);
    const { networkXml } = await libvirtXml();
    await this.withXmlFile(networkXml(def, uuid), (file) => this.virsh(["net-define", file], opts));
    await this.virsh(["net-start", checkName(def.name)], opts);
    if (existing?.autostart) await this.virsh(["net-autostart", def.name, "--disable"], opts).catch(() => undefined);
  }

  async stopNetwork(name: string, opts?: CallOptions): Promise<void> {
    const existing = await this.networkPresence(name, opts);
    if (existing?.active) await this.virsh(["net-destroy", checkName(name)], opts);
  }

  async startNetwork(name: string, opts?: CallOptions): Promise<void> {
    const existing = await this.networkPresence(name, opts);
    if (existing && !existing.active) await this.virsh(["net-start", name], opts);
  }

  async deleteNetwork(name: string, opts?: CallOptions): Promise<void> {
    const existing = await this.networkPresence(name, opts);
    if (!existing) return;
    if (existing.active) await this.virsh(["net-destroy", name], opts);
    await this.virsh(["net-undefine", name], opts);
  }

  /**
   * One virsh process in the usual case: it reads the network (`net-info`, `net-dumpxml`), makes the
   * `net-update`s that {@link planNetworkEdits} finds missing (their XML in files: a session takes plain
   * words only), reads the network back, stores the metadata with `net-define` and reads it back.
   * `virsh -q` prints nothing for a `net-update` or a `net-define`, failed or not: what was read back
   * tells. When something did not take (or the network is not there), the edits are made again one
   * by one, each in a virsh process of its own, so that libvirt's own error is what is reported
   * (idempotent: what the session did is found in place).
   */
  async editNetwork(network: string, edits: NetworkEdit[], metadata: string, opts?: CallOptions): Promise<void> {
    const name = checkName(network);
    const x = await libvirtXml();
    const done = await this.withXmlFiles((file) =>
      this.inSession(opts, async (round) => {
        const [info = "", xml = ""] = await round([["net-info", name], ["net-dumpxml", name]]);
        const state = netInfo(info);
        if (!state || !xml.includes("<network")) return false;
        const { updates, after } = x.planNetworkEdits(x.parseNetworkXml(xml), edits);
        await round(updates.map((u, i) => ["net-update", name, u.command, u.section, file(String(i), u.xml), ...updateFlags(state.active)]));
        const [live = "", inactive = ""] = await round([["net-dumpxml", name], ["net-dumpxml", "--inactive", name]]);
        if (!inactive.includes("<network") || !x.sameNetworkEntries(x.parseNetworkXml(inactive), after)) return false;
        if (state.active && (!live.includes("<network") || !x.sameNetworkEntries(x.parseNetworkXml(live), after))) return false;
        // Redefining the persistent config changes only the metadata; the running network is untouched.
        await round([["net-define", file("network", x.withMetadata(inactive, metadata))]]);
        const [defined = ""] = await round([["net-dumpxml", "--inactive", name]]);
        return defined.includes("<network") && x.parseNetworkXml(defined).metadata === metadata;
      }),
    );
    if (done) return;
    for (const edit of edits) await this.editAlone(name, edit, opts);
    const xml = await this.virsh(["net-dumpxml", "--inactive", name], opts);
    await this.withXmlFile(x.withMetadata(xml, metadata), (f) => this.virsh(["net-define", f], opts));
  }

  /** One edit of {@link editNetwork}, in virsh processes of its own (libvirt's errors come through). */
  private async editAlone(name: string, edit: NetworkEdit, opts?: CallOptions): Promise<void> {
    const state = await this.networkPresence(name, opts);
    if (!state) throw new CommandError(["virsh", "net-info", name], 1, `network ${name} does not exist`);
    const x = await libvirtXml();
    const { updates } = x.planNetworkEdits(x.parseNetworkXml(await this.virsh(["net-dumpxml", name], opts)), [edit]);
    for (const u of updates) await this.virsh(["net-update", name, u.command, u.section, u.xml, ...updateFlags(state.active)], opts);
  }
}
