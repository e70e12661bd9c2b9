// One direction of PolicyEngine.explain(), computed from map entries.
import type { PolicyEntry } from "./entry.ts";
import type { DirectionExplanation, PolicyReason, PolicyRuleRef } from "./explain.ts";
import { lookupPolicy } from "./lookup.ts";

function describe(ref: PolicyRuleRef): string {
  return `${typeof ref.rule === "number" ? `rule #${ref.rule}` : `rule ${JSON.stringify(ref.rule)}`} ${ref.field}`;
}

/**
 * Explains one direction from the entries the maps hold.
 *
 * @param entries The endpoint's entries for the remote identity and for identity 0 in this direction.
 * @param endpointId The endpoint.
 * @param egress The direction.
 * @param enforced The endpoint's enforcement in this direction.
 * @param remote The remote identity.
 * @param protocol The protocol number.
 * @param port The port or ICMP type.
 * @param ruleOf Resolves a cookie.
 * @returns The explanation.
 */
export function explainDirection(
  entries: Iterable<PolicyEntry>,
  endpointId: number,
  egress: boolean,
  enforced: boolean,
  remote: number,
  protocol: number,
  port: number,
  ruleOf: (cookie: number) => PolicyRuleRef | undefined,
): DirectionExplanation {
  const r = lookupPolicy(entries, { identity: remote, egress, protocol, port });
  const matched = [...new Set([r.identityMatch, r.anyMatch])].filter((e): e is PolicyEntry => e !== undefined);
  const deciding = r.verdict === "deny" ? matched.filter((e) => e.deny) : matched;
  const rules = deciding.map((e) => ruleOf(e.ruleCookie)).filter((x): x is PolicyRuleRef => x !== undefined);
  const dir = egress ? "Egress" : "Ingress";
  const where = `${dir} of endpoint ${endpointId} ${egress ? "to" : "from"} identity ${remote}`;
  let reason: PolicyReason;
  let message: string;
  if (r.verdict === "deny") {
    reason = "rule-deny";
    message = `${where}: denied by ${rules.map(describe).join(", ")}`;
  } else if (r.verdict === "allow") {
    reason = "rule-allow";
    message = `${where}: allowed by ${rules.map(describe).join(", ")}`;
  } else if (enforced) {
    reason = "default-deny";
    message = `${where}: denied by default (rules select the endpoint, none allows this)`;
  } else {
    reason = "default-allow";
    message = `${where}: allowed by default (no rule selects the endpoint for ${dir.toLowerCase()})`;
  }
  return {
    endpointId,
    egress,
    remoteIdentity: remote,
    enforced,
    verdict: reason === "rule-allow" || reason === "default-allow" ? "allowed" : "denied",
    reason,
    entry: r.verdict === "none" ? undefined : r.entry,
    matched,
    rules,
    message,
  };
}
