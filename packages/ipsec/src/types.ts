// The public shapes of xfrm states, policies and their parts. The codec
// (states.ts, policies.ts) turns them into the kernel's structs
// (include/uapi/linux/xfrm.h) and back; the key scheme (scheme.ts) builds
// them for Cilium's layout.
import type { IpFamily } from "@dp/core";

/**
 * The IPsec protocol of a state or template (`XFRM_PROTO`/`IPPROTO_*`):
 * `"esp"` (50), `"ah"` (51), `"comp"` (108, IPcomp).
 */
export type XfrmProto = "esp" | "ah" | "comp";

/**
 * A protocol or mode number dp has no name for, kept as the kernel
 * reported it (a listed object of other software may carry one), so it is
 * never mistaken for a named one and can be passed back as it is.
 */
export type XfrmUnknownNumber = number;

/**
 * How a state wraps packets (`XFRM_MODE_*`): `"transport"` protects the
 * payload between the two hosts, `"tunnel"` wraps the whole packet in a
 * new outer header, `"beet"` is bound end-to-end tunnel mode.
 */
export type XfrmMode = "transport" | "tunnel" | "beet";

/**
 * A mark and the mask applied before comparing (`struct xfrm_mark`): a
 * state or policy with a mark only matches packets whose `skb->mark & mask`
 * equals `value & mask`.
 */
export interface XfrmMark {
  /** The mark value. */
  readonly value: number;
  /**
   * The bits that count.
   *
   * @default 0xffffffff
   */
  readonly mask?: number;
}

/**
 * The traffic a policy or state applies to (`struct xfrm_selector`).
 * Prefixes are CIDRs (`"10.0.0.0/24"`, `"fd00::/64"`); a bare address is a
 * host prefix. Both absent means any address of `family`.
 */
export interface XfrmSelector {
  /**
   * The address family.
   *
   * @default the family of `src` or `dst`, else 4
   */
  readonly family?: IpFamily;
  /**
   * The source prefix.
   *
   * @default any source (`0.0.0.0/0` or `::/0`)
   */
  readonly src?: string;
  /**
   * The destination prefix.
   *
   * @default any destination
   */
  readonly dst?: string;
  /**
   * The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
   *
   * @default any protocol (0)
   */
  readonly proto?: number;
  /**
   * The source port (with a TCP/UDP/SCTP `proto`); for ICMP the type; for
   * GRE (47) the high 16 bits of the GRE key (iproute2's `key`).
   *
   * @default any
   */
  readonly sport?: number;
  /**
   * The destination port; for ICMP the code; for GRE (47) the low 16 bits
   * of the GRE key.
   *
   * @default any
   */
  readonly dport?: number;
  /**
   * The interface index the selector is bound to.
   *
   * @default any interface (0)
   */
  readonly ifindex?: number;
}

/**
 * Limits after which a state or policy expires (`struct xfrm_lifetime_cfg`).
 * A soft limit sends an expire event so a key manager can re-key; a hard
 * limit deletes the state. Absent limits are infinite.
 */
export interface XfrmLifetime {
  /** Bytes after which a soft expire event is sent. */
  readonly softBytes?: bigint;
  /** Bytes after which the state is deleted. */
  readonly hardBytes?: bigint;
  /** Packets after which a soft expire event is sent. */
  readonly softPackets?: bigint;
  /** Packets after which the state is deleted. */
  readonly hardPackets?: bigint;
  /** Seconds after creation for the soft expire. */
  readonly softAddSeconds?: bigint;
  /** Seconds after creation for the hard expire. */
  readonly hardAddSeconds?: bigint;
  /** Seconds after first use for the soft expire. */
  readonly softUseSeconds?: bigint;
  /** Seconds after first use for the hard expire. */
  readonly hardUseSeconds?: bigint;
}

/** What a state or policy has used so far (`struct xfrm_lifetime_cur`). */
export interface XfrmLifetimeCurrent {
  /** Bytes processed. */
  readonly bytes: bigint;
  /** Packets processed. */
  readonly packets: bigint;
  /** When it was added, seconds since the epoch. */
  readonly addTime: bigint;
  /** When it was first used, seconds since the epoch (0: never). */
  readonly useTime: bigint;
}

/**
 * An AEAD algorithm with its key (`XFRMA_ALG_AEAD`, `struct
 * xfrm_algo_aead`). For `rfc4106(gcm(aes))` the key is the AES key followed
 * by the 4-byte salt: 20, 28 or 36 bytes.
 */
export interface XfrmAeadAlgorithm {
  /** The kernel crypto name, such as `"rfc4106(gcm(aes))"`. */
  readonly name: string;
  /** The key bytes (never logged, never in an error message). */
  readonly key: Uint8Array;
  /** The integrity check value length in bits (64, 96 or 128 for GCM). */
  readonly icvBits: number;
}

/** An encryption algorithm with its key (`XFRMA_ALG_CRYPT`, `struct xfrm_algo`), such as `"cbc(aes)"`. */
export interface XfrmCryptAlgorithm {
  /** The kernel crypto name. */
  readonly name: string;
  /** The key bytes (never logged, never in an error message). */
  readonly key: Uint8Array;
}

/**
 * An authentication algorithm with its key (`XFRMA_ALG_AUTH_TRUNC`,
 * `struct xfrm_algo_auth`), such as `"hmac(sha256)"`.
 */
export interface XfrmAuthAlgorithm {
  /** The kernel crypto name. */
  readonly name: string;
  /** The key bytes (never logged, never in an error message). */
  readonly key: Uint8Array;
  /**
   * The truncated ICV length in bits.
   *
   * @default the algorithm's standard truncation (128 for hmac(sha256), 96 for hmac(sha1))
   */
  readonly truncBits?: number;
}

/**
 * UDP encapsulation of ESP for NAT traversal (`XFRMA_ENCAP`, `struct
 * xfrm_encap_tmpl`).
 */
export interface XfrmEncap {
  /** `"espinudp"` (RFC 3948, port 4500), `"espinudp-nonike"` or `"espintcp"` (RFC 8229). */
  readonly type: "espinudp" | "espinudp-nonike" | "espintcp";
  /** The UDP source port. */
  readonly sport: number;
  /** The UDP destination port. */
  readonly dport: number;
  /**
   * The original address before NAT.
   *
   * @default the unspecified address of the state's family
   */
  readonly oa?: string;
}

/**
 * Flags of a state (`XFRM_STATE_*`): `"noecn"`, `"decap-dscp"`,
 * `"nopmtudisc"`, `"wildrecv"`, `"icmp"`, `"af-unspec"`, `"align4"`,
 * `"esn"` (set through {@link XfrmStateSpec.esn}).
 */
export type XfrmStateFlag =
  "noecn" | "decap-dscp" | "nopmtudisc" | "wildrecv" | "icmp" | "af-unspec" | "align4" | "esn";

/**
 * A security association to add or update (`XFRM_MSG_NEWSA`,
 * `XFRM_MSG_UPDSA`). The defaults are those of iproute2's `ip xfrm state
 * add`, so a spec and the matching command send the same request.
 */
export interface XfrmStateSpec {
  /** The tunnel or transport source address. */
  readonly src: string;
  /** The tunnel or transport destination address (with `spi` and `proto`, the state's identity). */
  readonly dst: string;
  /**
   * The protocol.
   *
   * @default "esp"
   */
  readonly proto?: XfrmProto | XfrmUnknownNumber;
  /** The security parameter index, 1 to 0xffffffff (0 is reserved). */
  readonly spi: number;
  /**
   * The request id that ties the state to policy templates.
   *
   * @default 0
   */
  readonly reqid?: number;
  /**
   * The mode.
   *
   * @default "transport"
   */
  readonly mode?: XfrmMode | XfrmUnknownNumber;
  /** An AEAD algorithm (excludes `crypt` and `auth`). */
  readonly aead?: XfrmAeadAlgorithm;
  /** An encryption algorithm (with `auth`). */
  readonly crypt?: XfrmCryptAlgorithm;
  /** An authentication algorithm. */
  readonly auth?: XfrmAuthAlgorithm;
  /**
   * The anti-replay window in packets, up to 4096 (above 32, or with
   * `esn`, it is sent as `XFRMA_REPLAY_ESN_VAL`, as iproute2 does).
   *
   * @default 0 (no replay protection), as `ip xfrm state`
   */
  readonly replayWindow?: number;
  /**
   * Extended (64-bit) sequence numbers (`XFRM_STATE_ESN` with
   * `XFRMA_REPLAY_ESN_VAL`).
   *
   * @default false
   */
  readonly esn?: boolean;
  /** State flags besides `esn`. */
  readonly flags?: readonly XfrmStateFlag[];
  /**
   * The traffic the state may carry.
   *
   * @default any traffic of the state's family
   */
  readonly selector?: XfrmSelector;
  /** Only packets with this mark use the state (`XFRMA_MARK`). */
  readonly mark?: XfrmMark;
  /** The mark set on packets after the transformation (`XFRMA_SET_MARK`, `XFRMA_SET_MARK_MASK`). */
  readonly outputMark?: XfrmMark;
  /** The xfrm interface id (`XFRMA_IF_ID`). */
  readonly ifId?: number;
  /** Expiry limits. */
  readonly lifetime?: XfrmLifetime;
  /** UDP encapsulation. */
  readonly encap?: XfrmEncap;
  /** The direction the state is restricted to (`XFRMA_SA_DIR`, Linux 6.10). */
  readonly dir?: "in" | "out";
}

/** Replay protection counters of a state (`XFRMA_REPLAY_VAL` or `XFRMA_REPLAY_ESN_VAL`). */
export interface XfrmReplayState {
  /** The last outbound sequence number used (low 32 bits). */
  readonly oseq: number;
  /** The highest inbound sequence number seen (low 32 bits). */
  readonly seq: number;
  /** The high 32 bits of the outbound sequence number (ESN; 0 otherwise). */
  readonly oseqHi: number;
  /** The high 32 bits of the inbound sequence number (ESN; 0 otherwise). */
  readonly seqHi: number;
  /** The replay window in packets. */
  readonly window: number;
}

/** Error counters of a state (`struct xfrm_stats`). */
export interface XfrmStateStats {
  /** Packets dropped because they fell outside the replay window. */
  readonly replayWindow: number;
  /** Packets dropped as replays. */
  readonly replay: number;
  /** Packets dropped because their integrity check failed. */
  readonly integrityFailed: number;
}

/**
 * A security association as the kernel reports it. The algorithms carry
 * their keys (the kernel returns them to root); pass a state back to
 * {@link XfrmStateSpec}-taking methods to re-install it.
 */
export interface XfrmState extends XfrmStateSpec {
  /** The address family of `src`/`dst`. */
  readonly family: IpFamily;
  /** The protocol (its number when dp has no name for it). */
  readonly proto: XfrmProto | XfrmUnknownNumber;
  /** The request id. */
  readonly reqid: number;
  /** The mode (its number when dp has no name for it). */
  readonly mode: XfrmMode | XfrmUnknownNumber;
  /** The replay window. */
  readonly replayWindow: number;
  /** The flags the kernel reports (including `"esn"`). */
  readonly flags: readonly XfrmStateFlag[];
  /** The selector with its defaults filled. */
  readonly selector: XfrmSelector;
  /** What the state has carried. */
  readonly current: XfrmLifetimeCurrent;
  /** Error counters. */
  readonly stats: XfrmStateStats;
  /** Sequence numbers and window, when the kernel sent them. */
  readonly replay?: XfrmReplayState;
  /** The sequence number of the `XFRM_MSG_ACQUIRE` that created a larval state (0 otherwise). */
  readonly seq: number;
  /** When the state last carried a packet, seconds since the epoch (`XFRMA_LASTUSED`), when the kernel sent it. */
  readonly lastUsed?: bigint;
}

/**
 * Names a state to get or delete (`struct xfrm_usersa_id`): destination,
 * SPI and protocol, plus the mark when states differ only by mark.
 */
export interface XfrmStateId {
  /** The destination address. */
  readonly dst: string;
  /** The SPI. */
  readonly spi: number;
  /**
   * The protocol.
   *
   * @default "esp"
   */
  readonly proto?: XfrmProto | XfrmUnknownNumber;
  /** The mark of the state. */
  readonly mark?: XfrmMark;
  /**
   * The source address (`XFRMA_SRCADDR`), as `ip xfrm state delete src`.
   * The kernel looks ESP, AH and IPcomp states up by destination, SPI and
   * protocol only.
   *
   * @default the unspecified address (sent, as iproute2 does)
   */
  readonly src?: string;
}

/** The direction a policy applies to (`XFRM_POLICY_IN`, `_OUT`, `_FWD`). */
export type XfrmDir = "in" | "out" | "fwd";

/**
 * A template of a policy (`struct xfrm_user_tmpl`): which state the
 * matching traffic must be transformed with.
 */
export interface XfrmTemplate {
  /**
   * The tunnel source (tunnel mode).
   *
   * @default the unspecified address
   */
  readonly src?: string;
  /**
   * The tunnel destination (tunnel mode).
   *
   * @default the unspecified address
   */
  readonly dst?: string;
  /**
   * The protocol.
   *
   * @default "esp"
   */
  readonly proto?: XfrmProto | XfrmUnknownNumber;
  /**
   * The SPI of the state to use.
   *
   * @default 0 (any)
   */
  readonly spi?: number;
  /**
   * The request id of the state to use.
   *
   * @default 0 (any)
   */
  readonly reqid?: number;
  /**
   * The mode.
   *
   * @default "transport"
   */
  readonly mode?: XfrmMode | XfrmUnknownNumber;
  /**
   * `"required"`: traffic without a matching state is dropped; `"use"`:
   * the transformation is optional (`optional` set, as Cilium's inbound
   * templates).
   *
   * @default "required"
   */
  readonly level?: "required" | "use";
  /**
   * The address family of `src`/`dst`.
   *
   * @default the family of `src` or `dst`, else the policy's
   */
  readonly family?: IpFamily;
}

/**
 * A security policy to add or update (`XFRM_MSG_NEWPOLICY`,
 * `XFRM_MSG_UPDPOLICY`). The defaults are those of iproute2's `ip xfrm
 * policy add`.
 */
export interface XfrmPolicySpec {
  /** The traffic the policy applies to. */
  readonly selector: XfrmSelector;
  /** The direction. */
  readonly dir: XfrmDir;
  /**
   * The priority: lower wins.
   *
   * @default 0
   */
  readonly priority?: number;
  /**
   * The policy's index; the kernel picks one when 0.
   *
   * @default 0
   */
  readonly index?: number;
  /**
   * `"allow"` (with templates: transform) or `"block"`.
   *
   * @default "allow"
   */
  readonly action?: "allow" | "block";
  /** Only packets with this mark match the policy (`XFRMA_MARK`). */
  readonly mark?: XfrmMark;
  /** The xfrm interface id (`XFRMA_IF_ID`). */
  readonly ifId?: number;
  /**
   * The transformations, outermost last.
   *
   * @default none (the policy allows or blocks in clear text)
   */
  readonly templates?: readonly XfrmTemplate[];
  /** Expiry limits. */
  readonly lifetime?: XfrmLifetime;
  /** `"localok"` and `"icmp"` (`XFRM_POLICY_LOCALOK`, `XFRM_POLICY_ICMP`). */
  readonly flags?: readonly ("localok" | "icmp")[];
  /**
   * The policy type (`XFRMA_POLICY_TYPE`).
   *
   * @default "main"
   */
  readonly type?: "main" | "sub";
}

/** A security policy as the kernel reports it. */
export interface XfrmPolicy extends XfrmPolicySpec {
  /** The selector with its family filled. */
  readonly selector: XfrmSelector & {
    /** The address family. */
    readonly family: IpFamily;
  };
  /** The priority. */
  readonly priority: number;
  /** The index the kernel gave it. */
  readonly index: number;
  /** The action. */
  readonly action: "allow" | "block";
  /** The templates. */
  readonly templates: readonly XfrmTemplate[];
  /** What the policy has matched. */
  readonly current: XfrmLifetimeCurrent;
}

/**
 * Names a policy to get or delete (`struct xfrm_userpolicy_id`): by
 * selector and direction, or by index; plus its mark.
 */
export type XfrmPolicyId =
  | {
      /** The selector. */
      readonly selector: XfrmSelector;
      /** The direction. */
      readonly dir: XfrmDir;
      /** The mark of the policy. */
      readonly mark?: XfrmMark;
      /** The xfrm interface id of the policy. */
      readonly ifId?: number;
      /** The policy type. */
      readonly type?: "main" | "sub";
    }
  | {
      /** The index. */
      readonly index: number;
      /** The direction. */
      readonly dir: XfrmDir;
      /** The mark of the policy. */
      readonly mark?: XfrmMark;
      /** The policy type. */
      readonly type?: "main" | "sub";
    };
