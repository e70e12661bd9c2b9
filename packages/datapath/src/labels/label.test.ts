import { describe, expect, test } from "vitest";
import { formatLabel, InvalidLabelError, LabelSet, parseLabel } from "@dp/datapath";

describe("parseLabel()", () => {
  const good: [string, string, string, string][] = [
    ["k8s:app=web", "k8s", "app", "web"],
    ["reserved:host", "reserved", "host", ""],
    ["cidr:10.0.0.0/8", "cidr", "10.0.0.0/8", ""],
    ["k8s:io.kubernetes.pod.namespace=kube-system", "k8s", "io.kubernetes.pod.namespace", "kube-system"],
    ["k8s:app.kubernetes.io/name=my_app.v1", "k8s", "app.kubernetes.io/name", "my_app.v1"],
    ["app=web", "unspec", "app", "web"],
    ["app", "unspec", "app", ""],
    ["k8s:app=", "k8s", "app", ""],
  ];
  for (const [text, source, key, value] of good) {
    test(`parseLabel() splits ${JSON.stringify(text)}`, () => {
      expect(parseLabel(text)).toEqual({ source, key, value });
    });
  }

  const bad: [string, "source" | "key" | "value", RegExp][] = [
    [":app=web", "source", /the source is empty/],
    ["k8s:=web", "key", /the key is empty/],
    ["k8s:", "key", /the key is empty/],
    ["k 8s:app=web", "source", /the source "k 8s"/],
    ["k8s:a pp=web", "key", /the key "a pp"/],
    ["k8s:app=w b", "value", /the value "w b"/],
    ["k8s:app=web=x", "value", /the value "web=x"/],
    ["k8s:-app=web", "key", /starting and ending/],
    [`k8s:app=${"v".repeat(64)}`, "value", /0-63/],
  ];
  for (const [text, part, message] of bad) {
    test(`parseLabel() rejects ${JSON.stringify(text)} naming the ${part}`, () => {
      let caught: unknown;
      try {
        parseLabel(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidLabelError);
      expect(caught).toBeInstanceOf(SyntaxError);
      const err = caught as InvalidLabelError;
      expect(err.name).toBe("InvalidLabelError");
      expect(err.label).toBe(text);
      expect(err.part).toBe(part);
      expect(err.message).toMatch(
        new RegExp(`^Invalid label ${JSON.stringify(text).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: `),
      );
      expect(err.message).toMatch(message);
    });
  }

  test("parseLabel() throws TypeError for a non-string", () => {
    expect(() => parseLabel(42 as unknown as string)).toThrow(TypeError);
  });
});

describe("formatLabel()", () => {
  test("formatLabel() inverts parseLabel() for labels with and without values", () => {
    for (const text of ["k8s:app=web", "reserved:world", "cidr:fd00--0/8", "container:x.y/z=1"]) {
      expect(formatLabel(parseLabel(text))).toBe(text);
    }
  });
});

describe("LabelSet", () => {
  test("LabelSet.from() gives equal keys for the same labels in any order and form", () => {
    const a = LabelSet.from(["k8s:tier=front", "k8s:app=web", "reserved:host"]);
    const b = LabelSet.from({ "reserved:host": "", "k8s:app": "web", "k8s:tier": "front" });
    const c = LabelSet.from([{ source: "k8s", key: "app", value: "web" }, "reserved:host", "k8s:tier=front"]);
    expect(a.key).toBe("k8s:app=web,k8s:tier=front,reserved:host");
    expect(a.equals(b)).toBe(true);
    expect(a.equals(c)).toBe(true);
    expect(LabelSet.from(a)).toBe(a);
    expect(JSON.stringify(a)).toBe('["k8s:app=web","k8s:tier=front","reserved:host"]');
  });

  test("LabelSet.from() drops exact duplicates and rejects a second value for a key", () => {
    expect(LabelSet.from(["k8s:app=web", "k8s:app=web"]).size).toBe(1);
    expect(() => LabelSet.from(["k8s:app=web", "k8s:app=db"])).toThrow(InvalidLabelError);
    expect(() => LabelSet.from(["k8s:app=web", "k8s:app=db"])).toThrow(/the key "k8s:app" already has the value/);
    // The same key from another source is another label.
    expect(LabelSet.from(["k8s:app=web", "container:app=db"]).size).toBe(2);
  });

  test("LabelSet.get() looks a key up in one source or any", () => {
    const set = LabelSet.from(["k8s:app=web", "container:app=db", "reserved:host"]);
    expect(set.get("app", "k8s")).toBe("web");
    expect(set.get("app", "container")).toBe("db");
    expect(set.get("app")).toBe("db"); // first in sort order
    expect(set.get("host")).toBe("");
    expect(set.has("host", "reserved")).toBe(true);
    expect(set.has("host", "k8s")).toBe(false);
    expect(set.get("tier")).toBeUndefined();
    expect(set.withKey("app").map((l) => l.source)).toEqual(["container", "k8s"]);
  });

  test("LabelSet.from() rejects inputs of the wrong shape with TypeError", () => {
    expect(() => LabelSet.from(null as unknown as string[])).toThrow(TypeError);
    expect(() => LabelSet.from([1] as unknown as string[])).toThrow(TypeError);
    expect(() => LabelSet.from({ "k8s:app": 1 } as unknown as Record<string, string>)).toThrow(TypeError);
  });
});
