import type { LabelsInput } from "../labels/label_set.ts";
import type { PolicyEntry } from "./entry.ts";
import type { PolicyProtocolName } from "./rule.ts";

/**
 * The rule section a policy entry came from, found by its `ruleCookie`.
 *
 * @example Naming the rule behind an entry
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * const [diff] = engine.setRules([{ name: "web", endpointSelector: {}, ingress: [{ fromEntities: ["host"] }] }]);
 * const ref = engine.ruleOfCookie(diff?.added[0]?.ruleCookie ?? 0);
 * assert.deepEqual(ref, { rule: "web", field: "ingress[0]", deny: false, cookie: diff?.added[0]?.ruleCookie });
 * ```
 */
export interface PolicyRuleRef {
  /** The rule's name, or its index when it has none. */
  readonly rule: string | number;
  /** The section, such as `ingress[0]` or `egressDeny[1]`. */
  readonly field: string;
  /** Whether the section is a deny section. */
  readonly deny: boolean;
  /** The cookie the section's entries carry. */
  readonly cookie: number;
}

/**
 * One side of a flow for {@link PolicyExplainQuery}: a local endpoint
 * (whose policy then applies), an identity, or labels (resolved to the
 * identity with exactly those labels).
 *
 * @example The three forms
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, type PolicyPeerRef } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * const froms: PolicyPeerRef[] = [{ endpoint: 1 }, { identity: 1 }, { labels: ["reserved:host"] }];
 * const answers = froms.map((from) => engine.explain({ from, to: { endpoint: 1 }, protocol: "TCP", port: 80 }));
 * assert.deepEqual(answers.map((a) => a.ingress?.remoteIdentity), [300, 1, 1]);
 * ```
 */
export type PolicyPeerRef =
  | {
      /** A local endpoint's id. */
      readonly endpoint: number;
    }
  | {
      /** An identity number. */
      readonly identity: number;
    }
  | {
      /** The labels of a known identity. */
      readonly labels: LabelsInput;
    };

/**
 * What `PolicyEngine.explain()` asks about: a flow from `from` to `to`.
 *
 * @example TCP 80 from a local endpoint to the world
 * ```ts
 * import type { PolicyExplainQuery } from "@dp/datapath";
 *
 * const query: PolicyExplainQuery = { from: { endpoint: 1 }, to: { identity: 2 }, protocol: "TCP", port: 80 };
 * void query;
 * ```
 */
export interface PolicyExplainQuery {
  /** The source. */
  readonly from: PolicyPeerRef;
  /** The destination. */
  readonly to: PolicyPeerRef;
  /** The protocol, by name or number (not `ANY`). */
  readonly protocol: Exclude<PolicyProtocolName, "ANY"> | number;
  /**
   * The destination port, or the ICMP type.
   *
   * @default 0
   */
  readonly port?: number;
}

/**
 * Why a direction gave its verdict: an allow or deny entry matched, or no
 * entry did and the endpoint's default applied (deny when enforced).
 *
 * @example A deny rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, type PolicyReason } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ endpointSelector: {}, ingressDeny: [{ fromEntities: ["world"] }] }]);
 * const ex = engine.explain({ from: { identity: 2 }, to: { endpoint: 1 }, protocol: "UDP", port: 53 });
 * const reason: PolicyReason | undefined = ex.ingress?.reason;
 * assert.equal(reason, "rule-deny");
 * ```
 */
export type PolicyReason = "rule-allow" | "rule-deny" | "default-allow" | "default-deny";

/**
 * The verdict of one endpoint's policy in one direction for a flow.
 *
 * @example Reading a direction's verdict
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * const ex = engine.explain({ from: { identity: 2 }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
 * assert.equal(ex.ingress?.reason, "default-allow");
 * assert.equal(ex.egress, undefined); // the world is no local endpoint
 * ```
 */
export interface DirectionExplanation {
  /** The endpoint whose policy applies. */
  readonly endpointId: number;
  /** `true` for the endpoint's egress (it is the source), `false` for its ingress. */
  readonly egress: boolean;
  /** The identity of the other side. */
  readonly remoteIdentity: number;
  /** Whether some rule selects the endpoint in this direction (default deny). */
  readonly enforced: boolean;
  /** The verdict. */
  readonly verdict: "allowed" | "denied";
  /** Why. */
  readonly reason: PolicyReason;
  /** The entry that decided; `undefined` for a default verdict. */
  readonly entry: PolicyEntry | undefined;
  /** The entries the lookup matched: for the remote identity (A) and for any identity (B). */
  readonly matched: readonly PolicyEntry[];
  /** The rule sections behind the deciding entries. */
  readonly rules: readonly PolicyRuleRef[];
  /** One line, like `cilium policy trace` prints. */
  readonly message: string;
}

/**
 * The answer of `PolicyEngine.explain()`: the flow is allowed when every
 * direction that applies allows it.
 *
 * @example A denied flow
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine } from "@dp/datapath";
 *
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ name: "lock", endpointSelector: {}, ingress: [{}] }]);
 * const ex = engine.explain({ from: { identity: 2 }, to: { endpoint: 1 }, protocol: "TCP", port: 80 });
 * assert.equal(ex.verdict, "denied");
 * assert.equal(ex.ingress?.reason, "default-deny");
 * ```
 */
export interface PolicyExplanation {
  /** `"allowed"` when every applying direction allows. */
  readonly verdict: "allowed" | "denied";
  /** The source endpoint's egress policy, when the source is a local endpoint. */
  readonly egress: DirectionExplanation | undefined;
  /** The destination endpoint's ingress policy, when the destination is a local endpoint. */
  readonly ingress: DirectionExplanation | undefined;
}
