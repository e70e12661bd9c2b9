import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from "cockatiel";
import type { Etcd3, Lease } from "etcd3";
import { readFileText } from "@dp/core/internal";
import { type EtcdConfig, validateEtcdConfig } from "./config.ts";
import { type Etcd3Module, loadEtcd3 } from "./_etcd3.ts";
import { readTls } from "./_tls.ts";
import { sleep, withTimeout } from "./_sleep.ts";

/**
 * The connection state of a {@link Kvstore}: `"connecting"` until the
 * first health check answers, `"connected"` while etcd answers,
 * `"unhealthy"` (with the reason) while it does not, `"closed"` after
 * `close()`.
 *
 * @example Reading the status
 * ```ts no-run
 * import type { KvstoreStatus } from "@dp/kvstore";
 *
 * declare const status: KvstoreStatus;
 * if (status.state === "unhealthy") console.log(`kvstore: ${status.reason}`);
 * ```
 */
export interface KvstoreStatus {
  /** The state. */
  readonly state: "connecting" | "connected" | "unhealthy" | "closed";
  /** Why it is unhealthy (the last error), for `"unhealthy"`. */
  readonly reason?: string;
  /** When the state was entered, in milliseconds since the epoch. */
  readonly since: number;
}

/**
 * Receives {@link KvstoreStatus} changes, synchronously, in order.
 *
 * @example Logging changes
 * ```ts no-run
 * import type { KvstoreStatusListener } from "@dp/kvstore";
 *
 * const log: KvstoreStatusListener = (s) => console.log(s.state, s.reason ?? "");
 * ```
 *
 * @param status The new status.
 */
export type KvstoreStatusListener = (status: KvstoreStatus) => void;

/**
 * A failed kvstore operation: etcd unreachable, a request that timed out,
 * a transaction that kept conflicting. `op` says what was being done and
 * `key` names the key when there is one.
 *
 * @example Telling kvstore failures apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { KvstoreError } from "@dp/kvstore";
 *
 * const err = new KvstoreError("put", "dp/state/nodes/v1/default/n1", "etcd is unreachable");
 * assert.equal(err.message, 'Cannot put "dp/state/nodes/v1/default/n1": etcd is unreachable');
 * ```
 */
export class KvstoreError extends Error {
  /** The operation, such as `"connect"`, `"put"`, `"allocate identity"`. */
  readonly op: string;
  /** The key involved, if any. */
  readonly key: string | undefined;

  /**
   * Creates the error.
   *
   * @param op The operation.
   * @param key The key, or undefined.
   * @param reason The cause, as text.
   * @param options The underlying error.
   */
  constructor(op: string, key: string | undefined, reason: string, options?: ErrorOptions) {
    super(`Cannot ${op}${key === undefined ? "" : ` ${JSON.stringify(key)}`}: ${reason}`, options);
    this.name = "KvstoreError";
    this.op = op;
    this.key = key;
  }
}

/**
 * Options of {@link openKvstore}.
 *
 * @example Short timeouts for a test
 * ```ts no-run
 * import type { OpenKvstoreOptions } from "@dp/kvstore";
 *
 * const options: OpenKvstoreOptions = { leaseTtl: 5, healthCheckInterval: 500, requestTimeout: 1000 };
 * ```
 */
export interface OpenKvstoreOptions {
  /**
   * This node's name: the identity allocator's reference keys and the
   * ipcache entries this store publishes carry it.
   *
   * @default the kernel's host name (`/proc/sys/kernel/hostname`)
   */
  readonly nodeName?: string;
  /**
   * The TTL of the store's lease in seconds: keys put under it (node
   * records, identity references, ipcache entries) vanish this long after
   * the process stops renewing it.
   *
   * @default 15
   */
  readonly leaseTtl?: number;
  /**
   * How often the status is checked, in milliseconds.
   *
   * @default 5000
   */
  readonly healthCheckInterval?: number;
  /**
   * The deadline of each request, in milliseconds.
   *
   * @default 5000
   */
  readonly requestTimeout?: number;
  /**
   * Wait until etcd answers before resolving (and fail if it does not
   * within `connectTimeout`); with `false`, resolve at once and report
   * through the status.
   *
   * @default true
   */
  readonly waitConnected?: boolean;
  /**
   * How long `openKvstore` waits for the first answer, in milliseconds.
   *
   * @default 10000
   */
  readonly connectTimeout?: number;
}

type Hook = () => Promise<void>;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A connection to etcd: the client, one lease kept alive for this
 * process, a health status, and the keys put under the lease (which it
 * puts again under a new lease when the old one was lost, as after an etcd
 * outage longer than the TTL). The identity allocator, node registry and
 * ipcache sync of this package work on top of it.
 *
 * `close()` revokes the lease, so everything this process published under
 * it disappears at once, as when a node leaves.
 *
 * @example Status of a test etcd
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-a" });
 * assert.equal(kv.status.state, "connected");
 * ```
 */
export class Kvstore {
  #client: Etcd3;
  #endpoints: readonly string[];
  #node: string;
  #ttl: number;
  #interval: number;
  #timeout: number;
  #status: KvstoreStatus = { state: "connecting", since: Date.now() };
  #listeners = new Set<KvstoreStatusListener>();
  #lease: Lease | undefined;
  #leased = new Map<string, string>();
  #renewHooks = new Set<Hook>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #checking: Promise<void> | undefined;
  #renewing: Promise<void> | undefined;
  #abort = new AbortController();

  /**
   * Creates the store; it does not connect yet.
   *
   * @internal Use {@link openKvstore}.
   * @param config The validated configuration.
   * @param options Timeouts.
   * @param etcd3 The etcd3 module, from the loader.
   */
  constructor(config: EtcdConfig, options: OpenKvstoreOptions, etcd3: Etcd3Module) {
    this.#endpoints = config.endpoints;
    this.#node = options.nodeName ?? "";
    this.#ttl = options.leaseTtl ?? 15;
    this.#interval = options.healthCheckInterval ?? 5000;
    this.#timeout = options.requestTimeout ?? 5000;
    const tls = readTls(config);
    const timeout = this.#timeout;
    const isRecoverableError = etcd3.isRecoverableError;
    this.#client = new etcd3.Etcd3({
      hosts: [...config.endpoints],
      ...(tls !== undefined ? { credentials: tls } : {}),
      ...(config.username !== undefined && config.password !== undefined
        ? { auth: { username: config.username, password: config.password } }
        : {}),
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: {
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: 500,
            breaker: new ConsecutiveBreaker(3),
          }),
        global: retry(handleWhen(isRecoverableError), { maxAttempts: 2 }),
      },
    });
  }

  /** The endpoints from the configuration. */
  get endpoints(): readonly string[] {
    return this.#endpoints;
  }

  /** This node's name. */
  get nodeName(): string {
    return this.#node;
  }

  /** The current status. */
  get status(): KvstoreStatus {
    return this.#status;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The etcd client, for the modules of this package.
   *
   * @internal
   * @returns The client.
   * @throws {KvstoreError} After `close()`.
   */
  client(): Etcd3 {
    if (this.#closed) throw new KvstoreError("use the kvstore", undefined, "it is closed");
    return this.#client;
  }

  /**
   * The request timeout in milliseconds.
   *
   * @internal
   */
  get requestTimeout(): number {
    return this.#timeout;
  }

  /**
   * Delivers status changes (of `state`; a new `reason` alone is not a
   * change) to `listener` until the returned function is called.
   *
   * @param listener Called synchronously on each change.
   * @returns A function that stops delivery.
   */
  onStatus(listener: KvstoreStatusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #setStatus(state: KvstoreStatus["state"], reason?: string): void {
    const prev = this.#status;
    if (prev.state === "closed" || (prev.state === state && prev.reason === reason)) return;
    // A new reason for the same state updates the status without an event.
    const since = prev.state === state ? prev.since : Date.now();
    this.#status = reason === undefined ? { state, since } : { state, reason, since };
    if (prev.state !== state) for (const l of [...this.#listeners]) l(this.#status);
  }

  /**
   * Runs one health check now and updates the status.
   *
   * @returns The status after the check.
   */
  async checkHealth(): Promise<KvstoreStatus> {
    if (this.#closed) return this.#status;
    this.#checking ??= (async () => {
      try {
        await this.#client.maintenance.status({ deadline: Date.now() + this.#timeout });
        this.#setStatus("connected");
      } catch (err) {
        const text = errorText(err);
        // An open circuit breaker hides the cause: keep the reason that opened it.
        const prev = this.#status.reason;
        const reason =
          text.includes("circuit breaker is open") && prev !== undefined
            ? prev
            : `etcd at ${this.#endpoints.join(", ")} does not answer: ${text}`;
        this.#setStatus("unhealthy", reason);
      } finally {
        this.#checking = undefined;
      }
    })();
    await this.#checking;
    return this.#status;
  }

  /** @internal Starts the periodic health check. */
  startHealthChecks(): void {
    const tick = (): void => {
      this.#timer = setTimeout(() => {
        void this.checkHealth().then(() => {
          if (!this.#closed) tick();
        });
      }, this.#interval);
    };
    tick();
  }

  /**
   * The ID of the lease, granting one on first use.
   *
   * @internal
   * @returns The lease ID.
   * @throws {KvstoreError} When etcd cannot grant a lease.
   */
  async leaseId(): Promise<string> {
    if (this.#closed) throw new KvstoreError("grant a lease", undefined, "the kvstore is closed");
    const lease = this.#lease ?? this.#newLease();
    try {
      return String(await lease.grant());
    } catch (err) {
      // A lease that was never granted is dropped, so the next call grants a new one.
      if (this.#lease === lease) this.#lease = undefined;
      throw new KvstoreError("grant a lease", undefined, errorText(err), { cause: err });
    }
  }

  #newLease(): Lease {
    const lease = this.#client.lease(this.#ttl);
    this.#lease = lease;
    lease.on("lost", () => {
      // Only the current lease counts; a lease lost (or never granted) while
      // the renew loop runs is replaced by that loop, not by a second one.
      if (this.#closed || this.#lease !== lease) return;
      this.#lease = undefined;
      this.#startRenew();
    });
    return lease;
  }

  #startRenew(): void {
    if (this.#closed || this.#renewing !== undefined) return;
    if (this.#leased.size === 0 && this.#renewHooks.size === 0) return;
    this.#renewing = this.#renew().finally(() => (this.#renewing = undefined));
  }

  async #renew(): Promise<void> {
    // Grant a new lease and put every leased key again, then run the hooks,
    // all on the same lease; start over (with a backoff) on any failure or
    // when that lease was lost meanwhile.
    let delay = 200;
    while (!this.#closed) {
      try {
        const id = await this.leaseId();
        const lease = this.#lease;
        for (const [key, value] of [...this.#leased]) {
          try {
            // Put it again only while it is still ours (same value) or gone:
            // another writer's newer value is left alone, and forgotten here.
            const same = await this.#client
              .if(key, "Value", "==", value)
              .then(this.#client.put(key).value(value).lease(id))
              .commit();
            if (same.succeeded) continue;
            const gone = await this.#client
              .if(key, "Create", "==", 0)
              .then(this.#client.put(key).value(value).lease(id))
              .commit();
            if (!gone.succeeded && this.#leased.get(key) === value) this.#leased.delete(key);
          } catch (err) {
            throw new KvstoreError("put", key, errorText(err), { cause: err });
          }
        }
        for (const hook of [...this.#renewHooks]) await hook();
        if (this.#closed || (lease !== undefined && this.#lease === lease)) return;
      } catch {
        // Retried below.
      }
      await sleep(delay, this.#abort.signal);
      delay = Math.min(delay * 2, Math.max(1000, (this.#ttl * 1000) / 3));
    }
  }

  /**
   * Puts `key` under the lease and remembers it, so it is put again
   * under a new lease after the old one was lost. A failed put forgets
   * the key.
   *
   * @internal
   * @param key The key.
   * @param value The value.
   * @returns The revision of the put, once etcd has it.
   * @throws {KvstoreError} When the put fails (naming the key).
   */
  async putLeased(key: string, value: string): Promise<number> {
    try {
      const id = await this.leaseId();
      const res = await this.client().put(key).value(value).lease(id).exec();
      this.#leased.set(key, value);
      return Number(res.header.revision);
    } catch (err) {
      this.#leased.delete(key);
      throw err instanceof KvstoreError && err.key === key
        ? err
        : new KvstoreError("put", key, errorText(err), { cause: err });
    }
  }

  /**
   * Deletes a key put with {@link Kvstore.putLeased} and forgets it.
   *
   * @internal
   * @param key The key.
   * @param ifValue Delete only while the key holds this value (another writer's value stays).
   * @returns The revision of the delete, once etcd has deleted it.
   * @throws {KvstoreError} When the delete fails.
   */
  async deleteLeased(key: string, ifValue?: string): Promise<number> {
    this.#leased.delete(key);
    try {
      const client = this.client();
      if (ifValue === undefined) return Number((await client.delete().key(key).exec()).header.revision);
      const res = await client.if(key, "Value", "==", ifValue).then(client.delete().key(key)).commit();
      return Number(res.header.revision);
    } catch (err) {
      throw new KvstoreError("delete", key, errorText(err), { cause: err });
    }
  }

  /**
   * Runs `hook` after a lost lease was replaced (after the leased keys
   * were put again).
   *
   * @internal
   * @param hook The hook.
   * @returns A function that removes it.
   */
  onLeaseRenewed(hook: Hook): () => void {
    this.#renewHooks.add(hook);
    return () => this.#renewHooks.delete(hook);
  }

  /**
   * Stops the health checks, revokes the lease (deleting every key put
   * under it) and closes the client; idempotent.
   *
   * @returns When done.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.#status = { state: "closed", since: Date.now() };
    for (const l of [...this.#listeners]) l(this.#status);
    this.#listeners.clear();
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease !== undefined) {
      await withTimeout(lease.revoke(), this.#timeout, () => new Error("revoke timed out")).catch(() => undefined);
    }
    this.#client.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Connects to etcd: validates `config`, reads its TLS files, creates the
 * client and starts the health checks. By default it waits until etcd
 * answers.
 *
 * @param config The etcd configuration (see {@link parseEtcdConfig}).
 * @param options Lease TTL, timeouts, whether to wait.
 * @returns The store; close it (or `await using`) to revoke its lease.
 * @throws {EtcdConfigError} When the configuration is invalid or a TLS file cannot be read.
 * @throws {RangeError} When an option is out of range.
 * @throws {TypeError} When `nodeName` is empty or holds `/`.
 * @throws {KvstoreError} When `waitConnected` is set and etcd does not answer within `connectTimeout` (op `"connect"`).
 * @example Connecting to a test etcd
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * const kv = await openKvstore({ endpoints: etcd.endpoints });
 * await kv.close();
 * assert.equal(kv.status.state, "closed");
 * ```
 */
export async function openKvstore(config: EtcdConfig, options: OpenKvstoreOptions = {}): Promise<Kvstore> {
  const valid = validateEtcdConfig(config);
  const ttl = options.leaseTtl ?? 15;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 3600) {
    throw new RangeError(`Invalid option leaseTtl: must be an integer in 1-3600 seconds, got ${String(ttl)}`);
  }
  for (const name of ["healthCheckInterval", "requestTimeout", "connectTimeout"] as const) {
    const v = options[name];
    if (v !== undefined && (!Number.isFinite(v) || v <= 0)) {
      throw new RangeError(`Invalid option ${name}: must be a positive number of milliseconds, got ${String(v)}`);
    }
  }
  const nodeName = options.nodeName ?? readFileText("/proc/sys/kernel/hostname").trim();
  if (nodeName === "" || nodeName.includes("/")) {
    throw new TypeError(`Invalid option nodeName ${JSON.stringify(nodeName)}: must be a non-empty string without "/"`);
  }
  const kv = new Kvstore(valid, { ...options, nodeName }, await loadEtcd3());
  if (options.waitConnected ?? true) {
    const deadline = Date.now() + (options.connectTimeout ?? 10_000);
    let status = await kv.checkHealth();
    while (status.state !== "connected" && Date.now() < deadline) {
      // A timer that keeps the process alive: the caller is waiting on it.
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = await kv.checkHealth();
    }
    if (status.state !== "connected") {
      await kv.close();
      throw new KvstoreError("connect to etcd", undefined, status.reason ?? "no answer");
    }
  }
  kv.startHealthChecks();
  return kv;
}
