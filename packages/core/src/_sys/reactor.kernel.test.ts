import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { reactorState, setSys, type Sys, sys, watchReadable } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

const opened: number[] = [];
let restore: Sys | undefined;
afterEach(() => {
  for (const fd of opened.splice(0)) sys().close(fd);
  if (restore !== undefined) setSys(restore);
  restore = undefined;
});

function eventfd(): number {
  const fd = sys().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  expect(fd).toBeGreaterThanOrEqual(0);
  opened.push(fd);
  return fd;
}

function signalFd(fd: number): void {
  const one = new Uint8Array(8);
  one[0] = 1;
  expect(sys().write(fd, one, 8)).toBe(8);
}

function drainFd(fd: number): void {
  sys().read(fd, new Uint8Array(8), 8);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Counts `epoll_wait()` calls; install before the reactor's epoll set exists. */
function countWaits(): { calls: number } {
  const real = sys();
  const count = { calls: 0 };
  restore = setSys({
    ...real,
    epollWaitAsync(epfd, ready, timeout) {
      count.calls++;
      return real.epollWaitAsync(epfd, ready, timeout);
    },
  });
  return count;
}

describe("the reactor", () => {
  test("one epoll_wait() call serves many waiters; each wakes when its descriptor becomes readable", async () => {
    expect(reactorState().sources).toBe(0);
    const count = countWaits();
    const fds = Array.from({ length: 16 }, eventfd);
    const sources = fds.map((fd) => watchReadable(fd, "test eventfd"));
    try {
      const waits = sources.map((s) => s.wait());
      await sleep(20);
      expect(reactorState()).toEqual({ sources: 16, waiting: 16, armed: true });
      expect(count.calls).toBe(1);
      signalFd(fds[3]!);
      expect(await waits[3]).toBe(true);
      expect(reactorState()).toMatchObject({ waiting: 15, armed: true });
      for (const fd of fds) signalFd(fd);
      expect(await Promise.all(waits)).toEqual(fds.map(() => true));
      await sleep(10);
      expect(reactorState()).toEqual({ sources: 16, waiting: 0, armed: false });
    } finally {
      for (const s of sources) s.close();
    }
    expect(reactorState()).toEqual({ sources: 0, waiting: 0, armed: false });
  });

  test("data that arrived before the wait wakes it at once; a ready descriptor nobody waits for does not spin the worker", async () => {
    const count = countWaits();
    const ready = eventfd();
    const idle = eventfd();
    const r = watchReadable(ready, "ready eventfd");
    const i = watchReadable(idle, "idle eventfd");
    try {
      signalFd(ready);
      expect(await r.wait()).toBe(true);
      // Not read: still readable, so the next wait returns at once too.
      expect(await r.wait()).toBe(true);
      // Now someone waits on another descriptor for a while, with `ready`
      // readable all along and nobody waiting for it.
      const calls = count.calls;
      const stop = new AbortController();
      const waiting = i.wait(stop.signal);
      await sleep(100);
      expect(count.calls - calls).toBeLessThanOrEqual(2);
      stop.abort();
      expect(await waiting).toBe(false);
      drainFd(ready);
    } finally {
      r.close();
      i.close();
    }
  });

  test("abort and close end waits with false; the last one gone interrupts the epoll_wait() call", async () => {
    const a = watchReadable(eventfd(), "eventfd a");
    const b = watchReadable(eventfd(), "eventfd b");
    const stop = new AbortController();
    const wa = a.wait(stop.signal);
    const wb = b.wait();
    await sleep(10);
    expect(reactorState()).toEqual({ sources: 2, waiting: 2, armed: true });
    stop.abort();
    expect(await wa).toBe(false);
    expect(reactorState()).toMatchObject({ waiting: 1, armed: true });
    b.close();
    expect(await wb).toBe(false);
    expect(b.closed).toBe(true);
    expect(await b.wait()).toBe(false);
    await sleep(10);
    expect(reactorState()).toEqual({ sources: 1, waiting: 0, armed: false });
    expect(await a.wait(AbortSignal.abort())).toBe(false);
    a.close();
    expect(reactorState()).toEqual({ sources: 0, waiting: 0, armed: false });
  });

  test("a descriptor epoll cannot watch is a SyscallError naming it", async () => {
    const s = watchReadable(1_000_000, "a closed descriptor");
    try {
      await expect(s.wait()).rejects.toThrow(/^Cannot wait for a closed descriptor: EBADF/);
    } finally {
      s.close();
    }
  });
});
