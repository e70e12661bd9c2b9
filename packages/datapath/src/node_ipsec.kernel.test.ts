// IPsec with a Node and real packets. The node's pod pings a remote node's
// pod (an ipcache prefix with the remote node's id): the programs put the
// node's key into Cilium's encrypt mark and hand the packet to the stack,
// where @dp/ipsec's out policy for that node and key takes it. This kernel
// has xfrm policies but may lack ESP states (CONFIG_INET_ESP): a matched
// policy without a state drops the packet and counts it in
// /proc/net/xfrm_stat, which proves mark → policy with packets. Where ESP
// exists, a second test pings across two nodes through real states.
import { beforeEach, describe, expect, test } from "vitest";
import { bpffsDir, requireConfig, requireRoot } from "@dp/core/testing";
import {
  buildDefaultDropPolicies,
  buildPeerXfrm,
  type IpsecNode,
  openXfrm,
  parseKeyFile,
  readXfrmStat,
  type XfrmStat,
} from "@dp/ipsec";
import { NET, Topology } from "./_test_node.ts";
import { openNode } from "./node.ts";
import { openPinnedNode } from "./pinned/pinned_node.ts";

beforeEach((t) => requireRoot(t));

/** The remote node's pods, behind the outside namespace. */
const REMOTE_PODS = { ipv4: "10.201.0.0/24", ipv6: "fd11::/64" } as const;
const REMOTE_POD = { ipv4: "10.201.0.5", ipv6: "fd11::5" } as const;
const REMOTE_IDENTITY = 70_000;
const LOCAL: IpsecNode = {
  id: 1,
  ips: [NET.uplink.node4, NET.uplink.node6],
  podCidrs: ["10.200.1.0/24", "fd10::1:0/112"],
};
const REMOTE: IpsecNode = {
  id: 2,
  ips: [NET.uplink.out4, NET.uplink.out6],
  podCidrs: [REMOTE_PODS.ipv4, REMOTE_PODS.ipv6],
};
const KEYS = parseKeyFile("3 rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128\n");

function counter(stat: XfrmStat, name: string): bigint {
  const v = stat[name];
  if (v === undefined) throw new Error(`xfrm_stat has no ${name}`);
  return v;
}

describe.each(["bpf", "legacy"] as const)("IPsec on a node with %s host routing", (mode) => {
  test.each(["ipv4", "ipv6"] as const)(
    "pod → remote pod (%s): no key drops, the key's mark meets the keyed out policy, another key id does not",
    async (family) => {
      using topo = new Topology(1);
      const remotePod = REMOTE_POD[family];
      const v6 = family === "ipv6";
      topo.outside.exec("ip", [...(v6 ? ["-6"] : []), "addr", "add", `${remotePod}/${v6 ? 128 : 32}`, "dev", "lo"]);
      topo.node.exec("ip", [
        ...(v6 ? ["-6"] : []),
        "route",
        "add",
        REMOTE_PODS[family],
        "via",
        v6 ? NET.uplink.out6 : NET.uplink.out4,
      ]);
      const node = await openNode({
        stateDir: topo.stateDir,
        netns: topo.node.ns,
        hostRouting: mode,
        router: NET.router,
        uplink: topo.uplink,
        encryption: "ipsec",
        ctGc: false,
      });
      try {
        expect(node.encryption).toBe("ipsec");
        await node.addEndpoint({ netns: topo.pods[0]?.ns ?? "", ...NET.pods[0], labels: ["k8s:app=client"] });
        const pod = topo.pods[0];
        if (pod === undefined) throw new Error("unreachable");
        const stat = (): XfrmStat => readXfrmStat({ netns: topo.node.ns });
        const keyMissing = (): bigint =>
          node.counters().metrics.find((m) => m.reasonName === "encrypt-key-missing" && m.direction === "egress")
            ?.packets ?? 0n;

        // Without the node id the remote pods are just outside: clear text, as before.
        node.ipcache.set(REMOTE_PODS[family], REMOTE_IDENTITY);
        expect(topo.ping(pod, remotePod, 3)).toBe(true);

        // A remote node's pods without a key for the node: dropped by the program, never sent.
        node.ipcache.set(REMOTE_PODS[family], REMOTE_IDENTITY, {
          nodeId: REMOTE.id,
          tunnelEndpoint: v6 ? NET.uplink.out6 : NET.uplink.out4,
        });
        expect(node.ipcache.info(remotePod)).toEqual({
          identity: REMOTE_IDENTITY,
          nodeId: 2,
          tunnelEndpoint: v6 ? NET.uplink.out6 : NET.uplink.out4,
        });
        expect(topo.ping(pod, remotePod)).toBe(false);
        expect(keyMissing()).toBe(1n);

        // With the key and @dp/ipsec's policies for node 2 and key 3: the out policy matches the
        // packet's mark, its template finds no state, the kernel drops the packet and counts it.
        using x = openXfrm({ netns: topo.node.ns });
        x.policies.addMany(buildPeerXfrm(LOCAL, REMOTE, KEYS.current).policies);
        node.setNodeKey(REMOTE.id, 3);
        expect(node.nodeKeys()).toEqual([{ nodeId: 2, spi: 3 }]);
        const before = stat();
        expect(topo.ping(pod, remotePod)).toBe(false);
        const after = stat();
        expect(counter(after, "xfrmOutNoStates") - counter(before, "xfrmOutNoStates")).toBeGreaterThanOrEqual(1n);
        expect(keyMissing()).toBe(1n);

        // Key 4: the mark names a key no out policy has, the packet leaves in clear text (what
        // the default-drop policies are for) and the no-state counter stands still.
        node.setNodeKey(REMOTE.id, 4);
        expect(topo.ping(pod, remotePod, 3)).toBe(true);
        expect(counter(stat(), "xfrmOutNoStates")).toBe(counter(after, "xfrmOutNoStates"));
        // With Cilium's default-drop policies, nothing marked for encryption leaves in clear.
        x.policies.addMany(buildDefaultDropPolicies([4, 6]));
        const blocked = counter(stat(), "xfrmOutPolBlock");
        expect(topo.ping(pod, remotePod)).toBe(false);
        expect(counter(stat(), "xfrmOutPolBlock") - blocked).toBeGreaterThanOrEqual(1n);

        // status() reports the mode, the key per node and the xfrm errors of the node's namespace.
        const { encryption } = node.status();
        expect(encryption.mode).toBe("ipsec");
        expect(encryption.keys).toEqual([{ nodeId: 2, spi: 4 }]);
        expect(encryption.xfrmStat?.xfrmOutNoStates).toBe(counter(stat(), "xfrmOutNoStates"));
        expect(encryption.xfrmStat?.xfrmOutPolBlock).toBe(counter(stat(), "xfrmOutPolBlock"));
        expect(Object.values(encryption.xfrmStat ?? {}).every((v) => v > 0n)).toBe(true);
        expect(node.status().maps.find((m) => m.name === "dp_encrypt")).toEqual({
          name: "dp_encrypt",
          entries: 1,
          maxEntries: 65535,
        });
        // bpftool reads the same entry from the pin.
        const dump = JSON.parse(
          Topology.run("bpftool", ["-j", "map", "dump", "pinned", `${topo.stateDir}/dp_encrypt`]),
        ) as {
          formatted: { key: number; value: { spi: number } };
        }[];
        expect(dump.map((e) => [e.formatted.key, e.formatted.value.spi])).toEqual([[2, 4]]);
        using pinned = openPinnedNode(topo.stateDir);
        expect(pinned.encryption()).toEqual({ mode: "ipsec", keys: [{ nodeId: 2, spi: 4 }] });

        // Removing the key: dropped by the program again.
        expect(node.deleteNodeKey(REMOTE.id)).toBe(true);
        expect(node.deleteNodeKey(REMOTE.id)).toBe(false);
        expect(topo.ping(pod, remotePod)).toBe(false);
        expect(keyMissing()).toBe(2n);
      } finally {
        await node.destroy();
      }
    },
  );
});

describe("node keys", () => {
  test("setNodeKey() validates before writing and needs a node opened with encryption", async () => {
    using topo = new Topology(0);
    using dir = bpffsDir();
    const plain = await openNode({ stateDir: topo.stateDir, netns: topo.node.ns, router: NET.router, ctGc: false });
    const enc = await openNode({
      stateDir: dir.join("enc"),
      netns: topo.node.ns,
      router: NET.router,
      encryption: "ipsec",
      ctGc: false,
    });
    let encOpen = true;
    try {
      expect(plain.status().encryption).toEqual({ mode: "disabled", keys: [] });
      expect(() => plain.setNodeKey(2, 3)).toThrow(/Cannot set node key: the node was opened without encryption/);
      expect(() => enc.setNodeKey(0, 3)).toThrow(
        new RangeError("Cannot set node key: nodeId 0 must be an integer from 1 to 65535"),
      );
      expect(() => enc.setNodeKey(65536, 3)).toThrow(RangeError);
      expect(() => enc.setNodeKey(2, 0)).toThrow(
        new RangeError("Cannot set node key: spi 0 must be an integer from 1 to 15 (the key id)"),
      );
      expect(() => enc.setNodeKey(2, 16)).toThrow(RangeError);
      expect(() => enc.setNodeKey(2, 1.5)).toThrow(RangeError);
      expect(() => enc.setNodeKey("2" as unknown as number, 3)).toThrow(TypeError);
      expect(() => enc.deleteNodeKey(-1)).toThrow(RangeError);
      expect(enc.nodeKeys()).toEqual([]);
      enc.setNodeKey(65535, 15);
      enc.setNodeKey(2, 1);
      enc.setNodeKey(2, 2);
      expect(enc.nodeKeys()).toEqual([
        { nodeId: 2, spi: 2 },
        { nodeId: 65535, spi: 15 },
      ]);
      expect(() => enc.ipcache.set("10.9.0.0/16", 70_000, { nodeId: 0 })).toThrow(
        new RangeError('Cannot set ipcache entry "10.9.0.0/16": nodeId 0 must be an integer from 1 to 65535'),
      );
      expect(() => enc.ipcache.set("10.9.0.0/16", 70_000, { tunnelEndpoint: "node-2" })).toThrow(SyntaxError);
      enc.ipcache.set("10.9.0.0/16", 70_000, { nodeId: 9, tunnelEndpoint: "fd20::9" });
      enc.ipcache.set("10.8.0.0/16", 70_001, { nodeId: 8 });
      expect(
        enc.ipcache
          .entries()
          .filter((e) => e.nodeId !== undefined)
          .sort((a, b) => a.prefix.localeCompare(b.prefix)),
      ).toEqual([
        { prefix: "10.8.0.0/16", identity: 70_001, nodeId: 8 },
        { prefix: "10.9.0.0/16", identity: 70_000, nodeId: 9, tunnelEndpoint: "fd20::9" },
      ]);
      expect(enc.ipcache.info("10.9.1.1")).toEqual({ identity: 70_000, nodeId: 9, tunnelEndpoint: "fd20::9" });
      expect(enc.ipcache.info(NET.router.ipv4)).toEqual({ identity: 1 });
      // A restarted node keeps its keys and the remote nodes' prefixes (the caller's, not derived from endpoints).
      enc.close();
      encOpen = false;
      const again = await openNode({
        stateDir: dir.join("enc"),
        netns: topo.node.ns,
        router: NET.router,
        encryption: "ipsec",
        ctGc: false,
      });
      expect(again.nodeKeys()).toEqual([
        { nodeId: 2, spi: 2 },
        { nodeId: 65535, spi: 15 },
      ]);
      expect(again.ipcache.info("10.8.1.1")).toEqual({ identity: 70_001, nodeId: 8 });
      await again.destroy();
    } finally {
      await plain.destroy();
      if (encOpen) await enc.destroy();
    }
  });
});

describe("IPsec between two nodes", () => {
  test.for(["bpf", "legacy"] as const)(
    "%s host routing: pods on two nodes talk through ESP states from buildPeerXfrm, policed with the inner identity",
    async (mode, t) => {
      requireConfig(t, "CONFIG_INET_ESP");
      // Node 1 in the topology's node namespace, node 2 in its outside namespace (behind node 1's uplink).
      using topo = new Topology(2);
      using dir = bpffsDir();
      topo.node.exec("ip", ["route", "add", REMOTE_PODS.ipv4, "via", NET.uplink.out4]);
      const n1: IpsecNode = { id: 1, ips: [NET.uplink.node4], podCidrs: ["10.200.1.0/24"] };
      const n2: IpsecNode = { id: 2, ips: [NET.uplink.out4], podCidrs: [REMOTE_PODS.ipv4] };
      const node1 = await openNode({
        stateDir: topo.stateDir,
        netns: topo.node.ns,
        hostRouting: mode,
        router: NET.router,
        uplink: topo.uplink,
        encryption: "ipsec",
        ctGc: false,
      });
      const node2 = await openNode({
        stateDir: dir.join("node2"),
        netns: topo.outside.ns,
        hostRouting: mode,
        router: { ipv4: "10.201.0.1" },
        encryption: "ipsec",
        ctGc: false,
      });
      try {
        const [pod1, pod2] = topo.pods as [typeof topo.node, typeof topo.node];
        await node1.addEndpoint({ netns: pod1.ns, ipv4: NET.pods[0].ipv4, labels: ["k8s:app=client"] });
        await node2.addEndpoint({ netns: pod2.ns, ipv4: REMOTE_POD.ipv4, labels: ["k8s:app=web"] });
        // Each node knows the other's pods as a remote node's, with the identities of its own allocator.
        const client = await node2.allocator.allocate(["k8s:app=client"]);
        const other = await node2.allocator.allocate(["k8s:app=other"]);
        const web = await node1.allocator.allocate(["k8s:app=web"]);
        node1.ipcache.set(REMOTE_PODS.ipv4, web.id, { nodeId: 2, tunnelEndpoint: NET.uplink.out4 });
        node2.ipcache.set("10.200.1.0/24", other.id, { nodeId: 1, tunnelEndpoint: NET.uplink.node4 });
        node2.ipcache.set(`${NET.pods[0].ipv4}/32`, client.id, { nodeId: 1, tunnelEndpoint: NET.uplink.node4 });
        await node2.setRules([
          {
            name: "web-in",
            endpointSelector: { matchLabels: { app: "web" } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: "client" } }] }],
          },
        ]);
        using x1 = openXfrm({ netns: topo.node.ns });
        using x2 = openXfrm({ netns: topo.outside.ns });
        for (const [x, local, remote] of [
          [x1, n1, n2],
          [x2, n2, n1],
        ] as const) {
          const built = buildPeerXfrm(local, remote, KEYS.current);
          x.states.addMany(built.states);
          x.policies.addMany([...built.policies, ...buildDefaultDropPolicies([4])]);
        }
        node1.setNodeKey(2, 3);
        node2.setNodeKey(1, 3);

        expect(topo.ping(pod1, REMOTE_POD.ipv4, 3)).toBe(true);
        await topo.server(pod2, 8080);
        expect(await topo.tcp(pod1, REMOTE_POD.ipv4, 8080)).toBe("ok 100000");
        // Both directions went through the states: node 1's out state and node 2's in state counted them.
        const out1 = x1.states.list().find((s) => s.src === NET.uplink.node4);
        const in2 = x2.states.list().find((s) => s.dst === NET.uplink.out4);
        expect(out1?.current.packets).toBeGreaterThan(0n);
        expect(in2?.current.packets).toBeGreaterThan(0n);

        // Node 2 polices the decrypted packets with the identity of their inner source: as "other", denied.
        node2.ipcache.set(`${NET.pods[0].ipv4}/32`, other.id, { nodeId: 1, tunnelEndpoint: NET.uplink.node4 });
        node2.flushConntrack();
        expect(topo.ping(pod1, REMOTE_POD.ipv4)).toBe(false);
        expect(
          node2.counters().metrics.some((m) => m.reasonName === "policy-default-deny" && m.direction === "ingress"),
        ).toBe(true);
      } finally {
        await node2.destroy();
        await node1.destroy();
      }
    },
  );
});
