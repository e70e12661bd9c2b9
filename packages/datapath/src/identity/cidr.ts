import { LabelSet } from "../labels/label_set.ts";
import { cidrLabel, masked, parsePrefix } from "./_prefix.ts";

/**
 * The labels of a CIDR identity, as Cilium gives them: `cidr:<prefix>`
 * for the prefix and for every shorter prefix that contains it, down to
 * `/0`, plus `reserved:world`. A CIDR rule on `P` selects the identities
 * with the label `cidr:P`; its `except` prefixes exclude those with
 * theirs.
 *
 * @param cidr A v4 or v6 prefix with zero host bits (a bare address is a host prefix).
 * @returns The label set.
 * @throws {SyntaxError} When `cidr` is not a prefix or has host bits set.
 * @example The labels of a /24
 * ```ts
 * import assert from "node:assert/strict";
 * import { cidrLabels } from "@dp/datapath";
 *
 * const labels = cidrLabels("10.1.2.0/24");
 * assert.equal(labels.size, 26); // /24 down to /0, plus reserved:world
 * assert.ok(labels.has("10.0.0.0/8", "cidr"));
 * assert.ok(labels.has("world", "reserved"));
 * assert.ok(cidrLabels("fd00::/8").has("fd00--0/8", "cidr"));
 * ```
 */
export function cidrLabels(cidr: string): LabelSet {
  const p = parsePrefix(cidr);
  const labels = ["reserved:world"];
  for (let len = p.prefixLength; len >= 0; len--) {
    labels.push(cidrLabel({ family: p.family, bytes: masked(p.bytes, len), prefixLength: len }));
  }
  return LabelSet.from(labels);
}
