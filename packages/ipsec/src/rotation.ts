// Key rotation: a new key is installed next to the old ones, egress
// towards a peer moves to the most recent key both nodes have, and a
// superseded key is removed after a delay. Pure logic with an injected
// clock: the caller publishes keyIds, feeds in what the peers publish,
// reconciles the desired set and programs the egress key per peer.
import { type IpsecKey, type IpsecKeyFile, sameKeyMaterial } from "./keys.ts";
import { buildMeshXfrm, type IpsecNode, type IpsecSchemeOptions, type IpsecXfrm } from "./scheme.ts";

/** Cilium's default `--ipsec-key-rotation-duration`: 5 minutes. */
const DEFAULT_REMOVAL_DELAY_MS = 5 * 60 * 1000;

/** Options for {@link KeyRotation}. */
export interface KeyRotationOptions {
  /**
   * How long a superseded key stays installed, in milliseconds: long
   * enough for every peer to load the new key and for packets in flight
   * with the old one to drain.
   *
   * @default 300000 (5 minutes, as Cilium's `--ipsec-key-rotation-duration`)
   */
  readonly removalDelayMs?: number;
  /**
   * The clock, in milliseconds.
   *
   * @default Date.now
   */
  readonly now?: () => number;
}

/** What a peer publishes about itself: its node and the key ids it has installed. */
export interface PeerKeys {
  /** The peer. */
  readonly node: IpsecNode;
  /** The ids of the keys the peer has installed (its {@link KeyRotation.keyIds}). */
  readonly keyIds: readonly number[];
}

/**
 * A change {@link KeyRotation} made or found: a key installed, a peer's
 * egress key switched, a key removed after its delay, or a peer left
 * without any key in common (its traffic is dropped, never sent in clear).
 */
export type RotationAction =
  | {
      /** A key was installed next to the existing ones. */
      readonly kind: "install";
      /** Its id. */
      readonly keyId: number;
    }
  | {
      /** The key encrypting towards a peer changed. */
      readonly kind: "egress";
      /** The peer's node id. */
      readonly nodeId: number;
      /** The previous key id (undefined: none). */
      readonly from: number | undefined;
      /** The new key id. */
      readonly to: number;
    }
  | {
      /** A superseded key was removed after the delay. */
      readonly kind: "remove";
      /** Its id. */
      readonly keyId: number;
    }
  | {
      /** A peer has no key this node has: nothing can be encrypted towards it. */
      readonly kind: "stalled";
      /** The peer's node id. */
      readonly nodeId: number;
      /** The key ids the peer published. */
      readonly peerKeyIds: readonly number[];
    };

/** The result of {@link KeyRotation.plan}. */
export interface RotationPlan {
  /** The states and policies to install (reconcile them). */
  readonly desired: IpsecXfrm;
  /** What changed since the previous plan. */
  readonly actions: readonly RotationAction[];
  /** The key id encrypting towards each peer, by node id (peers without a common key are absent). */
  readonly egress: ReadonlyMap<number, number>;
  /** The key ids this node has now: publish them to the peers. */
  readonly keyIds: readonly number[];
  /** When the next superseded key is due for removal (clock milliseconds), or undefined. */
  readonly nextRemovalAt: number | undefined;
}

interface Installed {
  readonly key: IpsecKey;
  readonly order: number;
  supersededAt: number | undefined;
}

/**
 * Tracks the keys of one node through rotations. `rotate()` (or `load()`)
 * installs a key next to the old ones; {@link KeyRotation.plan} turns the
 * keys and what each peer publishes into the desired states and policies:
 *
 * - in states for every installed key, so a peer may encrypt with any of them;
 * - out states and out policies only for keys the peer also has, so
 *   nothing is encrypted with a key the peer cannot decrypt;
 * - the egress key per peer is the most recent key both nodes have
 *   (recency is installation order, so ids wrapping from 15 to 1 work);
 * - a key superseded by a newer one is removed `removalDelayMs` after it
 *   was superseded, wherever the peers are (a peer that has not loaded a
 *   newer key by then is reported `"stalled"` and its traffic dropped).
 *
 * @example Rotating from key 1 to key 2 with a fake clock
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyRotation, parseKeyFile } from "@dp/ipsec";
 *
 * let now = 0;
 * const rot = new KeyRotation({ removalDelayMs: 1000, now: () => now });
 * const k = (id: number) => parseKeyFile(`${id} rfc4106(gcm(aes)) 0x${"11".repeat(20)} 128`).current;
 * const local = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
 * const peer = { id: 2, ips: ["192.168.0.2"], podCidrs: ["10.2.0.0/24"] };
 * rot.rotate(k(1));
 * rot.rotate(k(2));
 * assert.equal(rot.plan(local, [{ node: peer, keyIds: [1] }]).egress.get(2), 1);
 * assert.equal(rot.plan(local, [{ node: peer, keyIds: [1, 2] }]).egress.get(2), 2);
 * now = 1000;
 * assert.deepEqual(rot.plan(local, [{ node: peer, keyIds: [2] }]).keyIds, [2]);
 * ```
 */
export class KeyRotation {
  readonly #delay: number;
  readonly #now: () => number;
  readonly #keys: Installed[] = [];
  readonly #egress = new Map<number, number>();
  readonly #stalled = new Set<number>();
  #order = 0;
  #pending: RotationAction[] = [];

  /**
   * Creates an empty key set.
   *
   * @param options The removal delay and the clock.
   * @throws {RangeError} When the delay is negative or not finite.
   */
  constructor(options: KeyRotationOptions = {}) {
    const delay = options.removalDelayMs ?? DEFAULT_REMOVAL_DELAY_MS;
    if (typeof delay !== "number" || !Number.isFinite(delay) || delay < 0) {
      throw new RangeError(
        `Invalid removalDelayMs ${String(delay)}: must be a finite number of milliseconds, 0 or more`,
      );
    }
    this.#delay = delay;
    this.#now = options.now ?? Date.now;
  }

  /** The installed keys, oldest first. */
  get keys(): readonly IpsecKey[] {
    return this.#keys.map((k) => k.key);
  }

  /** The most recently installed key, or undefined before the first. */
  get current(): IpsecKey | undefined {
    return this.#keys.at(-1)?.key;
  }

  /** The ids of the installed keys, oldest first: what this node publishes. */
  get keyIds(): readonly number[] {
    return this.#keys.map((k) => k.key.id);
  }

  /**
   * Installs a key next to the installed ones and makes it current; the
   * previous current key is superseded now and removed after the delay.
   * Installing the current key again changes nothing.
   *
   * @param key The new key.
   * @returns The `"install"` action, or nothing when the key was installed already.
   * @throws {RangeError} When the id is installed with other key bytes (a
   *   changed key needs a new id) or is installed and superseded (wait for
   *   its removal).
   */
  rotate(key: IpsecKey): RotationAction[] {
    if (typeof key !== "object" || key === null) throw new TypeError("Invalid key: expected an IpsecKey");
    const same = this.#keys.find((k) => k.key.id === key.id);
    if (same !== undefined) {
      if (!sameKeyMaterial(same.key, key)) {
        throw new RangeError(
          `Invalid key ${key.id}: key id ${key.id} is installed with other key bytes; a changed key needs a new id`,
        );
      }
      if (same === this.#keys.at(-1)) return [];
      throw new RangeError(`Invalid key ${key.id}: key id ${key.id} is installed and superseded; use a new id`);
    }
    const now = this.#now();
    const previous = this.#keys.at(-1);
    if (previous !== undefined) previous.supersededAt = now;
    this.#keys.push({ key, order: ++this.#order, supersededAt: undefined });
    const action: RotationAction = { kind: "install", keyId: key.id };
    this.#pending.push(action);
    return [action];
  }

  /**
   * Installs the keys of a key file in order, as Cilium's loader does:
   * each line supersedes the previous one, so after a restart a file that
   * still lists the old key keeps it for the delay.
   *
   * @param file A parsed key file.
   * @returns The `"install"` actions.
   * @throws {RangeError} As {@link KeyRotation.rotate}.
   */
  load(file: IpsecKeyFile): RotationAction[] {
    return file.keys.flatMap((k) => this.rotate(k));
  }

  /**
   * The most recent installed key whose id the peer also has.
   *
   * @param peerKeyIds The key ids the peer published.
   * @returns The key, or undefined when there is none in common.
   */
  egressKey(peerKeyIds: readonly number[]): IpsecKey | undefined {
    const theirs = new Set(peerKeyIds);
    for (let i = this.#keys.length - 1; i >= 0; i--) {
      if (theirs.has(this.#keys[i]!.key.id)) return this.#keys[i]!.key;
    }
    return undefined;
  }

  /**
   * Removes the keys whose delay has passed, picks each peer's egress key
   * and builds the desired states and policies.
   *
   * @param local The local node.
   * @param peers What each peer publishes.
   * @param options The scheme options (reqid tag, output mark).
   * @returns The desired set, the actions since the previous plan, the
   *   egress key per peer, this node's key ids and the next removal time.
   * @throws {TypeError} As buildMeshXfrm() for malformed nodes.
   */
  plan(local: IpsecNode, peers: readonly PeerKeys[], options: IpsecSchemeOptions = {}): RotationPlan {
    const now = this.#now();
    const actions = this.#pending;
    this.#pending = [];
    for (let i = 0; i < this.#keys.length;) {
      const k = this.#keys[i]!;
      if (k.supersededAt !== undefined && now - k.supersededAt >= this.#delay) {
        this.#keys.splice(i, 1);
        actions.push({ kind: "remove", keyId: k.key.id });
      } else {
        i++;
      }
    }
    const egress = new Map<number, number>();
    const meshPeers = [];
    for (const peer of peers) {
      const nodeId = peer.node.id;
      const theirs = new Set(peer.keyIds);
      const common = this.#keys.filter((k) => theirs.has(k.key.id)).map((k) => k.key.id);
      const chosen = this.egressKey(peer.keyIds)?.id;
      if (chosen === undefined) {
        if (!this.#stalled.has(nodeId)) actions.push({ kind: "stalled", nodeId, peerKeyIds: [...peer.keyIds] });
        this.#stalled.add(nodeId);
        this.#egress.delete(nodeId);
      } else {
        this.#stalled.delete(nodeId);
        egress.set(nodeId, chosen);
        const before = this.#egress.get(nodeId);
        if (before !== chosen) actions.push({ kind: "egress", nodeId, from: before, to: chosen });
        this.#egress.set(nodeId, chosen);
      }
      meshPeers.push({ node: peer.node, keys: this.keys, egressKeys: common });
    }
    const seen = new Set(peers.map((p) => p.node.id));
    for (const id of [...this.#egress.keys()]) if (!seen.has(id)) this.#egress.delete(id);
    for (const id of [...this.#stalled]) if (!seen.has(id)) this.#stalled.delete(id);
    let nextRemovalAt: number | undefined;
    for (const k of this.#keys) {
      if (k.supersededAt === undefined) continue;
      const at = k.supersededAt + this.#delay;
      if (nextRemovalAt === undefined || at < nextRemovalAt) nextRemovalAt = at;
    }
    return {
      desired: buildMeshXfrm(local, meshPeers, options),
      actions,
      egress,
      keyIds: this.keyIds,
      nextRemovalAt,
    };
  }
}
