/**
 * The seam between reconcilers and the world. Real implementations live in
 * `drivers/real`, an in-memory (file-backed) fake for engine tests in
 * `drivers/fake`. Every method is idempotent where its doc says so; failures
 * are thrown as LagoErrors (CommandError for external commands).
 */

export interface CallOptions {
  signal?: AbortSignal | undefined;
  progress?: ((message: string) => void) | undefined;
}

export interface DefineOptions extends CallOptions {
  /**
   * The caller creates the domain: most likely no domain has its name yet. A
   * hint only: the result is the same either way, one libvirt round trip sooner
   * when it holds.
   */
  expectNew?: boolean | undefined;
}

// ---------------------------------------------------------------- libvirt

export interface DomainDiskDef {
  dev: string;
  /** `virtio` for vd*, `scsi` for sd* (virtio-scsi), `ide` for hd*. */
  bus: "virtio" | "scsi" | "ide";
  path: string;
  format: "qcow2" | "raw";
  device: "disk" | "cdrom";
}

export interface DomainNicDef {
  mac: string;
  /** libvirt network name. */
  network: string;
  mtu?: number | undefined;
}

export type DomainCpuDef =
  | { mode: "host-passthrough" }
  | { mode: "model"; model: string }
  | { mode: "custom"; custom: Record<string, unknown> };

export interface DomainDef {
  name: string;
  type: "kvm" | "qemu";
  memoryMiB: number;
  vcpu: number;
  cpu: DomainCpuDef;
  disks: DomainDiskDef[];
  nics: DomainNicDef[];
  /** File the serial console is logged to. */
  consoleLog: string;
  /** Opaque JSON lago stores in the domain's `<metadata>`; read back by `listDomains`. */
  metadata: string;
  /** Run qemu as this uid:gid without relabelling files (static DAC label); undefined: libvirt's default user. */
  runAs: { uid: number; gid: number } | undefined;
}

/** What a domain definition says about the things lago manages, as libvirt reports them back. */
export interface DomainView {
  memoryMiB: number;
  vcpu: number;
  /** `host-passthrough`, `host-model`, `custom` (a named model) or `none` (no <cpu>, the hypervisor's default). */
  cpu: { mode: string; model: string | undefined };
  nics: { mac: string; network: string | undefined; mtu: number | undefined }[];
  disks: { dev: string; path: string | undefined; format: string | undefined; bus: string | undefined; device: string }[];
}

export interface DomainInfo {
  name: string;
  /** libvirt domain id while running. */
  id: number | undefined;
  running: boolean;
  /** The metadata lago stored, or undefined for domains lago did not create. */
  metadata: string | undefined;
  /** The persistent definition (what the next boot uses). */
  config: DomainView;
  /** The running instance, when running. */
  live: DomainView | undefined;
}

export interface NetworkHostDef {
  mac: string;
  ip: string;
  /** DHCP host name. */
  name: string;
}

export interface NetworkDef {
  name: string;
  bridge: string;
  mode: "nat" | "isolated";
  /** Gateway address (the host's address on the bridge). */
  gateway: string;
  prefix: 24;
  dhcp: { start: string; end: string } | undefined;
  hosts: NetworkHostDef[];
  /** DNS domain (only on the management net). */
  domain: string | undefined;
  /** DNS host records: ip → hostnames. */
  dnsHosts: DnsHostDef[];
  /** Forward every DNS query to this address (the management net's dnsmasq). */
  dnsForwarder: string | undefined;
  mtu: number | undefined;
  metadata: string;
}

export interface NetworkInfo {
  name: string;
  active: boolean;
  bridge: string;
  metadata: string | undefined;
  /** `nat`, or `isolated` (no <forward>). */
  mode: string;
  /** The host's address on the network, if it has one. */
  gateway: string | undefined;
  mtu: number | undefined;
  domain: string | undefined;
  forwarder: string | undefined;
  dhcp: { start: string; end: string } | undefined;
  hosts: NetworkHostDef[];
  dnsHosts: DnsHostDef[];
}

/** Every domain and network of an environment. */
export interface Inventory {
  domains: DomainInfo[];
  networks: NetworkInfo[];
}

export interface LibvirtDriver {
  /** A hint that queries follow: start connecting now (never fails; an unused connection is dropped). */
  warmUp(): void;
  /** All domains and networks whose name starts with `prefix`, in one batched query. */
  inventory(prefix: string, opts?: CallOptions): Promise<Inventory>;
  listDomains(prefix: string, opts?: CallOptions): Promise<DomainInfo[]>;
  listNetworks(prefix: string, opts?: CallOptions): Promise<NetworkInfo[]>;
  /** Define (or redefine) a persistent domain. Idempotent. */
  defineDomain(def: DomainDef, opts?: DefineOptions): Promise<void>;
  /** Start a defined domain; a running one is left alone. */
  startDomain(name: string, opts?: CallOptions): Promise<void>;
  /** ACPI shutdown, waiting up to `timeoutMs`, then power off. A stopped domain is left alone. */
  stopDomain(name: string, timeoutMs: number, opts?: CallOptions): Promise<void>;
  /** Power off (if running) and undefine. Absent is fine. */
  deleteDomain(name: string, opts?: CallOptions): Promise<void>;
  /** Attach to the persistent config and, when running, live. Idempotent by MAC. */
  attachNic(domain: string, nic: DomainNicDef, opts?: CallOptions): Promise<void>;
  detachNic(domain: string, mac: string, opts?: CallOptions): Promise<void>;
  /** Attach to the persistent config and, when running, live. Idempotent by dev. */
  attachDisk(domain: string, disk: DomainDiskDef, opts?: CallOptions): Promise<void>;
  detachDisk(domain: string, dev: string, opts?: CallOptions): Promise<void>;
  /**
   * Grow the disk image `path` of a running domain live (`virsh blockresize`), so the
   * guest sees it. Returns false (and does nothing) when the domain is not running
   * or does not use that image: then the image can be resized offline.
   */
  resizeDiskLive(domain: string, path: string, size: number, opts?: CallOptions): Promise<boolean>;
  /** Define and start a persistent network (autostart off). Idempotent. */
  createNetwork(def: NetworkDef, opts?: CallOptions): Promise<void>;
  /**
   * Change a network's definition in place: stop it (if active), redefine it
   * under the same name and start it again. Interfaces attached to it lose
   * their link until they are re-attached. Idempotent.
   */
  redefineNetwork(def: NetworkDef, opts?: CallOptions): Promise<void>;
  /** Stop a network, keeping its definition; stopped or absent is fine. */
  stopNetwork(name: string, opts?: CallOptions): Promise<void>;
  /** Start a defined, stopped network. */
  startNetwork(name: string, opts?: CallOptions): Promise<void>;
  deleteNetwork(name: string, opts?: CallOptions): Promise<void>;
  /**
   * Edit a network in place (`virsh net-update`: the running network too when it runs, and its
   * persistent definition), `edits` in order, then store `metadata` in its definition. Idempotent:
   * an edit already in place is skipped; a host with the MAC or the address of the one added, or a
   * DNS entry with its address, is replaced.
   */
  editNetwork(network: string, edits: NetworkEdit[], metadata: string, opts?: CallOptions): Promise<void>;
}

export interface DnsHostDef {
  ip: string;
  names: string[];
}

/** One in-place edit of a network ({@link LibvirtDriver.editNetwork}). */
export type NetworkEdit =
  | { op: "add-host"; host: NetworkHostDef }
  | { op: "remove-host"; host: NetworkHostDef }
  | { op: "add-dns"; host: DnsHostDef }
  | { op: "remove-dns"; host: DnsHostDef }
  | { op: "set-range"; range: { start: string; end: string } };

// ---------------------------------------------------------------- images

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile: string | undefined;
  backingFormat: string | undefined;
}

export interface ImageDriver {
  /** qcow2 overlay on `backing`; optionally grown to `size` bytes. Replaces a partial file. */
  createOverlay(path: string, backing: string, backingFormat: string, size: number | undefined, opts?: CallOptions): Promise<void>;
  /** A thin (sparse) disk. */
  createBlank(path: string, format: "qcow2" | "raw", size: number, opts?: CallOptions): Promise<void>;
  /**
   * Format, virtual size and backing file; undefined when the file does not
   * exist. `expectFormat`: the format lago made it in (lets a raw file be
   * recognized without running qemu-img).
   */
  info(path: string, opts?: CallOptions & { expectFormat?: string | undefined }): Promise<ImageInfo | undefined>;
  /** Grow to `size` bytes. */
  resize(path: string, format: string, size: number, opts?: CallOptions): Promise<void>;
  /** Delete the file; absent is fine. */
  remove(path: string, opts?: CallOptions): Promise<void>;
  /** Rename an image (same file system: atomic). Used to publish an image made under a temporary name. */
  rename(from: string, to: string, opts?: CallOptions): Promise<void>;
}

// ---------------------------------------------------------------- virt-customize

/**
 * A virt-customize argument whose value is secret (a password): the driver writes
 * `content` to a private 0600 temporary file and passes `<prefix><file>` (e.g.
 * `file:/tmp/…/secret`), so the secret never appears in a process's argv or a message.
 */
export interface SecretFileArg {
  secretFile: string;
  prefix: string;
}

export type CustomizeArg = string | SecretFileArg;

export interface CustomizeDriver {
  /** One virt-customize run on `disk` with the given option/argument list (already `--`-prefixed). One libguestfs launch. */
  run(disk: string, args: CustomizeArg[], opts?: CallOptions): Promise<void>;
}

// ---------------------------------------------------------------- cloud-init seed

/** The files of a cloud-init NoCloud seed. */
export interface SeedFiles {
  metaData: string;
  userData: string;
}

export interface SeedImageDriver {
  /**
   * Write a NoCloud seed at `path`: an ISO 9660 filesystem labelled `cidata` holding
   * `meta-data` and `user-data`, mode 0600. Built under a temporary name and renamed:
   * `path` is absent, the old seed or the new one. Idempotent.
   */
  write(path: string, files: SeedFiles, opts?: CallOptions): Promise<void>;
  /** Delete the seed; absent is fine. */
  remove(path: string, opts?: CallOptions): Promise<void>;
}

// ---------------------------------------------------------------- ssh

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  /** The host key pinned on first contact (base64), checked on every later contact. */
  pinnedHostKey: string | undefined;
  /**
   * Passwords tried, in order, after the key (a template's published credentials for a
   * first login). Secret: never logged, never in a message.
   */
  passwords?: string[] | undefined;
}

/** Who answered and how lago got in. */
export interface SshLogin {
  /** The server's host key (base64). */
  hostKey: string;
  /** -1: the key; otherwise the index in `target.passwords` of the password that worked. */
  credential: number;
  /** What the login's probe command printed (its standard output). */
  output?: string | undefined;
}

/** The first line of lago's first-login bootstrap script (resources/bootstrap.ts), which the fake world recognizes. */
export const FIRST_LOGIN_MARK = "# lago bootstrap";

export interface SshDriver {
  /** Wait until SSH answers with the key, or time out. Returns the host key (base64). */
  waitReady(target: SshTarget, timeoutMs: number, opts?: CallOptions): Promise<string>;
  /**
   * Wait until SSH answers and a login succeeds with the key or one of `target.passwords`
   * (tried in that order on each connection), or time out. Says which credential worked.
   * The login runs `probe` (default `true`), which must exit 0; its output is returned.
   */
  waitLogin(target: SshTarget, timeoutMs: number, opts?: CallOptions & { probe?: string }): Promise<SshLogin>;
  /** Run `command` once; `input` is written to its stdin (then closed). */
  exec(target: SshTarget, command: string, opts?: CallOptions & { timeoutMs?: number; input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
}

// ---------------------------------------------------------------- templates and leases

export interface TemplateSourceRef {
  type: "file" | "http";
  /** `root` for file sources, `baseurl` for http ones. */
  location: string;
}

export interface TemplateRef {
  repo: string;
  name: string;
  version: string;
  handle: string;
  source: TemplateSourceRef;
}

export interface StoredTemplate {
  path: string;
  format: string;
  sha1: string;
}

export interface TemplateStoreDriver {
  /** Download (once, under a lock), verify the hash, refuse backing files, register `user`. Idempotent. */
  ensure(ref: TemplateRef, user: string, opts?: CallOptions): Promise<StoredTemplate>;
  /** The stored image, if present and complete. */
  lookup(ref: TemplateRef): Promise<StoredTemplate | undefined>;
  /** Unregister `user`; the image stays in the shared store. */
  release(ref: TemplateRef, user: string): Promise<void>;
  /**
   * The metadata published with an image: `<image>.metadata` (JSON object), as the store keeps it for
   * templates and as Lago's repositories lay it beside an image; undefined when there is none.
   */
  metadataOf(imagePath: string): Promise<Record<string, unknown> | undefined>;
}

// ---------------------------------------------------------------- build layers

/** A build layer in the shared store: the result of a disk's build steps on a template. */
export interface StoredLayer {
  key: string;
  /** The qcow2 layer (read-only); its backing file is `template`. */
  path: string;
  /** The template image it overlays. */
  template: string;
  /** Who registered as a user (VM disk paths), sorted. */
  users: string[];
}

export interface LayerInfo extends StoredLayer {
  /** Bytes allocated on the host. */
  bytes: number;
  /** Unix seconds of the last ensure or release. */
  lastAccess: number | undefined;
  /** What was built (redacted: no secrets). */
  manifest: Record<string, unknown>;
}

export interface LayerRequest {
  /** The content address: sha256 (hex) of everything that makes the layer's bytes. */
  key: string;
  /** The template image to overlay, and its format. */
  template: { path: string; format: string };
  /** The repository template it comes from: the layer registers as its user (`.users`), so it outlives no template. */
  templateRef: TemplateRef | undefined;
  /** Recorded beside the layer (must hold no secrets). */
  manifest: Record<string, unknown>;
  /** Registered in the layer's `.users` (the VM disk that will overlay it). */
  user: string;
  /** Makes the layer's content: called with a fresh qcow2 overlay on the template at a temporary path. */
  build: (tmpPath: string) => Promise<void>;
}

export interface LayerStoreDriver {
  /**
   * Idempotent and safe across processes: under the layer's lock, register `user`, then
   * return the stored layer (`cached: true`) or build it in a temporary file, verify it
   * (qcow2, backed by the template, consistent), make it read-only and rename it into place.
   * A crash or failure leaves no layer under the final name.
   */
  ensure(req: LayerRequest, opts?: CallOptions): Promise<StoredLayer & { cached: boolean }>;
  /** The complete stored layer, if any. Never builds. */
  lookup(key: string): Promise<StoredLayer | undefined>;
  /** Unregister `user`; the layer stays (a cache for re-creates) until pruned. */
  release(key: string, user: string): Promise<void>;
  /** Every layer in the store. */
  list(): Promise<LayerInfo[]>;
  /**
   * Delete the layers nobody uses, each under its lock, and unregister them from their
   * templates; leftovers of interrupted builds go too. A layer is unused when
   * `stillUnused(users, image)` agrees, asked under its lock with the users registered then
   * (default: no user registered). Returns the keys removed.
   */
  prune(opts?: CallOptions, stillUnused?: (users: string[], image: string) => boolean): Promise<string[]>;
  /** sha256 (hex) of host files or directories (recursively: names, modes and contents), by path. */
  hashFiles(paths: string[]): Promise<Record<string, string>>;
  /** A cheap identity of a local image (device, inode, size, mtime), for keys of layers on images named by path. */
  imageIdentity(path: string): Promise<string>;
}

export interface LeaseStoreDriver {
  /** A /24 for `owner` (a uuid file path, Lago's format). Idempotent: returns the owner's lease. */
  acquire(owner: string, requested: string | undefined, opts?: CallOptions): Promise<string>;
  /** The subnet leased by `owner`, if any (e.g. `192.168.201.0`). */
  find(owner: string): Promise<string | undefined>;
  /** The store read once; `find` on it reads only the owner's file (for refreshing many leases). */
  snapshot(): Promise<{ find(owner: string): Promise<string | undefined> }>;
  /** Release the owner's lease and remove its owner file; absent is fine. */
  release(owner: string): Promise<void>;
}

export interface KeyStoreDriver {
  /** Create the key pair in `dir` unless a valid one is there. Returns the public key line. */
  ensure(dir: string): Promise<{ publicKey: string; privateKeyPath: string; publicKeyPath: string }>;
  read(dir: string): Promise<{ publicKey: string; privateKeyPath: string; publicKeyPath: string } | undefined>;
  remove(dir: string): Promise<void>;
}

export interface Drivers {
  libvirt: LibvirtDriver;
  images: ImageDriver;
  customize: CustomizeDriver;
  ssh: SshDriver;
  templates: TemplateStoreDriver;
  leases: LeaseStoreDriver;
  keys: KeyStoreDriver;
  seeds: SeedImageDriver;
  layers: LayerStoreDriver;
}
