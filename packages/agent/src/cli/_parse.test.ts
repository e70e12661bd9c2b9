import { describe, expect, test } from "vitest";
import { CliError } from "./_errors.ts";
import {
  parseConntrackFilter,
  parseDport,
  parseEndpointId,
  parseMonitorTypes,
  parsePolicyFile,
  parseTraceSide,
} from "./_parse.ts";

function usage(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
    return err as CliError;
  }
  throw new Error("did not throw");
}

describe("parseEndpointId()", () => {
  test.each([
    ["1", 1],
    ["65535", 65535],
  ])("parseEndpointId() accepts %s", (text, id) => {
    expect(parseEndpointId(text)).toBe(id);
  });
  test.each(["0", "65536", "-1", "1.5", "x", ""])("parseEndpointId() rejects %j as usage", (text) => {
    expect(usage(() => parseEndpointId(text)).message).toMatch(/^Invalid endpoint id/);
  });
});

describe("parseConntrackFilter()", () => {
  test("parseConntrackFilter() maps every option", () => {
    expect(
      parseConntrackFilter({
        family: "ipv6",
        protocol: "udp",
        address: "fd00::/64",
        saddr: "10.0.0.1",
        daddr: "10.0.0.2",
        port: "53",
        sport: "1000",
        dport: "53",
        scope: "egress",
        endpoint: "7",
      }),
    ).toEqual({
      family: 6,
      protocol: "UDP",
      address: "fd00::/64",
      saddr: "10.0.0.1",
      daddr: "10.0.0.2",
      port: 53,
      sport: 1000,
      dport: 53,
      scope: "egress",
      endpoint: 7,
    });
    expect(parseConntrackFilter({ protocol: "132" })).toEqual({ protocol: 132 });
    expect(parseConntrackFilter({})).toEqual({});
  });
  test.each([
    [{ family: "5" }, /--family/],
    [{ protocol: "foo" }, /--protocol/],
    [{ dport: "70000" }, /--dport/],
    [{ scope: "both" }, /--scope/],
    [{ endpoint: "0" }, /--endpoint/],
  ])("parseConntrackFilter() rejects %j naming the option", (o, re) => {
    expect(usage(() => parseConntrackFilter(o)).message).toMatch(re);
  });
});

describe("parseTraceSide() and parseDport()", () => {
  test("parseTraceSide() reads endpoints, identities and labels", () => {
    expect(parseTraceSide("12", "--src")).toEqual({ endpoint: 12 });
    expect(parseTraceSide("ep:12", "--src")).toEqual({ endpoint: 12 });
    expect(parseTraceSide("identity:256", "--src")).toEqual({ identity: 256 });
    expect(parseTraceSide("k8s:app=web, k8s:tier=fe", "--src")).toEqual({ labels: ["k8s:app=web", "k8s:tier=fe"] });
    expect(usage(() => parseTraceSide(",", "--dst")).message).toMatch(/--dst/);
  });
  test("parseDport() reads PORT/PROTO with TCP by default", () => {
    expect(parseDport("80")).toEqual({ port: 80, protocol: "TCP" });
    expect(parseDport("53/udp")).toEqual({ port: 53, protocol: "UDP" });
    expect(parseDport("8/icmp")).toEqual({ port: 8, protocol: "ICMP" });
    usage(() => parseDport("80/xyz"));
    usage(() => parseDport("http"));
  });
  test("parseMonitorTypes() accepts the three types and rejects others", () => {
    expect(parseMonitorTypes(["drop", "trace", "drop"])).toEqual(["drop", "trace"]);
    expect(usage(() => parseMonitorTypes(["dropped"])).message).toMatch(/drop, trace, policy-verdict/);
  });
});

describe("parsePolicyFile()", () => {
  const rule = { name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [] };
  test("parsePolicyFile() reads JSON lists, { rules } and single rules", () => {
    expect(parsePolicyFile(JSON.stringify([rule]), "f")).toEqual([rule]);
    expect(parsePolicyFile(JSON.stringify({ rules: [rule] }), "f")).toEqual([rule]);
    expect(parsePolicyFile(JSON.stringify(rule), "f")).toEqual([rule]);
  });
  test("parsePolicyFile() reads YAML documents and CiliumNetworkPolicy shapes", () => {
    const yaml = `name: a
endpointSelector: { matchLabels: { app: a } }
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: b }
spec:
  endpointSelector: { matchLabels: { app: b } }
  ingress: [{ fromEntities: [host] }]
`;
    expect(parsePolicyFile(yaml, "f")).toEqual([
      { name: "a", endpointSelector: { matchLabels: { app: "a" } } },
      { name: "b", endpointSelector: { matchLabels: { app: "b" } }, ingress: [{ fromEntities: ["host"] }] },
    ]);
  });
  test("parsePolicyFile() names the file when it cannot be parsed", () => {
    expect(usage(() => parsePolicyFile("{ nope", "p.json")).message).toMatch(/^Invalid policy file "p.json": /);
    expect(usage(() => parsePolicyFile("a: [", "p.yaml")).message).toMatch(/^Invalid policy file "p.yaml": /);
  });
});
