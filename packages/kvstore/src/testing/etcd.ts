import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Options for {@link startEtcd} and {@link startEtcdCluster}. */
export interface StartEtcdOptions {
  /**
   * The etcd binary.
   *
   * @default `$DP_ETCD`, else `/usr/bin/etcd` (Debian's `etcd-server`)
   */
  readonly etcdPath?: string;
  /**
   * How long to wait for a member to report healthy, in milliseconds.
   *
   * @default 20000
   */
  readonly startTimeout?: number;
  /**
   * Extra command-line flags for every member, such as
   * `["--auto-compaction-retention=1"]`.
   *
   * @default []
   */
  readonly extraArgs?: readonly string[];
  /**
   * Serve clients over TLS with this server certificate; with
   * `trustedCaFile`, require client certificates signed by that CA. The
   * endpoints are then `https://localhost:<port>` (TLS clients send the
   * server's name, and Node refuses an IP address there).
   *
   * @default plain http
   */
  readonly tls?: {
    /** The server certificate (PEM), valid for `localhost`. */
    readonly certFile: string;
    /** Its private key (PEM). */
    readonly keyFile: string;
    /** The CA that client certificates must be signed by. */
    readonly trustedCaFile?: string;
  };
}

/**
 * One etcd member started by {@link startEtcd} or {@link startEtcdCluster}:
 * listening on 127.0.0.1 with free ports and its own temporary data
 * directory. `stop()` and `start()` simulate an outage; the data directory
 * survives them and is removed by `close()`.
 *
 * @example Stopping and restarting a member
 * ```ts ignore
 * await using etcd = await startEtcd();
 * await etcd.member.stop();
 * assert.equal(etcd.member.running, false);
 * await etcd.member.start();
 * ```
 */
export interface EtcdMember {
  /** The member name, such as `m0`. */
  readonly name: string;
  /** The client URL, such as `http://127.0.0.1:40123`. */
  readonly clientUrl: string;
  /** The peer URL. */
  readonly peerUrl: string;
  /** The member's data directory (temporary). */
  readonly dataDir: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /**
   * Stops the process (SIGTERM, then SIGKILL after 5 s); idempotent.
   *
   * @param signal `"SIGKILL"` to simulate a crash.
   * @returns When the process has exited.
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /**
   * Starts the process again on the same ports and data directory.
   *
   * @returns When the member reports healthy.
   * @throws {Error} When it does not within the start timeout.
   */
  start(): Promise<void>;
}

/**
 * A single-member etcd for a test, from {@link startEtcd}. Disposing it
 * (`await using`) stops the process and removes the data directory, also
 * when the test failed; an exit hook removes leftovers of a test process
 * that never got that far.
 *
 * @example A throwaway etcd
 * ```ts ignore
 * await using etcd = await startEtcd();
 * assert.match(etcd.endpoints[0]!, /^http:\/\/127\.0\.0\.1:\d+$/);
 * ```
 */
export interface TestEtcd {
  /** The client URLs, for `EtcdConfig.endpoints`. */
  readonly endpoints: readonly string[];
  /** The members (one for {@link startEtcd}). */
  readonly members: readonly EtcdMember[];
  /** The first member. */
  readonly member: EtcdMember;
  /**
   * Returns the store's current revision (over the JSON gateway; plain
   * http members only).
   *
   * @returns The revision.
   * @throws {Error} When no member answers.
   */
  revision(): Promise<number>;
  /**
   * Compacts the store up to `revision` (default: the current one), so
   * watches of older revisions are cancelled with "required revision has
   * been compacted" (plain http members only).
   *
   * @param revision The revision to compact to.
   * @returns The revision compacted to.
   * @throws {Error} When no member answers.
   */
  compact(revision?: number): Promise<number>;
  /**
   * Stops every member and removes their data directories; idempotent.
   *
   * @returns When done.
   */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const live = new Set<Member>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const m of live) m.killNow();
  });
  // A test run ended by a signal: stop the members, then die of the signal.
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      for (const m of live) m.killNow();
      process.removeListener(sig, onSignal);
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function postJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
    signal: AbortSignal.timeout(3000),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`etcd ${url}: HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

class Member implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  #args: string[];
  #bin: string;
  #timeout: number;
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log: string[] = [];
  #health: string;

  constructor(
    name: string,
    [clientPort, peerPort, metricsPort]: readonly [number, number, number],
    cluster: string,
    bin: string,
    opts: StartEtcdOptions,
  ) {
    this.name = name;
    const tls = opts.tls;
    // TLS clients name the server (SNI), and Node refuses an IP address as that name.
    this.clientUrl = tls === undefined ? `http://127.0.0.1:${clientPort}` : `https://localhost:${clientPort}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
    this.dataDir = mkdtempSync(join(tmpdir(), `dp-etcd-${name}-`));
    this.#bin = bin;
    this.#timeout = opts.startTimeout ?? 20_000;
    this.#args = [
      `--name=${name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${tls === undefined ? "http" : "https"}://127.0.0.1:${clientPort}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${cluster}`,
      "--initial-cluster-state=new",
      "--initial-cluster-token=dp-test",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
      `--listen-metrics-urls=http://127.0.0.1:${metricsPort}`,
      ...(tls === undefined ? [] : [`--cert-file=${tls.certFile}`, `--key-file=${tls.keyFile}`]),
      ...(tls?.trustedCaFile === undefined ? [] : ["--client-cert-auth", `--trusted-ca-file=${tls.trustedCaFile}`]),
      ...(opts.extraArgs ?? []),
    ];
    this.#health = `http://127.0.0.1:${metricsPort}/health`;
    live.add(this);
  }

  get running(): boolean {
    return this.#proc !== undefined;
  }

  spawn(): void {
    if (this.#proc !== undefined) return;
    const proc = spawn(this.#bin, this.#args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#proc = proc;
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      this.#log.push(chunk);
      if (this.#log.length > 50) this.#log.shift();
    });
    this.#exited = new Promise((resolve) => {
      proc.once("exit", () => {
        if (this.#proc === proc) this.#proc = undefined;
        resolve();
      });
      proc.once("error", (err) => {
        this.#log.push(String(err));
        if (this.#proc === proc) this.#proc = undefined;
        resolve();
      });
    });
  }

  async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.#timeout;
    let last = "no answer";
    while (Date.now() < deadline) {
      if (this.#proc === undefined) break;
      try {
        const res = await fetch(this.#health, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { health?: string };
        if (body.health === "true") return;
        last = JSON.stringify(body);
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(100);
    }
    throw new Error(
      `Cannot start etcd member "${this.name}" at ${this.clientUrl}: ${this.#proc === undefined ? "the process exited" : `not healthy: ${last}`}\n${this.#log.join("").slice(-2000)}`,
    );
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitHealthy();
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    const proc = this.#proc;
    if (proc === undefined) return;
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  killNow(): void {
    this.#proc?.kill("SIGKILL");
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
    live.delete(this);
  }
}

class Etcd implements TestEtcd {
  readonly members: readonly Member[];
  #closed = false;

  constructor(members: Member[]) {
    this.members = members;
  }

  get endpoints(): readonly string[] {
    return this.members.map((m) => m.clientUrl);
  }

  get member(): EtcdMember {
    return this.members[0] as Member;
  }

  async #post(path: string, body: unknown): Promise<Record<string, unknown>> {
    let last: unknown;
    for (const m of this.members) {
      if (!m.running) continue;
      try {
        return await postJson(`${m.clientUrl}${path}`, body);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`Cannot reach any etcd member for ${path}`, { cause: last });
  }

  async revision(): Promise<number> {
    // A range over one (absent) key returns the header with the current revision.
    const res = await this.#post("/v3/kv/range", { key: btoa("\0") });
    return Number((res.header as { revision?: string } | undefined)?.revision ?? 0);
  }

  async compact(revision?: number): Promise<number> {
    const rev = revision ?? (await this.revision());
    await this.#post("/v3/kv/compaction", { revision: String(rev), physical: true });
    return rev;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    for (const m of [...this.members].reverse()) {
      try {
        await m.close();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, "Cannot stop the test etcd");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function etcdBinary(options: StartEtcdOptions): string {
  const bin = options.etcdPath ?? process.env.DP_ETCD ?? "/usr/bin/etcd";
  try {
    accessSync(bin, constants.X_OK);
  } catch (err) {
    throw new Error(`Cannot start etcd: "${bin}" is not executable: install etcd-server or set DP_ETCD`, {
      cause: err,
    });
  }
  return bin;
}

/**
 * Starts an etcd cluster of `size` members on 127.0.0.1 with free ports
 * and temporary data directories, and waits until every member is
 * healthy. Dispose it (`await using`) to stop the members and remove the
 * directories, also when the test fails.
 *
 * @param size The number of members (1, 3 or 5 are the useful sizes).
 * @param options The binary, the start timeout and extra flags.
 * @returns The running cluster.
 * @throws {RangeError} When `size` is not an integer in 1-7.
 * @throws {Error} When the binary is missing or a member does not become healthy (with the tail of its log).
 * @example A 3-member cluster that survives one member
 * ```ts ignore
 * import { startEtcdCluster } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcdCluster(3);
 * await etcd.members[2]!.stop("SIGKILL");
 * ```
 */
export async function startEtcdCluster(size: number, options: StartEtcdOptions = {}): Promise<TestEtcd> {
  if (!Number.isInteger(size) || size < 1 || size > 7) {
    throw new RangeError(`Invalid etcd cluster size ${String(size)}: must be an integer in 1-7`);
  }
  const bin = etcdBinary(options);
  hookExit();
  const used = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };
  // A free port can be taken by another test file before etcd binds it:
  // start over with new ports then.
  for (let attempt = 1; ; attempt++) {
    const ports: Array<[number, number, number]> = [];
    for (let i = 0; i < size; i++) ports.push([await port(), await port(), await port()]);
    const cluster = ports.map(([, peer], i) => `m${i}=http://127.0.0.1:${peer}`).join(",");
    const members = ports.map((p, i) => new Member(`m${i}`, p, cluster, bin, options));
    const etcd = new Etcd(members);
    try {
      for (const m of members) m.spawn();
      await Promise.all(members.map((m) => m.waitHealthy()));
      return etcd;
    } catch (err) {
      await etcd.close().catch(() => undefined);
      const inUse = err instanceof Error && err.message.includes("address already in use");
      if (!inUse || attempt >= 5) throw err;
    }
  }
}

/**
 * Starts a single-member etcd on 127.0.0.1 with free ports and a
 * temporary data directory; see {@link startEtcdCluster}.
 *
 * @param options The binary, the start timeout and extra flags.
 * @returns The running etcd.
 * @throws {Error} When the binary is missing or etcd does not become healthy (with the tail of its log).
 * @example Connecting a kvstore to a test etcd
 * ```ts ignore
 * import { openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "n1" });
 * ```
 */
export function startEtcd(options: StartEtcdOptions = {}): Promise<TestEtcd> {
  return startEtcdCluster(1, options);
}
