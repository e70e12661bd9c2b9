import { compileRequirements, type Problem, type Requirement } from "./_selector_compile.ts";
import type { LabelSet } from "./label_set.ts";

/**
 * A `matchExpressions` operator, as in Kubernetes label selectors.
 *
 * @example NotIn also matches an absent key
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet, parseSelector, type SelectorOperator } from "@dp/datapath";
 *
 * const operator: SelectorOperator = "NotIn";
 * const sel = parseSelector({ matchExpressions: [{ key: "env", operator, values: ["prod"] }] });
 * assert.ok(sel.matches(LabelSet.from(["k8s:app=web"])));
 * ```
 */
export type SelectorOperator = "In" | "NotIn" | "Exists" | "DoesNotExist";

/**
 * One `matchExpressions` requirement. The key may carry a source
 * (`k8s:app`) or not (`app`, or `any:app`: a label of any source).
 *
 * @example A requirement
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet, parseSelector, type SelectorRequirement } from "@dp/datapath";
 *
 * const req: SelectorRequirement = { key: "k8s:tier", operator: "In", values: ["front", "edge"] };
 * assert.ok(parseSelector({ matchExpressions: [req] }).matches(LabelSet.from(["k8s:tier=edge"])));
 * ```
 */
export interface SelectorRequirement {
  /** The label key, optionally `source:key`. */
  readonly key: string;
  /** How the values are compared. */
  readonly operator: SelectorOperator;
  /** The values for `In`/`NotIn` (at least one); none for `Exists`/`DoesNotExist`. */
  readonly values?: readonly string[];
}

/**
 * A label selector in the shape of a CiliumNetworkPolicy `endpointSelector`
 * (plain data, as in YAML/JSON). All requirements must hold; the empty
 * selector `{}` selects every endpoint or identity.
 *
 * @example A selector as plain data
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EndpointSelector, LabelSet, parseSelector } from "@dp/datapath";
 *
 * const sel = JSON.parse('{"matchLabels":{"k8s:app":"web"}}') as EndpointSelector;
 * assert.ok(parseSelector(sel).matches(LabelSet.from(["k8s:app=web"])));
 * ```
 */
export interface EndpointSelector {
  /** Labels that must be present with these values; keys may carry a source (`k8s:app`). */
  readonly matchLabels?: Readonly<Record<string, string>>;
  /** Further requirements. */
  readonly matchExpressions?: readonly SelectorRequirement[];
}

/**
 * A selector that is not well formed. `field` is the path of the wrong
 * field inside the selector, such as `matchExpressions[0].operator`.
 *
 * @example What a bad selector reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidSelectorError, parseSelector } from "@dp/datapath";
 *
 * assert.throws(
 *   () => parseSelector({ matchExpressions: [{ key: "app", operator: "In" }] }),
 *   (err: unknown) => err instanceof InvalidSelectorError && err.field === "matchExpressions[0].values",
 * );
 * ```
 */
export class InvalidSelectorError extends TypeError {
  /** Always `"InvalidSelectorError"`, the class name. */
  override readonly name: string = "InvalidSelectorError";
  /** The path of the wrong field, such as `matchLabels["k8s:app"]`. */
  readonly field: string;

  /**
   * Creates the error.
   *
   * @param field The path of the wrong field.
   * @param problem What is wrong.
   */
  constructor(field: string, problem: string) {
    super(`Invalid selector: ${field}: ${problem}`);
    this.field = field;
  }
}

function formatRequirement(r: Requirement): string {
  const key = `${r.source ?? "any"}:${r.key}`;
  switch (r.operator) {
    case "In":
      return `${key} in (${r.values.join(",")})`;
    case "NotIn":
      return `${key} notin (${r.values.join(",")})`;
    case "Exists":
      return key;
    case "DoesNotExist":
      return `!${key}`;
  }
}

function holds(r: Requirement, labels: LabelSet): boolean {
  const candidates = labels.withKey(r.key);
  let found = false;
  let inValues = false;
  for (const l of candidates) {
    if (r.source !== undefined && l.source !== r.source) continue;
    found = true;
    if (r.values.includes(l.value)) inValues = true;
  }
  switch (r.operator) {
    case "In":
      return inValues;
    case "NotIn":
      return !inValues;
    case "Exists":
      return found;
    case "DoesNotExist":
      return !found;
  }
}

/**
 * A checked, compiled selector: {@link Selector.matches} tests a label
 * set, and {@link Selector.key} is a canonical text, equal for selectors
 * that say the same thing in another order.
 *
 * @example Matching label sets
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet, parseSelector } from "@dp/datapath";
 *
 * const sel = parseSelector({
 *   matchLabels: { "k8s:app": "web" },
 *   matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }],
 * });
 * assert.ok(sel.matches(LabelSet.from(["k8s:app=web", "k8s:tier=front"])));
 * assert.ok(!sel.matches(LabelSet.from(["k8s:app=web", "k8s:tier=db"])));
 * assert.ok(!sel.matches(LabelSet.from(["container:app=web"])));
 * assert.ok(parseSelector({}).matches(LabelSet.EMPTY));
 * ```
 */
export class Selector {
  #reqs: readonly Requirement[];
  #key: string;

  /**
   * Wraps checked requirements.
   *
   * @internal Use {@link parseSelector}.
   * @param reqs The requirements.
   */
  constructor(reqs: readonly Requirement[]) {
    const texts = reqs.map(formatRequirement);
    const order = texts.map((t, i) => [t, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#reqs = order.map(([, i]) => reqs[i] as Requirement);
    this.#key = [...new Set(order.map(([t]) => t))].join(" & ");
  }

  /** The canonical text: requirements sorted and joined by `&`; `""` for the empty selector. */
  get key(): string {
    return this.#key;
  }

  /** Whether the selector has no requirements and so selects everything. */
  get selectsAll(): boolean {
    return this.#reqs.length === 0;
  }

  /**
   * Tests a label set.
   *
   * @param labels The labels of an endpoint or identity.
   * @returns `true` when every requirement holds.
   */
  matches(labels: LabelSet): boolean {
    for (const r of this.#reqs) if (!holds(r, labels)) return false;
    return true;
  }

  /**
   * The canonical text, as {@link Selector.key}.
   *
   * @returns The key.
   */
  toString(): string {
    return this.#key;
  }
}

/**
 * Checks and compiles a selector in the CiliumNetworkPolicy shape. Keys
 * without a source match labels of any source; `In`/`NotIn` need values,
 * `Exists`/`DoesNotExist` take none.
 *
 * @param input The selector, such as `{ matchLabels: { "k8s:app": "web" } }`.
 * @returns The compiled selector.
 * @throws {InvalidSelectorError} When a field is malformed; `field` names it.
 * @example Keys with and without a source
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet, parseSelector } from "@dp/datapath";
 *
 * const anySource = parseSelector({ matchLabels: { app: "web" } });
 * const k8sOnly = parseSelector({ matchLabels: { "k8s:app": "web" } });
 * const labels = LabelSet.from(["container:app=web"]);
 * assert.ok(anySource.matches(labels));
 * assert.ok(!k8sOnly.matches(labels));
 * ```
 */
export function parseSelector(input: EndpointSelector): Selector {
  const problems: Problem[] = [];
  const reqs = compileRequirements(input, "", problems);
  const first = problems[0];
  if (reqs === undefined || first !== undefined) {
    throw new InvalidSelectorError(first?.field ?? "(selector)", first?.message ?? "invalid");
  }
  return new Selector(reqs);
}
