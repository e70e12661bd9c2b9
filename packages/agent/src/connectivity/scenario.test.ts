// The scenario registry and the built-in scenarios' shape: Cilium's
// names, valid rules, actions naming known peers, both verdicts present
// where rules exist.
import { expect, test } from "vitest";
import { validatePolicyRules } from "@dp/datapath";
import { BUILTIN_SCENARIOS } from "./builtin_scenarios.ts";
import { connectivityScenarios, registerScenario } from "./registry.ts";
import { CONNECTIVITY_PODS } from "./scenario.ts";

const ctx = { world: { ipv4: "192.168.200.2", ipv6: "fd20::2" }, host: { ipv4: "192.168.200.1" } };

test("the built-ins come first, in order, with Cilium's names", () => {
  expect(
    connectivityScenarios()
      .slice(0, BUILTIN_SCENARIOS.length)
      .map((s) => s.name),
  ).toEqual([
    "no-policies",
    "client-egress",
    "client-ingress",
    "echo-ingress-l4",
    "all-ingress-deny",
    "all-egress-deny",
    "to-cidr-external",
    "client-egress-to-echo-deny",
    "host-entity-egress",
  ]);
  expect(connectivityScenarios(/deny/).map((s) => s.name)).toEqual([
    "all-ingress-deny",
    "all-egress-deny",
    "client-egress-to-echo-deny",
  ]);
});

test("every built-in's rules validate and its actions name known peers", () => {
  const peers = new Set([...Object.keys(CONNECTIVITY_PODS), "host", "world"]);
  for (const s of BUILTIN_SCENARIOS) {
    const rules = s.rules(ctx);
    expect(() => validatePolicyRules(rules.map((r, i) => ({ ...r, name: `${s.name}-${i}` })))).not.toThrow();
    for (const a of s.actions) {
      expect(peers.has(a.from), `${s.name}: ${a.from}`).toBe(true);
      expect(peers.has(a.to), `${s.name}: ${a.to}`).toBe(true);
      expect(a.from === a.to, `${s.name}: ${a.from} -> ${a.to}`).toBe(false);
    }
    const verdicts = new Set(s.actions.map((a) => a.expect));
    expect([...verdicts].sort(), s.name).toEqual(rules.length === 0 ? ["allow"] : ["allow", "drop"]);
  }
});

test("registering appends; a taken or malformed name is a TypeError", () => {
  registerScenario({ name: "unit-extra", description: "x", rules: () => [], actions: [] });
  expect(connectivityScenarios().at(-1)?.name).toBe("unit-extra");
  expect(() => registerScenario({ name: "no-policies", description: "x", rules: () => [], actions: [] })).toThrow(
    new TypeError('Cannot register scenario "no-policies": a scenario of that name exists'),
  );
  expect(() => registerScenario({ name: "Bad Name", description: "x", rules: () => [], actions: [] })).toThrow(
    TypeError,
  );
});
