import { describe, expect, test } from "vitest";
import { createPolicyEngine, PolicyValidationError, type PolicyRule, validatePolicyRules } from "@dp/datapath";

function problems(rules: unknown[]): { rule: string | number; field: string; message: string }[] {
  try {
    validatePolicyRules(rules as PolicyRule[]);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyValidationError);
    expect(err).toBeInstanceOf(TypeError);
    return [...(err as PolicyValidationError).problems];
  }
  return [];
}

describe("validatePolicyRules()", () => {
  const cases: [string, unknown, string | number, string, RegExp][] = [
    ["a missing endpointSelector", { ingress: [] }, 0, "endpointSelector", /is required/],
    ["an unknown rule field", { name: "x", endpointSelector: {}, ingres: [] }, "x", "ingres", /unknown field/],
    [
      "a bad endpointSelector",
      { endpointSelector: { matchLabels: { "a b": "x" } } },
      0,
      'endpointSelector.matchLabels["a b"]',
      /Invalid label/,
    ],
    [
      "a bad fromEndpoints selector",
      { endpointSelector: {}, ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: "a", operator: "Has" }] }] }] },
      0,
      "ingress[0].fromEndpoints[0].matchExpressions[0].operator",
      /must be one of/,
    ],
    [
      "host bits in toCIDR",
      { endpointSelector: {}, egress: [{ toCIDR: ["10.0.0.1/8"] }] },
      0,
      "egress[0].toCIDR[0]",
      /host bits are set \(the prefix is "10.0.0.0\/8"\)/,
    ],
    [
      "an unparsable CIDR",
      { endpointSelector: {}, ingress: [{ fromCIDR: ["10.0.0.0/40"] }] },
      0,
      "ingress[0].fromCIDR[0]",
      /prefix length/,
    ],
    [
      "an except outside its cidr",
      { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["11.0.0.0/16"] }] }] },
      0,
      "ingress[0].fromCIDRSet[0].except[0]",
      /is not inside "10.0.0.0\/8"/,
    ],
    [
      "an except of the other family",
      { endpointSelector: {}, ingress: [{ fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["fd00::/8"] }] }] },
      0,
      "ingress[0].fromCIDRSet[0].except[0]",
      /is not inside/,
    ],
    [
      "an unknown entity",
      { endpointSelector: {}, egress: [{ toEntities: ["everyone"] }] },
      0,
      "egress[0].toEntities[0]",
      /must be one of host, world/,
    ],
    [
      "a from field in egress",
      { endpointSelector: {}, egress: [{ fromEndpoints: [{}] }] },
      0,
      "egress[0].fromEndpoints",
      /unknown field/,
    ],
    [
      "an unknown protocol",
      { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: "tcp" }] }] }] },
      0,
      "ingress[0].toPorts[0].ports[0].protocol",
      /must be one of TCP/,
    ],
    [
      "a port above 65535",
      { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 70000, protocol: "TCP" }] }] }] },
      0,
      "ingress[0].toPorts[0].ports[0].port",
      /0-65535/,
    ],
    [
      "a named port",
      { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: "http", protocol: "TCP" }] }] }] },
      0,
      "ingress[0].toPorts[0].ports[0].port",
      /numeric string/,
    ],
    [
      "endPort below port",
      { endpointSelector: {}, ingressDeny: [{ toPorts: [{ ports: [{ port: 90, endPort: 80, protocol: "TCP" }] }] }] },
      0,
      "ingressDeny[0].toPorts[0].ports[0].endPort",
      /at least port 90/,
    ],
    [
      "endPort without port",
      { endpointSelector: {}, egress: [{ toPorts: [{ ports: [{ endPort: 80, protocol: "TCP" }] }] }] },
      0,
      "egress[0].toPorts[0].ports[0].endPort",
      /needs a port/,
    ],
    [
      "an ICMP type above 255",
      { endpointSelector: {}, egressDeny: [{ toPorts: [{ ports: [{ port: 300, protocol: "ICMP" }] }] }] },
      0,
      "egressDeny[0].toPorts[0].ports[0].port",
      /ICMP type/,
    ],
    [
      "L7 rules",
      { endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 80 }], rules: { http: [] } }] }] },
      0,
      "ingress[0].toPorts[0].rules",
      /L7 rules are not supported/,
    ],
    ["a non-array section", { endpointSelector: {}, ingress: {} }, 0, "ingress", /must be an array/],
    ["an empty name", { name: "", endpointSelector: {} }, 0, "name", /non-empty/],
  ];
  for (const [what, rule, ruleRef, field, message] of cases) {
    test(`validatePolicyRules() names the rule and field for ${what}`, () => {
      const got = problems([rule]);
      expect(got.length).toBeGreaterThan(0);
      expect(got[0]?.rule).toBe(ruleRef);
      expect(got[0]?.field).toBe(field);
      expect(got[0]?.message).toMatch(message);
    });
  }

  test("validatePolicyRules() collects every problem of every rule and names rules without a name by index", () => {
    const got = problems([
      { name: "ok", endpointSelector: {} },
      { endpointSelector: {}, ingress: [{ fromCIDR: ["x"], toPorts: [{ ports: [{ port: -1 }] }] }] },
      { name: "ok", endpointSelector: {}, egress: [{ toEntities: ["moon"] }] },
    ]);
    expect(got.map((p) => [p.rule, p.field])).toEqual([
      [1, "ingress[0].fromCIDR[0]"],
      [1, "ingress[0].toPorts[0].ports[0].port"],
      ["ok", "name"],
      ["ok", "egress[0].toEntities[0]"],
    ]);
  });

  test("PolicyValidationError's message names the first problem and counts the others", () => {
    let err: unknown;
    try {
      validatePolicyRules([
        { name: "web", endpointSelector: {}, ingress: [{ fromEntities: ["x" as "all", "y" as "all"] }] },
      ]);
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe("PolicyValidationError");
    expect((err as Error).message).toBe(
      'Cannot validate rules: rule "web": ingress[0].fromEntities[0]: must be one of host, world, cluster, all, remote-node, health, init, unmanaged, kube-apiserver, ingress, got "x" (and 1 more problem)',
    );
  });

  test("validatePolicyRules() accepts every documented form", () => {
    expect(
      problems([
        {
          name: "all-forms",
          description: "text",
          endpointSelector: {
            matchLabels: { "k8s:app": "web" },
            matchExpressions: [{ key: "env", operator: "Exists" }],
          },
          ingress: [
            {
              fromEndpoints: [{}],
              toPorts: [
                {
                  ports: [
                    { port: "80", protocol: "TCP" },
                    { port: 8000, endPort: 8080 },
                  ],
                },
              ],
            },
            {
              fromCIDR: ["10.0.0.0/8", "fd00::/8", "192.168.0.1"],
              fromCIDRSet: [{ cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] }],
            },
            { fromEntities: ["host", "world", "cluster", "all", "remote-node", "health", "init", "unmanaged"] },
            { toPorts: [{}] },
            {},
          ],
          egress: [
            {
              toEndpoints: [{ matchLabels: { app: "db" } }],
              toPorts: [{ ports: [{ port: 8, protocol: "ICMP" }, { protocol: "ICMPv6" }] }],
            },
          ],
          ingressDeny: [
            { fromEntities: ["world"], toPorts: [{ ports: [{ port: 22, endPort: 0, protocol: "SCTP" }] }] },
          ],
          egressDeny: [{ toCIDRSet: [{ cidr: "fd00::/8" }] }],
        },
      ]),
    ).toEqual([]);
  });

  test("setRules() changes nothing when the set fails validation", () => {
    const engine = createPolicyEngine();
    engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
    engine.setRules([{ name: "a", endpointSelector: {}, ingress: [{ fromEntities: ["host"] }] }]);
    const before = engine.endpointPolicy(1);
    const rulesBefore = engine.rules();
    expect(() =>
      engine.setRules([
        { name: "b", endpointSelector: {}, egress: [{ toEntities: ["world"] }] },
        { name: "c", endpointSelector: {}, egress: [{ toCIDR: ["1.2.3.4/8"] }] },
      ]),
    ).toThrow(PolicyValidationError);
    expect(() => engine.addRule({ name: "a", endpointSelector: { matchLabels: { "": "x" } } })).toThrow(
      PolicyValidationError,
    );
    expect(engine.endpointPolicy(1)).toEqual(before);
    expect(engine.rules()).toEqual(rulesBefore);
  });
});
