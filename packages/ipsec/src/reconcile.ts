// Reconciling the kernel's xfrm states and policies with a desired set,
// touching only what carries dp's tag.
//
// The tag is the pair (reqid, mark magic):
// - a state is dp's when its reqid is the tag's and its mark matches on
//   the magic bits (mask covers 0x0F00) with the encrypt (0x0E00) or
//   decrypt (0x0D00) magic;
// - a policy is dp's when every template has the tag's reqid and its mark
//   carries the encrypt, decrypt or to-proxy (0x0200) magic, or, without a
//   mark, it is a fwd policy at IPSEC_FWD_PRIORITY; the template-less
//   default-drop policy (out, block, 0x0E00/0x0F00, IPSEC_DROP_PRIORITY)
//   is dp's too.
// The reqid alone is not enough: IKE daemons (strongSwan, Libreswan)
// number their reqids from 1, and the mark magic keeps their objects out.
// But both halves are Cilium's own values (DefaultReqID 1, the 0x0E00 and
// 0x0D00 marks, IPsecFwdPriority), kept for interoperation: a Cilium agent's
// states and policies in the same namespace carry the very same tag, and
// reconcile cannot tell them from dp's. Run one of the two per namespace,
// or give dp another reqid (ReconcileOptions.reqid and the scheme's
// IpsecSchemeOptions.reqid) so a Cilium agent's objects count as foreign.
// An installed object whose identity cannot be computed (options dp does
// not accept as input) is foreign too: never touched.
import { IPSEC_DROP_PRIORITY, IPSEC_FWD_PRIORITY, IPSEC_MARK, IPSEC_REQID, type IpsecXfrm } from "./scheme.ts";
import { parseAddress, parseMark, parseSelector } from "./_codec.ts";
import { XFRM_INF } from "./_uapi.ts";
import type {
  XfrmMark,
  XfrmPolicy,
  XfrmPolicyId,
  XfrmPolicySpec,
  XfrmState,
  XfrmStateId,
  XfrmStateSpec,
  XfrmTemplate,
} from "./types.ts";

/** What reconcile() needs of an xfrm handle (an `Xfrm` from `openXfrm()` has it). */
export interface XfrmTables {
  /** The state table. */
  readonly states: {
    /** Lists every state. */
    list(): readonly XfrmState[];
    /** Adds a state. */
    add(spec: XfrmStateSpec): void;
    /** Updates a state in place. */
    update(spec: XfrmStateSpec): void;
    /** Deletes a state. */
    delete(id: XfrmStateId): unknown;
  };
  /** The policy table. */
  readonly policies: {
    /** Lists every policy. */
    list(): readonly XfrmPolicy[];
    /** Adds a policy. */
    add(spec: XfrmPolicySpec): void;
    /** Replaces a policy. */
    update(spec: XfrmPolicySpec): void;
    /** Deletes a policy. */
    delete(id: XfrmPolicyId): unknown;
  };
}

/** Options for {@link reconcile} and {@link planReconcile}. */
export interface ReconcileOptions {
  /**
   * The reqid of dp's tag.
   *
   * @default 1 (the scheme's {@link IPSEC_REQID})
   */
  readonly reqid?: number;
  /**
   * Reconcile states (false leaves every state alone).
   *
   * @default true
   */
  readonly states?: boolean;
  /**
   * Reconcile policies (false leaves every policy alone).
   *
   * @default true
   */
  readonly policies?: boolean;
}

/** A desired state that differs from the installed one: how to repair it. */
export interface StateRepair {
  /** The installed state. */
  readonly current: XfrmState;
  /** The desired state. */
  readonly desired: XfrmStateSpec;
  /**
   * `"update"` (`XFRM_MSG_UPDSA`) when only the lifetime, the output mark or
   * the encapsulation ports differ, which the kernel updates in place;
   * `"replace"` (delete, then add) for anything else, such as a new key.
   */
  readonly how: "update" | "replace";
}

/** What {@link planReconcile} found for states. */
export interface StatePlan {
  /** Desired states that are missing. */
  readonly add: readonly XfrmStateSpec[];
  /** Desired states that differ from the installed ones. */
  readonly repair: readonly StateRepair[];
  /** dp's states that are not desired. */
  readonly remove: readonly XfrmState[];
  /** Desired states that a foreign state occupies (same destination, SPI, protocol and mark): left alone. */
  readonly conflicts: readonly XfrmStateSpec[];
  /** How many desired states are installed as they should be. */
  readonly unchanged: number;
  /** How many installed states are not dp's (left alone). */
  readonly foreign: number;
}

/** What {@link planReconcile} found for policies. */
export interface PolicyPlan {
  /** Desired policies that are missing. */
  readonly add: readonly XfrmPolicySpec[];
  /** Desired policies that differ from the installed ones (`XFRM_MSG_UPDPOLICY` replaces them). */
  readonly repair: readonly XfrmPolicySpec[];
  /** dp's policies that are not desired. */
  readonly remove: readonly XfrmPolicy[];
  /** Desired policies that a foreign policy occupies (same direction, selector, mark): left alone. */
  readonly conflicts: readonly XfrmPolicySpec[];
  /** How many desired policies are installed as they should be. */
  readonly unchanged: number;
  /** How many installed policies are not dp's (left alone). */
  readonly foreign: number;
}

/** The changes that bring the kernel to the desired set. */
export interface ReconcilePlan {
  /** State changes. */
  readonly states: StatePlan;
  /** Policy changes. */
  readonly policies: PolicyPlan;
}

function tagReqid(options: ReconcileOptions): number {
  const r = options.reqid ?? IPSEC_REQID;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1 || r > 0xffffffff) {
    throw new RangeError(`Invalid reqid ${String(r)}: must be an integer from 1 to 4294967295`);
  }
  return r;
}

function magicOf(mark: { readonly value: number; readonly mask?: number } | undefined): number | undefined {
  if (mark === undefined) return undefined;
  const mask = mark.mask ?? 0xffffffff;
  if ((mask & IPSEC_MARK.magicMask) !== IPSEC_MARK.magicMask) return undefined;
  return mark.value & IPSEC_MARK.magicMask;
}

/**
 * Whether a state carries dp's tag: the tag's reqid and a mark with the
 * encrypt (0x0E00) or decrypt (0x0D00) magic (and a protocol and mode
 * dp has names for).
 *
 * @param state A state or state spec.
 * @param reqid The tag's reqid.
 * @returns True for dp's states.
 * @example Tagged and untagged states
 * ```ts
 * import assert from "node:assert/strict";
 * import { ownsState } from "@dp/ipsec";
 *
 * assert.ok(ownsState({ src: "10.0.0.1", dst: "10.0.0.2", spi: 3, reqid: 1, mark: { value: 0x23e00, mask: 0xffffff00 } }));
 * assert.ok(!ownsState({ src: "10.0.0.1", dst: "10.0.0.2", spi: 3, reqid: 1 }));
 * ```
 */
export function ownsState(state: XfrmStateSpec, reqid: number = IPSEC_REQID): boolean {
  const magic = magicOf(state.mark);
  if (typeof state.proto === "number" || typeof state.mode === "number") return false;
  return (state.reqid ?? 0) === reqid && (magic === IPSEC_MARK.encrypt || magic === IPSEC_MARK.decrypt);
}

/**
 * Whether a policy carries dp's tag: templates all with the tag's reqid
 * (and a protocol and mode dp has names for) and a mark with the encrypt, decrypt or to-proxy magic (or, without a
 * mark, a fwd policy at {@link IPSEC_FWD_PRIORITY}); or the default-drop
 * policy.
 *
 * @param policy A policy or policy spec.
 * @param reqid The tag's reqid.
 * @returns True for dp's policies.
 * @example The default-drop policy is dp's, a plain policy is not
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildDefaultDropPolicies, ownsPolicy } from "@dp/ipsec";
 *
 * assert.ok(buildDefaultDropPolicies([4]).every((p) => ownsPolicy(p)));
 * assert.ok(!ownsPolicy({ selector: { src: "10.0.0.0/8" }, dir: "out" }));
 * ```
 */
export function ownsPolicy(policy: XfrmPolicySpec, reqid: number = IPSEC_REQID): boolean {
  const magic = magicOf(policy.mark);
  const templates = policy.templates ?? [];
  if (templates.length === 0) {
    return (
      policy.dir === "out" &&
      policy.action === "block" &&
      magic === IPSEC_MARK.encrypt &&
      (policy.mark?.mask ?? 0xffffffff) >>> 0 === IPSEC_MARK.magicMask &&
      (policy.priority ?? 0) === IPSEC_DROP_PRIORITY
    );
  }
  if (!templates.every((t) => (t.reqid ?? 0) === reqid)) return false;
  // A protocol or mode dp has no name for is never one dp built.
  if (templates.some((t) => typeof t.proto === "number" || typeof t.mode === "number")) return false;
  if (policy.mark === undefined || (policy.mark.mask ?? 0xffffffff) === 0) {
    return policy.dir === "fwd" && (policy.priority ?? 0) === IPSEC_FWD_PRIORITY;
  }
  return magic === IPSEC_MARK.encrypt || magic === IPSEC_MARK.decrypt || magic === IPSEC_MARK.toProxy;
}

// --- normalization ------------------------------------------------------------

function hexBytes(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function markKey(m: { readonly value: number; readonly mask?: number } | undefined, what: string): string {
  const p = parseMark(m, what);
  return p === undefined || p.mask === 0 ? "-" : `${p.value >>> 0}/${p.mask >>> 0}`;
}

function selectorKey(sel: unknown, what: string, family: 4 | 6, lenient = false): string {
  const s = parseSelector(sel, what, family, lenient);
  return [
    s.family,
    `${hexBytes(s.src)}/${s.srcLen}`,
    `${hexBytes(s.dst)}/${s.dstLen}`,
    s.proto,
    `${s.sport}/${s.sportMask}`,
    `${s.dport}/${s.dportMask}`,
    s.ifindex,
  ].join(" ");
}

function addrKey(v: string | undefined, what: string): string {
  if (v === undefined) return "0";
  const a = parseAddress(v, what);
  return a.bytes.every((x) => x === 0) ? "0" : hexBytes(a.bytes);
}

/**
 * A lifetime in one spelling: byte and packet limits are infinite when
 * absent or `XFRM_INF`; time limits mean "none" when absent or 0 (what
 * iproute2 sends and the kernel reports back).
 */
function lifetimeKey(l: Readonly<Record<string, bigint | undefined>> | undefined): string {
  const counts = ["softBytes", "hardBytes", "softPackets", "hardPackets"];
  const times = ["softAddSeconds", "hardAddSeconds", "softUseSeconds", "hardUseSeconds"];
  return [
    ...counts.map((n) => (l?.[n] === undefined || l[n] === XFRM_INF ? "inf" : String(l[n]))),
    ...times.map((n) => (l?.[n] === undefined || l[n] === 0n ? "0" : String(l[n]))),
  ].join(",");
}

function familyOfAddress(v: string): 4 | 6 {
  return parseAddress(v, "address").family;
}

function policyFamily(p: XfrmPolicySpec, lenient = false): 4 | 6 {
  return parseSelector(p.selector, "policy selector", 4, lenient).family;
}

/**
 * The identity of a policy. `lenient` is for installed policies: what the
 * kernel reported is only compared, never checked against what dp would
 * accept as input (a foreign policy may use options dp does not build).
 */
function policyId(p: XfrmPolicySpec, what: string, lenient = false): string {
  const family = policyFamily(p, lenient);
  return [
    p.dir,
    p.type ?? "main",
    selectorKey(p.selector, `${what}.selector`, family, lenient),
    markKey(p.mark, `${what}.mark`),
    p.ifId ?? 0,
  ].join("|");
}

function templateKey(t: XfrmTemplate, family: 4 | 6, what: string): string {
  return [
    t.family ?? (t.src !== undefined ? familyOfAddress(t.src) : t.dst !== undefined ? familyOfAddress(t.dst) : family),
    addrKey(t.src, `${what}.src`),
    addrKey(t.dst, `${what}.dst`),
    t.proto ?? "esp",
    (t.spi ?? 0) >>> 0,
    (t.reqid ?? 0) >>> 0,
    t.mode ?? "transport",
    t.level ?? "required",
  ].join(" ");
}

function policyContent(p: XfrmPolicySpec, what: string, lenient = false): string {
  const family = policyFamily(p, lenient);
  return [
    p.priority ?? 0,
    p.action ?? "allow",
    [...(p.flags ?? [])].sort().join(","),
    lifetimeKey(p.lifetime as Readonly<Record<string, bigint | undefined>> | undefined),
    (p.templates ?? []).map((t, i) => templateKey(t, family, `${what}.templates[${i}]`)).join(";"),
  ].join("|");
}

function stateId(s: XfrmStateSpec, what: string): string {
  return [addrKey(s.dst, `${what}.dst`), s.proto ?? "esp", s.spi >>> 0, markKey(s.mark, `${what}.mark`)].join("|");
}

/** The state fields the kernel updates in place (xfrm_state_update). */
function stateUpdatable(s: XfrmStateSpec): string {
  return [
    lifetimeKey(s.lifetime as Readonly<Record<string, bigint | undefined>> | undefined),
    markKey(s.outputMark, "outputMark"),
    s.encap === undefined ? "-" : `${s.encap.sport} ${s.encap.dport} ${addrKey(s.encap.oa, "encap.oa")}`,
  ].join("|");
}

/**
 * The key of an installed object, or undefined when it cannot be made (an
 * object dp cannot read is foreign: never touched).
 */
function installedKey(f: () => string): string | undefined {
  try {
    return f();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** The state fields that need a delete and add to change; `truncBits` counts only when the desired spec gives it. */
function stateFixed(s: XfrmStateSpec, truncBits: number | undefined, lenient = false): string {
  const family = familyOfAddress(s.dst);
  const esn = s.esn === true || (s.flags ?? []).includes("esn");
  return [
    addrKey(s.src, "src"),
    s.mode ?? "transport",
    (s.reqid ?? 0) >>> 0,
    s.aead === undefined ? "-" : `${s.aead.name} ${s.aead.icvBits} ${hexBytes(s.aead.key)}`,
    s.auth === undefined ? "-" : `${s.auth.name} ${truncBits ?? ""} ${hexBytes(s.auth.key)}`,
    s.crypt === undefined ? "-" : `${s.crypt.name} ${hexBytes(s.crypt.key)}`,
    // With ESN the kernel caps the legacy field at 32 and reports the real
    // window in the replay counters; take the larger of the two.
    Math.max(s.replayWindow ?? 0, "replay" in s ? ((s as XfrmState).replay?.window ?? 0) : 0),
    esn,
    [...(s.flags ?? [])]
      .filter((f) => f !== "esn")
      .sort()
      .join(","),
    selectorKey(s.selector, "selector", family, lenient),
    s.ifId ?? 0,
    s.encap?.type ?? "-",
    s.dir ?? "-",
  ].join("|");
}

/**
 * Works out what {@link reconcile} would do, without touching the kernel:
 * which desired objects are missing, which differ, which of dp's installed
 * objects are stale, and which installed objects are foreign.
 *
 * @param current The installed states and policies (from `list()`).
 * @param desired The desired set (such as from `buildMeshXfrm()`).
 * @param options The tag's reqid and which tables to look at.
 * @returns The plan.
 * @throws {TypeError} When a desired object does not carry dp's tag (it
 *   could never be recognized, repaired or removed later) or is malformed.
 * @throws {RangeError} When two desired objects have the same identity but differ.
 * @example A stale policy of dp's and a foreign one
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildDefaultDropPolicies, planReconcile, type XfrmPolicy } from "@dp/ipsec";
 *
 * const current = [
 *   { selector: { family: 4, src: "10.9.0.0/16" }, dir: "out", priority: 0, index: 8, action: "allow", templates: [] },
 * ] as unknown as XfrmPolicy[];
 * const plan = planReconcile({ states: [], policies: current }, { states: [], policies: buildDefaultDropPolicies([4]) });
 * assert.equal(plan.policies.add.length, 1);
 * assert.equal(plan.policies.foreign, 1);
 * assert.equal(plan.policies.remove.length, 0);
 * ```
 */
export function planReconcile(
  current: {
    /** The installed states. */
    readonly states: readonly XfrmState[];
    /** The installed policies. */
    readonly policies: readonly XfrmPolicy[];
  },
  desired: IpsecXfrm,
  options: ReconcileOptions = {},
): ReconcilePlan {
  const reqid = tagReqid(options);
  const doStates = options.states !== false;
  const doPolicies = options.policies !== false;

  // States.
  const wantStates = new Map<string, XfrmStateSpec>();
  if (doStates) {
    for (const [i, s] of desired.states.entries()) {
      const what = `desired state ${i} (${s.dst} spi ${s.spi})`;
      if (!ownsState(s, reqid)) {
        throw new TypeError(
          `Invalid ${what}: it lacks dp's tag (reqid ${reqid} and a mark with magic 0xe00 or 0xd00 in mask 0xf00), so it could never be repaired or removed`,
        );
      }
      const id = stateId(s, what);
      const prev = wantStates.get(id);
      if (
        prev !== undefined &&
        stateFixed(prev, prev.auth?.truncBits) + stateUpdatable(prev) !==
          stateFixed(s, s.auth?.truncBits) + stateUpdatable(s)
      ) {
        throw new RangeError(
          `Invalid ${what}: another desired state has the same destination, SPI and mark but differs`,
        );
      }
      wantStates.set(id, s);
    }
  }
  const stateAdd: XfrmStateSpec[] = [];
  const stateRepair: StateRepair[] = [];
  const stateRemove: XfrmState[] = [];
  const stateConflicts: XfrmStateSpec[] = [];
  let stateUnchanged = 0;
  let stateForeign = 0;
  const haveStates = new Map<string, XfrmState>();
  for (const s of doStates ? current.states : []) {
    const id = installedKey(() => stateId(s, "installed state"));
    if (id === undefined || !ownsState(s, reqid)) {
      stateForeign++;
      if (id !== undefined) haveStates.set(id, s);
      continue;
    }
    haveStates.set(id, s);
    if (!wantStates.has(id)) stateRemove.push(s);
  }
  for (const [id, want] of wantStates) {
    const have = haveStates.get(id);
    if (have === undefined) {
      stateAdd.push(want);
    } else if (!ownsState(have, reqid)) {
      stateConflicts.push(want);
    } else if (
      installedKey(() =>
        stateFixed(have, want.auth?.truncBits === undefined ? undefined : have.auth?.truncBits, true),
      ) !== stateFixed(want, want.auth?.truncBits)
    ) {
      stateRepair.push({ current: have, desired: want, how: "replace" });
    } else if (stateUpdatable(have) !== stateUpdatable(want)) {
      const how = want.outputMark === undefined && have.outputMark !== undefined ? "replace" : "update";
      stateRepair.push({ current: have, desired: want, how });
    } else {
      stateUnchanged++;
    }
  }

  // Policies.
  const wantPolicies = new Map<string, XfrmPolicySpec>();
  if (doPolicies) {
    for (const [i, p] of desired.policies.entries()) {
      const what = `desired policy ${i} (${p.dir} ${p.selector.src ?? "any"} -> ${p.selector.dst ?? "any"})`;
      if (!ownsPolicy(p, reqid)) {
        throw new TypeError(
          `Invalid ${what}: it lacks dp's tag (templates with reqid ${reqid} and a mark with magic 0xe00, 0xd00 or 0x200 in mask 0xf00), so it could never be repaired or removed`,
        );
      }
      const id = policyId(p, what);
      const prev = wantPolicies.get(id);
      if (prev !== undefined && policyContent(prev, what) !== policyContent(p, what)) {
        throw new RangeError(
          `Invalid ${what}: another desired policy has the same direction, selector and mark but differs`,
        );
      }
      wantPolicies.set(id, p);
    }
  }
  const policyAdd: XfrmPolicySpec[] = [];
  const policyRepair: XfrmPolicySpec[] = [];
  const policyRemove: XfrmPolicy[] = [];
  const policyConflicts: XfrmPolicySpec[] = [];
  let policyUnchanged = 0;
  let policyForeign = 0;
  const havePolicies = new Map<string, XfrmPolicy>();
  for (const p of doPolicies ? current.policies : []) {
    const id = installedKey(() => policyId(p, "installed policy", true));
    if (id === undefined || !ownsPolicy(p, reqid)) {
      policyForeign++;
      if (id !== undefined) havePolicies.set(id, p);
      continue;
    }
    havePolicies.set(id, p);
    if (!wantPolicies.has(id)) policyRemove.push(p);
  }
  for (const [id, want] of wantPolicies) {
    const have = havePolicies.get(id);
    if (have === undefined) policyAdd.push(want);
    else if (!ownsPolicy(have, reqid)) policyConflicts.push(want);
    else if (
      installedKey(() => policyContent(have, "installed policy", true)) !== policyContent(want, "desired policy")
    )
      policyRepair.push(want);
    else policyUnchanged++;
  }

  return {
    states: {
      add: stateAdd,
      repair: stateRepair,
      remove: stateRemove,
      conflicts: stateConflicts,
      unchanged: stateUnchanged,
      foreign: stateForeign,
    },
    policies: {
      add: policyAdd,
      repair: policyRepair,
      remove: policyRemove,
      conflicts: policyConflicts,
      unchanged: policyUnchanged,
      foreign: policyForeign,
    },
  };
}

function stateIdOf(s: XfrmState): XfrmStateId {
  const id: { dst: string; spi: number; proto: XfrmState["proto"]; src: string; mark?: XfrmMark } = {
    dst: s.dst,
    spi: s.spi,
    proto: s.proto,
    src: s.src,
  };
  if (s.mark !== undefined) id.mark = s.mark;
  return id;
}

function policyIdOf(p: XfrmPolicy): XfrmPolicyId {
  const id: { index: number; dir: XfrmPolicy["dir"]; mark?: XfrmMark; type?: "main" | "sub" } = {
    index: p.index,
    dir: p.dir,
  };
  if (p.mark !== undefined) id.mark = p.mark;
  if (p.type !== undefined) id.type = p.type;
  return id;
}

/**
 * Brings the kernel's xfrm tables to a desired set, touching only objects
 * that carry dp's tag (see {@link ownsState} and {@link ownsPolicy}): adds
 * what is missing, repairs what differs (policies by `XFRM_MSG_UPDPOLICY`;
 * states by `XFRM_MSG_UPDSA` when the kernel can update the difference in
 * place, else by delete and add), and removes dp's objects that are not
 * desired. Foreign states and policies are never changed, also when they
 * occupy a desired object's place (a conflict, reported as an error).
 *
 * Order: states are added and repaired first, then policies; stale
 * policies are removed before stale states, so no policy points to a
 * missing state longer than needed. Every change is attempted; failures
 * are collected and thrown together at the end.
 *
 * @param xfrm The handle (`openXfrm()`), or any object with its `states` and `policies` methods.
 * @param desired The desired set.
 * @param options The tag's reqid and which tables to reconcile.
 * @returns The plan that was carried out.
 * @throws {TypeError} As {@link planReconcile}, before any change.
 * @throws {RangeError} As {@link planReconcile}, before any change.
 * @throws {AggregateError} When some changes failed or conflicted with foreign
 *   objects (`errors` holds each one: NetlinkError, NotSupportedError, RangeError for conflicts).
 * @example Installing the default-drop policy in a namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { buildDefaultDropPolicies, openXfrm, reconcile } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using xfrm = openXfrm({ netns: ns.ns });
 * const plan = reconcile(xfrm, { states: [], policies: buildDefaultDropPolicies([4]) }, { states: false });
 * assert.equal(plan.policies.add.length, 1);
 * assert.equal(xfrm.policies.list().length, 1);
 * ```
 */
export function reconcile(xfrm: XfrmTables, desired: IpsecXfrm, options: ReconcileOptions = {}): ReconcilePlan {
  tagReqid(options);
  const doStates = options.states !== false;
  const doPolicies = options.policies !== false;
  const current = {
    states: doStates ? xfrm.states.list() : [],
    policies: doPolicies ? xfrm.policies.list() : [],
  };
  const plan = planReconcile(current, desired, options);
  const errors: unknown[] = [];
  const attempt = (fn: () => unknown): void => {
    try {
      fn();
    } catch (err) {
      errors.push(err);
    }
  };
  for (const s of plan.states.add) attempt(() => xfrm.states.add(s));
  for (const r of plan.states.repair) {
    if (r.how === "update") {
      attempt(() => xfrm.states.update(r.desired));
    } else {
      attempt(() => {
        xfrm.states.delete(stateIdOf(r.current));
        xfrm.states.add(r.desired);
      });
    }
  }
  for (const p of plan.policies.add) attempt(() => xfrm.policies.add(p));
  for (const p of plan.policies.repair) attempt(() => xfrm.policies.update(p));
  for (const p of plan.policies.remove) attempt(() => xfrm.policies.delete(policyIdOf(p)));
  for (const s of plan.states.remove) attempt(() => xfrm.states.delete(stateIdOf(s)));
  for (const s of plan.states.conflicts) {
    errors.push(
      new RangeError(
        `Cannot install xfrm state ${s.dst} spi 0x${(s.spi >>> 0).toString(16)}: a state without dp's tag has its destination, SPI and mark`,
      ),
    );
  }
  for (const p of plan.policies.conflicts) {
    errors.push(
      new RangeError(
        `Cannot install xfrm policy ${p.dir} ${p.selector.src ?? "any"} -> ${p.selector.dst ?? "any"}: a policy without dp's tag has its direction, selector and mark`,
      ),
    );
  }
  if (errors.length > 0) {
    throw new AggregateError(errors, `Cannot reconcile xfrm: ${errors.length} change(s) failed`);
  }
  return plan;
}
