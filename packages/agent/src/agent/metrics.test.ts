import { describe, expect, test } from "vitest";
import type { NodeStatus } from "@dp/datapath";
import { AgentMetrics, parseServeAddr } from "./_metrics.ts";

function status(over: Partial<NodeStatus["counters"]>): NodeStatus {
  return {
    maps: [
      { name: "dp_ipcache", entries: 6, maxEntries: 512 },
      { name: "dp_policy/3", entries: 2, maxEntries: 8 },
    ],
    endpoints: [{}, {}],
    counters: {
      metrics: [
        { reason: 0, reasonName: "forwarded", direction: "egress", packets: 10n, bytes: 1000n },
        { reason: 0, reasonName: "forwarded", direction: "ingress", packets: 9n, bytes: 900n },
        { reason: 2, reasonName: "policy-default-deny", direction: "ingress", packets: 3n, bytes: 180n },
      ],
      lostEvents: 4n,
      policyMapFull: 1,
      ...over,
    },
  } as unknown as NodeStatus;
}

describe("AgentMetrics", () => {
  test("render() reads a snapshot per scrape and writes Cilium-style names", async () => {
    let snap = status({});
    const metrics = new AgentMetrics(() =>
      Promise.resolve({ status: snap, rules: 5, identities: [1, 2, 256, 257, 1 << 24] }),
    );
    metrics.regeneration.observe(0.003);
    const { contentType, text } = await metrics.render();
    expect(contentType).toMatch(/^text\/plain/);
    const lines = text.split("\n").filter((l) => !l.startsWith("#") && l !== "");
    expect(lines).toEqual(
      expect.arrayContaining([
        'dp_drop_count_total{reason="policy-default-deny",direction="ingress"} 3',
        'dp_drop_bytes_total{reason="policy-default-deny",direction="ingress"} 180',
        'dp_forward_count_total{direction="egress"} 10',
        'dp_forward_count_total{direction="ingress"} 9',
        'dp_forward_bytes_total{direction="egress"} 1000',
        'dp_bpf_map_pressure{map_name="dp_policy/3"} 0.25',
        "dp_endpoint 2",
        'dp_identity{type="reserved"} 2',
        'dp_identity{type="cluster"} 2',
        'dp_identity{type="cidr"} 1',
        "dp_policy 5",
        "dp_lost_events_total 4",
        "dp_policy_map_full_total 1",
        "dp_policy_regeneration_time_stats_seconds_count 1",
      ]),
    );
    expect(text).toMatch(/# TYPE dp_drop_count_total counter/);
    // Counters follow the maps, not what was scraped before.
    snap = status({
      metrics: [{ reason: 2, reasonName: "policy-default-deny", direction: "ingress", packets: 7n, bytes: 420n }],
    });
    const again = (await metrics.render()).text;
    expect(again).toContain('dp_drop_count_total{reason="policy-default-deny",direction="ingress"} 7');
    expect(again).not.toContain("dp_forward_count_total{");
  });
});

describe("parseServeAddr()", () => {
  test.each([
    [":9962", { host: undefined, port: 9962 }],
    ["127.0.0.1:9962", { host: "127.0.0.1", port: 9962 }],
    ["[::1]:0", { host: "::1", port: 0 }],
  ])("parses %s", (addr, want) => {
    expect(parseServeAddr(addr)).toEqual(want);
  });

  test.each(["9962", "host", ":99999", "[::1]"])("rejects %s", (addr) => {
    expect(() => parseServeAddr(addr)).toThrow(TypeError);
  });
});
