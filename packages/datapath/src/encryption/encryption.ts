// IPsec in the datapath: the key per remote node (dp_encrypt, bpf/include/dp/encrypt.h)
// and what a node reports about it. The xfrm states and policies that do the
// encryption are @dp/ipsec's; the datapath only marks the packets for them.
import { isNotSupported, type Netns } from "@dp/core";
import { MAX_KEY_ID, MAX_NODE_ID, readXfrmStat, type XfrmStat } from "@dp/ipsec";
import type { HashMap } from "@dp/maps";
import type { DpEncryptInfo } from "../_gen/datapath.ts";

/**
 * The key a node uses towards one remote node: the SPI (Cilium's key id)
 * that goes into the encrypt mark of packets to that node's pods.
 *
 * @example Key 3 towards node 2
 * ```ts no-run
 * import type { NodeKey } from "@dp/datapath";
 * const key: NodeKey = { nodeId: 2, spi: 3 };
 * ```
 */
export interface NodeKey {
  /** The remote node id, 1-65535 (the ipcache's `nodeId` of its pod prefixes). */
  readonly nodeId: number;
  /** The key id, 1-15: the SPI of the xfrm states towards the node. */
  readonly spi: number;
}

/**
 * The encryption part of `Node.status()`.
 *
 * @example Printing the status line
 * ```ts no-run
 * import type { EncryptionStatus } from "@dp/datapath";
 * declare const e: EncryptionStatus;
 * console.log(e.mode === "ipsec" ? `Encryption: IPsec (keys ${e.keys.map((k) => `${k.nodeId}:${k.spi}`).join(" ")})` : "Encryption: Disabled");
 * ```
 */
export interface EncryptionStatus {
  /** `"ipsec"` when the programs mark pod traffic to remote nodes for encryption. */
  readonly mode: "disabled" | "ipsec";
  /** The key per remote node (`dp_encrypt`), by node id. */
  readonly keys: readonly NodeKey[];
  /**
   * The xfrm error counters of the node's namespace that are not zero
   * (`/proc/net/xfrm_stat`, see `@dp/ipsec`'s `readXfrmStat`): packets the
   * xfrm layer dropped and why. Absent when encryption is disabled or the
   * kernel has no `CONFIG_XFRM_STATISTICS`.
   */
  readonly xfrmStat?: XfrmStat;
}

/**
 * Checks a remote node id.
 *
 * @param what The operation, for the message.
 * @param nodeId The id.
 * @returns The id.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer from 1 to 65535.
 * @internal
 */
export function checkNodeId(what: string, nodeId: unknown): number {
  if (typeof nodeId !== "number") throw new TypeError(`${what}: nodeId must be a number, got ${typeof nodeId}`);
  if (!Number.isInteger(nodeId) || nodeId < 1 || nodeId > MAX_NODE_ID)
    throw new RangeError(`${what}: nodeId ${nodeId} must be an integer from 1 to ${MAX_NODE_ID}`);
  return nodeId;
}

/**
 * Checks a key id.
 *
 * @param what The operation, for the message.
 * @param spi The key id.
 * @returns The key id.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer from 1 to 15.
 * @internal
 */
export function checkSpi(what: string, spi: unknown): number {
  if (typeof spi !== "number") throw new TypeError(`${what}: spi must be a number, got ${typeof spi}`);
  if (!Number.isInteger(spi) || spi < 1 || spi > MAX_KEY_ID)
    throw new RangeError(`${what}: spi ${spi} must be an integer from 1 to ${MAX_KEY_ID} (the key id)`);
  return spi;
}

/**
 * The entries of `dp_encrypt`, by node id.
 *
 * @param map The map.
 * @returns The keys.
 * @internal
 */
export function readNodeKeys(map: HashMap<number, DpEncryptInfo>): NodeKey[] {
  const out: NodeKey[] = [];
  for (const [nodeId, v] of map.entries()) out.push({ nodeId, spi: v.spi });
  return out.sort((a, b) => a.nodeId - b.nodeId);
}

/**
 * The non-zero xfrm error counters of a namespace.
 *
 * @param netns The namespace.
 * @returns The counters; undefined when the kernel does not count them.
 * @internal
 */
export function xfrmErrors(netns: Netns): XfrmStat | undefined {
  let stat: XfrmStat;
  try {
    stat = readXfrmStat({ netns });
  } catch (err) {
    if (isNotSupported(err)) return undefined;
    throw err;
  }
  return Object.fromEntries(Object.entries(stat).filter(([, v]) => v !== 0n));
}
