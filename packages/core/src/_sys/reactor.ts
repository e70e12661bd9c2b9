// The process's reactor: one epoll set for every descriptor something waits
// on (netlink event sockets, ring buffers), waited on by a single
// `epoll_wait()` call on a libuv worker thread. However many readers wait,
// at most one thread-pool thread is taken, so `fs`, `dns` and `crypto` keep
// the rest. The call is re-armed after each wake-up while someone waits; an
// eventfd in the set interrupts it when the last waiter goes away, so the
// process can exit when nothing waits.
//
// Sources are registered EPOLLONESHOT and re-armed (EPOLL_CTL_MOD) each
// time a reader waits, so a ready descriptor nobody is reading (a consumer
// that stopped iterating) never makes the worker spin. EPOLL_CTL_MOD checks
// readiness itself, so data that arrived between a reader's last read and
// its wait still wakes it.
import { SyscallError } from "../errors.ts";
import { sys } from "./sys.ts";
import type { Sys } from "./types.ts";

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x1;
const EPOLLONESHOT = 1 << 30;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const BATCH = 64;
const WAKE_TOKEN = 0;
/** Consecutive failed `epoll_wait()` calls before waiters are failed (errno is not kept across threads). */
const MAX_FAILURES = 16;

/** A descriptor registered with the process's reactor. */
export interface ReadySource {
  /** Whether {@link ReadySource.close} was called. */
  readonly closed: boolean;
  /**
   * Waits until the descriptor is readable (or has an error or hang-up to
   * report). Wake-ups can be spurious: read without blocking and wait
   * again when there is nothing.
   *
   * @param signal Ends the wait early.
   * @returns `true` when the descriptor became ready, `false` when the signal aborted or the source was closed.
   * @throws {SyscallError} When the descriptor cannot be added to the epoll set.
   */
  wait(signal?: AbortSignal): Promise<boolean>;
  /** Removes the descriptor from the reactor and ends pending waits with `false`. Call it before closing the descriptor. */
  close(): void;
}

/** What the reactor is doing, for tests. */
export interface ReactorState {
  /** Registered descriptors. */
  readonly sources: number;
  /** Pending {@link ReadySource.wait} calls. */
  readonly waiting: number;
  /** Whether an `epoll_wait()` call is outstanding on a worker thread (at most one). */
  readonly armed: boolean;
}

interface Waiter {
  readonly resolve: (ready: boolean) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

let current: EventSet | undefined;

class EventSet {
  readonly s: Sys;
  readonly epfd: number;
  readonly efd: number;
  readonly sources: Map<number, Source> = new Map();
  waiting = 0;
  armed = false;
  #nextToken = 1;
  #failures = 0;
  #ready: Uint32Array = new Uint32Array(2 * BATCH);
  #wakeBuf: Uint8Array = new Uint8Array(8);

  constructor(s: Sys) {
    this.s = s;
    const epfd = s.epollCreate();
    if (epfd < 0)
      throw new SyscallError("Cannot create the reactor's epoll set", {
        syscall: "epoll_create1",
        op: "epoll_create1",
        errno: -epfd,
      });
    const efd = s.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd < 0) {
      s.close(epfd);
      throw new SyscallError("Cannot create the reactor's eventfd", { syscall: "eventfd", op: "eventfd", errno: -efd });
    }
    const r = s.epollCtl(epfd, EPOLL_CTL_ADD, efd, EPOLLIN, WAKE_TOKEN);
    if (r < 0) {
      s.close(efd);
      s.close(epfd);
      throw new SyscallError("Cannot add the reactor's eventfd to its epoll set", {
        syscall: "epoll_ctl",
        op: "EPOLL_CTL_ADD",
        errno: -r,
      });
    }
    this.epfd = epfd;
    this.efd = efd;
  }

  token(): number {
    let t = this.#nextToken;
    while (t === WAKE_TOKEN || this.sources.has(t)) t = (t + 1) >>> 0;
    this.#nextToken = (t + 1) >>> 0;
    return t;
  }

  /** Starts the one `epoll_wait()` call when someone waits and none is outstanding. */
  arm(): void {
    if (this.armed || this.waiting === 0) return;
    this.armed = true;
    this.s.epollWaitAsync(this.epfd, this.#ready, -1).then(
      (n) => this.#woke(n),
      (err: unknown) => this.#failed(err),
    );
  }

  /** Called when waiters or sources went away: interrupts an idle wait, retires an empty set. */
  settle(): void {
    if (this.armed && this.waiting === 0) {
      this.#wakeBuf.fill(0);
      this.#wakeBuf[0] = 1;
      this.s.write(this.efd, this.#wakeBuf, 8);
    }
    this.#retire();
  }

  #woke(n: number): void {
    this.armed = false;
    if (n < 0) {
      if (++this.#failures >= MAX_FAILURES) {
        this.#failed(
          new SyscallError("Cannot wait for events: epoll_wait() keeps failing on the reactor thread", {
            syscall: "epoll_wait",
            op: "epoll_wait",
            errno: 5,
          }),
        );
        return;
      }
    } else {
      this.#failures = 0;
    }
    const ready = this.#ready;
    for (let i = 0; i < n; i++) {
      const token = ready[2 * i + 1]!;
      if (token === WAKE_TOKEN) this.s.read(this.efd, this.#wakeBuf, 8);
      else this.sources.get(token)?.fire();
    }
    this.arm();
    this.#retire();
  }

  #failed(err: unknown): void {
    this.armed = false;
    for (const source of [...this.sources.values()]) source.fail(err);
    this.#retire();
  }

  #retire(): void {
    if (this.armed || this.sources.size > 0 || current !== this) return;
    current = undefined;
    this.s.close(this.efd);
    this.s.close(this.epfd);
  }
}

class Source implements ReadySource {
  readonly #set: EventSet;
  readonly #fd: number;
  readonly #token: number;
  readonly #what: string;
  readonly #waiters: Set<Waiter> = new Set();
  #added = false;
  #interest = false;
  #closed = false;

  constructor(set: EventSet, fd: number, what: string) {
    this.#set = set;
    this.#fd = fd;
    this.#what = what;
    this.#token = set.token();
    set.sources.set(this.#token, this);
  }

  get closed(): boolean {
    return this.#closed;
  }

  wait(signal?: AbortSignal): Promise<boolean> {
    if (this.#closed || signal?.aborted) return Promise.resolve(false);
    const set = this.#set;
    if (!this.#interest) {
      const op = this.#added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
      const r = set.s.epollCtl(set.epfd, op, this.#fd, EPOLLIN | EPOLLONESHOT, this.#token);
      if (r < 0) {
        const name = op === EPOLL_CTL_ADD ? "EPOLL_CTL_ADD" : "EPOLL_CTL_MOD";
        return Promise.reject(
          new SyscallError(`Cannot wait for ${this.#what}`, { syscall: "epoll_ctl", op: name, errno: -r }),
        );
      }
      this.#added = true;
      this.#interest = true;
    }
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          if (this.#waiters.delete(waiter)) {
            set.waiting--;
            resolve(false);
            set.settle();
          }
        },
      };
      this.#waiters.add(waiter);
      set.waiting++;
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      set.arm();
    });
  }

  /** The descriptor was reported ready: its one-shot interest is used up. */
  fire(): void {
    this.#interest = false;
    this.#end((w) => w.resolve(true));
  }

  fail(err: unknown): void {
    this.#interest = false;
    this.#end((w) => w.reject(err));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const set = this.#set;
    if (this.#added) set.s.epollCtl(set.epfd, EPOLL_CTL_DEL, this.#fd, 0, this.#token);
    set.sources.delete(this.#token);
    this.#end((w) => w.resolve(false));
    set.settle();
  }

  #end(settle: (w: Waiter) => void): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    this.#set.waiting -= waiters.length;
    for (const w of waiters) {
      w.signal?.removeEventListener("abort", w.onAbort);
      settle(w);
    }
  }
}

/**
 * Registers a descriptor with the process's reactor, so that readers can
 * wait for it to become readable without a thread of their own: every
 * source of the process shares one epoll set and one outstanding
 * `epoll_wait()` call on a libuv worker thread. The reactor holds no thread
 * while nothing waits, so it never keeps the process alive by itself.
 *
 * @param fd The descriptor; close the source before closing it.
 * @param what What the descriptor is, for errors (`Cannot wait for ${what}`).
 * @returns The registered source.
 * @throws {SyscallError} When the reactor's epoll set or eventfd cannot be created.
 * @example Waiting for an eventfd
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { sys, watchReadable } from "@dp/core/internal";
 *
 * const s = sys();
 * const efd = s.eventfd(0, 0o2004000); // EFD_CLOEXEC | EFD_NONBLOCK
 * const source = watchReadable(efd, "an eventfd");
 * try {
 *   const ready = source.wait();
 *   s.write(efd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 8);
 *   assert.equal(await ready, true);
 * } finally {
 *   source.close();
 *   s.close(efd);
 * }
 * ```
 */
export function watchReadable(fd: number, what: string): ReadySource {
  const set = (current ??= new EventSet(sys()));
  return new Source(set, fd, what);
}

/**
 * Reports what the reactor is doing.
 *
 * @returns Registered sources, pending waits and whether the single `epoll_wait()` call is outstanding.
 * @example One outstanding call for every waiter
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { reactorState, sys, watchReadable } from "@dp/core/internal";
 *
 * const s = sys();
 * const fds = [s.eventfd(0, 0o2004000), s.eventfd(0, 0o2004000)];
 * const sources = fds.map((fd) => watchReadable(fd, "an eventfd"));
 * const stop = new AbortController();
 * const waits = sources.map((source) => source.wait(stop.signal));
 * assert.deepEqual(reactorState(), { sources: 2, waiting: 2, armed: true });
 * stop.abort();
 * assert.deepEqual(await Promise.all(waits), [false, false]);
 * for (const source of sources) source.close();
 * for (const fd of fds) s.close(fd);
 * assert.equal(reactorState().waiting, 0); // the interrupted call returns on a later turn of the loop
 * ```
 */
export function reactorState(): ReactorState {
  return current === undefined
    ? { sources: 0, waiting: 0, armed: false }
    : { sources: current.sources.size, waiting: current.waiting, armed: current.armed };
}
