import { describe, expect, test } from "vitest";
import type { AgentStatus, ApiConntrackEntry, ApiEndpoint, ApiPolicyMapEntry } from "../api/types.ts";
import {
  formatConntrack,
  formatEndpoints,
  formatIpcache,
  formatMetrics,
  formatMonitorLine,
  formatPolicyMap,
  formatStatus,
  formatTrace,
  keyValues,
  table,
} from "./_format.ts";

const STATUS: AgentStatus = {
  version: "0.1.0",
  pid: 42,
  startedAt: "2026-12-07T10:00:00.000Z",
  cluster: { name: "default", id: 0 },
  node: { netns: "/run/netns/node1", stateDir: "/sys/fs/bpf/dp", devices: ["eth0"] },
  hostRouting: { mode: "legacy", reason: "enable-host-legacy-routing: true" },
  attachMode: "tcx",
  masquerading: { state: "disabled", message: "" },
  kvstore: { state: "disabled", message: "" },
  unsupported: [{ key: "tunnel", message: "tunnel: vxlan is not supported yet" }],
  unknownKeys: ["foo"],
  adopted: { maps: 0, endpoints: 0, attachments: 0 },
  maps: [
    { name: "dp_ct_tcp", entries: 5243, maxEntries: 524288 },
    { name: "dp_ipcache", entries: 8, maxEntries: 512000 },
    { name: "dp_policy/1", entries: 3, maxEntries: 16384 },
    { name: "dp_policy/2", entries: 8192, maxEntries: 16384 },
  ],
  endpoints: { total: 2, policyMapFull: 0 },
  identities: 3,
  policy: { rules: 1, revision: 4 },
  controllers: [
    { name: "ct-gc", runs: 3, failures: 0, lastSuccess: "2026-12-07T10:01:00.000Z", lastError: undefined },
    { name: "sync", runs: 2, failures: 2, lastSuccess: undefined, lastError: "boom" },
  ],
  counters: {
    metrics: [{ reason: 0, reasonName: "forwarded", direction: "egress", packets: "10", bytes: "840" }],
    lostEvents: "0",
    policyMapFull: 0,
  },
  encryption: { mode: "disabled", keyIds: [], nodeKeys: [], xfrmErrors: {} },
};

describe("table() and keyValues()", () => {
  test("table() pads columns to the widest cell and trims line ends", () => {
    expect(
      table(
        ["A", "BB"],
        [
          ["xxx", "y"],
          ["", "zz"],
        ],
      ),
    ).toBe("A     BB\nxxx   y\n      zz\n");
  });
  test("keyValues() aligns the values", () => {
    expect(
      keyValues([
        ["A", "1"],
        ["Long", "2"],
      ]),
    ).toBe("A:     1\nLong:  2\n");
  });
});

describe("formatStatus()", () => {
  test("formatStatus() shows host routing with its reason, fill levels and failing controllers", () => {
    const text = formatStatus(STATUS, false);
    expect(text).toMatch(/^Host Routing: +Legacy +\(enable-host-legacy-routing: true\)$/m);
    expect(text).toMatch(/^Masquerading: +Disabled$/m);
    expect(text).toMatch(/^KVStore: +Disabled$/m);
    expect(text).toMatch(/^ {2}dp_ct_tcp +5243 +524288 +1%$/m);
    expect(text).toMatch(/^ {2}dp_policy\/\* \(2, fullest\) +8192 +16384 +50%$/m);
    expect(text).toMatch(/^Controllers: +1\/2 healthy, failing: sync$/m);
    expect(text).toMatch(/^ {2}sync: boom$/m);
    expect(text).toMatch(/^ {2}tunnel: tunnel: vxlan is not supported yet$/m);
    expect(text).not.toMatch(/dp_policy\/1/);
    expect(text).toMatch(/^Encryption: +Disabled$/m);
  });
  test("formatStatus() shows the IPsec keys, the key per remote node and the xfrm errors", () => {
    const text = formatStatus(
      {
        ...STATUS,
        encryption: {
          mode: "ipsec",
          keyIds: [3, 4],
          nodeKeys: [{ nodeId: 2, spi: 4 }],
          xfrmErrors: { xfrmOutNoStates: "5" },
        },
      },
      false,
    );
    expect(text).toMatch(
      /^Encryption: +IPsec +\(keys 3, 4 \(current 4\); node 2 → key 4; xfrm errors: XfrmOutNoStates=5\)$/m,
    );
  });
  test("formatStatus() lists every map, controller and counter when verbose", () => {
    const text = formatStatus(STATUS, true);
    expect(text).toMatch(/^ {2}dp_policy\/1 +3 +16384 +0\.02%$/m);
    expect(text).toMatch(/^ {2}ct-gc +3 +0 +2026-12-07T10:01:00.000Z$/m);
    expect(text).toMatch(/^ {2}forwarded +EGRESS +10 +840$/m);
  });

  test("formatStatus() shows the kvstore: disabled, connected with endpoints and nodes, unhealthy with the reason", () => {
    expect(
      formatStatus(
        { ...STATUS, kvstore: { state: "disabled", message: "Disabled: identities are allocated on the node" } },
        false,
      ),
    ).toContain("KVStore:       Disabled: identities are allocated on the node\n");
    const connected = {
      state: "connected",
      message: "etcd: 1/1 connected (endpoints http://127.0.0.1:2379); 2 nodes; identities in the kvstore",
      endpoints: ["http://127.0.0.1:2379"],
      node: "node-a",
      nodes: 2,
      identityAllocation: "kvstore",
    } as const;
    expect(formatStatus({ ...STATUS, kvstore: connected }, false)).toContain(
      "KVStore:       Ok   etcd: 1/1 connected (endpoints http://127.0.0.1:2379); 2 nodes; identities in the kvstore\n",
    );
    const unhealthy = {
      ...connected,
      state: "unhealthy",
      message: "etcd at http://127.0.0.1:2379 does not answer",
    } as const;
    expect(formatStatus({ ...STATUS, kvstore: unhealthy }, false)).toContain(
      "KVStore:       Unhealthy: etcd at http://127.0.0.1:2379 does not answer\n",
    );
  });
});

describe("formatEndpoints()", () => {
  test("formatEndpoints() prints one line per label like cilium endpoint list", () => {
    const ep: ApiEndpoint = {
      id: 1,
      identity: 256,
      labels: ["k8s:app=web", "k8s:tier=fe"],
      netns: "/run/netns/web",
      ifname: "eth0",
      hostIfname: "lxc1",
      hostIfindex: 5,
      ipv4: "10.200.1.1",
      ipv6: "fd10::1:1",
      mac: "02:00:00:00:00:01",
      hostMac: "02:00:00:00:00:02",
      enforcement: { ingress: true, egress: false },
      policyMapFull: false,
      containerId: undefined,
    };
    const lines = formatEndpoints([ep]).split("\n");
    expect(lines[0]).toMatch(/^ENDPOINT +POLICY \(ingress\) +POLICY \(egress\) +IDENTITY +LABELS/);
    expect(lines[1]).toMatch(/^1 +Enabled +Disabled +256 +k8s:app=web +fd10::1:1 +10\.200\.1\.1 +lxc1$/);
    expect(lines[2]).toMatch(/^ +k8s:tier=fe$/);
  });
});

describe("formatConntrack()", () => {
  test("formatConntrack() prints the tuple, expiry in seconds from now and counters", () => {
    const e: ApiConntrackEntry = {
      map: "tcp",
      family: 4,
      protocol: 6,
      saddr: "10.200.1.2",
      daddr: "10.200.1.1",
      sport: 40000,
      dport: 80,
      scope: "egress",
      state: "established",
      flags: ["seen-non-syn"],
      txFlagsSeen: ["SYN", "ACK"],
      rxFlagsSeen: ["SYN", "ACK"],
      expires: String(100n * 1_000_000_000n),
      created: "0",
      txPackets: "3",
      txBytes: "180",
      rxPackets: "2",
      rxBytes: "120",
      srcIdentity: 257,
      revNatIndex: 0,
      proxyPort: 0,
    };
    expect(
      formatConntrack(
        [e, { ...e, family: 6, saddr: "fd10::1:2", daddr: "fd10::1:1", scope: "ingress" }],
        40n * 1_000_000_000n,
      ),
    ).toBe(
      "TCP OUT 10.200.1.2:40000 -> 10.200.1.1:80 expires=60s state=established TxPackets=3 TxBytes=180 RxPackets=2 RxBytes=120 Flags=seen-non-syn SourceSecurityID=257\n" +
        "TCP IN [fd10::1:2]:40000 -> [fd10::1:1]:80 expires=60s state=established TxPackets=3 TxBytes=180 RxPackets=2 RxBytes=120 Flags=seen-non-syn SourceSecurityID=257\n",
    );
  });
});

describe("formatPolicyMap(), formatIpcache(), formatMetrics()", () => {
  test("formatPolicyMap() shows port blocks, any-protocol and deny entries", () => {
    const base: ApiPolicyMapEntry = {
      direction: "ingress",
      identity: 256,
      protocol: 6,
      port: 80,
      prefixLength: 64,
      deny: false,
      proxyPort: 0,
      ruleCookie: 1,
      packets: "3",
      bytes: "180",
    };
    const lines = formatPolicyMap([
      base,
      { ...base, port: 1024, prefixLength: 54 },
      { ...base, identity: 0, protocol: 0, port: 0, prefixLength: 40, deny: true, direction: "egress" },
      { ...base, protocol: 17, port: 0, prefixLength: 48 },
    ]).split("\n");
    expect(lines[1]).toMatch(/^Allow +Ingress +256 +80\/TCP +NONE +180 +3 +64 +1$/);
    expect(lines[2]).toMatch(/ 1024-2047\/TCP /);
    expect(lines[3]).toMatch(/^Deny +Egress +ANY +ANY +NONE/);
    expect(lines[4]).toMatch(/ ANY\/UDP /);
  });
  test("formatIpcache() and formatMetrics() print aligned tables", () => {
    expect(formatIpcache([{ prefix: "0.0.0.0/0", identity: 2 }])).toBe(
      "IP PREFIX/ADDRESS   IDENTITY\n0.0.0.0/0           2\n",
    );
    expect(
      formatMetrics([
        { reason: 2, reasonName: "policy-default-deny", direction: "ingress", packets: "1", bytes: "84" },
      ]),
    ).toBe("REASON                DIRECTION   PACKETS   BYTES\npolicy-default-deny   INGRESS     1         84\n");
  });
});

describe("formatTrace() and formatMonitorLine()", () => {
  test("formatMonitorLine() explains lost events", () => {
    expect(formatMonitorLine({ kind: "lost", count: 3, why: "slow-reader" })).toBe(
      "xx lost 3 events (this reader was too slow)",
    );
  });
  test("formatTrace() prints each direction's message and the verdict", () => {
    const text = formatTrace({
      verdict: "denied",
      egress: undefined,
      ingress: { message: "Ingress of endpoint 1 from identity 2: denied (default deny)" },
    } as never);
    expect(text).toBe("Ingress of endpoint 1 from identity 2: denied (default deny)\nFinal verdict: DENIED\n");
  });
});
