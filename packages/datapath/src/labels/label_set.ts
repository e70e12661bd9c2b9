import { formatLabel, InvalidLabelError, type Label, parseLabel } from "./label.ts";

/**
 * What functions taking labels accept: a {@link LabelSet}, label texts
 * (`["k8s:app=web"]`), {@link Label} objects, or a record from
 * `source:key` to value (`{ "k8s:app": "web" }`).
 *
 * @example Three forms of the same set
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet, type LabelsInput } from "@dp/datapath";
 *
 * const forms: LabelsInput[] = [["k8s:app=web"], [{ source: "k8s", key: "app", value: "web" }], { "k8s:app": "web" }];
 * assert.ok(forms.every((f) => LabelSet.from(f).key === "k8s:app=web"));
 * ```
 */
export type LabelsInput = LabelSet | Iterable<string | Label> | Readonly<Record<string, string>>;

function compareLabels(a: Label, b: Label): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.value !== b.value) return a.value < b.value ? -1 : 1;
  return 0;
}

function isIterable(input: object): input is Iterable<string | Label> {
  return typeof (input as { [Symbol.iterator]?: unknown })[Symbol.iterator] === "function";
}

/**
 * An immutable, normalised set of labels: sorted by source, key and value,
 * one value per `source:key` (a second value for the same key is an
 * error). Two sets with the same labels in any order have the same
 * {@link LabelSet.key} and are {@link LabelSet.equals}.
 *
 * @example Order does not matter
 * ```ts
 * import assert from "node:assert/strict";
 * import { LabelSet } from "@dp/datapath";
 *
 * const a = LabelSet.from(["k8s:app=web", "k8s:tier=front"]);
 * const b = LabelSet.from({ "k8s:tier": "front", "k8s:app": "web" });
 * assert.ok(a.equals(b));
 * assert.equal(a.key, "k8s:app=web,k8s:tier=front");
 * assert.equal(a.get("app"), "web");
 * assert.equal(a.get("app", "reserved"), undefined);
 * ```
 */
export class LabelSet implements Iterable<Label> {
  /** The empty set. */
  static readonly EMPTY: LabelSet = new LabelSet([]);

  #labels: readonly Label[];
  #key: string;
  #byKey = new Map<string, Label[]>();

  /**
   * Wraps sorted, checked labels.
   *
   * @internal Use {@link LabelSet.from}.
   * @param labels Sorted labels with distinct `source:key`.
   */
  constructor(labels: readonly Label[]) {
    this.#labels = Object.freeze(labels);
    this.#key = labels.map(formatLabel).join(",");
    for (const l of labels) {
      const list = this.#byKey.get(l.key);
      if (list === undefined) this.#byKey.set(l.key, [l]);
      else list.push(l);
    }
  }

  /**
   * Makes a set from labels in any of the {@link LabelsInput} forms.
   *
   * @param input The labels; a `LabelSet` is returned as is.
   * @returns The normalised set.
   * @throws {InvalidLabelError} When a label is malformed or a `source:key` has two different values.
   * @throws {TypeError} When `input` is none of the accepted forms.
   * @example From a record
   * ```ts
   * import assert from "node:assert/strict";
   * import { LabelSet } from "@dp/datapath";
   *
   * const set = LabelSet.from({ "k8s:app": "web", "reserved:host": "" });
   * assert.deepEqual([...set.toStrings()], ["k8s:app=web", "reserved:host"]);
   * ```
   */
  static from(input: LabelsInput): LabelSet {
    if (input instanceof LabelSet) return input;
    if (typeof input !== "object" || input === null) {
      throw new TypeError(
        `Invalid labels: expected an array, a record or a LabelSet, got ${input === null ? "null" : typeof input}`,
      );
    }
    const labels: Label[] = [];
    if (isIterable(input)) {
      for (const item of input) {
        if (typeof item === "string") labels.push(parseLabel(item));
        else if (typeof item === "object" && item !== null) labels.push(parseLabel(formatLabel(item)));
        else throw new TypeError(`Invalid labels: expected label strings or objects, got ${typeof item}`);
      }
    } else {
      for (const [k, v] of Object.entries(input)) {
        if (typeof v !== "string")
          throw new TypeError(`Invalid label ${JSON.stringify(k)}: the value must be a string, got ${typeof v}`);
        labels.push(parseLabel(v === "" ? k : `${k}=${v}`));
      }
    }
    labels.sort(compareLabels);
    const out: Label[] = [];
    for (const l of labels) {
      const prev = out[out.length - 1];
      if (prev !== undefined && prev.source === l.source && prev.key === l.key) {
        if (prev.value === l.value) continue;
        throw new InvalidLabelError(
          formatLabel(l),
          "value",
          `the key "${l.source}:${l.key}" already has the value ${JSON.stringify(prev.value)}`,
        );
      }
      out.push(l);
    }
    return new LabelSet(out);
  }

  /**
   * The canonical text of the set: its labels formatted and joined by `,`
   * in sorted order. Equal sets have equal keys.
   */
  get key(): string {
    return this.#key;
  }

  /** The number of labels. */
  get size(): number {
    return this.#labels.length;
  }

  /**
   * Looks up the value of a key.
   *
   * @param key The key without source.
   * @param source The source; any source when omitted (the first in sort order if several have the key).
   * @returns The value (`""` for a label without one), or `undefined` when no label has the key.
   */
  get(key: string, source?: string): string | undefined {
    const list = this.#byKey.get(key);
    if (list === undefined) return undefined;
    if (source === undefined) return list[0]?.value;
    for (const l of list) if (l.source === source) return l.value;
    return undefined;
  }

  /**
   * Whether a label with the key exists.
   *
   * @param key The key without source.
   * @param source The source; any source when omitted.
   * @returns `true` when a label has the key (from the source).
   */
  has(key: string, source?: string): boolean {
    return this.get(key, source) !== undefined;
  }

  /**
   * The values a key has across sources.
   *
   * @param key The key without source.
   * @returns The labels with that key, in sort order (empty when none).
   */
  withKey(key: string): readonly Label[] {
    return this.#byKey.get(key) ?? [];
  }

  /**
   * Whether both sets hold the same labels.
   *
   * @param other The other set.
   * @returns `true` when equal.
   */
  equals(other: LabelSet): boolean {
    return this.#key === other.#key;
  }

  /**
   * The labels as `source:key=value` texts, in sorted order.
   *
   * @returns The texts.
   */
  toStrings(): string[] {
    return this.#labels.map(formatLabel);
  }

  /**
   * The canonical text, as {@link LabelSet.key}.
   *
   * @returns The key.
   */
  toString(): string {
    return this.#key;
  }

  /**
   * The JSON form: the label texts.
   *
   * @returns The texts.
   */
  toJSON(): string[] {
    return this.toStrings();
  }

  /**
   * Iterates the labels in sorted order.
   *
   * @returns An iterator of labels.
   */
  [Symbol.iterator](): Iterator<Label> {
    return this.#labels[Symbol.iterator]();
  }
}
