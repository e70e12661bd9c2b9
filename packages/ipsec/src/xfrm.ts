import { type Netns, type NetlinkSocket, NLM_F, openNetlink, parseNetlinkAttributes } from "@dp/core";
import type { XfrmContext } from "./_context.ts";
import { XFRM_MSG, XFRMA_SAD, XFRMA_SPD } from "./_uapi.ts";
import { Policies } from "./policies.ts";
import { States } from "./states.ts";

/** Options for {@link openXfrm}. */
export interface OpenXfrmOptions {
  /**
   * The network namespace to manage.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
}

/** The security association database's size (`ip xfrm state count`, `XFRM_MSG_GETSADINFO`). */
export interface XfrmSadInfo {
  /** How many states there are (`XFRMA_SAD_CNT`). */
  readonly count: number;
  /** The state hash's current buckets (`XFRMA_SAD_HINFO` `sadhcnt`). */
  readonly hashBuckets: number;
  /** The most buckets the state hash may grow to (`sadhmcnt`). */
  readonly hashMaxBuckets: number;
}

/** The prefix lengths up to which policies are hashed rather than kept in a list (`struct xfrmu_spdhthresh`). */
export interface XfrmSpdHashThreshold {
  /** The local (source for out, destination for in) prefix length. */
  readonly local: number;
  /** The remote prefix length. */
  readonly remote: number;
}

/** The security policy database's size (`ip xfrm policy count`, `XFRM_MSG_GETSPDINFO`). */
export interface XfrmSpdInfo {
  /** Inbound policies. */
  readonly in: number;
  /** Outbound policies. */
  readonly out: number;
  /** Forward policies. */
  readonly fwd: number;
  /** Inbound per-socket policies. */
  readonly inSocket: number;
  /** Outbound per-socket policies. */
  readonly outSocket: number;
  /** Forward per-socket policies. */
  readonly fwdSocket: number;
  /** The policy hash's current buckets (`spdhcnt`). */
  readonly hashBuckets: number;
  /** The most buckets the policy hash may grow to (`spdhmcnt`). */
  readonly hashMaxBuckets: number;
  /** The IPv4 hash thresholds, when the kernel sent them. */
  readonly ipv4Threshold?: XfrmSpdHashThreshold;
  /** The IPv6 hash thresholds, when the kernel sent them. */
  readonly ipv6Threshold?: XfrmSpdHashThreshold;
}

function u32s(data: Uint8Array, n: number): number[] {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Array.from({ length: n }, (_, i) => (i * 4 + 4 <= data.length ? dv.getUint32(i * 4, true) : 0));
}

/**
 * Decodes an `XFRM_MSG_NEWSADINFO` payload (a u32 of flags, then attributes).
 *
 * @param payload The message payload.
 * @returns The counts.
 * @example Decoding a reply
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSadInfo } from "@dp/ipsec";
 *
 * const payload = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 8, 0, 1, 0, 3, 0, 0, 0, 12, 0, 2, 0, 8, 0, 0, 0, 0, 0, 16, 0]);
 * assert.deepEqual(decodeSadInfo(payload), { count: 3, hashBuckets: 8, hashMaxBuckets: 1048576 });
 * ```
 */
export function decodeSadInfo(payload: Uint8Array): XfrmSadInfo {
  let count = 0;
  let hashBuckets = 0;
  let hashMaxBuckets = 0;
  for (const a of parseNetlinkAttributes(payload.subarray(4))) {
    if (a.type === XFRMA_SAD.CNT) [count = 0] = u32s(a.data, 1);
    else if (a.type === XFRMA_SAD.HINFO) [hashBuckets = 0, hashMaxBuckets = 0] = u32s(a.data, 2);
  }
  return { count, hashBuckets, hashMaxBuckets };
}

/**
 * Decodes an `XFRM_MSG_NEWSPDINFO` payload (a u32 of flags, then attributes).
 *
 * @param payload The message payload.
 * @returns The counts.
 * @example Decoding a reply with one outbound policy
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSpdInfo } from "@dp/ipsec";
 *
 * const info = new Uint8Array(4 + 28);
 * const dv = new DataView(info.buffer);
 * dv.setUint16(4, 28, true);
 * dv.setUint16(6, 1, true);
 * dv.setUint32(12, 1, true);
 * assert.equal(decodeSpdInfo(info).out, 1);
 * ```
 */
export function decodeSpdInfo(payload: Uint8Array): XfrmSpdInfo {
  let counts = [0, 0, 0, 0, 0, 0];
  let hash = [0, 0];
  let ipv4Threshold: XfrmSpdHashThreshold | undefined;
  let ipv6Threshold: XfrmSpdHashThreshold | undefined;
  for (const a of parseNetlinkAttributes(payload.subarray(4))) {
    if (a.type === XFRMA_SPD.INFO) counts = u32s(a.data, 6);
    else if (a.type === XFRMA_SPD.HINFO) hash = u32s(a.data, 2);
    else if (a.type === XFRMA_SPD.IPV4_HTHRESH && a.data.length >= 2)
      ipv4Threshold = { local: a.data[0] as number, remote: a.data[1] as number };
    else if (a.type === XFRMA_SPD.IPV6_HTHRESH && a.data.length >= 2)
      ipv6Threshold = { local: a.data[0] as number, remote: a.data[1] as number };
  }
  const [inC = 0, outC = 0, fwdC = 0, inS = 0, outS = 0, fwdS = 0] = counts;
  const [hashBuckets = 0, hashMaxBuckets = 0] = hash;
  return {
    in: inC,
    out: outC,
    fwd: fwdC,
    inSocket: inS,
    outSocket: outS,
    fwdSocket: fwdS,
    hashBuckets,
    hashMaxBuckets,
    ...(ipv4Threshold === undefined ? {} : { ipv4Threshold }),
    ...(ipv6Threshold === undefined ? {} : { ipv6Threshold }),
  };
}

/**
 * A handle on one network namespace's IPsec state: security associations
 * ({@link Xfrm.states}) and policies ({@link Xfrm.policies}). It owns one
 * `NETLINK_XFRM` socket bound to the namespace; `close()` closes it and
 * removes nothing it installed.
 *
 * @example Counting policies
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using x = openXfrm({ netns: ns.ns });
 * x.policies.add({ selector: { dst: "10.1.0.0/16" }, dir: "out" });
 * assert.equal(x.spdInfo().out, 1);
 * ```
 */
export class Xfrm {
  /** The managed namespace, or undefined for the caller's. */
  readonly netns: Netns | undefined;
  /** Security associations (`ip xfrm state`). */
  readonly states: States;
  /** Security policies (`ip xfrm policy`). */
  readonly policies: Policies;
  #nl: NetlinkSocket;

  /**
   * Wraps an xfrm netlink socket.
   *
   * @internal Opened by {@link openXfrm}.
   * @param nl The socket, now owned by the handle.
   * @param netns Its namespace.
   */
  constructor(nl: NetlinkSocket, netns: Netns | undefined) {
    this.#nl = nl;
    this.netns = netns;
    const ctx: XfrmContext = { nl, netns };
    this.states = new States(ctx);
    this.policies = new Policies(ctx);
  }

  /** Whether {@link Xfrm.close} was called. */
  get closed(): boolean {
    return this.#nl.closed;
  }

  /**
   * Reads the SAD's size (`ip xfrm state count`).
   *
   * @returns The number of states and the hash table's size.
   * @throws {NetlinkError} When the kernel refuses.
   * @example An empty namespace
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * assert.equal(x.sadInfo().count, 0);
   * ```
   */
  sadInfo(): XfrmSadInfo {
    return decodeSadInfo(
      this.#info(XFRM_MSG.GETSADINFO, XFRM_MSG.NEWSADINFO, "read xfrm SAD info", "XFRM_MSG_GETSADINFO"),
    );
  }

  /**
   * Reads the SPD's size (`ip xfrm policy count`).
   *
   * @returns The policies per direction, the hash table's size and thresholds.
   * @throws {NetlinkError} When the kernel refuses.
   * @example An empty namespace
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * assert.deepEqual([x.spdInfo().in, x.spdInfo().out, x.spdInfo().fwd], [0, 0, 0]);
   * ```
   */
  spdInfo(): XfrmSpdInfo {
    return decodeSpdInfo(
      this.#info(XFRM_MSG.GETSPDINFO, XFRM_MSG.NEWSPDINFO, "read xfrm SPD info", "XFRM_MSG_GETSPDINFO"),
    );
  }

  /** Closes the handle's socket. Calling it again does nothing. */
  close(): void {
    this.#nl.close();
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #info(type: number, reply: number, what: string, op: string): Uint8Array {
    const nl = this.#nl;
    const w = nl.writer();
    // As iproute2: the payload is a u32 of flags, all set.
    w.begin(type, NLM_F.REQUEST, nl.nextSeq()).u32(0xffff_ffff);
    w.end();
    const m = nl.request(w, what, op).find((r) => r.type === reply);
    if (m === undefined) throw new Error(`Cannot ${what}: the kernel sent no reply`);
    return m.payload;
  }
}

/**
 * Opens an xfrm handle on a network namespace.
 *
 * @param options The namespace.
 * @returns The handle; close it with `close()` or `using` (TypeScript or Node 24+).
 * @throws {SyscallError} When the xfrm netlink socket cannot be opened.
 * @example A handle on a fresh namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using x = openXfrm({ netns: ns.ns });
 * assert.deepEqual(x.policies.list(), []);
 * ```
 */
export function openXfrm(options: OpenXfrmOptions = {}): Xfrm {
  return new Xfrm(openNetlink("xfrm", options.netns === undefined ? {} : { netns: options.netns }), options.netns);
}
