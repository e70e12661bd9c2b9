import { ClosedError, SyscallError } from "../errors.ts";
import { sys } from "../_sys/sys.ts";
import { emitWarning, env } from "../_sys/process.ts";

const F_DUPFD_CLOEXEC = 1030;

interface Held {
  readonly raw: number;
  readonly what: string;
  readonly stack: string | undefined;
}

/** A leaked descriptor found by the safety net. */
export interface FdLeak {
  /** What the descriptor was for, such as `map "flows"`. */
  readonly what: string;
  /** The stack that created it, when `DP_TRACE_LEAKS=1`. */
  readonly stack: string | undefined;
}

const leaks: FdLeak[] = [];
const open = new Map<number, Held>();

function traceLeaks(): boolean {
  return env("DP_TRACE_LEAKS") === "1";
}

const registry = new FinalizationRegistry<Held>((held) => {
  // The object was collected while its descriptor was open: close it and
  // say so, with the creating stack when tracing.
  if (open.get(held.raw) === held) open.delete(held.raw);
  sys().close(held.raw);
  leaks.push({ what: held.what, stack: held.stack });
  emitWarning(
    `${held.what} (fd ${held.raw}) was garbage-collected without close()${held.stack ? `\n${held.stack}` : ""}`,
    "DpLeakWarning",
  );
});

let rawOf: (fd: Fd) => number;

/**
 * An owned file descriptor.
 *
 * Every kernel handle in dp owns exactly one `Fd`. `close()` is idempotent;
 * `disown()` hands the number to someone else; a `FinalizationRegistry`
 * closes a descriptor whose owner was collected without `close()` and emits
 * a `DpLeakWarning` (with the creating stack when `DP_TRACE_LEAKS=1`).
 * Descriptors are created close-on-exec.
 *
 * @example Closing with a using declaration
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 *
 * let fd;
 * {
 *   using map = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 *   fd = map.fd;
 *   assert.equal(fd.closed, false);
 * }
 * assert.equal(fd.closed, true);
 * ```
 */
export class Fd {
  #raw: number;
  #what: string;
  #held: Held;

  static {
    rawOf = (fd: Fd): number => {
      if (fd.#raw < 0) throw new ClosedError(fd.#what);
      return fd.#raw;
    };
  }

  /**
   * Takes ownership of a raw descriptor.
   *
   * @internal Descriptors are created by core's factories.
   * @param raw The descriptor number, which must be open.
   * @param what What it is for, used in errors and leak reports.
   */
  constructor(raw: number, what: string) {
    if (!Number.isInteger(raw) || raw < 0) throw new RangeError(`Invalid file descriptor ${raw} for ${what}`);
    this.#raw = raw;
    this.#what = what;
    this.#held = { raw, what, stack: traceLeaks() ? new Error("created here").stack : undefined };
    open.set(raw, this.#held);
    registry.register(this, this.#held, this);
  }

  /** Whether the descriptor was closed or disowned. */
  get closed(): boolean {
    return this.#raw < 0;
  }

  /**
   * Closes the descriptor. Calling it again does nothing.
   *
   * @throws {SyscallError} When `close(2)` fails with anything but EINTR.
   */
  close(): void {
    const raw = this.#raw;
    if (raw < 0) return;
    this.#release();
    const ret = sys().close(raw);
    if (ret < 0 && ret !== -4) {
      throw new SyscallError(`Cannot close ${this.#what}`, { syscall: "close", op: "close", errno: -ret });
    }
  }

  /**
   * Duplicates the descriptor; the copy is owned separately and never 0.
   *
   * @returns A new `Fd` for the same kernel object.
   * @throws {ClosedError} When this descriptor is closed.
   * @throws {SyscallError} When `fcntl(F_DUPFD_CLOEXEC)` fails.
   */
  dup(): Fd {
    const ret = sys().fcntl(rawOf(this), F_DUPFD_CLOEXEC, 1);
    if (ret < 0) {
      throw new SyscallError(`Cannot duplicate ${this.#what}`, {
        syscall: "fcntl",
        op: "F_DUPFD_CLOEXEC",
        errno: -ret,
      });
    }
    return new Fd(ret, this.#what);
  }

  /**
   * Gives up ownership: the descriptor stays open and the caller becomes
   * responsible for closing it.
   *
   * @returns The raw descriptor number.
   * @throws {ClosedError} When this descriptor is closed.
   */
  disown(): number {
    const raw = rawOf(this);
    this.#release();
    return raw;
  }

  /** Closes the descriptor (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #release(): void {
    if (open.get(this.#raw) === this.#held) open.delete(this.#raw);
    registry.unregister(this);
    this.#raw = -1;
  }
}

/**
 * Returns the raw number of an open descriptor.
 *
 * @throws {ClosedError} When `fd` is closed.
 */
export function rawFd(fd: Fd): number {
  return rawOf(fd);
}

/** Returns and forgets the leaks the safety net found so far. */
export function takeFdLeaks(): FdLeak[] {
  return leaks.splice(0);
}

/** Returns the descriptors that are open right now, with their creators. */
export function openFds(): FdLeak[] {
  return [...open.values()].map((h) => ({ what: h.what, stack: h.stack }));
}
