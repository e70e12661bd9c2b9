// Shared fixtures of the hooks kernel tests: two namespaces joined by a
// veth pair, and ping as a yes/no probe.
import { netns, type TestNetns, vethPair, type VethPair } from "@dp/core/testing";

/** Two namespaces joined by a veth pair, closed together. */
export interface NsPair {
  /** The first namespace, 10.0.0.1 on its veth end. */
  readonly a: TestNetns;
  /** The second namespace, 10.0.0.2 on its veth end. */
  readonly b: TestNetns;
  /** The veth pair. */
  readonly veth: VethPair;
  /** Deletes both namespaces. */
  [Symbol.dispose](): void;
}

/**
 * Makes two namespaces joined by a veth pair: a (10.0.0.1/24) and b (10.0.0.2/24).
 *
 * @param label A prefix for the namespace names.
 * @returns The pair; dispose it.
 */
export function nsPair(label: string): NsPair {
  const a = netns({ label: `${label}a` });
  const b = netns({ label: `${label}b` });
  try {
    const veth = vethPair(a, b, { addressA: "10.0.0.1/24", addressB: "10.0.0.2/24" });
    return {
      a,
      b,
      veth,
      [Symbol.dispose]() {
        b.close();
        a.close();
      },
    };
  } catch (err) {
    b.close();
    a.close();
    throw err;
  }
}

/**
 * Pings from a namespace.
 *
 * @param from Where ping runs.
 * @param address The destination.
 * @param count How many echo requests (0.2 s apart).
 * @returns Whether every request was answered.
 */
export function pings(from: TestNetns, address: string, count = 1): boolean {
  try {
    from.exec("ping", ["-c", String(count), "-i", "0.2", "-W", "1", address]);
    return true;
  } catch {
    return false;
  }
}

const WAIT = new Int32Array(new SharedArrayBuffer(4));

/**
 * Polls until a condition holds, for kernel work that finishes
 * asynchronously (a link whose last reference was its pin is released from
 * a work queue after the unpin).
 *
 * @param done The condition.
 * @param ms How long to wait at most.
 */
export function waitUntil(done: () => boolean, ms = 2000): void {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) Atomics.wait(WAIT, 0, 0, 20);
}
