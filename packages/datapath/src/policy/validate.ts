import { compileRules } from "./_compile.ts";
import type { PolicyRule } from "./rule.ts";

/**
 * One problem of a rule set: the rule (its name, or its index when it
 * has none), the field path inside the rule, and what is wrong.
 *
 * @example Reading problems
 * ```ts
 * import assert from "node:assert/strict";
 * import { PolicyValidationError, type PolicyProblem, validatePolicyRules } from "@dp/datapath";
 *
 * let problems: readonly PolicyProblem[] = [];
 * try {
 *   validatePolicyRules([{ endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 99999 }] }] }] }]);
 * } catch (err) {
 *   if (err instanceof PolicyValidationError) problems = err.problems;
 * }
 * assert.deepEqual(problems.map((p) => [p.rule, p.field]), [[0, "ingress[0].toPorts[0].ports[0].port"]]);
 * ```
 */
export interface PolicyProblem {
  /** The rule's name, or its index in the set when it has no name. */
  readonly rule: string | number;
  /** The field path, such as `ingress[0].toPorts[0].ports[1].endPort`. */
  readonly field: string;
  /** What is wrong. */
  readonly message: string;
}

/**
 * A rule set failed validation; nothing was changed. `problems` lists
 * every problem found; `rule` and `field` are those of the first.
 *
 * @example Every problem is reported
 * ```ts
 * import assert from "node:assert/strict";
 * import { PolicyValidationError, validatePolicyRules } from "@dp/datapath";
 *
 * assert.throws(
 *   () =>
 *     validatePolicyRules([
 *       {
 *         name: "web",
 *         endpointSelector: {},
 *         ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: "TCP" }, { port: 90, endPort: 85, protocol: "TCP" }] }] }],
 *         egress: [{ toCIDR: ["10.0.0.1/8"] }],
 *       },
 *     ]),
 *   (err: unknown) => {
 *     assert.ok(err instanceof PolicyValidationError && err instanceof TypeError);
 *     assert.equal(err.rule, "web");
 *     assert.equal(err.field, "ingress[0].toPorts[0].ports[1].endPort");
 *     assert.equal(err.problems.length, 2);
 *     assert.equal(err.problems[1]?.field, "egress[0].toCIDR[0]");
 *     return true;
 *   },
 * );
 * ```
 */
export class PolicyValidationError extends TypeError {
  /** Always `"PolicyValidationError"`, the class name. */
  override readonly name: string = "PolicyValidationError";
  /** The first problem's rule. */
  readonly rule: string | number;
  /** The first problem's field. */
  readonly field: string;
  /** Every problem, in rule and field order. */
  readonly problems: readonly PolicyProblem[];

  /**
   * Creates the error.
   *
   * @param problems The problems (at least one).
   * @param action What was being done, such as `apply rules`.
   */
  constructor(problems: readonly PolicyProblem[], action = "apply rules") {
    const first = problems[0] ?? { rule: "?", field: "?", message: "invalid" };
    const ruleText = typeof first.rule === "number" ? `rule #${first.rule}` : `rule ${JSON.stringify(first.rule)}`;
    const more =
      problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
    super(`Cannot ${action}: ${ruleText}: ${first.field}: ${first.message}${more}`);
    this.rule = first.rule;
    this.field = first.field;
    this.problems = Object.freeze([...problems]);
  }
}

/**
 * Checks a rule set without applying it: shapes, selectors, CIDRs
 * (host bits must be zero; `except` inside its `cidr`), entities,
 * protocols, ports and ranges, and that names are unique.
 *
 * @param rules The rules.
 * @throws {PolicyValidationError} With every problem, each naming the rule and the field.
 * @throws {TypeError} When `rules` is not an array.
 * @example A valid and an invalid set
 * ```ts
 * import assert from "node:assert/strict";
 * import { PolicyValidationError, validatePolicyRules } from "@dp/datapath";
 *
 * validatePolicyRules([{ endpointSelector: {}, ingress: [{ fromEntities: ["cluster"] }] }]);
 * assert.throws(
 *   () => validatePolicyRules([{ endpointSelector: {}, ingress: [{ fromEntities: ["galaxy" as "world"] }] }]),
 *   (err: unknown) => err instanceof PolicyValidationError && err.rule === 0 && err.field === "ingress[0].fromEntities[0]",
 * );
 * ```
 */
export function validatePolicyRules(rules: readonly PolicyRule[]): void {
  if (!Array.isArray(rules))
    throw new TypeError(`Cannot validate rules: expected an array of rules, got ${typeof rules}`);
  const { problems } = compileRules(rules);
  if (problems.length > 0) throw new PolicyValidationError(problems, "validate rules");
}
