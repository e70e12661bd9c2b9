// Cilium's IPsec layout: which packet marks select which states and
// policies, and the states and policies a node installs for each peer.
// Values follow pkg/datapath/linux/linux_defaults (RouteMarkEncrypt 0x0E00,
// RouteMarkDecrypt 0x0D00, IPsecMarkMaskOut 0xFFFFFF00, IPsecMarkMaskIn
// 0xFFFF0F00, OutputMarkMask 0xFFFFFF00, IPsecXFRMMarkSPIShift 12,
// IPsecFwdPriority 0x0B9F, DefaultReqID 1) and ipsec_linux.go.
//
//   31              16 15  12 11   8 7      0
//  +------------------+------+------+--------+
//  |  remote node id  | key  |magic |        |   magic 0xE encrypt, 0xD decrypt
//  +------------------+------+------+--------+
import { type IpFamily, parseCidr, parseIp } from "@dp/core";
import { deriveTunnelKey, type IpsecKey, MAX_KEY_ID } from "./keys.ts";
import type {
  XfrmAuthAlgorithm,
  XfrmCryptAlgorithm,
  XfrmMark,
  XfrmPolicySpec,
  XfrmSelector,
  XfrmStateSpec,
  XfrmTemplate,
} from "./types.ts";

/**
 * The mark values and masks of Cilium's IPsec scheme.
 *
 * - `encrypt` (`0x0E00`) and `decrypt` (`0x0D00`) in bits 8-11
 *   (`magicMask`) say what the datapath wants done to a packet;
 * - the key id sits in bits 12-15 (`keyShift`, `keyMask`) of encrypt marks;
 * - the remote node id sits in bits 16-31 (`nodeIdShift`, `nodeIdMask`);
 * - out states and policies match with `encryptMask` (`0xFFFFFF00`), in
 *   states with `decryptMask` (`0xFFFF0F00`); output marks are written
 *   with `outputMarkMask` (`0xFFFFFF00`), clearing node id and key id;
 * - `toProxy` (`0x0200`) marks decrypted packets headed to the L7 proxy.
 *
 * @example The encrypt mark of key 3 towards node 0x0102
 * ```ts
 * import assert from "node:assert/strict";
 * import { IPSEC_MARK } from "@dp/ipsec";
 *
 * const value = (0x0102 << IPSEC_MARK.nodeIdShift) | (3 << IPSEC_MARK.keyShift) | IPSEC_MARK.encrypt;
 * assert.equal(value >>> 0, 0x01023e00);
 * ```
 */
export const IPSEC_MARK: {
  /** The magic of packets to encrypt. */
  readonly encrypt: 0x0e00;
  /** The magic of packets to decrypt (and of decrypted packets). */
  readonly decrypt: 0x0d00;
  /** The magic of decrypted packets going to the proxy. */
  readonly toProxy: 0x0200;
  /** The magic bits. */
  readonly magicMask: 0x0f00;
  /** The shift of the key id. */
  readonly keyShift: 12;
  /** The key id bits. */
  readonly keyMask: 0xf000;
  /** The shift of the node id. */
  readonly nodeIdShift: 16;
  /** The node id bits. */
  readonly nodeIdMask: 0xffff0000;
  /** The mask of out states and policies: magic, key id and node id. */
  readonly encryptMask: 0xffffff00;
  /** The mask of in states: magic and node id. */
  readonly decryptMask: 0xffff0f00;
  /** The mask of output marks. */
  readonly outputMarkMask: 0xffffff00;
} = {
  encrypt: 0x0e00,
  decrypt: 0x0d00,
  toProxy: 0x0200,
  magicMask: 0x0f00,
  keyShift: 12,
  keyMask: 0xf000,
  nodeIdShift: 16,
  nodeIdMask: 0xffff0000,
  encryptMask: 0xffffff00,
  decryptMask: 0xffff0f00,
  outputMarkMask: 0xffffff00,
};

/** The request id of the scheme's states and templates (Cilium's `DefaultReqID`). */
export const IPSEC_REQID = 1;
/** The priority of the scheme's fwd policies (Cilium's `IPsecFwdPriority`, 2975). */
export const IPSEC_FWD_PRIORITY = 0x0b9f;
/** The priority of the default-drop out policies. */
export const IPSEC_DROP_PRIORITY = 100;
/** The replay window of per-tunnel (ESN) states. */
export const IPSEC_REPLAY_WINDOW = 1024;
/** The largest node id: it fills bits 16-31 of the mark. */
export const MAX_NODE_ID = 0xffff;

/** What a mark says in the scheme, from {@link parseIpsecMark}. */
export interface IpsecMarkInfo {
  /** `"encrypt"` (0x0E00), `"decrypt"` (0x0D00) or `"toProxy"` (0x0200). */
  readonly kind: "encrypt" | "decrypt" | "toProxy";
  /** The key id (bits 12-15); 0 when the mark does not match on it. */
  readonly keyId: number;
  /** The node id (bits 16-31); 0 when the mark does not match on it. */
  readonly nodeId: number;
}

function checkId(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number") throw new TypeError(`Invalid ${what}: expected a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`Invalid ${what} ${v}: must be an integer from ${min} to ${max}`);
  }
  return v;
}

/**
 * The mark of out states and policies: encrypt magic, key id, node id,
 * matched with {@link IPSEC_MARK}`.encryptMask`.
 *
 * @param keyId The key id, 1-15.
 * @param nodeId The remote node id, 0-65535.
 * @returns The mark and its mask.
 * @throws {TypeError} When an id is not a number.
 * @throws {RangeError} When an id is out of range.
 * @example Key 3 towards node 0xBEEF
 * ```ts
 * import assert from "node:assert/strict";
 * import { encryptMark } from "@dp/ipsec";
 *
 * assert.deepEqual(encryptMark(3, 0xbeef), { value: 0xbeef3e00, mask: 0xffffff00 });
 * ```
 */
export function encryptMark(keyId: number, nodeId: number): Required<XfrmMark> {
  checkId(keyId, "key id", 1, MAX_KEY_ID);
  checkId(nodeId, "node id", 0, MAX_NODE_ID);
  return {
    value: ((nodeId << IPSEC_MARK.nodeIdShift) | (keyId << IPSEC_MARK.keyShift) | IPSEC_MARK.encrypt) >>> 0,
    mask: IPSEC_MARK.encryptMask,
  };
}

/**
 * The mark of in states: decrypt magic and node id, matched with
 * {@link IPSEC_MARK}`.decryptMask` (the key id is in the SPI).
 *
 * @param nodeId The remote node id, 0-65535.
 * @returns The mark and its mask.
 * @throws {TypeError} When the id is not a number.
 * @throws {RangeError} When the id is out of range.
 * @example From node 0xBEEF
 * ```ts
 * import assert from "node:assert/strict";
 * import { decryptMark } from "@dp/ipsec";
 *
 * assert.deepEqual(decryptMark(0xbeef), { value: 0xbeef0d00, mask: 0xffff0f00 });
 * ```
 */
export function decryptMark(nodeId: number): Required<XfrmMark> {
  checkId(nodeId, "node id", 0, MAX_NODE_ID);
  return { value: ((nodeId << IPSEC_MARK.nodeIdShift) | IPSEC_MARK.decrypt) >>> 0, mask: IPSEC_MARK.decryptMask };
}

/**
 * Reads a state's or policy's mark in the scheme's terms.
 *
 * @param mark The mark, or undefined.
 * @returns The kind, key id and node id; undefined when the mark does not
 *   match on the magic bits or carries another magic.
 * @example An out policy's mark
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIpsecMark } from "@dp/ipsec";
 *
 * assert.deepEqual(parseIpsecMark({ value: 0xbeef3e00, mask: 0xffffff00 }), { kind: "encrypt", keyId: 3, nodeId: 0xbeef });
 * assert.equal(parseIpsecMark({ value: 0x100, mask: 0xffffffff }), undefined);
 * ```
 */
export function parseIpsecMark(mark: XfrmMark | undefined): IpsecMarkInfo | undefined {
  if (mark === undefined) return undefined;
  const mask = (mark.mask ?? 0xffffffff) >>> 0;
  if ((mask & IPSEC_MARK.magicMask) !== IPSEC_MARK.magicMask) return undefined;
  const magic = mark.value & IPSEC_MARK.magicMask;
  const kind =
    magic === IPSEC_MARK.encrypt
      ? "encrypt"
      : magic === IPSEC_MARK.decrypt
        ? "decrypt"
        : magic === IPSEC_MARK.toProxy
          ? "toProxy"
          : undefined;
  if (kind === undefined) return undefined;
  const keyId = (mask & IPSEC_MARK.keyMask) === IPSEC_MARK.keyMask ? (mark.value & IPSEC_MARK.keyMask) >>> 12 : 0;
  const nodeId =
    (mask & IPSEC_MARK.nodeIdMask) >>> 0 === IPSEC_MARK.nodeIdMask
      ? (mark.value >>> IPSEC_MARK.nodeIdShift) & 0xffff
      : 0;
  return { kind, keyId, nodeId };
}

/** A node of the mesh, as {@link buildPeerXfrm} sees it. */
export interface IpsecNode {
  /** The node id (1-65535) carried in the marks. */
  readonly id: number;
  /** The node's tunnel endpoint addresses: at most one IPv4 and one IPv6 address. */
  readonly ips: readonly string[];
  /** The node's pod CIDRs. */
  readonly podCidrs: readonly string[];
  /**
   * The node's boot id (`/proc/sys/kernel/random/boot_id`), needed for
   * per-tunnel keys.
   *
   * @default none (only keys without `+` can be used)
   */
  readonly bootId?: string;
}

/** Options for {@link buildPeerXfrm} and {@link buildMeshXfrm}. */
export interface IpsecSchemeOptions {
  /**
   * The request id of states and templates: the tag reconcile() uses to
   * know dp's objects.
   *
   * @default 1 ({@link IPSEC_REQID})
   */
  readonly reqid?: number;
  /**
   * Clear the mark after decryption (output mark 0), as Cilium does with
   * endpoint routes, instead of setting the decrypt magic.
   *
   * @default false
   */
  readonly zeroOutputMark?: boolean;
  /**
   * Also install the optional in policy for decrypted traffic headed to
   * the proxy (mark 0x0200/0x0F00).
   *
   * @default true
   */
  readonly proxyInPolicy?: boolean;
}

/** States and policies, the unit {@link buildPeerXfrm} builds and reconcile() installs. */
export interface IpsecXfrm {
  /** The states. */
  readonly states: readonly XfrmStateSpec[];
  /** The policies. */
  readonly policies: readonly XfrmPolicySpec[];
}

interface Endpoint {
  readonly text: string;
  readonly family: IpFamily;
}

function endpoints(node: IpsecNode, what: string): Map<IpFamily, Endpoint> {
  if (typeof node !== "object" || node === null) throw new TypeError(`Invalid ${what}: expected an object`);
  checkId(node.id, `${what}.id`, 1, MAX_NODE_ID);
  const ips: unknown = node.ips;
  const cidrs: unknown = node.podCidrs;
  if (!Array.isArray(ips) || ips.length === 0) {
    throw new TypeError(`Invalid ${what}.ips: expected a non-empty array of addresses`);
  }
  if (!Array.isArray(cidrs)) throw new TypeError(`Invalid ${what}.podCidrs: expected an array of CIDRs`);
  const out = new Map<IpFamily, Endpoint>();
  for (const [i, text] of node.ips.entries()) {
    let family: IpFamily;
    try {
      family = parseIp(text).family;
    } catch (err) {
      throw new SyntaxError(`Invalid ${what}.ips[${i}] ${JSON.stringify(text)}: not an IP address`, { cause: err });
    }
    if (out.has(family)) throw new RangeError(`Invalid ${what}.ips: two IPv${family} addresses; give one per family`);
    out.set(family, { text, family });
  }
  for (const [i, text] of node.podCidrs.entries()) {
    try {
      parseCidr(text);
    } catch (err) {
      throw new SyntaxError(`Invalid ${what}.podCidrs[${i}] ${JSON.stringify(text)}: not a CIDR`, { cause: err });
    }
  }
  return out;
}

function familyOf(cidr: string): IpFamily {
  return parseCidr(cidr).family;
}

function anyPrefix(family: IpFamily): string {
  return family === 4 ? "0.0.0.0/0" : "::/0";
}

function anyAddress(family: IpFamily): string {
  return family === 4 ? "0.0.0.0" : "::";
}

function stateKeys(key: IpsecKey): Pick<XfrmStateSpec, "aead" | "auth" | "crypt"> {
  if (key.aead !== undefined) return { aead: key.aead };
  const out: { auth?: XfrmAuthAlgorithm; crypt?: XfrmCryptAlgorithm } = {};
  if (key.auth !== undefined) out.auth = key.auth;
  if (key.crypt !== undefined) out.crypt = key.crypt;
  return out;
}

/**
 * The policies that depend only on the local node: one fwd policy per
 * family (any to any, optional template towards the local IP, priority
 * {@link IPSEC_FWD_PRIORITY}) and the in policies of each local pod CIDR
 * (decrypt magic 0x0D00/0x0F00 with a required template, plus the
 * optional proxy policy 0x0200/0x0F00). Every peer shares them, so their
 * templates name no source: the kernel then accepts a tunnel-mode state
 * from any peer (xfrm_state_addr_cmp skips an unspecified source), where
 * a peer's address would reject every other peer's packets
 * (XfrmInTmplMismatch).
 */
function inboundPolicies(
  local: Map<IpFamily, Endpoint>,
  localNode: IpsecNode,
  remote: Map<IpFamily, Endpoint>,
  reqid: number,
  proxy: boolean,
): XfrmPolicySpec[] {
  const out: XfrmPolicySpec[] = [];
  for (const [family, l] of local) {
    if (!remote.has(family)) continue;
    for (const cidr of localNode.podCidrs) {
      if (familyOf(cidr) !== family) continue;
      const selector: XfrmSelector = { family, src: anyPrefix(family), dst: cidr };
      const src = anyAddress(family);
      if (proxy) {
        out.push({
          selector,
          dir: "in",
          mark: { value: IPSEC_MARK.toProxy, mask: IPSEC_MARK.magicMask },
          templates: [{ src, dst: l.text, family, proto: "esp", mode: "tunnel", reqid, level: "use" }],
        });
      }
      out.push({
        selector,
        dir: "in",
        mark: { value: IPSEC_MARK.decrypt, mask: IPSEC_MARK.magicMask },
        templates: [{ src, dst: l.text, family, proto: "esp", mode: "tunnel", reqid, level: "required" }],
      });
    }
    out.push({
      selector: { family, src: anyPrefix(family), dst: anyPrefix(family) },
      dir: "fwd",
      priority: IPSEC_FWD_PRIORITY,
      templates: [{ dst: l.text, family, proto: "esp", mode: "tunnel", reqid, level: "use" }],
    });
  }
  return out;
}

/**
 * Builds the states and policies a node installs for one peer and one key,
 * as Cilium does (for each address family both nodes have):
 *
 * - an out state local→remote, SPI = key id, tunnel mode, mark
 *   {@link encryptMark}(key, remote id), output mark 0x0E00/0xFFFFFF00;
 * - an in state remote→local, SPI = key id, mark {@link decryptMark}(remote
 *   id), output mark 0x0D00/0xFFFFFF00 (0 with `zeroOutputMark`);
 * - an out policy per remote pod CIDR (any source), with the encrypt mark
 *   and a required template local→remote naming SPI and reqid;
 * - in policies per local pod CIDR (decrypt magic, required template;
 *   proxy magic, optional template) and a fwd policy (optional template),
 *   their templates with the unspecified source (`0.0.0.0` or `::`).
 *
 * Per-tunnel keys (`+`) are derived per direction ({@link deriveTunnelKey})
 * and use ESN with a replay window of {@link IPSEC_REPLAY_WINDOW}; other
 * keys are installed as given, without ESN or replay window.
 *
 * The in and fwd policies depend only on the local node: peers share them,
 * so their templates accept a state from any source. (Cilium gives the
 * decrypt in policy's template the peer's address and updates it per
 * peer, so it names only the last peer; dp leaves the source unspecified,
 * as Cilium does for the proxy in policy, so every peer's packets pass the
 * template check.) {@link buildMeshXfrm} removes the duplicates.
 *
 * @param local The local node.
 * @param remote The peer.
 * @param key The key (its id is the SPI).
 * @param options The reqid tag and output mark choices.
 * @returns The states and policies.
 * @throws {TypeError} When a node is malformed, or a per-tunnel key lacks a boot id.
 * @throws {RangeError} When a node id is out of range or a node has two addresses of one family.
 * @throws {SyntaxError} When an address or CIDR is unparsable.
 * @example Two nodes, one AEAD key
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildPeerXfrm, parseKeyFile } from "@dp/ipsec";
 *
 * const { current } = parseKeyFile("3 rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128");
 * const local = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
 * const remote = { id: 2, ips: ["192.168.0.2"], podCidrs: ["10.2.0.0/24"] };
 * const { states, policies } = buildPeerXfrm(local, remote, current);
 * assert.equal(states.length, 2);
 * assert.deepEqual(states[0]?.mark, { value: 0x00023e00, mask: 0xffffff00 });
 * assert.equal(policies.filter((p) => p.dir === "out").length, 1);
 * ```
 */
export function buildPeerXfrm(
  local: IpsecNode,
  remote: IpsecNode,
  key: IpsecKey,
  options: IpsecSchemeOptions = {},
): IpsecXfrm {
  const l = endpoints(local, "local node");
  const r = endpoints(remote, "remote node");
  checkId(key?.id, "key.id", 1, MAX_KEY_ID);
  const reqid = checkId(options.reqid ?? IPSEC_REQID, "options.reqid", 1, 0xffffffff);
  if (key.perTunnel) {
    if (local.bootId === undefined) throw new TypeError("Invalid local node.bootId: per-tunnel keys need the boot id");
    if (remote.bootId === undefined)
      throw new TypeError("Invalid remote node.bootId: per-tunnel keys need the boot id");
  }
  const states: XfrmStateSpec[] = [];
  const policies: XfrmPolicySpec[] = [];
  const esn = key.perTunnel ? { esn: true, replayWindow: IPSEC_REPLAY_WINDOW } : {};
  const decryptOutput = options.zeroOutputMark === true ? 0 : IPSEC_MARK.decrypt;
  for (const [family, le] of l) {
    const re = r.get(family);
    if (re === undefined) continue;
    const outKey = key.perTunnel
      ? deriveTunnelKey(key, { srcIp: le.text, dstIp: re.text, srcBootId: local.bootId!, dstBootId: remote.bootId! })
      : key;
    const inKey = key.perTunnel
      ? deriveTunnelKey(key, { srcIp: re.text, dstIp: le.text, srcBootId: remote.bootId!, dstBootId: local.bootId! })
      : key;
    states.push({
      src: le.text,
      dst: re.text,
      proto: "esp",
      spi: key.id,
      reqid,
      mode: "tunnel",
      ...stateKeys(outKey),
      ...esn,
      mark: encryptMark(key.id, remote.id),
      outputMark: { value: IPSEC_MARK.encrypt, mask: IPSEC_MARK.outputMarkMask },
    });
    states.push({
      src: re.text,
      dst: le.text,
      proto: "esp",
      spi: key.id,
      reqid,
      mode: "tunnel",
      ...stateKeys(inKey),
      ...esn,
      mark: decryptMark(remote.id),
      outputMark: { value: decryptOutput, mask: (IPSEC_MARK.outputMarkMask | IPSEC_MARK.nodeIdMask) >>> 0 },
    });
    const tmpl: XfrmTemplate = {
      src: le.text,
      dst: re.text,
      family,
      proto: "esp",
      spi: key.id,
      reqid,
      mode: "tunnel",
      level: "required",
    };
    for (const cidr of remote.podCidrs) {
      if (familyOf(cidr) !== family) continue;
      policies.push({
        selector: { family, src: anyPrefix(family), dst: cidr },
        dir: "out",
        mark: encryptMark(key.id, remote.id),
        templates: [tmpl],
      });
    }
  }
  policies.push(...inboundPolicies(l, local, r, reqid, options.proxyInPolicy !== false));
  return { states, policies };
}

/**
 * The catch-all out policies that drop packets carrying the encrypt magic
 * (0x0E00/0x0F00) when no keyed policy matches, so nothing marked for
 * encryption leaves in clear text while states and policies are replaced
 * (Cilium's default-drop policy, priority {@link IPSEC_DROP_PRIORITY}).
 *
 * @param families The address families in use.
 * @returns One block policy per family.
 * @example IPv4 only
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildDefaultDropPolicies } from "@dp/ipsec";
 *
 * const [drop] = buildDefaultDropPolicies([4]);
 * assert.equal(drop?.action, "block");
 * assert.deepEqual(drop?.mark, { value: 0x0e00, mask: 0x0f00 });
 * ```
 */
export function buildDefaultDropPolicies(families: readonly IpFamily[] = [4, 6]): XfrmPolicySpec[] {
  return [...new Set(families)].map((family) => {
    if (family !== 4 && family !== 6) throw new RangeError(`Invalid family ${String(family)}: must be 4 or 6`);
    return {
      selector: { family, src: anyPrefix(family), dst: anyPrefix(family) },
      dir: "out",
      priority: IPSEC_DROP_PRIORITY,
      action: "block",
      mark: { value: IPSEC_MARK.encrypt, mask: IPSEC_MARK.magicMask },
    };
  });
}

/** One peer of {@link buildMeshXfrm}: the node and the keys to install towards it. */
export interface IpsecPeer {
  /** The peer. */
  readonly node: IpsecNode;
  /**
   * The keys to install for the peer: in states for all of them; out
   * states and out policies only for `egressKeys`.
   */
  readonly keys: readonly IpsecKey[];
  /**
   * The ids of the keys that may encrypt towards the peer (those it has).
   *
   * @default every key in `keys`
   */
  readonly egressKeys?: readonly number[];
}

/**
 * Builds the whole desired set of a node: {@link buildPeerXfrm} for every
 * peer and key, out states and out policies only for the peer's
 * `egressKeys` (by default every key), the default-drop policies,
 * duplicates removed (shared in and fwd policies appear once).
 *
 * @param local The local node.
 * @param peers The peers with their keys.
 * @param options The reqid tag and output mark choices.
 * @returns The states and policies, ready for reconcile().
 * @throws {TypeError} As {@link buildPeerXfrm}.
 * @throws {RangeError} As {@link buildPeerXfrm}, when two peers share a node
 *   id, or when two built policies have the same direction, selector and
 *   mark but differ (the kernel would keep only one of them).
 * @throws {SyntaxError} As {@link buildPeerXfrm}.
 * @example Three nodes seen from node 1
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildMeshXfrm, parseKeyFile } from "@dp/ipsec";
 *
 * const { current } = parseKeyFile("3 rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128");
 * const local = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
 * const peers = [2, 3].map((id) => ({
 *   node: { id, ips: [`192.168.0.${id}`], podCidrs: [`10.${id}.0.0/24`] },
 *   keys: [current],
 * }));
 * const { states, policies } = buildMeshXfrm(local, peers);
 * assert.equal(states.length, 4);
 * assert.equal(policies.filter((p) => p.dir === "fwd").length, 1);
 * ```
 */
export function buildMeshXfrm(
  local: IpsecNode,
  peers: readonly IpsecPeer[],
  options: IpsecSchemeOptions = {},
): IpsecXfrm {
  const states: XfrmStateSpec[] = [];
  const policies = new Map<string, XfrmPolicySpec>();
  const families = new Set<IpFamily>();
  const ids = new Set<number>();
  for (const [i, peer] of peers.entries()) {
    if (ids.has(peer.node.id)) throw new RangeError(`Invalid peers[${i}].node.id ${peer.node.id}: used twice`);
    ids.add(peer.node.id);
    const egress = new Set(peer.egressKeys ?? peer.keys.map((k) => k.id));
    for (const key of peer.keys) {
      const built = buildPeerXfrm(local, peer.node, key, options);
      for (const s of built.states) {
        if (s.mark !== undefined && parseIpsecMark(s.mark)?.kind === "encrypt" && !egress.has(key.id)) continue;
        states.push(s);
        families.add(parseIp(s.dst).family);
      }
      for (const p of built.policies) {
        if (p.dir === "out" && !egress.has(key.id)) continue;
        addPolicy(policies, p, `peers[${i}]`);
      }
    }
  }
  for (const p of buildDefaultDropPolicies([...families].sort())) addPolicy(policies, p, "default drop");
  return { states, policies: [...policies.values()] };
}

/**
 * Adds a built policy unless an equal one is there; the kernel knows a
 * policy by direction, selector and mark, so two that share those but
 * differ (templates, priority, action) cannot both be installed.
 */
function addPolicy(policies: Map<string, XfrmPolicySpec>, p: XfrmPolicySpec, what: string): void {
  const id = policyKey(p);
  const prev = policies.get(id);
  if (prev === undefined) {
    policies.set(id, p);
    return;
  }
  if (policyContent(prev) !== policyContent(p)) {
    throw new RangeError(
      `Invalid ${what}: its ${p.dir} policy ${p.selector.src ?? "any"} -> ${p.selector.dst ?? "any"} has the direction, selector and mark of another built policy but differs from it`,
    );
  }
}

/** The identity of a built policy (direction, selector, mark), as the kernel knows it. */
function policyKey(p: XfrmPolicySpec): string {
  const s = p.selector;
  return [p.dir, s.family, s.src, s.dst, p.mark?.value, p.mark?.mask].join(" ");
}

/** What else a built policy says: priority, action and templates. */
function policyContent(p: XfrmPolicySpec): string {
  const t = (p.templates ?? []).map((x) =>
    [x.family, x.src, x.dst, x.proto, x.spi ?? 0, x.reqid, x.mode, x.level].join(" "),
  );
  return [p.priority ?? 0, p.action ?? "allow", ...t].join("|");
}
