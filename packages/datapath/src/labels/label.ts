/**
 * A security label: `source:key=value`, such as `k8s:app=web` or `reserved:host`.
 *
 * @example A label object
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLabel, type Label } from "@dp/datapath";
 *
 * const label: Label = { source: "k8s", key: "app", value: "web" };
 * assert.equal(formatLabel(label), "k8s:app=web");
 * ```
 */
export interface Label {
  /** Where the label comes from: `k8s`, `reserved`, `cidr`, `unspec`, …. */
  readonly source: string;
  /** The key, such as `app` or `io.kubernetes.pod.namespace`. */
  readonly key: string;
  /** The value; `""` for labels without one (`reserved:host`). */
  readonly value: string;
}

/** The source a label without one gets, as in Cilium. */
const DEFAULT_SOURCE = "unspec";

const SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;
const VALUE_RE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

/**
 * A label that cannot be parsed or is not well formed. The message names
 * the label and what is wrong with it.
 *
 * @example What a bad label reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidLabelError, parseLabel } from "@dp/datapath";
 *
 * assert.throws(() => parseLabel("k8s:=web"), (err: unknown) => {
 *   assert.ok(err instanceof InvalidLabelError && err instanceof SyntaxError);
 *   assert.equal(err.label, "k8s:=web");
 *   assert.equal(err.part, "key");
 *   assert.equal(err.message, 'Invalid label "k8s:=web": the key is empty');
 *   return true;
 * });
 * ```
 */
export class InvalidLabelError extends SyntaxError {
  /** Always `"InvalidLabelError"`, the class name. */
  override readonly name: string = "InvalidLabelError";
  /** The label as given. */
  readonly label: string;
  /** The part that is wrong: `"source"`, `"key"` or `"value"`. */
  readonly part: "source" | "key" | "value";

  /**
   * Creates the error.
   *
   * @param label The label as given.
   * @param part The part that is wrong.
   * @param problem What is wrong, such as `the key is empty`.
   */
  constructor(label: string, part: "source" | "key" | "value", problem: string) {
    super(`Invalid label ${JSON.stringify(label)}: ${problem}`);
    this.label = label;
    this.part = part;
  }
}

/**
 * Checks the parts of a label and returns it frozen.
 *
 * @param text The label's text for messages.
 * @param source The source.
 * @param key The key.
 * @param value The value.
 * @returns The label.
 */
function checkLabel(text: string, source: string, key: string, value: string): Label {
  if (source === "") throw new InvalidLabelError(text, "source", "the source is empty");
  if (!SOURCE_RE.test(source)) {
    throw new InvalidLabelError(
      text,
      "source",
      `the source ${JSON.stringify(source)} must be 1-63 letters, digits, "-" or "_"`,
    );
  }
  if (key === "") throw new InvalidLabelError(text, "key", "the key is empty");
  if (!KEY_RE.test(key)) {
    throw new InvalidLabelError(
      text,
      "key",
      `the key ${JSON.stringify(key)} must be 1-253 letters, digits, ".", "_", "-" or "/", starting and ending with a letter or digit`,
    );
  }
  if (!VALUE_RE.test(value)) {
    throw new InvalidLabelError(
      text,
      "value",
      `the value ${JSON.stringify(value)} must be 0-63 letters, digits, ".", "_" or "-", starting and ending with a letter or digit`,
    );
  }
  return Object.freeze({ source, key, value });
}

/**
 * Parses a label written `source:key=value` (Cilium's form). The source
 * is the text before the first `:`; without one it is `unspec`. The
 * value is optional (`reserved:host`). Keys follow Kubernetes label keys
 * (letters, digits, `.`, `_`, `-`, `/`), values Kubernetes label values.
 *
 * @param text Such as `"k8s:app=web"`, `"reserved:host"` or `"app=web"`.
 * @returns The label's parts.
 * @throws {InvalidLabelError} When a part is empty or has characters a label cannot hold.
 * @throws {TypeError} When `text` is not a string.
 * @example Parsing labels
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLabel } from "@dp/datapath";
 *
 * assert.deepEqual(parseLabel("k8s:app=web"), { source: "k8s", key: "app", value: "web" });
 * assert.deepEqual(parseLabel("reserved:host"), { source: "reserved", key: "host", value: "" });
 * assert.equal(parseLabel("app=web").source, "unspec");
 * ```
 */
export function parseLabel(text: string): Label {
  if (typeof text !== "string") throw new TypeError(`Invalid label: expected a string, got ${typeof text}`);
  const colon = text.indexOf(":");
  const eq = text.indexOf("=");
  const hasSource = colon >= 0 && (eq < 0 || colon < eq);
  const source = hasSource ? text.slice(0, colon) : DEFAULT_SOURCE;
  const rest = hasSource ? text.slice(colon + 1) : text;
  const at = rest.indexOf("=");
  const key = at < 0 ? rest : rest.slice(0, at);
  const value = at < 0 ? "" : rest.slice(at + 1);
  return checkLabel(text, source, key, value);
}

/**
 * Formats a label as `source:key=value`, or `source:key` when it has no
 * value; the inverse of {@link parseLabel}.
 *
 * @param label The label.
 * @returns Its text form.
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatLabel, parseLabel } from "@dp/datapath";
 *
 * assert.equal(formatLabel({ source: "k8s", key: "app", value: "web" }), "k8s:app=web");
 * assert.equal(formatLabel(parseLabel("reserved:host")), "reserved:host");
 * ```
 */
export function formatLabel(label: Label): string {
  return label.value === "" ? `${label.source}:${label.key}` : `${label.source}:${label.key}=${label.value}`;
}
