// openPinnedNode(): after a Node with endpoints, rules and traffic is
// closed, the pinned view shows what the node showed (conntrack, ipcache,
// endpoints, policy map entries with counters, metrics, map fill), and its
// conntrack flush works on the pins.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { NET, Topology } from "../_test_node.ts";
import { openNode } from "../node.ts";
import { openPinnedNode } from "./pinned_node.ts";

beforeEach((t) => requireRoot(t));

function byName<T extends { name: string }>(xs: readonly T[]): T[] {
  return [...xs].sort((a, b) => a.name.localeCompare(b.name));
}

describe("openPinnedNode()", () => {
  test("openPinnedNode() shows what the node showed when the node is closed", async () => {
    using topo = new Topology(2);
    const [srvNs, cliNs] = topo.pods;
    const [srvAddr, cliAddr] = NET.pods;
    if (srvNs === undefined || cliNs === undefined || srvAddr === undefined || cliAddr === undefined)
      throw new Error("no pods");
    const node = await openNode({
      stateDir: topo.stateDir,
      netns: topo.node.ns,
      router: NET.router,
      uplink: topo.uplink,
      mapSizes: { "bpf-ct-global-tcp-max": 4096, "bpf-ct-global-any-max": 2048, endpoints: 64, ipcache: 256 },
      ctGc: false,
    });
    let closed = false;
    try {
      const srv = await node.addEndpoint({ netns: srvNs.ns, ...srvAddr, labels: ["k8s:app=server"] });
      await node.addEndpoint({ netns: cliNs.ns, ...cliAddr, labels: ["k8s:app=client"] });
      await node.setRules([
        {
          name: "server-in",
          endpointSelector: { matchLabels: { app: "server" } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { app: "client" } }],
              toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }],
            },
          ],
        },
      ]);
      await topo.server(srvNs, 8080);
      await topo.server(srvNs, 8081);
      expect(await topo.tcp(cliNs, srvAddr.ipv4, 8080)).toBe("ok 100000");
      expect(await topo.tcp(cliNs, srvAddr.ipv4, 8081, 10, 500)).toBe("timeout");

      const status = node.status();
      const ct = node.listConntrack();
      const ipcache = node.ipcache.entries();
      const policy = [...(node.datapath().policyMap(srv.id, false)?.entries() ?? [])];
      expect(ct.length).toBeGreaterThan(0);
      expect(policy.length).toBeGreaterThan(0);
      expect(status.counters.metrics.some((m) => m.reasonName === "policy-denied" || m.reason !== 0)).toBe(true);
      node.close();
      closed = true;

      using pinned = openPinnedNode(topo.stateDir);
      expect(pinned.listConntrack()).toEqual(ct);
      expect(pinned.ipcache()).toEqual(ipcache);
      expect(pinned.endpoints()).toEqual(status.endpoints);
      expect(pinned.counters()).toEqual({
        metrics: status.counters.metrics,
        lostEvents: status.counters.lostEvents,
      });
      expect(byName(pinned.maps())).toEqual(byName(status.maps));
      expect(pinned.info()).toEqual({
        hostRouting: status.hostRouting.mode,
        router: { ipv4: NET.router.ipv4, ipv6: NET.router.ipv6 },
        uplink: topo.uplink,
      });
      expect(pinned.rules().map((r) => r.name)).toEqual(["server-in"]);
      const entries = pinned.policyMap(srv.id) ?? [];
      expect(
        entries
          .map((e) => `${e.prefixLength}/${e.identity}/${Number(e.egress)}/${e.protocol}/${e.port}/${e.packets}`)
          .sort(),
      ).toEqual(
        policy.map(([k, v]) => `${k.prefixlen}/${k.identity}/${k.egress}/${k.protocol}/${k.dport}/${v.packets}`).sort(),
      );
      // The allow entry for the client on 8080 counted the transfer.
      const allow = entries.find((e) => e.port === 8080 && !e.egress);
      expect(allow?.packets).toBeGreaterThan(0n);
      expect(pinned.policyMap(999)).toBeUndefined();

      // Flushing from the pins removes what a filter selects, and only that.
      const tcp = ct.filter((e) => e.protocol === 6).length;
      expect(pinned.flushConntrack({ protocol: "UDP", port: 1 })).toEqual({ tcp: 0, any: 0 });
      expect(pinned.flushConntrack({ protocol: "TCP" })).toEqual({ tcp, any: 0 });
      expect(pinned.listConntrack({ protocol: "TCP" })).toEqual([]);
    } finally {
      if (closed) {
        const again = await openNode({
          stateDir: topo.stateDir,
          netns: topo.node.ns,
          router: NET.router,
          uplink: topo.uplink,
          ctGc: false,
        });
        await again.destroy();
      } else {
        await node.destroy();
      }
    }
  });

  test("openPinnedNode() throws a TypeError naming the directory when nothing is pinned there", () => {
    expect(() => openPinnedNode("/sys/fs/bpf/dp-no-such-node-dir")).toThrow(
      /Cannot open pinned node "\/sys\/fs\/bpf\/dp-no-such-node-dir": no datapath is pinned there/,
    );
    expect(() => openPinnedNode("relative")).toThrow(TypeError);
  });
});
