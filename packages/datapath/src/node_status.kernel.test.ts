// Node.status(): the host routing mode chosen by "auto" and why, map
// sizes from Cilium's keys and fill levels, and a full policy map
// reported (counter, endpoint flag, fill level) rather than hidden.
import { beforeEach, describe, expect, test } from "vitest";
import { hasHelper } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { NET, Topology } from "./_test_node.ts";
import { openNode } from "./node.ts";

beforeEach((t) => requireRoot(t));

describe("node status", () => {
  test("auto mode, map sizes and fill levels, a full policy map", async () => {
    using topo = new Topology(1);
    const node = await openNode({
      stateDir: topo.stateDir,
      netns: topo.node.ns,
      router: NET.router,
      mapSizes: {
        "bpf-policy-map-max": 16,
        "bpf-ct-global-tcp-max": 2048,
        "bpf-ct-global-any-max": 1024,
        endpoints: 64,
        ipcache: 256,
      },
      ctGc: false,
    });
    try {
      const bpf = hasHelper("schedCls", "redirectPeer") && hasHelper("schedCls", "redirectNeigh");
      expect(node.status().hostRouting).toEqual(
        bpf
          ? { mode: "bpf", reason: "auto: the kernel has bpf_redirect_peer and bpf_redirect_neigh" }
          : { mode: "legacy", reason: expect.stringMatching(/^auto: the kernel lacks/) },
      );
      const ep = await node.addEndpoint({ netns: topo.pods[0]?.ns ?? "", ...NET.pods[0], labels: ["k8s:app=web"] });
      const fill = (name: string): [number, number] | undefined => {
        const m = node.status().maps.find((x) => x.name === name);
        return m === undefined ? undefined : [m.entries, m.maxEntries];
      };
      expect(fill("dp_ct_tcp")).toEqual([0, 2048]);
      expect(fill("dp_ct_any")).toEqual([0, 1024]);
      expect(fill("dp_endpoints")).toEqual([2, 64]);
      // World v4 and v6, the node's uplink addresses and router addresses as host, the pod's two addresses.
      expect(fill("dp_ipcache")).toEqual([8, 256]);
      expect(fill(`dp_policy/${ep.id}`)).toEqual([0, 16]);
      expect(node.status().identities).toEqual([{ id: ep.identity, labels: ["k8s:app=web"] }]);

      // Ports 1-65534 are 30 aligned blocks: more than the 16 entries the map holds.
      await node.setRules([
        {
          name: "wide",
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [{ toPorts: [{ ports: [{ port: "1", endPort: 65534, protocol: "TCP" }] }] }],
        },
      ]);
      const status = node.status();
      expect(status.counters.policyMapFull).toBe(30 - 16);
      expect(status.endpoints[0]?.policyMapFull).toBe(true);
      expect(fill(`dp_policy/${ep.id}`)).toEqual([16, 16]);
      expect(status.conntrackGc.running).toBe(false);
      expect(node.gcConntrack().tcp.removed).toBe(0);
    } finally {
      await node.destroy();
    }
  });
});
