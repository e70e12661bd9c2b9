// Chained endpoints (`existing: true`): another plugin (here `ip`, as a
// bridge plugin would) made a bridge, the veths and the pods' addresses and
// routes; the node polices and forwards the pods' real traffic in both host
// routing modes, leaves the other plugin's links, addresses and routes
// exactly as they were when the endpoint goes, and a restarted process
// adopts the endpoints.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot, type TestNetns } from "@dp/core/testing";
import { listAttachments } from "@dp/hooks";
import { NET, Topology } from "../_test_node.ts";
import { openNode } from "../node.ts";
import { EndpointError } from "./endpoint.ts";

beforeEach((t) => requireRoot(t));

const BRIDGE_NET = { gateway: "10.201.0.1", pods: ["10.201.0.2", "10.201.0.3"] } as const;

function ipJson(ns: string, args: string[]): unknown {
  return JSON.parse(execFileSync("ip", ["-n", ns, "-json", ...args], { encoding: "utf8" }));
}

/** What the other plugin made, as `ip` shows it: compared before and after. */
function snapshot(topo: Topology, pods: readonly TestNetns[], veths: readonly string[]): string {
  const strip = (v: unknown): unknown =>
    JSON.parse(
      JSON.stringify(v, (k, x: unknown) =>
        [
          "stats",
          "stats64",
          "operstate",
          "flags",
          "linkmode",
          "valid_life_time",
          "preferred_life_time",
          "tentative",
        ].includes(k)
          ? undefined
          : x,
      ),
    );
  return JSON.stringify({
    node: {
      links: veths.map((v) => strip(ipJson(topo.node.name, ["link", "show", "dev", v]))),
      routes: ipJson(topo.node.name, ["route"]),
      addresses: veths.map((v) => strip(ipJson(topo.node.name, ["addr", "show", "dev", v]))),
    },
    pods: pods.map((p) => ({
      addresses: strip(ipJson(p.name, ["addr", "show", "dev", "eth0"])),
      routes: ipJson(p.name, ["route"]),
    })),
  });
}

/** Plays the first plugin of a chain: a bridge with the gateway address, one veth per pod on it, addresses and a default route in the pod. */
function otherPlugin(topo: Topology, pods: readonly TestNetns[]): { bridge: string; veths: string[] } {
  const tag = randomBytes(3).toString("hex");
  const bridge = `br${tag}`;
  topo.node.exec("ip", ["link", "add", bridge, "type", "bridge"]);
  topo.node.exec("ip", ["addr", "add", `${BRIDGE_NET.gateway}/24`, "dev", bridge]);
  topo.node.exec("ip", ["link", "set", bridge, "up"]);
  const veths = pods.map((pod, i) => {
    const veth = `vc${tag}${i}`;
    topo.node.exec("ip", ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod.name]);
    topo.node.exec("ip", ["link", "set", veth, "master", bridge, "up"]);
    pod.exec("ip", ["addr", "add", `${BRIDGE_NET.pods[i]}/24`, "dev", "eth0"]);
    pod.exec("ip", ["link", "set", "eth0", "up"]);
    pod.exec("ip", ["route", "add", "default", "via", BRIDGE_NET.gateway]);
    return veth;
  });
  return { bridge, veths };
}

describe("existing (chained) endpoints", () => {
  test.each(["bpf", "legacy"] as const)(
    "polices and forwards another plugin's veths, leaves them alone on removal, survives a restart (%s host routing)",
    async (hostRouting) => {
      using topo = new Topology(3);
      const [podA, podB, podN] = topo.pods as [TestNetns, TestNetns, TestNetns];
      const { veths } = otherPlugin(topo, [podA, podB]);
      const pristine = snapshot(topo, [podA, podB], veths);
      const options = { stateDir: topo.stateDir, netns: topo.node.ns, hostRouting, router: NET.router };
      let node = await openNode({ ...options, uplink: topo.uplink });
      try {
        const native = await node.addEndpoint({ netns: podN.name, ...NET.pods[0], labels: { "k8s:app": "native" } });
        const before = snapshot(topo, [podA, podB], veths); // with the native endpoint's route
        const a = await node.addEndpoint({
          netns: podA.name,
          ifname: "eth0",
          ipv4: BRIDGE_NET.pods[0],
          labels: ["k8s:app=a"],
          existing: true,
        });
        const b = await node.addEndpoint({
          netns: podB.name,
          ifname: "eth0",
          ipv4: BRIDGE_NET.pods[1],
          labels: ["k8s:app=b"],
          existing: true,
        });
        expect(native.existing).toBe(false);
        expect([a.existing, a.hostIfname, b.existing, b.hostIfname]).toEqual([true, veths[0], true, veths[1]]);
        // The programs on the other plugin's host-side veths, nothing of theirs changed.
        for (const ep of [a, b]) {
          const attached = listAttachments({ iface: ep.hostIfname, netns: topo.node.ns });
          expect(attached.map((x) => `${x.hook} ${x.programName}`).sort()).toEqual([
            "tcEgress to_container",
            "tcIngress from_container",
          ]);
        }
        expect(snapshot(topo, [podA, podB], veths)).toBe(before);
        expect(node.ipcache.get(`${BRIDGE_NET.pods[1]}/32`)).toBe(b.identity);

        // Real traffic: chained to chained (over their bridge), native to chained and back.
        for (const pod of [podA, podB, podN]) await topo.server(pod, 8080);
        expect(await topo.tcp(podA, BRIDGE_NET.pods[1], 8080)).toBe("ok 100000");
        expect(await topo.tcp(podN, BRIDGE_NET.pods[1], 8080)).toBe("ok 100000");
        expect(await topo.tcp(podB, NET.pods[0].ipv4, 8080)).toBe("ok 100000");

        // Policy: b accepts only native; a's connection to b is dropped by to_container or from_container.
        await node.setRules([
          {
            name: "b-from-native",
            endpointSelector: { matchLabels: { app: "b" } },
            ingress: [{ fromEndpoints: [{ matchLabels: { app: "native" } }] }],
          },
        ]);
        expect(await topo.tcp(podA, BRIDGE_NET.pods[1], 8080, 1000, 1000)).toBe("timeout");
        expect(await topo.tcp(podN, BRIDGE_NET.pods[1], 8080)).toBe("ok 100000");
        expect(await topo.tcp(podB, BRIDGE_NET.pods[0], 8080)).toBe("ok 100000");
        const drops = node.status().counters.metrics.filter((m) => m.reasonName === "policy-default-deny");
        expect(drops.reduce((n, m) => n + m.packets, 0n)).toBeGreaterThan(0n);

        // A restarted process adopts the chained endpoints: same host sides, still policed.
        node.close();
        node = await openNode({ ...options, uplink: topo.uplink });
        expect(node.status().adopted.endpoints).toBe(3);
        const adopted = node.endpoints().filter((e) => e.existing === true);
        expect(adopted.map((e) => [e.id, e.hostIfname, e.labels])).toEqual([
          [a.id, veths[0], ["k8s:app=a"]],
          [b.id, veths[1], ["k8s:app=b"]],
        ]);
        expect(await topo.tcp(podA, BRIDGE_NET.pods[1], 8080, 1000, 1000)).toBe("timeout");
        expect(await topo.tcp(podN, BRIDGE_NET.pods[1], 8080)).toBe("ok 100000");

        // Bad chained input: nothing changes.
        const count = node.endpoints().length;
        const err1 = await node
          .addEndpoint({ netns: podN.name, ifname: "nope0", ipv4: "10.201.0.9", labels: ["k8s:app=x"], existing: true })
          .catch((e: unknown) => e);
        expect(err1).toBeInstanceOf(EndpointError);
        expect(err1).toMatchObject({ field: "ifname" });
        const err2 = await node
          .addEndpoint({ netns: podA.name, ifname: "eth0", ipv4: "10.201.0.9", labels: ["k8s:app=x"], existing: true })
          .catch((e: unknown) => e);
        expect(err2).toMatchObject({ name: "EndpointError", field: "ipv4" });
        expect((err2 as Error).message).toMatch(/10\.201\.0\.9 is not an address of eth0 in the pod/);
        const err3 = await node
          .addEndpoint({
            netns: podA.name,
            ifname: "eth0",
            ipv4: BRIDGE_NET.pods[0],
            labels: ["k8s:app=x"],
            existing: true,
          })
          .catch((e: unknown) => e);
        expect(err3).toMatchObject({ name: "EndpointError", field: "ipv4" }); // a's address already
        expect(node.endpoints().length).toBe(count);

        // Removal: the programs and entries go, the other plugin's veths, addresses and routes stay.
        await node.removeEndpoint(b.id);
        await node.removeEndpoint(a.id);
        for (const veth of veths) expect(listAttachments({ iface: veth, netns: topo.node.ns })).toEqual([]);
        expect(snapshot(topo, [podA, podB], veths)).toBe(before);
        expect(node.ipcache.entries().map((e) => e.prefix)).not.toContain(`${BRIDGE_NET.pods[1]}/32`);
        expect(node.endpoints().map((e) => e.id)).toEqual([native.id]);
        // Their bridge carries a to b again, unpoliced.
        expect(await topo.tcp(podA, BRIDGE_NET.pods[1], 8080)).toBe("ok 100000");
        await node.destroy();
        expect(snapshot(topo, [podA, podB], veths)).toBe(pristine);
      } finally {
        node.close();
      }
    },
    60_000,
  );
});
