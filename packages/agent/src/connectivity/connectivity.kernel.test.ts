// Every connectivity scenario as a kernel test, in both host routing
// modes: a lab with the real agent (`dp agent` as a child process), the
// test's pods deployed once per mode, one test per scenario checking that
// every action's observed verdict is the expected one and that every drop
// came with the drop reason the rules imply, read from the monitor stream.
import { readdirSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { createLab, type Lab, LAB_NET } from "../lab/lab.ts";
import { BUILTIN_SCENARIOS } from "./builtin_scenarios.ts";
import { type ConnectivityDeployment, deployConnectivityPods } from "./deployment.ts";
import { formatConnectivityReport } from "./report.ts";
import { runConnectivityTest } from "./run.ts";
import { registerScenario } from "./registry.ts";

const root = process.geteuid?.() === 0;

beforeEach((t) => requireRoot(t));

function exactly(name: string): RegExp {
  return new RegExp(`^${name.replace(/[-]/g, "\\-")}$`);
}

// A scenario whose expectation is wrong on purpose: the test must report it as differing.
registerScenario({
  name: "test-wrong-expectation",
  description: "echo admits nothing, yet an allow is expected",
  rules: () => [{ endpointSelector: { matchLabels: { kind: "echo" } }, ingress: [{}] }],
  actions: [{ name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" }],
});

describe.each(["bpf", "legacy"] as const)("connectivity scenarios with %s host routing", (mode) => {
  let lab: Lab | undefined;
  let dep: ConnectivityDeployment | undefined;

  beforeAll(async () => {
    if (!root) return;
    lab = await createLab({ hostRouting: mode });
    dep = await deployConnectivityPods({ client: lab.client, lab });
  });
  afterAll(async () => {
    await dep?.remove();
    await lab?.destroy();
  });

  test.each(BUILTIN_SCENARIOS.map((s) => s.name))(
    "%s: observed as expected, drops with their reasons",
    async (name) => {
      if (lab === undefined || dep === undefined) throw new Error("the lab was not built");
      expect(lab.hostRouting.mode).toBe(mode);
      const report = await runConnectivityTest({ client: lab.client, lab, deployment: dep, tests: exactly(name) });
      const text = formatConnectivityReport(report);
      expect(
        report.scenarios.map((s) => s.name),
        text,
      ).toEqual([name]);
      const [scenario] = report.scenarios;
      expect(scenario?.error, text).toBeUndefined();
      expect(scenario?.actions.length, text).toBe(BUILTIN_SCENARIOS.find((s) => s.name === name)?.actions.length);
      for (const a of scenario?.actions ?? []) {
        expect(a.observed, `${a.name} ${a.from} -> ${a.to} ${a.protocol} ${a.family}\n${text}`).toBe(a.expected);
        if (a.observed === "drop") {
          const reason = name === "client-egress-to-echo-deny" ? "policy-denied" : "policy-default-deny";
          expect(a.dropReasons, `${a.name} ${a.from} -> ${a.to}\n${text}`).toEqual([reason]);
        } else expect(a.dropReasons).toEqual([]);
      }
      expect(report.ok, text).toBe(true);
      // The test's rules are gone afterwards.
      const policy = await lab.client.policy();
      expect(policy.rules.filter((r) => r.name?.startsWith("connectivity-"))).toEqual([]);
    },
  );

  test("a scenario that differs makes the report fail", async () => {
    if (lab === undefined || dep === undefined) throw new Error("the lab was not built");
    const report = await runConnectivityTest({
      client: lab.client,
      lab,
      deployment: dep,
      tests: /^test-wrong-expectation$/,
    });
    expect(report.ok).toBe(false);
    expect(report.failed).toBe(1);
    expect(report.scenarios[0]?.actions[0]).toMatchObject({
      expected: "allow",
      observed: "drop",
      ok: false,
      dropReasons: ["policy-default-deny"],
    });
    expect(formatConnectivityReport(report)).toMatch(/drop ✗[\s\S]*❌ 1\/1 scenarios differ/);
  });
});

test("against any agent (no lab): own pod namespaces, the host found from the node's device, no world; nothing left", async () => {
  const lab = await createLab({ hostRouting: "legacy" });
  try {
    const before = await lab.client.endpoints();
    const namespaces = (): string[] => readdirSync("/run/netns").filter((n) => n.startsWith(`dpct-${process.pid}-`));
    const report = await runConnectivityTest({ client: lab.client, tests: /^(no-policies|host-entity-egress)$/ });
    const text = formatConnectivityReport(report);
    expect(report.ok, text).toBe(true);
    const actions = report.scenarios.flatMap((s) => s.actions);
    // pod-to-host targets the address of the node's first device, in both families.
    expect(actions.filter((a) => a.to === "host").map((a) => `${a.target} ${a.observed}`)).toEqual([
      `${LAB_NET.uplink.node4} allow`,
      `${LAB_NET.uplink.node4} allow`,
      `${LAB_NET.uplink.node6} allow`,
    ]);
    for (const a of actions.filter((a) => a.to === "world" || a.from === "world"))
      expect(a.observed, `${a.name} ${a.from} -> ${a.to}`).toBe("skip");
    expect(namespaces()).toEqual([]);
    expect(await lab.client.endpoints()).toEqual(before);
    // Twice in a row works: the pods of the first run are gone.
    expect((await runConnectivityTest({ client: lab.client, tests: /^no-policies$/ })).ok).toBe(true);
  } finally {
    await lab.destroy();
  }
});
