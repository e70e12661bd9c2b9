/**
 * Cilium's default conntrack lifetimes, in seconds: how long an entry
 * lives after its last packet, by state. The datapath's `.rodata`
 * settings (`dp_ct_timeout_*` in `bpf/include/dp/config.h`) default to the
 * regular ones; the service lifetimes are Cilium's for service
 * connections (load balancing lands in a later issue).
 *
 * @example The lifetime of an established TCP connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { CT_TIMEOUTS } from "@dp/datapath";
 *
 * assert.equal(CT_TIMEOUTS.tcp, 6 * 60 * 60);
 * assert.equal(CT_TIMEOUTS.tcpFin, 10);
 * ```
 */
export const CT_TIMEOUTS = {
  /** `bpf-ct-timeout-regular-tcp`: TCP once a packet without SYN was seen (6 h). */
  tcp: 21600,
  /** `bpf-ct-timeout-regular-tcp-syn`: TCP while only SYN (and SYN-ACK) were seen. */
  tcpSyn: 60,
  /** `bpf-ct-timeout-regular-tcp-fin`: TCP after a FIN or RST. */
  tcpFin: 10,
  /** `bpf-ct-timeout-regular-any`: UDP, ICMP and other protocols. */
  any: 60,
  /** `bpf-ct-timeout-service-tcp`: established TCP to a service. */
  serviceTcp: 21600,
  /** `bpf-ct-timeout-service-tcp-grace`: TCP to a service whose backend went away. */
  serviceTcpGrace: 60,
  /** `bpf-ct-timeout-service-any`: non-TCP to a service. */
  serviceAny: 60,
} as const;

/** The lifetimes the datapath programs apply, in seconds; see {@link CT_TIMEOUTS}. */
export interface ConntrackTimeouts {
  /**
   * TCP once a packet without SYN was seen.
   *
   * @default 21600
   */
  readonly tcp?: number;
  /**
   * TCP while only SYN (and SYN-ACK) were seen.
   *
   * @default 60
   */
  readonly tcpSyn?: number;
  /**
   * TCP after a FIN or RST.
   *
   * @default 10
   */
  readonly tcpFin?: number;
  /**
   * UDP, ICMP and other protocols.
   *
   * @default 60
   */
  readonly any?: number;
}

/** The `.rodata` constants of the datapath objects that hold the conntrack lifetimes. */
export interface ConntrackTimeoutConstants {
  /** TCP established, seconds. */
  readonly dp_ct_timeout_tcp: number;
  /** TCP before a packet without SYN, seconds. */
  readonly dp_ct_timeout_syn: number;
  /** TCP after a FIN or RST, seconds. */
  readonly dp_ct_timeout_close: number;
  /** Everything but TCP, seconds. */
  readonly dp_ct_timeout_any: number;
}

const MAX_SECONDS = 0xffff_ffff;

/**
 * Checks conntrack lifetimes and gives the values of the datapath
 * objects' `.rodata` constants that hold them, to set in the object spec
 * before loading (`spec.constants.set(name, value)`). Missing lifetimes
 * take Cilium's defaults ({@link CT_TIMEOUTS}).
 *
 * @param timeouts Lifetimes in seconds.
 * @returns The constant values by name.
 * @throws {TypeError} When a lifetime is not a number.
 * @throws {RangeError} When a lifetime is not an integer from 1 to 2^32 - 1.
 * @example Shorter UDP lifetimes
 * ```ts
 * import assert from "node:assert/strict";
 * import { conntrackTimeoutConstants } from "@dp/datapath";
 *
 * assert.deepEqual(conntrackTimeoutConstants({ any: 30 }), {
 *   dp_ct_timeout_tcp: 21600,
 *   dp_ct_timeout_syn: 60,
 *   dp_ct_timeout_close: 10,
 *   dp_ct_timeout_any: 30,
 * });
 * assert.throws(() => conntrackTimeoutConstants({ tcp: 0 }), RangeError);
 * ```
 */
export function conntrackTimeoutConstants(timeouts: ConntrackTimeouts = {}): ConntrackTimeoutConstants {
  function check(name: keyof ConntrackTimeouts): number {
    const value = timeouts[name] ?? CT_TIMEOUTS[name];
    if (typeof value !== "number")
      throw new TypeError(`Invalid conntrack timeout "${name}": expected a number of seconds, got ${typeof value}`);
    if (!Number.isInteger(value) || value < 1 || value > MAX_SECONDS) {
      throw new RangeError(
        `Invalid conntrack timeout "${name}": expected whole seconds from 1 to ${MAX_SECONDS}, got ${value}`,
      );
    }
    return value;
  }
  return {
    dp_ct_timeout_tcp: check("tcp"),
    dp_ct_timeout_syn: check("tcpSyn"),
    dp_ct_timeout_close: check("tcpFin"),
    dp_ct_timeout_any: check("any"),
  };
}
