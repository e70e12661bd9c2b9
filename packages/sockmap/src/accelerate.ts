// accelerate(): loads bpf/sockmap/sockmap.o, attaches its sock_ops program
// to a cgroup and its sk_msg program to the sockhash, and answers what the
// maps say (counters, sockets, per-connection status). With `pin`, the
// maps and the cgroup link live on bpffs, so a restarted process adopts
// them (through a @dp/hooks ledger) instead of starting over. With
// `policy`, the sk_msg program is loaded over a datapath's endpoint,
// ipcache and policy maps and re-checks the pair on every message.
import {
  BpfMap,
  type BpfProgram,
  type Collection,
  type CollectionSpec,
  createMap,
  isBpffs,
  loadCollection,
  openPinnedMap,
  possibleCpus,
  readCollectionSpec,
  SyscallError,
  unpin,
} from "@dp/core";
import { createIterLink, readFileText, readIterator, sys } from "@dp/core/internal";
import {
  type AdoptedLink,
  attachCgroup,
  attachSockmap,
  type CgroupLink,
  type Ledger,
  type LedgerEntry,
  openLedger,
  reconcile,
  type SockmapLink,
} from "@dp/hooks";
import { bytes, SockHash } from "@dp/maps";
import { decodeKey, encodeKey, encodePrefix, KEY_SIZE, RESYNC_REC_SIZE, reverseKey, type SocketTuple } from "./_key.ts";
import { SockmapError } from "./errors.ts";

/** Where `bpf/build.sh` puts the object, relative to this file in the repository. */
const DEFAULT_OBJECT: string = new URL("../../../bpf/build/sockmap/sockmap.o", import.meta.url).pathname;

const CGROUP2_SUPER_MAGIC = 0x63677270;
const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;
const E2BIG = 7;
const ENOENT = 2;

/** The maps of sockmap.o, by the file name they are pinned under. */
const MAPS = {
  socks: "dp_sm_socks",
  local4: "dp_sm_local4",
  local6: "dp_sm_local6",
  stats: "dp_sm_stats",
  config: "dp_sm_config",
  reasons: "dp_sm_reasons",
  addrs: "dp_sm_addrs",
} as const;

/** dp_sm_stats slots (DP_SM_STAT_*). */
const STAT = {
  redirected: 0,
  redirectedBytes: 1,
  fallbackDisabled: 2,
  fallbackNoPeer: 3,
  fallbackDraining: 4,
  fallbackBytes: 5,
  inserted: 6,
  notLocal: 7,
  insertFailed: 8,
  resynced: 9,
  resyncBusy: 10,
  resyncFailed: 11,
  fallbackBacklog: 12,
  fallbackPolicy: 13,
} as const;

/** dp_sm_config slots. */
const CONFIG_ENABLED = 0;
const CONFIG_CGROUP_ID = 1;
const CONFIG_BACKLOG = 2;
const CONFIG_POLICY = 3;

/** The programs of sockmap.o (the datapath's other maps its headers declare are not created). */
const PROGRAMS = ["dp_sm_sockops", "dp_sm_redirect", "dp_sm_resync"];

/** The datapath's maps the sk_msg program reads, by {@link SockmapPolicy} field. */
const POLICY_MAPS = { endpoints: "dp_endpoints", ipcache: "dp_ipcache", policy: "dp_policy" } as const;

/** dp_sm_reasons values (DP_SM_REASON_*). */
const REASON = {
  inserted: 1,
  notLocal: 2,
  insertFailed: 3,
  noPeer: 4,
  draining: 5,
  resynced: 6,
  resyncBusy: 7,
  policy: 8,
} as const;

/**
 * The datapath maps for the policy re-check: with them, {@link accelerate}
 * redirects a message only if the datapath's policy allows the
 * connection, looked up per message exactly as the datapath's tc programs
 * decide a new connection (the client endpoint's egress towards the
 * server's identity and the server endpoint's ingress from the client's
 * identity, for TCP and the server's port; identities from `ipcache`).
 * Other messages take the normal path, where the datapath's programs see
 * them, and count as `fallback.policy`; a policy change applies from the
 * next message on.
 *
 * The handles stay the caller's (the acceleration does not close them).
 * A `@dp/datapath` node gives them with `node.sockmapPolicy()`.
 *
 * @example Handing a node's maps over
 * ```ts no-run
 * import { openNode } from "@dp/datapath";
 * import { accelerate } from "@dp/sockmap";
 *
 * const node = await openNode({ stateDir: "/sys/fs/bpf/dp", router: { ipv4: "10.0.0.1" } });
 * using acc = accelerate({ cgroup: "/sys/fs/cgroup/pods", local: ["10.0.1.0/24"], policy: node.sockmapPolicy() });
 * console.log(acc.stats().fallback.policy);
 * ```
 */
export interface SockmapPolicy {
  /** The datapath's `dp_endpoints` (hash: address → endpoint id, enforcement flags, identity). */
  readonly endpoints: BpfMap;
  /** The datapath's `dp_ipcache` (LPM trie: prefix → security identity). */
  readonly ipcache: BpfMap;
  /** The datapath's `dp_policy` (hash of maps: endpoint id → its policy LPM trie). */
  readonly policy: BpfMap;
}

/** Options for {@link accelerate}. */
export interface AccelerateOptions {
  /** The cgroup v2 directory whose TCP sockets (and its descendants') are accelerated. */
  readonly cgroup: string;
  /**
   * The local addresses or prefixes (`"127.0.0.0/8"`, `"10.1.2.3"`,
   * `"::1"`): a connection is accelerated only when both its ends are in
   * one of them. Replaces the list an adopted instance had.
   */
  readonly local: readonly string[];
  /**
   * A bpffs directory that makes the acceleration restart-safe: the maps
   * and the sock_ops link are pinned there (the link through a `@dp/hooks`
   * ledger in `<pin>/ledger`), and a later `accelerate()` with the same
   * directory adopts them. Without it everything ends with the process.
   *
   * @default not pinned
   */
  readonly pin?: string;
  /**
   * How many sockets the sockhash holds (two per connection). Further
   * connections take the normal path and are counted in `insertFailed`.
   * Must stay the same across restarts of a pinned instance.
   *
   * @default 65536
   */
  readonly maxSockets?: number;
  /**
   * How many redirected bytes a socket may hold unread before further
   * messages to it take the normal path (whose TCP flow control then
   * slows the sender down); its receive buffer when that is larger. The
   * redirect has no flow control of its own: this bounds the kernel memory
   * a fast sender can pin in a slow reader's queue.
   *
   * @default 4 MiB
   */
  readonly maxBacklog?: number;
  /**
   * Insert the established connections found in the calling thread's
   * network namespace ({@link Acceleration.resync}) after attaching.
   *
   * @default true
   */
  readonly resync?: boolean;
  /**
   * Re-check every message against a datapath's policy (see
   * {@link SockmapPolicy}). Replaces the setting an adopted instance had:
   * without it, an adopted acceleration redirects without a check.
   *
   * @default no policy re-check
   */
  readonly policy?: SockmapPolicy;
  /**
   * The compiled `sockmap.o`.
   *
   * @default the repository's bpf/build/sockmap/sockmap.o
   */
  readonly object?: string;
}

/** The counters of an {@link Acceleration}, summed over CPUs, since the maps were created. */
export interface SockmapStats {
  /** Messages sent straight to the peer socket. */
  readonly redirected: bigint;
  /** Their bytes. */
  readonly redirectedBytes: bigint;
  /** Messages of accelerated sockets that took the normal path, by reason. */
  readonly fallback: {
    /** Acceleration disabled (after `close()`). */
    readonly disabled: bigint;
    /** The peer socket is not in the map (it is not local, not in the cgroup, or the map was full). */
    readonly noPeer: bigint;
    /** Bytes sent on the normal path were not yet acknowledged or not yet read by the peer: a redirect would overtake them. */
    readonly draining: bigint;
    /** The peer had more redirected bytes unread than its receive buffer: the normal path's flow control takes over. */
    readonly backlog: bigint;
    /** The datapath's policy does not allow the connection (with {@link AccelerateOptions.policy}). */
    readonly policy: bigint;
  };
  /** Bytes of the messages that fell back. */
  readonly fallbackBytes: bigint;
  /** Sockets the sock_ops program inserted when they became established. */
  readonly inserted: bigint;
  /** Established sockets left alone because an end is not local. */
  readonly notLocal: bigint;
  /** Sockets the kernel refused to insert (map full: `E2BIG`). */
  readonly insertFailed: bigint;
  /** Sockets {@link Acceleration.resync} inserted. */
  readonly resynced: bigint;
  /** Sockets resync skipped because they had unread or unacknowledged bytes. */
  readonly resyncBusy: bigint;
  /** Sockets resync could not insert. */
  readonly resyncFailed: bigint;
}

/**
 * Why a connection is or is not accelerated, from one socket's point of
 * view:
 *
 * - `"accelerated"`: both sockets are in the map; messages go straight to the peer;
 * - `"peerNotInMap"`: this socket is in the map but its peer is not (messages fall back);
 * - `"notLocal"`: an end is not in the `local` prefixes;
 * - `"mapFull"`: the sockhash was full when the connection was established;
 * - `"insertFailed"`: the kernel refused the insertion for another reason (`errno`);
 * - `"busy"`: {@link Acceleration.resync} found unread or unacknowledged bytes; a later resync may insert it;
 * - `"notSeen"`: established before the programs were attached (or outside the cgroup); {@link Acceleration.resync} inserts it;
 * - `"closed"`: it was accelerated and its socket closed;
 * - `"disabled"`: the acceleration was closed;
 * - `"policy"`: both sockets are in the map, but the datapath's policy did not allow the connection at its last message (messages take the normal path until it does).
 *
 * @useDeclaredType
 */
export type ConnectionReason =
  | "accelerated"
  | "peerNotInMap"
  | "notLocal"
  | "mapFull"
  | "insertFailed"
  | "busy"
  | "notSeen"
  | "closed"
  | "disabled"
  | "policy";

/** What {@link Acceleration.status} says about a connection. */
export interface ConnectionStatus {
  /** Whether messages of this socket go straight to the peer. */
  readonly accelerated: boolean;
  /** Why. */
  readonly reason: ConnectionReason;
  /** The errno of a refused insertion (`reason` `"mapFull"` or `"insertFailed"`). */
  readonly errno?: number;
}

/** A socket {@link Acceleration.resync} could not insert. */
export interface ResyncFailure {
  /** The socket's tuple. */
  readonly tuple: SocketTuple;
  /** Why the kernel refused: `E2BIG` (7) when the map is full. */
  readonly errno: number;
}

/** What {@link Acceleration.resync} did. */
export interface ResyncResult {
  /** Sockets inserted now. */
  readonly inserted: SocketTuple[];
  /** Sockets that were already in the map. */
  readonly present: number;
  /** Sockets skipped because they had unread or unacknowledged bytes. */
  readonly busy: SocketTuple[];
  /** Sockets the kernel refused, with the errno. */
  readonly failed: ResyncFailure[];
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return v === null ? "null" : typeof v;
}

function checkOptions(options: AccelerateOptions, what: string): void {
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${what}: options must be an object, got ${describe(options)}`);
  if (typeof options.cgroup !== "string" || options.cgroup === "")
    throw new TypeError(`${what}: cgroup must be a cgroup v2 directory, got ${describe(options.cgroup)}`);
  if (!Array.isArray(options.local)) throw new TypeError(`${what}: local must be an array of addresses or prefixes`);
  if (options.pin !== undefined && (typeof options.pin !== "string" || !options.pin.startsWith("/"))) {
    throw new TypeError(`${what}: pin must be an absolute bpffs directory, got ${describe(options.pin)}`);
  }
  const max = options.maxSockets;
  if (max !== undefined && (typeof max !== "number" || !Number.isInteger(max) || max < 2 || max > 1 << 24)) {
    throw new RangeError(`${what}: maxSockets must be an integer in 2-16777216, got ${describe(max)}`);
  }
  const backlog = options.maxBacklog;
  if (
    backlog !== undefined &&
    (typeof backlog !== "number" || !Number.isInteger(backlog) || backlog < 0 || backlog > 2 ** 31)
  ) {
    throw new RangeError(`${what}: maxBacklog must be an integer in 0-2147483648, got ${describe(backlog)}`);
  }
  if (options.resync !== undefined && typeof options.resync !== "boolean")
    throw new TypeError(`${what}: resync must be a boolean`);
  const policy: unknown = options.policy;
  if (policy !== undefined) {
    if (typeof policy !== "object" || policy === null)
      throw new TypeError(`${what}: policy must be an object of datapath maps, got ${describe(policy)}`);
    for (const field of Object.keys(POLICY_MAPS) as (keyof typeof POLICY_MAPS)[]) {
      const m: unknown = (policy as Record<string, unknown>)[field];
      if (!(m instanceof BpfMap) || m.closed)
        throw new TypeError(`${what}: policy.${field} must be an open BpfMap (the datapath's ${POLICY_MAPS[field]})`);
    }
  }
}

/** The cgroup's id (its inode number in cgroupfs), after checking it is a cgroup v2 directory. */
function cgroupId(path: string, what: string): bigint {
  const s = sys();
  const magic = s.statfsType(path);
  if (magic < 0) {
    throw new SockmapError(`${what}: cannot open cgroup ${JSON.stringify(path)}`, "notCgroup2", {
      cause: new SyscallError(`statfs "${path}"`, { syscall: "statfs", op: "statfs", errno: -magic }),
    });
  }
  if (magic !== CGROUP2_SUPER_MAGIC)
    throw new SockmapError(`${what}: ${JSON.stringify(path)} is not a cgroup v2 directory`, "notCgroup2");
  const fd = s.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
  if (fd < 0) throw new SockmapError(`${what}: ${JSON.stringify(path)} is not a cgroup v2 directory`, "notCgroup2");
  try {
    const m = /^ino:\s*(\d+)$/m.exec(readFileText(`/proc/self/fdinfo/${fd}`));
    if (m === null)
      throw new SockmapError(
        `${what}: cannot tell the id of cgroup ${JSON.stringify(path)} (Linux 5.14+ fdinfo)`,
        "unsupported",
      );
    return BigInt(m[1] as string);
  } finally {
    s.close(fd);
  }
}

/** Fails with a SockmapError when the kernel has no sockhash (CONFIG_BPF_STREAM_PARSER). */
function probeSockhash(what: string): void {
  try {
    createMap({ name: "dp_sm_probe", type: "sockhash", keySize: 4, valueSize: 8, maxEntries: 1 }).close();
  } catch (err) {
    if (err instanceof SyscallError) {
      throw new SockmapError(`${what}: the kernel has no socket maps (CONFIG_BPF_STREAM_PARSER)`, "unsupported", {
        cause: err,
      });
    }
    throw err;
  }
}

function sized(spec: CollectionSpec, maxSockets: number, policy: SockmapPolicy | undefined): CollectionSpec {
  const maps = new Map(spec.maps);
  const resize = (name: string, maxEntries: number): void => {
    const m = maps.get(name);
    if (m !== undefined) maps.set(name, { ...m, spec: { ...m.spec, maxEntries } });
  };
  for (const name of [MAPS.socks, MAPS.reasons, MAPS.addrs]) resize(name, maxSockets);
  // The datapath's maps: the given ones' sizes, else one entry (never read).
  for (const [field, name] of Object.entries(POLICY_MAPS) as [keyof typeof POLICY_MAPS, string][])
    resize(name, policy?.[field].maxEntries ?? 1);
  return { ...spec, maps };
}

function u64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, true);
  return out;
}

function clear(map: BpfMap): void {
  for (;;) {
    const key = map.nextKey(undefined);
    if (key === undefined) return;
    map.delete(key);
  }
}

/**
 * An active acceleration, from {@link accelerate}: the sock_ops program on
 * the cgroup, the sk_msg program on the sockhash, and the maps.
 *
 * `close()` stops it: new messages take the normal TCP path at once, the
 * programs are detached, pins are removed; connections keep working.
 * `release()` (restart) lets go of the handles and leaves a pinned
 * acceleration running for the next process.
 */
export class Acceleration {
  /** The cgroup directory. */
  readonly cgroup: string;
  /** The cgroup's id. */
  readonly cgroupId: bigint;
  /** The bpffs directory, when pinned. */
  readonly pin: string | undefined;
  /** Whether this instance adopted pinned maps and a link left by an earlier process. */
  readonly adopted: boolean;
  #coll: Collection;
  #maps: Record<keyof typeof MAPS, BpfMap>;
  #msg: SockmapLink | undefined;
  #ops: CgroupLink | AdoptedLink | undefined;
  #ledger: Ledger | undefined;
  #entry: LedgerEntry | undefined;
  #iter: BpfProgram;
  #listen: BpfMap;
  #opened: readonly BpfMap[];
  #closed = false;

  /**
   * Wraps what {@link accelerate} set up.
   *
   * @internal Made by {@link accelerate}.
   * @param init The loaded parts.
   */
  constructor(init: {
    cgroup: string;
    cgroupId: bigint;
    pin: string | undefined;
    adopted: boolean;
    coll: Collection;
    maps: Record<keyof typeof MAPS, BpfMap>;
    msg: SockmapLink;
    ops: CgroupLink | AdoptedLink;
    ledger: Ledger | undefined;
    entry: LedgerEntry | undefined;
    opened: readonly BpfMap[];
  }) {
    this.cgroup = init.cgroup;
    this.cgroupId = init.cgroupId;
    this.pin = init.pin;
    this.adopted = init.adopted;
    this.#coll = init.coll;
    this.#maps = init.maps;
    this.#msg = init.msg;
    this.#ops = init.ops;
    this.#ledger = init.ledger;
    this.#entry = init.entry;
    this.#iter = init.coll.program("dp_sm_resync");
    this.#listen = init.coll.map("dp_sm_listen");
    this.#opened = init.opened;
  }

  /** Whether `close()` or `release()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #check(): void {
    if (this.#closed)
      throw new SockmapError(`The acceleration of cgroup ${JSON.stringify(this.cgroup)} is closed`, "closed");
  }

  /**
   * Reads the counters.
   *
   * @returns The counters, summed over CPUs.
   * @throws {SockmapError} After `close()`.
   */
  stats(): SockmapStats {
    this.#check();
    const cpus = possibleCpus();
    const slot = (i: number): bigint => {
      const v = this.#maps.stats.get(u32(i));
      if (v === undefined) return 0n;
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      let sum = 0n;
      for (let c = 0; c < cpus; c++) sum += dv.getBigUint64(c * 8, true);
      return sum;
    };
    return {
      redirected: slot(STAT.redirected),
      redirectedBytes: slot(STAT.redirectedBytes),
      fallback: {
        disabled: slot(STAT.fallbackDisabled),
        noPeer: slot(STAT.fallbackNoPeer),
        draining: slot(STAT.fallbackDraining),
        backlog: slot(STAT.fallbackBacklog),
        policy: slot(STAT.fallbackPolicy),
      },
      fallbackBytes: slot(STAT.fallbackBytes),
      inserted: slot(STAT.inserted),
      notLocal: slot(STAT.notLocal),
      insertFailed: slot(STAT.insertFailed),
      resynced: slot(STAT.resynced),
      resyncBusy: slot(STAT.resyncBusy),
      resyncFailed: slot(STAT.resyncFailed),
    };
  }

  /**
   * Lists the sockets in the sockhash (a socket leaves it when it closes).
   *
   * @returns Each socket's tuple, from its own point of view.
   * @throws {SockmapError} After `close()`.
   */
  sockets(): SocketTuple[] {
    this.#check();
    const out: SocketTuple[] = [];
    let key: Uint8Array | undefined;
    while ((key = this.#maps.socks.nextKey(key)) !== undefined) out.push(decodeKey(key));
    return out;
  }

  /**
   * Tells whether a connection is accelerated, and why not.
   *
   * @param tuple The connection from one socket's point of view (`localAddress`/`localPort` are that socket's).
   * @returns The status and its reason.
   * @throws {SockmapError} After `close()`.
   * @throws {TypeError} For a malformed tuple.
   */
  status(tuple: SocketTuple): ConnectionStatus {
    this.#check();
    const key = encodeKey(tuple, "Cannot tell the status of a connection");
    const self = this.#maps.socks.has(key);
    const peer = this.#maps.socks.has(reverseKey(key));
    const enabled = this.#enabled();
    const r = this.#maps.reasons.get(key);
    const dv = r === undefined ? undefined : new DataView(r.buffer, r.byteOffset, 8);
    const reason = dv?.getUint32(0, true);
    if (self && peer) {
      if (!enabled) return { accelerated: false, reason: "disabled" };
      return reason === REASON.policy && this.#config(CONFIG_POLICY)
        ? { accelerated: false, reason: "policy" }
        : { accelerated: true, reason: "accelerated" };
    }
    if (self) return { accelerated: false, reason: "peerNotInMap" };
    if (dv === undefined) return { accelerated: false, reason: "notSeen" };
    const errno = dv.getUint32(4, true);
    switch (reason) {
      case REASON.notLocal:
        return { accelerated: false, reason: "notLocal" };
      case REASON.insertFailed:
        return { accelerated: false, reason: errno === E2BIG ? "mapFull" : "insertFailed", errno };
      case REASON.resyncBusy:
        return { accelerated: false, reason: "busy" };
      default:
        return { accelerated: false, reason: "closed" };
    }
  }

  /**
   * Inserts the established connections of the cgroup that the sock_ops
   * program did not see (established before it was attached, or while no
   * process was), in the calling thread's network namespace, with a BPF
   * TCP socket iterator. Only quiescent sockets are inserted (nothing
   * unread or unacknowledged), so a redirected byte never overtakes one
   * sent on the normal path; busy ones are reported, a later call may take
   * them.
   *
   * @returns What was inserted, skipped and refused.
   * @throws {SockmapError} After `close()`.
   * @throws {SyscallError} When the kernel refuses the iterator.
   * @capability CAP_BPF
   * @capability CAP_NET_ADMIN
   */
  resync(): ResyncResult {
    this.#check();
    // The pass records the listeners it meets, to tell accepted sockets from connected ones.
    clear(this.#listen);
    using link = createIterLink(this.#iter);
    const out = readIterator(link);
    const result: ResyncResult = { inserted: [], present: 0, busy: [], failed: [] };
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let at = 0; at + RESYNC_REC_SIZE <= out.length; at += RESYNC_REC_SIZE) {
      const tuple = decodeKey(out.subarray(at, at + KEY_SIZE));
      const code = dv.getUint32(at + KEY_SIZE, true);
      if (code === 0) result.inserted.push(tuple);
      else if (code === 1) (result as { present: number }).present++;
      else if (code === 2) result.busy.push(tuple);
      else result.failed.push({ tuple, errno: dv.getInt32(at + KEY_SIZE + 4, true) });
    }
    return result;
  }

  /**
   * Replaces the local prefixes. Established connections keep their state;
   * the list applies to connections established from now on (and to
   * {@link Acceleration.resync}).
   *
   * @param local Addresses or prefixes.
   * @throws {TypeError} For a malformed prefix (nothing is changed).
   * @throws {SockmapError} After `close()`.
   */
  setLocal(local: readonly string[]): void {
    this.#check();
    setLocalPrefixes(this.#maps.local4, this.#maps.local6, local, "Cannot set the local prefixes");
  }

  #enabled(): boolean {
    return this.#config(CONFIG_ENABLED);
  }

  #config(slot: number): boolean {
    const v = this.#maps.config.get(u32(slot));
    return v !== undefined && v.some((b) => b !== 0);
  }

  /**
   * Stops the acceleration: messages take the normal TCP path from now on
   * (sockets already in the map stay there until they close, their data
   * already moved stays readable), the sock_ops and sk_msg programs are
   * detached, and a pinned instance's pins and ledger entry are removed.
   * Connections keep working. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#maps.config.set(u32(CONFIG_ENABLED), u64(0n));
      this.#ops?.detach();
      this.#msg?.detach();
    } finally {
      this.#ops = undefined;
      this.#msg = undefined;
      if (this.pin !== undefined) {
        for (const file of Object.keys(MAPS)) unpin(`${this.pin}/${file}`);
      }
      if (this.#entry !== undefined && this.#ledger !== undefined && !this.#ledger.closed)
        this.#ledger.forget(this.#entry);
      this.#ledger?.close();
      this.#release();
    }
  }

  /**
   * Lets go of this process's handles and leaves the acceleration running:
   * for a planned restart of a pinned instance (a new `accelerate()` with
   * the same `pin` adopts it). Without `pin`, the programs stay attached
   * only as long as the kernel holds them (the cgroup link ends with its
   * last reference). Calling it again does nothing.
   */
  release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ops?.close();
    this.#msg?.close();
    this.#ledger?.close();
    this.#release();
  }

  #release(): void {
    // The collection closes the maps it created; the adopted ones are ours.
    this.#coll.close();
    for (const m of this.#opened) m.close();
  }

  /** Closes (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

function setLocalPrefixes(local4: BpfMap, local6: BpfMap, local: readonly string[], what: string): void {
  const list: readonly unknown[] = local;
  if (!Array.isArray(list)) throw new TypeError(`${what}: local must be an array of addresses or prefixes`);
  const keys = list.map((p) => encodePrefix(String(p), what));
  clear(local4);
  clear(local6);
  const one = new Uint8Array([1]);
  for (const { family, key } of keys) (family === 4 ? local4 : local6).set(key, one);
}

/**
 * Accelerates TCP between local sockets of a cgroup: a sock_ops program
 * on the cgroup puts each established connection whose two ends are local
 * addresses into a sockhash, and an sk_msg program redirects every message
 * straight into the peer socket's receive queue, skipping the TCP/IP
 * stack. Anything it cannot redirect takes the normal path: a connection
 * never breaks because of it.
 *
 * With `pin`, a later process (after a crash or a restart) calling
 * `accelerate()` with the same directory adopts the pinned maps and the
 * sock_ops link; sockets stay in the pinned sockhash in between, so
 * existing connections stay accelerated, and connections established
 * while no program was attached are inserted by {@link Acceleration.resync}.
 *
 * With `policy` (a datapath's maps, {@link SockmapPolicy}), every message
 * is first checked against the datapath's policy for its connection, with
 * the datapath's own lookup: redirected only when allowed, else sent down
 * the normal path (where the datapath's programs see it) and counted in
 * `fallback.policy`. A rule change applies from the next message on.
 *
 * @param options The cgroup, local prefixes, pin directory and map size.
 * @returns The running acceleration.
 * @throws {SockmapError} `notCgroup2` when `cgroup` is not a cgroup v2 directory, `unsupported` without socket maps in the kernel.
 * @throws {MapCompatibilityError} When a `policy` map is not the datapath map it should be (type, key or value size, flags).
 * @throws {TypeError} For malformed options or prefixes, or a `policy` field that is not an open map.
 * @throws {SyscallError} When the kernel refuses to load or attach.
 * @capability CAP_BPF
 * @capability CAP_NET_ADMIN
 * @capability CAP_PERFMON (the sk_msg program reads the peer socket's queues with `bpf_probe_read_kernel`)
 * @kernel 6.5 (a TCP socket iterator that may update a sockhash; sk_msg `sk` since 5.8)
 * @example Accelerating a cgroup's loopback connections
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { mkdirSync, rmdirSync } from "node:fs";
 * import { findCgroup2Mount } from "@dp/hooks";
 * import { accelerate } from "@dp/sockmap";
 *
 * const root = findCgroup2Mount();
 * if (root !== undefined) {
 *   const cgroup = `${root}/dp-doc-sockmap-${process.pid}`;
 *   mkdirSync(cgroup);
 *   {
 *     using acc = accelerate({ cgroup, local: ["127.0.0.0/8", "::1"] });
 *     assert.equal(acc.stats().redirected, 0n);
 *     assert.deepEqual(acc.sockets(), []);
 *   }
 *   rmdirSync(cgroup);
 * }
 * ```
 * @example Redirecting pods' connections only while a node's policy allows them
 * ```ts no-run
 * import { openNode } from "@dp/datapath";
 * import { accelerate } from "@dp/sockmap";
 *
 * await using node = await openNode({ stateDir: "/sys/fs/bpf/dp", router: { ipv4: "10.0.0.1" } });
 * using acc = accelerate({ cgroup: "/sys/fs/cgroup/pods", local: ["10.0.1.0/24"], policy: node.sockmapPolicy() });
 * // ... after a rule change that denies a pair, its next messages take the normal path:
 * console.log(acc.stats().fallback.policy, acc.status({ localAddress: "10.0.1.2", localPort: 40000, remoteAddress: "10.0.1.1", remotePort: 8080 }));
 * ```
 */
export function accelerate(options: AccelerateOptions): Acceleration {
  const what = `Cannot accelerate cgroup ${describe(options?.cgroup)}`;
  checkOptions(options, what);
  // Parse the prefixes before touching the kernel.
  for (const p of options.local) encodePrefix(p, what);
  const id = cgroupId(options.cgroup, what);
  probeSockhash(what);
  const maxSockets = options.maxSockets ?? 65536;
  const pin = options.pin;
  if (pin !== undefined && !isBpffs(pin.slice(0, pin.lastIndexOf("/")) || "/")) {
    throw new TypeError(`${what}: ${JSON.stringify(pin)} is not under a bpffs mount`);
  }

  const policy = options.policy;
  const spec = sized(readCollectionSpec(options.object ?? DEFAULT_OBJECT), maxSockets, policy);
  const opened: Partial<Record<keyof typeof MAPS, BpfMap>> = {};
  const cleanup: (() => void)[] = [];
  let adopted = false;
  try {
    if (pin !== undefined) {
      for (const file of Object.keys(MAPS) as (keyof typeof MAPS)[]) {
        try {
          opened[file] = openPinnedMap(`${pin}/${file}`);
          adopted = true;
        } catch (err) {
          if (!(err instanceof SyscallError && err.errno === ENOENT)) throw err;
        }
      }
    }
    const given: Record<string, BpfMap> = {};
    for (const [file, m] of Object.entries(opened)) given[MAPS[file as keyof typeof MAPS]] = m;
    if (policy !== undefined) {
      for (const [field, name] of Object.entries(POLICY_MAPS) as [keyof typeof POLICY_MAPS, string][])
        given[name] = policy[field];
    }
    const coll = loadCollection(spec, { maps: given, programs: PROGRAMS });
    cleanup.push(() => coll.close());
    const maps = {} as Record<keyof typeof MAPS, BpfMap>;
    for (const [file, name] of Object.entries(MAPS) as [keyof typeof MAPS, string][]) {
      maps[file] = opened[file] ?? coll.map(name);
      if (pin !== undefined && opened[file] === undefined) maps[file].pin(`${pin}/${file}`);
    }
    setLocalPrefixes(maps.local4, maps.local6, options.local, what);
    maps.config.set(u32(CONFIG_CGROUP_ID), u64(id));
    maps.config.set(u32(CONFIG_BACKLOG), u64(BigInt(options.maxBacklog ?? 4 * 1024 * 1024)));
    maps.config.set(u32(CONFIG_POLICY), u64(policy === undefined ? 0n : 1n));

    // sk_msg on the sockhash: the attachment belongs to the map (pinned or not).
    const socks = new SockHash(maps.socks, bytes(KEY_SIZE));
    const msg = attachSockmap(socks, coll.program("dp_sm_redirect"), "skMsgVerdict", { replace: true });
    cleanup.push(() => msg.detach());

    // sock_ops on the cgroup: adopted from the ledger, or attached (and recorded).
    let ledger: Ledger | undefined;
    let ops: CgroupLink | AdoptedLink | undefined;
    let entry: LedgerEntry | undefined;
    const entryName = `sockops-${id}`;
    const prog = coll.program("dp_sm_sockops");
    if (pin !== undefined) {
      ledger = openLedger(`${pin}/ledger`);
      const l = ledger;
      cleanup.push(() => l.close());
      const { adopted: links } = reconcile(ledger, { adopt: (e) => e.kind === "link" && e.name === entryName });
      for (const link of links) {
        if (ops === undefined) {
          link.update(prog);
          ops = link;
          entry = link.entry;
        } else {
          link.detach();
        }
      }
      if (ops !== undefined) adopted = true;
    }
    if (ops === undefined) {
      const link = attachCgroup(options.cgroup, prog, "cgroupSockOps");
      ops = link;
      if (ledger !== undefined) entry = ledger.recordLink(entryName, link);
    }
    const opsLink = ops;
    cleanup.push(() => opsLink.detach());
    maps.config.set(u32(CONFIG_ENABLED), u64(1n));
    const acc = new Acceleration({
      cgroup: options.cgroup,
      cgroupId: id,
      pin,
      adopted,
      coll,
      maps,
      msg,
      ops,
      ledger,
      entry,
      opened: Object.values(opened),
    });
    cleanup.length = 0;
    if (options.resync !== false) {
      try {
        acc.resync();
      } catch (err) {
        acc.close();
        throw err;
      }
    }
    return acc;
  } catch (err) {
    for (const f of cleanup.reverse()) {
      try {
        f();
      } catch {
        // Best effort: the first error is the one to report.
      }
    }
    for (const m of Object.values(opened)) m.close();
    throw err;
  }
}
