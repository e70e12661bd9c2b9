// Restart adoption: a child process opens a node, adds endpoints and
// rules, and is killed (SIGKILL) while a TCP transfer between two pods is
// running; a new openNode on the same state directory adopts the maps,
// the attachments and the endpoints, and the transfer keeps going.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { listAttachments } from "@dp/hooks";
import { NET, Topology } from "./_test_node.ts";
import { openNode } from "./node.ts";
import type { PolicyRule } from "./policy/rule.ts";

beforeEach((t) => requireRoot(t));

const CHILD = new URL("./_test_node_child.ts", import.meta.url).pathname;
const RULES: PolicyRule[] = [
  {
    name: "web-in",
    endpointSelector: { matchLabels: { app: "web" } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: "client" } }],
        toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }],
      },
    ],
  },
];

describe.each([
  ["bpf", "tcx"],
  ["legacy", "tcx"],
  ["bpf", "netlink"],
] as const)("restart with %s host routing, %s attachments", (mode, attachMode) => {
  test("a new process adopts the node; a TCP transfer running across the restart keeps going", async () => {
    using topo = new Topology(2);
    const [pWeb, pClient] = topo.pods as [typeof topo.node, typeof topo.node];
    const child = spawn(
      process.execPath,
      [
        "--conditions=@dp/source",
        "--import",
        "tsx",
        CHILD,
        JSON.stringify({
          stateDir: topo.stateDir,
          netns: topo.node.name,
          hostRouting: mode,
          attachMode,
          router: NET.router,
          uplink: topo.uplink,
          endpoints: [
            { netns: pWeb.name, ...NET.pods[0], labels: ["k8s:app=web"] },
            { netns: pClient.name, ...NET.pods[1], labels: ["k8s:app=client"] },
          ],
          rules: RULES,
        }),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const [line] = (await once(child.stdout, "data")) as [Buffer];
      expect(line.toString()).toContain("ready [1,2]");
      await topo.server(pWeb, 8080);
      expect(await topo.tcp(pClient, NET.pods[0].ipv4, 8080)).toBe("ok 100000");
      // A 4-second stream; the first process dies a second into it.
      const stream = topo.stream(pClient, NET.pods[0].ipv4, 8080, 4);
      await new Promise((r) => setTimeout(r, 1000));
      child.kill("SIGKILL");
      await once(child, "exit");
      const killedAt = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns()

      const node = await openNode({
        stateDir: topo.stateDir,
        netns: topo.node.ns,
        hostRouting: mode,
        attachMode,
        router: NET.router,
        uplink: topo.uplink,
      });
      try {
        const status = node.status();
        expect(status.adopted.endpoints).toBe(2);
        expect(new Set(status.attachments.map((a) => a.kind))).toEqual(new Set([attachMode === "tcx" ? "tcx" : "tc"]));
        expect(status.adopted.attachments).toBe(mode === "bpf" ? 5 : 4);
        expect(status.adopted.maps).toContain("dp_ct_tcp");
        expect(node.endpoints().map((e) => [e.id, e.labels, e.enforcement.ingress])).toEqual([
          [1, ["k8s:app=web"], true],
          [2, ["k8s:app=client"], false],
        ]);
        const out = await stream;
        expect(out).toMatch(/^ok \d+$/);
        // The connection's conntrack entry is the one made before the restart, still counting.
        const carried = [...node.datapath().ctTcp.values()].filter(
          (e) => e.created < killedAt && e.tx_packets + e.rx_packets > 300n,
        );
        expect(carried.length).toBeGreaterThan(0);
        // About 4 s of 4 KiB writes every 10 ms: far more than what was sent before the restart.
        expect(Number(out.slice(3))).toBeGreaterThan(200 * 4096);
        // The rules came back with the node: new connections are policed as before.
        expect(await topo.tcp(pClient, NET.pods[0].ipv4, 8080)).toBe("ok 100000");
        await topo.server(pClient, 9090);
        expect(await topo.tcp(pWeb, NET.pods[1].ipv4, 9090)).toBe("ok 100000");
        await topo.server(pWeb, 9191);
        expect(await topo.tcp(pClient, NET.pods[0].ipv4, 9191, 1000, 1000)).toBe("timeout");
        // One attachment per place: nothing doubled by the restart.
        const places = [...node.endpoints().map((e) => e.hostIfname), ...(mode === "bpf" ? [topo.uplink] : [])].flatMap(
          (iface) => listAttachments({ iface, netns: topo.node.ns }).map((a) => `${iface} ${a.hook} ${a.programName}`),
        );
        expect(places.sort()).toEqual(
          [
            "lxc1 tcIngress from_container",
            "lxc1 tcEgress to_container",
            "lxc2 tcIngress from_container",
            "lxc2 tcEgress to_container",
            ...(mode === "bpf" ? [`${topo.uplink} tcIngress from_netdev`] : []),
          ].sort(),
        );
      } finally {
        await node.destroy();
      }
    } finally {
      child.kill("SIGKILL");
    }
  });
});
