// A local copy of every key under a prefix, kept in sync by a watch. The
// first sync lists the prefix; after that a watch from the list's revision
// delivers changes one by one. When the watch is lost (etcd unreachable,
// the stream ended) or cancelled (its revision was compacted), the mirror
// lists the prefix again, retrying with a backoff, and reports only the
// difference to what it held: a full resync that looks incremental to the
// handlers.
import type { IKeyValue, Watcher } from "etcd3";
import { KvstoreError, type Kvstore } from "./kvstore.ts";
import { sleep, withTimeout } from "./_sleep.ts";

/** What a mirror reports; `prev` is the raw value it replaced. */
export interface MirrorHandlers {
  upsert(key: string, value: string, prev: string | undefined): void;
  delete(key: string, prev: string): void;
  /** After each full list (the first sync and every resync). */
  synced?(resync: boolean): void;
  /** Test seam: runs between a list and the watch that follows it. */
  beforeWatch?(revision: number): Promise<void>;
}

/** Why the last resync ran, and how many there were. */
export interface MirrorStats {
  readonly resyncs: number;
  readonly lastResyncReason: string | undefined;
  readonly revision: number;
}

export class PrefixMirror {
  readonly prefix: string;
  readonly cache: Map<string, string> = new Map();
  #kv: Kvstore;
  #h: MirrorHandlers;
  #watcher: Watcher | undefined;
  #gen = 0;
  #closed = false;
  #resyncs = 0;
  #reason: string | undefined;
  #revision = 0;
  #resyncing: Promise<void> | undefined;
  #abort = new AbortController();
  /** The revision of this process's last write per key: older watch events are stale. */
  #localRev = new Map<string, number>();

  constructor(kv: Kvstore, prefix: string, handlers: MirrorHandlers) {
    this.#kv = kv;
    this.prefix = prefix;
    this.#h = handlers;
  }

  get stats(): MirrorStats {
    return { resyncs: this.#resyncs, lastResyncReason: this.#reason, revision: this.#revision };
  }

  /** The first list and watch; rejects when etcd cannot be listed. */
  /**
   * Records a write this process made at `revision`; `false` when the
   * cache already holds a newer state of the key (do not apply the write).
   */
  noteLocalWrite(key: string, revision: number): boolean {
    if (revision <= (this.#localRev.get(key) ?? 0)) return false;
    this.#localRev.set(key, revision);
    return true;
  }

  #stale(key: string, kv: IKeyValue): boolean {
    const local = this.#localRev.get(key);
    if (local === undefined) return false;
    const rev = Number(kv.mod_revision);
    if (rev <= local) return true;
    this.#localRev.set(key, rev);
    return false;
  }

  async start(): Promise<void> {
    if (!(await this.#sync(false))) await this.#resyncing;
  }

  /**
   * Lists and watches; returns `false` when superseded (another sync or a
   * close started meanwhile), `true` when the watch is in place.
   */
  async #sync(resync: boolean): Promise<boolean> {
    const gen = ++this.#gen;
    const client = this.#kv.client();
    const res = await client.getAll().prefix(this.prefix).exec();
    if (gen !== this.#gen || this.#closed) return false;
    const rev = Number(res.header.revision);
    const seen = new Set<string>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const value = kv.value.toString();
      seen.add(key);
      const prev = this.cache.get(key);
      // A local write newer than the list stays.
      if (prev === value || (this.#localRev.get(key) ?? 0) > rev) continue;
      this.cache.set(key, value);
      this.#h.upsert(key, value, prev);
    }
    for (const [key, prev] of [...this.cache]) {
      if (seen.has(key) || (this.#localRev.get(key) ?? 0) > rev) continue;
      this.cache.delete(key);
      this.#h.delete(key, prev);
    }
    this.#revision = rev;
    this.#h.synced?.(resync);
    if (this.#h.beforeWatch !== undefined) await this.#h.beforeWatch(rev);
    if (gen !== this.#gen || this.#closed) return false;
    // create() settles only once the stream connects or fails: bound it.
    const watcher = await withTimeout(
      client
        .watch()
        .prefix(this.prefix)
        .startRevision(String(rev + 1))
        .create(),
      this.#kv.requestTimeout,
      () => new KvstoreError("watch", this.prefix, `no answer within ${this.#kv.requestTimeout} ms`),
      (late) => void late.cancel().catch(() => undefined),
    );
    if (gen !== this.#gen || this.#closed) {
      await watcher.cancel().catch(() => undefined);
      return false;
    }
    this.#watcher = watcher;
    watcher.on("put", (kv: IKeyValue) => {
      if (gen !== this.#gen) return;
      const key = kv.key.toString();
      const value = kv.value.toString();
      const prev = this.cache.get(key);
      this.#revision = Number(kv.mod_revision);
      if (this.#stale(key, kv) || prev === value) return;
      this.cache.set(key, value);
      this.#h.upsert(key, value, prev);
    });
    watcher.on("delete", (kv: IKeyValue) => {
      if (gen !== this.#gen) return;
      const key = kv.key.toString();
      const prev = this.cache.get(key);
      this.#revision = Number(kv.mod_revision);
      if (this.#stale(key, kv) || prev === undefined) return;
      this.cache.delete(key);
      this.#h.delete(key, prev);
    });
    watcher.on("disconnected", (err: unknown) => {
      if (gen === this.#gen) this.#lost(`watch lost: ${err instanceof Error ? err.message : String(err)}`);
    });
    watcher.on("error", (err: unknown) => {
      if (gen !== this.#gen) return;
      const why = err instanceof Error ? err.message : String(err);
      // etcd3 drops the compact revision of a cancelled watch: ask etcd whether the revision is gone.
      const from = this.#revision + 1;
      this.#lost(`watch cancelled: ${why}`, async () => {
        try {
          await client.getAll().prefix(this.prefix).revision(from).limit(1).exec();
        } catch (e) {
          const text = e instanceof Error ? e.message : String(e);
          if (text.includes("compacted")) this.#reason = `watch cancelled: revision ${from} was compacted`;
        }
      });
    });
    return true;
  }

  #lost(reason: string, probe?: () => Promise<void>): void {
    if (this.#closed) return;
    this.#reason = reason;
    const old = this.#watcher;
    this.#watcher = undefined;
    this.#gen++;
    void old?.cancel().catch(() => undefined);
    this.#resyncing ??= this.#resyncLoop(probe).finally(() => (this.#resyncing = undefined));
  }

  /** Forces a full resync now (and waits for it). */
  async resync(reason = "requested"): Promise<void> {
    this.#lost(reason);
    await this.#resyncing;
  }

  async #resyncLoop(probe?: () => Promise<void>): Promise<void> {
    await probe?.();
    let delay = 100;
    // A closed store ends the loop: its client is gone for good.
    while (!this.#closed && !this.#kv.closed) {
      let done: boolean;
      try {
        // A sync superseded by a newer request is not a success: run again.
        done = await this.#sync(true);
      } catch {
        await sleep(delay, this.#abort.signal);
        delay = Math.min(delay * 2, 2000);
        continue;
      }
      if (done) {
        this.#resyncs++;
        return;
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#gen++;
    const w = this.#watcher;
    this.#watcher = undefined;
    if (w !== undefined)
      await withTimeout(w.cancel(), 1000, () => new Error("cancel timed out")).catch(() => undefined);
  }
}
