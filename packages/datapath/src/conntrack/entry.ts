import { DpCtEntry, DpTuple } from "../_gen/datapath.ts";
import { addressText } from "./_addr.ts";

/**
 * The TCP states of a conntrack entry (`enum dp_ct_state` in
 * `bpf/include/dp/conntrack.h`) by number. Non-TCP entries are
 * `established` from their first packet.
 *
 * @example The name of state 2
 * ```ts
 * import assert from "node:assert/strict";
 * import { CT_STATES } from "@dp/datapath";
 *
 * assert.equal(CT_STATES[2], "established");
 * ```
 */
export const CT_STATES = {
  /** Conntrack state 0: `none`. */
  0: "none",
  /** Conntrack state 1: `syn-sent`. */
  1: "syn-sent",
  /** Conntrack state 2: `established`. */
  2: "established",
  /** Conntrack state 3: `closing`. */
  3: "closing",
} as const;

/** A conntrack state name, see {@link CT_STATES}. */
export type ConntrackState = (typeof CT_STATES)[keyof typeof CT_STATES];

/**
 * The flags of a conntrack entry (`DP_CT_F_*`) by bit.
 *
 * @example Bit 2 is a FIN from the initiator
 * ```ts
 * import assert from "node:assert/strict";
 * import { CT_FLAGS } from "@dp/datapath";
 *
 * assert.equal(CT_FLAGS[2], "tx-closing");
 * ```
 */
export const CT_FLAGS = {
  /** Conntrack flag bit 1: `seen-non-syn`. */
  1: "seen-non-syn",
  /** Conntrack flag bit 2: `tx-closing`. */
  2: "tx-closing",
  /** Conntrack flag bit 4: `rx-closing`. */
  4: "rx-closing",
  /** Conntrack flag bit 8: `rst`. */
  8: "rst",
} as const;

/** A conntrack flag name, see {@link CT_FLAGS}. */
export type ConntrackFlag = (typeof CT_FLAGS)[keyof typeof CT_FLAGS];

/**
 * TCP header flags by bit, as recorded in the entries' flags seen from
 * each side.
 *
 * @example SYN and ACK
 * ```ts
 * import assert from "node:assert/strict";
 * import { TCP_FLAGS } from "@dp/datapath";
 *
 * assert.deepEqual([TCP_FLAGS[2], TCP_FLAGS[16]], ["SYN", "ACK"]);
 * ```
 */
export const TCP_FLAGS = {
  /** Tcp flag bit 1: `FIN`. */
  1: "FIN",
  /** Tcp flag bit 2: `SYN`. */
  2: "SYN",
  /** Tcp flag bit 4: `RST`. */
  4: "RST",
  /** Tcp flag bit 8: `PSH`. */
  8: "PSH",
  /** Tcp flag bit 16: `ACK`. */
  16: "ACK",
  /** Tcp flag bit 32: `URG`. */
  32: "URG",
  /** Tcp flag bit 64: `ECE`. */
  64: "ECE",
  /** Tcp flag bit 128: `CWR`. */
  128: "CWR",
} as const;

/** A TCP flag name, see {@link TCP_FLAGS}. */
export type TcpFlagName = (typeof TCP_FLAGS)[keyof typeof TCP_FLAGS];

/** Which policy scope an entry records: the initiator's egress or the responder's ingress. */
export type ConntrackScope = "ingress" | "egress";

/** Which conntrack map an entry is in. */
export type ConntrackMapName = "tcp" | "any";

/**
 * One conntrack entry, decoded: the tuple of the connection's first packet
 * (the initiator is the source), the policy scope, state and counters.
 */
export interface ConntrackEntry {
  /** `dp_ct_tcp` or `dp_ct_any`. */
  readonly map: ConntrackMapName;
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The L4 protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...). */
  readonly protocol: number;
  /** The initiator's address. */
  readonly saddr: string;
  /** The responder's address. */
  readonly daddr: string;
  /** The initiator's port; for ICMP echo 0 (a request) or the identifier (a reply). */
  readonly sport: number;
  /** The responder's port; for ICMP echo the identifier of a request. */
  readonly dport: number;
  /** The policy scope the entry was created in. */
  readonly scope: ConntrackScope;
  /** The state. */
  readonly state: ConntrackState;
  /** The flags that are set. */
  readonly flags: readonly ConntrackFlag[];
  /** TCP flags seen from the initiator. */
  readonly txFlagsSeen: readonly TcpFlagName[];
  /** TCP flags seen from the responder. */
  readonly rxFlagsSeen: readonly TcpFlagName[];
  /** When the entry expires: nanoseconds of `CLOCK_MONOTONIC` (`process.hrtime.bigint()`). */
  readonly expires: bigint;
  /** When it was created, same clock. */
  readonly created: bigint;
  /** Packets from the initiator. */
  readonly txPackets: bigint;
  /** Bytes from the initiator. */
  readonly txBytes: bigint;
  /** Packets from the responder. */
  readonly rxPackets: bigint;
  /** Bytes from the responder. */
  readonly rxBytes: bigint;
  /** The initiator's security identity. */
  readonly srcIdentity: number;
  /** Reserved for services: 0. */
  readonly revNatIndex: number;
  /** Reserved for L7 redirects: 0. */
  readonly proxyPort: number;
}

function bitNames<N extends string>(table: Readonly<Record<number, N>>, bits: number): N[] {
  const out: N[] = [];
  for (const [bit, name] of Object.entries(table)) if ((bits & Number(bit)) !== 0) out.push(name);
  return out;
}

/**
 * Builds the friendly entry from the decoded key and value.
 *
 * @internal
 */
export function toConntrackEntry(map: ConntrackMapName, key: DpTuple, value: DpCtEntry): ConntrackEntry {
  const family = key.family === 4 ? 4 : 6;
  return {
    map,
    family,
    protocol: key.nexthdr,
    saddr: addressText(key.saddr, family),
    daddr: addressText(key.daddr, family),
    sport: key.sport,
    dport: key.dport,
    scope: key.scope === 1 ? "ingress" : "egress",
    state: CT_STATES[value.state as keyof typeof CT_STATES] ?? "none",
    flags: bitNames(CT_FLAGS, value.flags),
    txFlagsSeen: bitNames(TCP_FLAGS, value.tx_flags_seen),
    rxFlagsSeen: bitNames(TCP_FLAGS, value.rx_flags_seen),
    expires: value.expires,
    created: value.created,
    txPackets: value.tx_packets,
    txBytes: value.tx_bytes,
    rxPackets: value.rx_packets,
    rxBytes: value.rx_bytes,
    srcIdentity: value.src_identity,
    revNatIndex: value.rev_nat_index,
    proxyPort: value.proxy_port,
  };
}

function view(bytes: Uint8Array, size: number, what: string): DataView {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError(`Invalid conntrack ${what}: expected a Uint8Array, got ${typeof bytes}`);
  if (bytes.length !== size)
    throw new RangeError(`Invalid conntrack ${what}: expected ${size} bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes one conntrack map entry: a `struct dp_tuple` key (40 bytes) and
 * a `struct dp_ct_entry` value (64 bytes), in the host byte order the
 * maps use (ports in network order). The map is `tcp` for TCP tuples.
 *
 * @param key The key bytes.
 * @param value The value bytes.
 * @returns The entry.
 * @throws {TypeError} When key or value is not a `Uint8Array`.
 * @throws {RangeError} When their sizes are not the layouts'.
 * @example An established TCP entry
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeConntrackEntry } from "@dp/datapath";
 *
 * const key = new Uint8Array(40);
 * key.set([0xff, 0xff, 10, 0, 0, 1], 10);   // saddr ::ffff:10.0.0.1
 * key.set([0xff, 0xff, 10, 0, 0, 2], 26);   // daddr ::ffff:10.0.0.2
 * key.set([0x9c, 0x40, 0, 80, 6, 4, 2], 32); // ports 40000 → 80, TCP, IPv4, egress scope
 * const value = new Uint8Array(64);
 * new DataView(value.buffer).setBigUint64(0, 5_000_000_000n, true); // expires
 * value.set([2, 1], 56);                     // established, seen a packet without SYN
 * const entry = decodeConntrackEntry(key, value);
 * assert.equal(`${entry.saddr}:${entry.sport} -> ${entry.daddr}:${entry.dport}`, "10.0.0.1:40000 -> 10.0.0.2:80");
 * assert.equal(entry.state, "established");
 * assert.equal(entry.scope, "egress");
 * assert.equal(entry.expires, 5_000_000_000n);
 * ```
 */
export function decodeConntrackEntry(key: Uint8Array, value: Uint8Array): ConntrackEntry {
  const k = DpTuple.decode(view(key, DpTuple.size, "key"), 0);
  const v = DpCtEntry.decode(view(value, DpCtEntry.size, "value"), 0);
  return toConntrackEntry(k.nexthdr === 6 ? "tcp" : "any", k, v);
}
