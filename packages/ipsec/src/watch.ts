import {
  type IpFamily,
  type Netns,
  type NetlinkMessage,
  type NetlinkSocket,
  NotSupportedError,
  openNetlink,
  SyscallError,
} from "@dp/core";
import { abortableGenerator } from "@dp/core/internal";
import { decodeSelector, decodeXfrmId, formatAddress, ipFamilyOf, protoName } from "./_codec.ts";
import {
  ACQUIRE,
  EXPIRE,
  IPSEC_PROTO_ANY,
  SIZEOF,
  XFRM_MSG,
  XFRM_MSG_NAMES,
  XFRM_POLICY_TYPE,
  XFRMA,
  XFRMNLGRP,
} from "./_uapi.ts";
import { decodePolicy, decodePolicyInfo } from "./policies.ts";
import { decodeState } from "./states.ts";
import type { XfrmPolicy, XfrmProto, XfrmState, XfrmUnknownNumber } from "./types.ts";
import { openXfrm, type Xfrm } from "./xfrm.ts";

/** The multicast groups {@link watchXfrm} can join (`XFRMNLGRP_*`). */
export type XfrmWatchGroup = "sa" | "policy" | "expire" | "acquire" | "aevents" | "report" | "mapping";

/** Whether an object appeared, was replaced or went away. */
export type XfrmAction = "new" | "update" | "delete";

/**
 * A state was added (`XFRM_MSG_NEWSA`), updated (`XFRM_MSG_UPDSA`) or
 * deleted (`XFRM_MSG_DELSA`), or was listed (`existing`).
 */
export interface XfrmStateChange {
  /** Always `"state"`. */
  readonly type: "state";
  /** What happened (`"new"` for a listed state). */
  readonly action: XfrmAction;
  /** Whether the state was listed (initially or after a `resync`) rather than reported as a change. */
  readonly existing: boolean;
  /** The state. */
  readonly state: XfrmState;
}

/**
 * A policy was added (`XFRM_MSG_NEWPOLICY`), updated (`XFRM_MSG_UPDPOLICY`)
 * or deleted (`XFRM_MSG_DELPOLICY`), or was listed (`existing`).
 */
export interface XfrmPolicyChange {
  /** Always `"policy"`. */
  readonly type: "policy";
  /** What happened (`"new"` for a listed policy). */
  readonly action: XfrmAction;
  /** Whether the policy was listed (initially or after a `resync`) rather than reported as a change. */
  readonly existing: boolean;
  /** The policy. */
  readonly policy: XfrmPolicy;
}

/** A state reached a lifetime limit (`XFRM_MSG_EXPIRE`): soft (re-key now) or hard (it is gone). */
export interface XfrmExpire {
  /** Always `"expire"`. */
  readonly type: "expire";
  /** Whether the hard limit was reached (the state was deleted). */
  readonly hard: boolean;
  /** The state. */
  readonly state: XfrmState;
}

/** A policy reached a lifetime limit (`XFRM_MSG_POLEXPIRE`). */
export interface XfrmPolicyExpire {
  /** Always `"policyExpire"`. */
  readonly type: "policyExpire";
  /** Whether the hard limit was reached (the policy was deleted). */
  readonly hard: boolean;
  /** The policy. */
  readonly policy: XfrmPolicy;
}

/** The kernel needs a state that does not exist for traffic a policy requires it for (`XFRM_MSG_ACQUIRE`). */
export interface XfrmAcquire {
  /** Always `"acquire"`. */
  readonly type: "acquire";
  /** The address family of the wanted state. */
  readonly family: IpFamily;
  /** The wanted state's destination. */
  readonly dst: string;
  /** The wanted state's source. */
  readonly src: string;
  /** The wanted state's protocol (its number when dp has no name for it). */
  readonly proto: XfrmProto | XfrmUnknownNumber;
  /** The traffic that triggered it. */
  readonly selector: XfrmPolicy["selector"];
  /** The policy whose template asked for the state. */
  readonly policy: XfrmPolicy;
  /** The sequence number to answer with (`XfrmState.seq` of the larval state). */
  readonly seq: number;
}

/** States (`XFRM_MSG_FLUSHSA`) or policies (`XFRM_MSG_FLUSHPOLICY`) were flushed. */
export type XfrmFlush =
  | {
      /** Always `"flush"`. */
      readonly type: "flush";
      /** States were flushed. */
      readonly what: "states";
      /** Only those of this protocol; undefined for all. */
      readonly proto: XfrmProto | XfrmUnknownNumber | undefined;
    }
  | {
      /** Always `"flush"`. */
      readonly type: "flush";
      /** Policies were flushed. */
      readonly what: "policies";
      /** The policy type flushed. */
      readonly policyType: "main" | "sub";
    };

/**
 * Events were lost (the socket's receive buffer overflowed): the current
 * policies and states follow as `existing` changes, then {@link XfrmSynced}.
 */
export interface XfrmResync {
  /** Always `"resync"`. */
  readonly type: "resync";
}

/** The listing of the current policies and states (initial or after a resync) is complete. */
export interface XfrmSynced {
  /** Always `"synced"`. */
  readonly type: "synced";
}

/** A message of a group dp does not decode (aevents, report, mapping, migrate), as the kernel sent it. */
export interface XfrmOtherMessage {
  /** Always `"message"`. */
  readonly type: "message";
  /** The netlink message type. */
  readonly messageType: number;
  /** Its name, such as `"XFRM_MSG_NEWAE"`. */
  readonly name: string;
  /** The payload after the netlink header. */
  readonly payload: Uint8Array;
}

/**
 * A message that could not be decoded, or a table that could not be
 * listed during a (re)synchronisation; the watch goes on after it.
 */
export interface XfrmWatchError {
  /** Always `"error"`. */
  readonly type: "error";
  /** Why, naming the message type or the table. */
  readonly error: Error;
}

/** What {@link watchXfrm} yields. */
export type XfrmEvent =
  | XfrmStateChange
  | XfrmPolicyChange
  | XfrmExpire
  | XfrmPolicyExpire
  | XfrmAcquire
  | XfrmFlush
  | XfrmResync
  | XfrmSynced
  | XfrmOtherMessage
  | XfrmWatchError;

/** Options for {@link watchXfrm}. */
export interface WatchXfrmOptions {
  /**
   * The network namespace to watch.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
  /**
   * The groups to join.
   *
   * @default ["sa", "policy", "expire", "acquire"]
   */
  readonly groups?: readonly XfrmWatchGroup[];
  /**
   * List the current policies and states first (as `existing: true`
   * changes), then yield `synced`.
   *
   * @default false
   */
  readonly listExisting?: boolean;
  /**
   * Stops the watch; the iteration then ends without an error. A signal
   * that is already aborted yields nothing and opens no socket.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
  /**
   * Receive buffer size in bytes for the event socket.
   *
   * @default the system default
   */
  readonly receiveBufferSize?: number;
}

const GROUPS: Readonly<Record<XfrmWatchGroup, number>> = {
  sa: XFRMNLGRP.SA,
  policy: XFRMNLGRP.POLICY,
  expire: XFRMNLGRP.EXPIRE,
  acquire: XFRMNLGRP.ACQUIRE,
  aevents: XFRMNLGRP.AEVENTS,
  report: XFRMNLGRP.REPORT,
  mapping: XFRMNLGRP.MAPPING,
};
const DEFAULT_GROUPS: readonly XfrmWatchGroup[] = ["sa", "policy", "expire", "acquire"];

/**
 * Rebuilds "struct + attributes" from a delete notification, which puts
 * the id struct first and the full struct into attribute `type`: the
 * struct, then every other attribute as it was.
 */
function unwrap(payload: Uint8Array, headLen: number, type: number): Uint8Array | undefined {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let inner: Uint8Array | undefined;
  const rest: Uint8Array[] = [];
  for (let off = headLen; off + 4 <= payload.length;) {
    const len = dv.getUint16(off, true);
    if (len < 4 || off + len > payload.length) break;
    const next = Math.min(payload.length, off + ((len + 3) & ~3));
    if ((dv.getUint16(off + 2, true) & 0x3fff) === type) inner = payload.subarray(off + 4, off + len);
    else rest.push(payload.subarray(off, next));
    off = next;
  }
  if (inner === undefined) return undefined;
  const size = (inner.length + 3) & ~3;
  const out = new Uint8Array(size + rest.reduce((n, r) => n + r.length, 0));
  out.set(inner);
  let at = size;
  for (const r of rest) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** "struct + attributes" from a message whose struct embeds another at its start, with `skip` bytes after it. */
function cut(payload: Uint8Array, innerLen: number, outerLen: number): Uint8Array {
  const size = (innerLen + 3) & ~3;
  const out = new Uint8Array(size + Math.max(0, payload.length - outerLen));
  out.set(payload.subarray(0, innerLen));
  out.set(payload.subarray(outerLen), size);
  return out;
}

function messageName(type: number): string {
  return XFRM_MSG_NAMES.get(type) ?? `message type ${type}`;
}

function policyAction(type: number): XfrmAction {
  return type === XFRM_MSG.NEWPOLICY ? "new" : type === XFRM_MSG.UPDPOLICY ? "update" : "delete";
}

/**
 * Decodes one event message of the xfrm groups.
 *
 * @internal Used by {@link watchXfrm}; exported for its tests.
 * @param m The message.
 * @returns The event.
 * @throws {SyntaxError} When a message is too short or lacks its struct attribute.
 */
export function decodeXfrmEvent(m: NetlinkMessage): XfrmEvent {
  const p = m.payload;
  switch (m.type) {
    case XFRM_MSG.NEWPOLICY:
    case XFRM_MSG.UPDPOLICY:
      return { type: "policy", action: policyAction(m.type), existing: false, policy: decodePolicy(p) };
    case XFRM_MSG.DELPOLICY: {
      const inner = unwrap(p, SIZEOF.userpolicy_id, XFRMA.POLICY);
      if (inner === undefined) throw new SyntaxError("no XFRMA_POLICY attribute");
      return { type: "policy", action: "delete", existing: false, policy: decodePolicy(inner) };
    }
    case XFRM_MSG.NEWSA:
    case XFRM_MSG.UPDSA:
      return {
        type: "state",
        action: m.type === XFRM_MSG.NEWSA ? "new" : "update",
        existing: false,
        state: decodeState(p),
      };
    case XFRM_MSG.DELSA: {
      const inner = unwrap(p, SIZEOF.usersa_id, XFRMA.SA);
      if (inner === undefined) throw new SyntaxError("no XFRMA_SA attribute");
      return { type: "state", action: "delete", existing: false, state: decodeState(inner) };
    }
    case XFRM_MSG.EXPIRE:
      if (p.length < SIZEOF.user_expire) throw new SyntaxError(`${p.length} bytes, expected ${SIZEOF.user_expire}`);
      return {
        type: "expire",
        hard: p[EXPIRE.stateHard] !== 0,
        state: decodeState(cut(p, SIZEOF.usersa_info, SIZEOF.user_expire)),
      };
    case XFRM_MSG.POLEXPIRE:
      if (p.length < SIZEOF.user_polexpire)
        throw new SyntaxError(`${p.length} bytes, expected ${SIZEOF.user_polexpire}`);
      return {
        type: "policyExpire",
        hard: p[EXPIRE.policyHard] !== 0,
        policy: decodePolicy(cut(p, SIZEOF.userpolicy_info, SIZEOF.user_polexpire)),
      };
    case XFRM_MSG.ACQUIRE: {
      if (p.length < SIZEOF.user_acquire) throw new SyntaxError(`${p.length} bytes, expected ${SIZEOF.user_acquire}`);
      const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
      const policy = decodePolicyInfo(dv, ACQUIRE.policy, p.subarray(SIZEOF.user_acquire));
      const selector = decodeSelector(dv, ACQUIRE.sel, policy.selector.family);
      const id = decodeXfrmId(dv, ACQUIRE.id);
      const family = ipFamilyOf(dv.getUint16(ACQUIRE.sel + 40, true)) ?? selector.family;
      return {
        type: "acquire",
        family,
        dst: formatAddress(id.daddr, family),
        src: formatAddress(p.subarray(ACQUIRE.saddr, ACQUIRE.saddr + 16), family),
        proto: protoName(id.proto),
        selector,
        policy,
        seq: dv.getUint32(ACQUIRE.seq, true),
      };
    }
    case XFRM_MSG.FLUSHSA: {
      const proto = p[0] ?? 0;
      return {
        type: "flush",
        what: "states",
        proto: proto === 0 || proto === IPSEC_PROTO_ANY ? undefined : protoName(proto),
      };
    }
    case XFRM_MSG.FLUSHPOLICY: {
      let policyType: "main" | "sub" = "main";
      const inner = unwrap(p, 0, XFRMA.POLICY_TYPE);
      if (inner !== undefined && inner[0] === XFRM_POLICY_TYPE.sub) policyType = "sub";
      return { type: "flush", what: "policies", policyType };
    }
    default:
      return { type: "message", messageType: m.type, name: messageName(m.type), payload: p };
  }
}

/** Whether a listing failed because the kernel lacks the table (it then has nothing to list). */
function notSupported(err: unknown): boolean {
  if (err instanceof NotSupportedError) return true;
  return (
    err instanceof SyscallError &&
    (err.code === "ENOSYS" || err.code === "EPROTONOSUPPORT" || err.code === "EOPNOTSUPP")
  );
}

/**
 * Lists the current policies, then states, as `existing` changes; stops as
 * soon as the signal aborted (which closes the handle). A table the kernel
 * does not support lists nothing; any other failure to list a table is an
 * `error` event, and the other table is still listed. The same for both
 * tables.
 *
 * @internal Used by {@link watchXfrm}; exported for its tests.
 * @param x The handle to list with.
 * @param signal Stops the listing.
 * @returns The changes, and errors.
 */
export function* listXfrmForSync(x: Xfrm, signal: AbortSignal): Generator<XfrmEvent> {
  const base = { action: "new", existing: true } as const;
  const tables: [string, () => XfrmEvent[]][] = [
    ["policies", () => x.policies.list().map((policy) => ({ type: "policy", ...base, policy }))],
    ["states", () => x.states.list().map((state) => ({ type: "state", ...base, state }))],
  ];
  for (const [what, list] of tables) {
    if (signal.aborted) return;
    let changes: XfrmEvent[];
    try {
      changes = list();
    } catch (err) {
      if (signal.aborted) return;
      if (notSupported(err)) continue;
      const why = err instanceof Error ? err.message : String(err);
      yield { type: "error", error: new Error(`Cannot list xfrm ${what} to synchronise: ${why}`, { cause: err }) };
      continue;
    }
    for (const change of changes) {
      if (signal.aborted) return;
      yield change;
    }
  }
}

/**
 * Watches a namespace's IPsec events: states and policies added, updated
 * and deleted, soft and hard expiry, acquire requests and flushes, in the
 * shapes of `watchRouting` (`type`, `action`, `existing`). When the kernel
 * drops events because the consumer fell behind, the watch yields
 * `resync`, lists the current policies and states as `existing: true`
 * changes and yields `synced`. A table the kernel does not support (states
 * without ESP support) lists nothing; any other failure to list a table,
 * and a message that cannot be decoded, is yielded as an `error` and the
 * watch goes on. Aborting the signal, `return()` or `break` closes both
 * sockets at once.
 *
 * The event socket joins its groups before anything is listed, so no
 * change between listing and watching is missed (some may be seen twice).
 *
 * @param options Namespace, groups, initial listing, signal.
 * @returns An async iterable of events.
 * @throws {TypeError} When a group is unknown (at the first `next()`).
 * @throws {SyscallError} When the sockets cannot be opened (at the first `next()`).
 * @example Seeing a policy appear
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm, watchXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * const stop = new AbortController();
 * const events = watchXfrm({ netns: ns.ns, groups: ["policy"], signal: stop.signal });
 * const first = events.next();
 * using x = openXfrm({ netns: ns.ns });
 * x.policies.add({ selector: { dst: "10.1.0.0/16" }, dir: "out" });
 * const { value } = await first;
 * stop.abort();
 * assert.equal(value?.type === "policy" && value.policy.selector.dst, "10.1.0.0/16");
 * ```
 */
export function watchXfrm(options: WatchXfrmOptions = {}): AsyncGenerator<XfrmEvent, void, undefined> {
  return abortableGenerator(options.signal, (signal) => watch(options, signal));
}

function checkGroups(v: unknown): readonly XfrmWatchGroup[] {
  if (v === undefined) return DEFAULT_GROUPS;
  if (!Array.isArray(v)) throw new TypeError(`Invalid xfrm watch groups: expected an array`);
  const out: XfrmWatchGroup[] = [];
  for (const g of v as readonly unknown[]) {
    if (typeof g !== "string" || !Object.hasOwn(GROUPS, g))
      throw new TypeError(`Invalid xfrm watch group ${JSON.stringify(g)}: use ${Object.keys(GROUPS).join(", ")}`);
    out.push(g as XfrmWatchGroup);
  }
  return out;
}

async function* watch(options: WatchXfrmOptions, signal: AbortSignal): AsyncGenerator<XfrmEvent, void, undefined> {
  const groups = checkGroups(options.groups);
  if (signal.aborted) return;
  using events = openNetlink("xfrm", {
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    groups: groups.map((g) => GROUPS[g]),
    ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
  });
  using x = openXfrm(options.netns === undefined ? {} : { netns: options.netns });
  const release = (): void => {
    events.close();
    x.close();
  };
  signal.addEventListener("abort", release, { once: true });
  try {
    yield* watchLoop(events, x, options.listExisting ?? false, signal);
  } finally {
    signal.removeEventListener("abort", release);
  }
}

async function* watchLoop(
  events: NetlinkSocket,
  x: Xfrm,
  listExisting: boolean,
  signal: AbortSignal,
): AsyncGenerator<XfrmEvent, void, undefined> {
  if (listExisting) {
    yield* listXfrmForSync(x, signal);
    if (signal.aborted) return;
    yield { type: "synced" };
  }
  while (!signal.aborted) {
    try {
      for await (const received of events.receive({ signal })) {
        if (signal.aborted) return;
        if (received.kind === "overrun") {
          yield { type: "resync" };
          if (signal.aborted) return;
          yield* listXfrmForSync(x, signal);
          if (signal.aborted) return;
          yield { type: "synced" };
          continue;
        }
        for (const m of received.messages) {
          if (signal.aborted) return;
          let event: XfrmEvent | undefined;
          try {
            event = decodeXfrmEvent(m);
          } catch (err) {
            const why = err instanceof Error ? err.message : String(err);
            yield {
              type: "error",
              error: new SyntaxError(`Cannot decode ${messageName(m.type)} event: ${why}`, { cause: err }),
            };
            continue;
          }
          if (event !== undefined) yield event;
        }
      }
      return;
    } catch (err) {
      if (!(err instanceof SyntaxError) || signal.aborted) throw err;
      yield { type: "error", error: err };
    }
  }
}
