import { describe, expect, test } from "vitest";
import { type EndpointSelector, InvalidSelectorError, LabelSet, parseSelector } from "@dp/datapath";

const web = LabelSet.from(["k8s:app=web", "k8s:tier=front"]);
const db = LabelSet.from(["k8s:app=db", "container:tier=back"]);
const bare = LabelSet.from(["k8s:other=x"]);

describe("parseSelector()", () => {
  const cases: [string, EndpointSelector, boolean, boolean, boolean][] = [
    ["{} selects everything", {}, true, true, true],
    ["matchLabels with a source", { matchLabels: { "k8s:app": "web" } }, true, false, false],
    ["matchLabels without a source", { matchLabels: { tier: "back" } }, false, true, false],
    ["matchLabels with any:", { matchLabels: { "any:tier": "back" } }, false, true, false],
    ["matchLabels of the wrong source", { matchLabels: { "k8s:tier": "back" } }, false, false, false],
    ["In", { matchExpressions: [{ key: "k8s:app", operator: "In", values: ["web", "db"] }] }, true, true, false],
    [
      "NotIn (absent key matches)",
      { matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] },
      false,
      true,
      true,
    ],
    ["Exists", { matchExpressions: [{ key: "tier", operator: "Exists" }] }, true, true, false],
    ["Exists with a source", { matchExpressions: [{ key: "k8s:tier", operator: "Exists" }] }, true, false, false],
    ["DoesNotExist", { matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, false, false, true],
    [
      "all requirements must hold",
      { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "In", values: ["back"] }] },
      false,
      false,
      false,
    ],
  ];
  for (const [name, sel, w, d, b] of cases) {
    test(`parseSelector() matches per Kubernetes semantics: ${name}`, () => {
      const s = parseSelector(sel);
      expect([s.matches(web), s.matches(db), s.matches(bare)]).toEqual([w, d, b]);
    });
  }

  test("parseSelector() gives equal keys to equivalent selectors", () => {
    const a = parseSelector({
      matchLabels: { "k8s:app": "web", tier: "front" },
      matchExpressions: [{ key: "x", operator: "In", values: ["b", "a", "a"] }],
    });
    const b = parseSelector({
      matchExpressions: [{ key: "any:x", operator: "In", values: ["a", "b"] }],
      matchLabels: { "any:tier": "front", "k8s:app": "web" },
    });
    expect(a.key).toBe(b.key);
    expect(parseSelector({}).key).toBe("");
    expect(parseSelector({}).selectsAll).toBe(true);
    expect(a.selectsAll).toBe(false);
  });

  const bad: [string, unknown, string][] = [
    ["a non-object", [], "(selector)"],
    ["an unknown field", { matchLabel: {} }, "matchLabel"],
    ["a bad matchLabels key", { matchLabels: { "k8s:a b": "x" } }, 'matchLabels["k8s:a b"]'],
    ["a bad matchLabels value", { matchLabels: { app: "a b" } }, 'matchLabels["app"]'],
    ["a non-string value", { matchLabels: { app: 1 } }, 'matchLabels["app"]'],
    [
      "an unknown operator",
      { matchExpressions: [{ key: "a", operator: "Contains", values: ["x"] }] },
      "matchExpressions[0].operator",
    ],
    [
      "In without values",
      { matchExpressions: [{ key: "a", operator: "In", values: [] }] },
      "matchExpressions[0].values",
    ],
    [
      "Exists with values",
      { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] },
      "matchExpressions[0].values",
    ],
    ["an empty key", { matchExpressions: [{ key: "", operator: "Exists" }] }, "matchExpressions[0].key"],
    [
      "a bad value",
      { matchExpressions: [{ key: "a", operator: "In", values: ["ok", "n o"] }] },
      "matchExpressions[0].values[1]",
    ],
    ["matchExpressions not an array", { matchExpressions: {} }, "matchExpressions"],
  ];
  for (const [name, sel, field] of bad) {
    test(`parseSelector() names the field for ${name}`, () => {
      let caught: unknown;
      try {
        parseSelector(sel as EndpointSelector);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidSelectorError);
      expect(caught).toBeInstanceOf(TypeError);
      expect((caught as InvalidSelectorError).field).toBe(field);
      expect((caught as Error).message.startsWith(`Invalid selector: ${field}: `)).toBe(true);
      expect((caught as Error).name).toBe("InvalidSelectorError");
    });
  }
});
