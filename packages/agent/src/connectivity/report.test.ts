// The matrix rendering: differing actions are marked, skipped actions
// say why, scenario errors and lost events are shown, the summary names
// the differing scenarios.
import { expect, test } from "vitest";
import { type ConnectivityActionResult, type ConnectivityReport, formatConnectivityReport } from "./report.ts";

const action: ConnectivityActionResult = {
  name: "pod-to-pod",
  from: "client",
  to: "echo-same-node",
  protocol: "http",
  family: "ipv4",
  target: "10.200.0.4:8080",
  expected: "allow",
  observed: "allow",
  detail: "HTTP 200",
  dropReasons: [],
  ok: true,
  ms: 3,
};

test("a differing action is marked and its scenario named in the summary", () => {
  const report: ConnectivityReport = {
    hostRouting: { mode: "legacy", reason: "asked" },
    startedAt: "2026-12-07T18:00:00.000Z",
    durationMs: 10,
    passed: 1,
    failed: 2,
    lostEvents: 3,
    ok: false,
    scenarios: [
      { name: "no-policies", description: "", rules: [], ok: true, actions: [action] },
      {
        name: "echo-ingress-l4",
        description: "",
        rules: ["connectivity-echo-ingress-l4"],
        ok: false,
        actions: [
          { ...action, observed: "drop", ok: false, detail: "timeout", dropReasons: ["policy-default-deny"] },
          { ...action, to: "world", target: "-", observed: "skip", ok: true, detail: "no ipv4 world target" },
        ],
      },
      { name: "broken", description: "", rules: ["connectivity-broken"], ok: false, actions: [], error: "rejected" },
    ],
  };
  const lines = formatConnectivityReport(report).split("\n");
  expect(lines[0]).toMatch(/^SCENARIO +ACTION +FROM -> TO +PROTO +TARGET +EXPECTED +OBSERVED +DROP REASONS$/);
  expect(lines[1]).toMatch(
    /^no-policies +pod-to-pod +client -> echo-same-node +http +10\.200\.0\.4:8080 +allow +allow$/,
  );
  expect(lines[2]).toMatch(/^echo-ingress-l4 .* allow +drop ✗ +policy-default-deny$/);
  expect(lines[3]).toMatch(/client -> world .* allow +skip +no ipv4 world target$/);
  expect(lines[4]).toMatch(/^broken +error +rejected$/);
  expect(lines[5]).toBe("❌ 2/3 scenarios differ (host routing Legacy): echo-ingress-l4, broken");
  expect(lines[6]).toBe("(the monitor lost 3 events: drop reasons may be missing)");
  expect(lines[7]).toBe("");
});
