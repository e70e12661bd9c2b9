/**
 * IPsec over xfrm netlink, per network namespace: security associations
 * (states) and policies with the requests of `ip xfrm`, byte for byte; SAD
 * and SPD counts; and the xfrm event stream (changes, expiry, acquire) with
 * a resync after lost events. The counterpart of vishvananda/netlink's
 * xfrm for dp.
 *
 * @example Open a handle on a namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using x = openXfrm({ netns: ns.ns });
 * assert.equal(x.closed, false);
 * ```
 *
 * @module @dp/ipsec
 */
export { decodeSadInfo, decodeSpdInfo, openXfrm, Xfrm } from "./xfrm.ts";
export type { OpenXfrmOptions, XfrmSadInfo, XfrmSpdHashThreshold, XfrmSpdInfo } from "./xfrm.ts";
export { decodePolicy, encodePolicyRequest, Policies, PolicyOverlapError } from "./policies.ts";
export type { AddPoliciesOptions, ListPoliciesOptions, PolicyRequest } from "./policies.ts";
export { decodeState, encodeStateRequest, States } from "./states.ts";
export type { AddStatesOptions, AllocSpiSpec, ListStatesOptions, StateRequest } from "./states.ts";
export { deriveTunnelKey, KeyFileError, MAX_KEY_ID, parseKeyFile, sameKeyMaterial } from "./keys.ts";
export type { IpsecKey, IpsecKeyFile, TunnelEnds } from "./keys.ts";
export {
  buildDefaultDropPolicies,
  buildMeshXfrm,
  buildPeerXfrm,
  decryptMark,
  encryptMark,
  IPSEC_DROP_PRIORITY,
  IPSEC_FWD_PRIORITY,
  IPSEC_MARK,
  IPSEC_REPLAY_WINDOW,
  IPSEC_REQID,
  MAX_NODE_ID,
  parseIpsecMark,
} from "./scheme.ts";
export type { IpsecMarkInfo, IpsecNode, IpsecPeer, IpsecSchemeOptions, IpsecXfrm } from "./scheme.ts";
export { KeyRotation } from "./rotation.ts";
export type { KeyRotationOptions, PeerKeys, RotationAction, RotationPlan } from "./rotation.ts";
export { pollSequenceNumbers, SequenceWatch, sequenceUsage } from "./seq_watch.ts";
export type { PollSequenceNumbersOptions, SequenceUsage, SequenceWatchOptions } from "./seq_watch.ts";
export { diffXfrmStat, explainXfrmStat, parseXfrmStat, readXfrmStat, XFRM_STAT_COUNTERS } from "./xfrm_stat.ts";
export type { ReadXfrmStatOptions, XfrmStat, XfrmStatCounter, XfrmStatDelta } from "./xfrm_stat.ts";
export { ownsPolicy, ownsState, planReconcile, reconcile } from "./reconcile.ts";
export type { PolicyPlan, ReconcileOptions, ReconcilePlan, StatePlan, StateRepair, XfrmTables } from "./reconcile.ts";
export { watchXfrm } from "./watch.ts";
export type {
  WatchXfrmOptions,
  XfrmAcquire,
  XfrmAction,
  XfrmEvent,
  XfrmExpire,
  XfrmFlush,
  XfrmOtherMessage,
  XfrmPolicyChange,
  XfrmPolicyExpire,
  XfrmResync,
  XfrmStateChange,
  XfrmSynced,
  XfrmWatchError,
  XfrmWatchGroup,
} from "./watch.ts";
export type {
  XfrmAeadAlgorithm,
  XfrmAuthAlgorithm,
  XfrmCryptAlgorithm,
  XfrmDir,
  XfrmEncap,
  XfrmLifetime,
  XfrmLifetimeCurrent,
  XfrmMark,
  XfrmMode,
  XfrmPolicy,
  XfrmPolicyId,
  XfrmPolicySpec,
  XfrmProto,
  XfrmUnknownNumber,
  XfrmReplayState,
  XfrmSelector,
  XfrmState,
  XfrmStateFlag,
  XfrmStateId,
  XfrmStateSpec,
  XfrmStateStats,
  XfrmTemplate,
} from "./types.ts";
