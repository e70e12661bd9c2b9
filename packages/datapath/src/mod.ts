/**
 * A Cilium-style datapath on one node: endpoints, security identities,
 * identity-based policy, connection tracking, eBPF host routing and a
 * monitor, built from the BPF programs in `bpf/datapath/`.
 *
 * Labels and selectors (`k8s:app=web`, `matchLabels`/`matchExpressions`),
 * identities (an {@link IdentityAllocator} interface with an in-memory
 * implementation, Cilium's reserved and CIDR identities) and policy rules
 * in the shape of CiliumNetworkPolicy, resolved by a {@link PolicyEngine}
 * into per-endpoint policy map entries and kept up to date incrementally.
 *
 * @example Resolving a rule for an endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, createPolicyEngine } from "@dp/datapath";
 *
 * const allocator = createLocalIdentityAllocator();
 * using engine = createPolicyEngine({ allocator }); // `using` needs TypeScript or Node 24+
 * const web = await allocator.allocate(["k8s:app=web"]);
 * engine.upsertEndpoint({ id: 1, identity: web.id });
 * engine.setRules([{ name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEntities: ["host"] }] }]);
 * const { ingress } = engine.explain({ from: { identity: 1 }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
 * assert.equal(ingress?.message, 'Ingress of endpoint 1 from identity 1: allowed by rule "web" ingress[0]');
 * ```
 *
 * @module @dp/datapath
 */
export { InvalidLabelError, formatLabel, parseLabel } from "./labels/label.ts";
export type { Label } from "./labels/label.ts";
export { LabelSet } from "./labels/label_set.ts";
export type { LabelsInput } from "./labels/label_set.ts";
export { InvalidSelectorError, Selector, parseSelector } from "./labels/selector.ts";
export type { EndpointSelector, SelectorOperator, SelectorRequirement } from "./labels/selector.ts";

export type {
  IdentityAllocator,
  IdentityEvent,
  IdentityListener,
  SubscribeOptions,
  Subscription,
} from "./identity/allocator.ts";
export { cidrLabels } from "./identity/cidr.ts";
export {
  CIDR_IDENTITY_MAX,
  CIDR_IDENTITY_MIN,
  CLUSTER_IDENTITY_MAX,
  CLUSTER_IDENTITY_MIN,
  classifyIdentity,
} from "./identity/identity.ts";
export type { Identity, IdentityKind } from "./identity/identity.ts";
export { LocalIdentityAllocator, createLocalIdentityAllocator } from "./identity/local_allocator.ts";
export type { LocalIdentityAllocatorOptions } from "./identity/local_allocator.ts";
export { RESERVED_IDENTITIES } from "./identity/reserved.ts";
export type { ReservedIdentityName } from "./identity/reserved.ts";

export { IP_PROTOCOLS, splitPortRange } from "./policy/entry.ts";
export type { PolicyEntry, PortBlock } from "./policy/entry.ts";
export { PolicyEngine, createPolicyEngine } from "./policy/engine.ts";
export type {
  DirectionPolicy,
  EndpointPolicy,
  EndpointPolicyDiff,
  PolicyDiffListener,
  PolicyEndpoint,
  PolicyEngineOptions,
} from "./policy/engine.ts";
export type {
  DirectionExplanation,
  PolicyExplainQuery,
  PolicyExplanation,
  PolicyPeerRef,
  PolicyReason,
  PolicyRuleRef,
} from "./policy/explain.ts";
export { lookupPolicy } from "./policy/lookup.ts";
export type { PolicyLookupResult, PolicyPacket } from "./policy/lookup.ts";
export type {
  CidrRule,
  EgressRule,
  IngressRule,
  PolicyEntity,
  PolicyProtocolName,
  PolicyRule,
  PortProtocol,
  PortRule,
} from "./policy/rule.ts";
export { PolicyValidationError, validatePolicyRules } from "./policy/validate.ts";
export type { PolicyProblem } from "./policy/validate.ts";

export { CT_TIMEOUTS, conntrackTimeoutConstants } from "./conntrack/timeouts.ts";
export type { ConntrackTimeoutConstants, ConntrackTimeouts } from "./conntrack/timeouts.ts";
export { CT_FLAGS, CT_STATES, TCP_FLAGS, decodeConntrackEntry } from "./conntrack/entry.ts";
export type {
  ConntrackEntry,
  ConntrackFlag,
  ConntrackMapName,
  ConntrackScope,
  ConntrackState,
  TcpFlagName,
} from "./conntrack/entry.ts";
export type { ConntrackMapRef, ConntrackMaps } from "./conntrack/maps.ts";
export { matchesConntrackFilter } from "./conntrack/filter.ts";
export type { ConntrackFilter, ConntrackProtocolName } from "./conntrack/filter.ts";
export { gcConntrack } from "./conntrack/gc.ts";
export type { ConntrackGcMapResult, ConntrackGcOptions, ConntrackGcResult } from "./conntrack/gc.ts";
export { CT_GC_INTERVALS, nextConntrackGcInterval } from "./conntrack/gc_interval.ts";
export type { ConntrackGcIntervalOptions } from "./conntrack/gc_interval.ts";
export { ConntrackGcScheduler } from "./conntrack/gc_scheduler.ts";
export type { ConntrackGcSchedulerOptions } from "./conntrack/gc_scheduler.ts";
export { listConntrack } from "./conntrack/list.ts";
export { flushConntrack } from "./conntrack/flush.ts";
export { countConntrack } from "./conntrack/count.ts";
export type { ConntrackCount, ConntrackMapCount } from "./conntrack/count.ts";
export type { ConntrackFlushResult } from "./conntrack/flush.ts";

export { CT_RESULTS, DROP_REASONS, EVENT_TYPES, POLICY_VERDICTS, TRACE_POINTS } from "./monitor/reasons.ts";
export type {
  CtResultName,
  DropReasonName,
  MonitorEventType,
  PolicyVerdictName,
  TracePointName,
  UnknownName,
} from "./monitor/reasons.ts";
export { decodeMonitorEvent } from "./monitor/event.ts";
export type { DropEvent, MonitorEvent, MonitorEventBase, PolicyVerdictEvent, TraceEvent } from "./monitor/event.ts";
export { monitor } from "./monitor/monitor.ts";
export type { MonitorOptions, MonitorSource } from "./monitor/monitor.ts";
export { formatMonitorEvent } from "./monitor/format.ts";

export { Node, openNode } from "./node.ts";
export type { MapFill, NodeOptions, NodeStatus } from "./node.ts";
export type { NodeCounter, PolicyMapEntry } from "./map_entries.ts";
export { EndpointError } from "./endpoint/endpoint.ts";
export type { Endpoint, EndpointField, EndpointSpec } from "./endpoint/endpoint.ts";
export { Ipcache } from "./ipcache/ipcache.ts";
export type { IpcacheEntry, IpcacheInfo, IpcacheSetOptions } from "./ipcache/ipcache.ts";
export type { EncryptionStatus, NodeKey } from "./encryption/encryption.ts";
export { DEFAULT_MAP_SIZES, resolveMapSizes } from "./map_sizes.ts";
export type { MapSizeOptions, MapSizes } from "./map_sizes.ts";

export { PinnedNode, openPinnedNode } from "./pinned/pinned_node.ts";
export type { PinnedNodeInfo } from "./pinned/pinned_node.ts";
