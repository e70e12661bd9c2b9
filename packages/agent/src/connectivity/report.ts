// The connectivity test's result: per scenario and action the expected
// and observed verdicts and the drop reasons the monitor reported, as
// JSON and as a matrix for humans.

/** One action's outcome. */
export interface ConnectivityActionResult {
  /** Cilium's action name (`pod-to-pod`, ...). */
  readonly name: string;
  /** Where it ran. */
  readonly from: string;
  /** The destination's name (`echo-same-node`, `host`, `world`). */
  readonly to: string;
  /** `http`, `udp` or `icmp`. */
  readonly protocol: string;
  /** `ipv4` or `ipv6`. */
  readonly family: string;
  /** The destination address and port (`10.200.0.3:8080`, `[fd10::3]:8081`, `10.200.0.3`). */
  readonly target: string;
  /** The verdict the rules imply. */
  readonly expected: "allow" | "drop";
  /** What happened (`skip` when the target does not exist). */
  readonly observed: "allow" | "drop" | "skip";
  /** The probe's own words (`HTTP 200`, `timeout`, `reply`, ...) or why it was skipped. */
  readonly detail: string;
  /** Drop reasons the monitor reported for this flow (`policy-default-deny`, `policy-deny`). */
  readonly dropReasons: readonly string[];
  /** Whether observed equals expected (skipped actions count as ok). */
  readonly ok: boolean;
  /** How long the probe took. */
  readonly ms: number;
}

/** One scenario's outcome. */
export interface ConnectivityScenarioResult {
  /** The scenario's name. */
  readonly name: string;
  /** What it checks. */
  readonly description: string;
  /** The names of the rules it imported. */
  readonly rules: readonly string[];
  /** Its actions. */
  readonly actions: readonly ConnectivityActionResult[];
  /** An error that stopped the scenario (rules rejected, ...). */
  readonly error?: string;
  /** Whether every action was as expected and nothing failed. */
  readonly ok: boolean;
}

/** The connectivity test's result (`dp connectivity test --json`). */
export interface ConnectivityReport {
  /** The host routing mode of the agent and why. */
  readonly hostRouting: {
    /** The mode: `bpf` or `legacy`. */
    readonly mode: "bpf" | "legacy";
    /** Why, as the agent's status reports it. */
    readonly reason: string;
  };
  /** When the test started (ISO 8601). */
  readonly startedAt: string;
  /** How long it took. */
  readonly durationMs: number;
  /** The scenarios that ran. */
  readonly scenarios: readonly ConnectivityScenarioResult[];
  /** Scenarios as expected. */
  readonly passed: number;
  /** Scenarios that differ. */
  readonly failed: number;
  /** Events the monitor lost (drop reasons may be missing when non-zero). */
  readonly lostEvents: number;
  /** Whether every scenario was as expected. */
  readonly ok: boolean;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

/**
 * Renders a report as a matrix: one line per action with the expected
 * and observed verdict and the drop reasons, a mark for each that
 * differs, and a summary line.
 *
 * @param report The report.
 * @returns Lines of text (ending with a newline).
 * @example A one-scenario report
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatConnectivityReport } from "@dp/agent";
 *
 * const text = formatConnectivityReport({
 *   hostRouting: { mode: "bpf", reason: "auto" },
 *   startedAt: "2026-12-07T18:00:00.000Z",
 *   durationMs: 1200,
 *   passed: 1,
 *   failed: 0,
 *   lostEvents: 0,
 *   ok: true,
 *   scenarios: [{ name: "echo-ingress-l4", description: "", rules: ["connectivity-echo-ingress-l4"], ok: true, actions: [
 *     { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "udp", family: "ipv4", target: "10.200.0.4:8081",
 *       expected: "drop", observed: "drop", detail: "timeout", dropReasons: ["policy-default-deny"], ok: true, ms: 1000 },
 *   ] }],
 * });
 * assert.match(text, /echo-ingress-l4 +pod-to-pod +client -> echo-same-node +udp +10\.200\.0\.4:8081 +drop +drop +policy-default-deny/);
 * assert.match(text, /1\/1 scenarios as expected/);
 * ```
 */
export function formatConnectivityReport(report: ConnectivityReport): string {
  const head = ["SCENARIO", "ACTION", "FROM -> TO", "PROTO", "TARGET", "EXPECTED", "OBSERVED", "DROP REASONS"];
  const rows: string[][] = [];
  for (const s of report.scenarios) {
    if (s.error !== undefined) rows.push([s.name, "error", s.error, "", "", "", "", ""]);
    for (const a of s.actions) {
      rows.push([
        s.name,
        a.name,
        `${a.from} -> ${a.to}`,
        a.protocol,
        a.target,
        a.expected,
        a.ok ? a.observed : `${a.observed} ✗`,
        a.observed === "skip" ? a.detail : a.dropReasons.join(","),
      ]);
    }
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => pad(c, widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  const total = report.passed + report.failed;
  const mode = report.hostRouting.mode === "bpf" ? "BPF" : "Legacy";
  if (report.ok) out.push(`✅ ${report.passed}/${total} scenarios as expected (host routing ${mode})`);
  else {
    const bad = report.scenarios.filter((s) => !s.ok).map((s) => s.name);
    out.push(`❌ ${report.failed}/${total} scenarios differ (host routing ${mode}): ${bad.join(", ")}`);
  }
  if (report.lostEvents > 0) out.push(`(the monitor lost ${report.lostEvents} events: drop reasons may be missing)`);
  return `${out.join("\n")}\n`;
}
