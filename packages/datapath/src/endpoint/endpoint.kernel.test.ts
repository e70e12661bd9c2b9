// Endpoints of a Node: what addEndpoint makes (checked with ip, bpftool),
// that removeEndpoint leaves nothing behind, and that bad input is a typed
// error naming the endpoint and field with nothing changed.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { listAttachments } from "@dp/hooks";
import { NET, Topology } from "../_test_node.ts";
import { openNode } from "../node.ts";
import { EndpointError } from "./endpoint.ts";

beforeEach((t) => requireRoot(t));

function ipJson<T>(ns: string, args: string[]): T {
  return JSON.parse(execFileSync("ip", ["-n", ns, "-json", ...args], { encoding: "utf8" })) as T;
}

function bpftoolHas(kind: "map" | "link", id: number): boolean {
  try {
    execFileSync("bpftool", [kind, "show", "id", String(id)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("endpoints", () => {
  test.each(["tcx", "netlink"] as const)(
    "addEndpoint wires the pod; removeEndpoint leaves nothing behind (ip, tc, bpftool, maps, ledger), %s",
    async (attachMode) => {
      using topo = new Topology(1);
      const pod = topo.pods[0] ?? topo.node;
      const node = await openNode({
        stateDir: topo.stateDir,
        netns: topo.node.ns,
        hostRouting: "bpf",
        attachMode,
        router: NET.router,
      });
      try {
        const linksBefore = ipJson<{ ifname: string }[]>(topo.node.name, ["link"])
          .map((l) => l.ifname)
          .sort();
        const routesBefore = ipJson<unknown[]>(topo.node.name, ["route"]);
        const ipcacheBefore = node.ipcache.entries();
        const ep = await node.addEndpoint({
          netns: pod.name,
          ifname: "net1",
          ...NET.pods[0],
          labels: { "k8s:app": "web" },
        });

        // The pod side: net1 with its addresses and routes via the router.
        const podAddrs = ipJson<{ ifname: string; addr_info: { local: string; prefixlen: number }[] }[]>(pod.name, [
          "addr",
          "show",
          "dev",
          "net1",
        ]);
        expect(
          podAddrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`).filter((a) => !a.startsWith("fe80")),
        ).toEqual([`${NET.pods[0].ipv4}/32`, `${NET.pods[0].ipv6}/128`]);
        const podRoutes = ipJson<{ dst: string; gateway?: string }[]>(pod.name, ["route"]);
        expect(podRoutes).toContainEqual(expect.objectContaining({ dst: "default", gateway: NET.router.ipv4 }));
        const podRoutes6 = ipJson<{ dst: string; gateway?: string }[]>(pod.name, ["-6", "route"]);
        expect(podRoutes6).toContainEqual(expect.objectContaining({ dst: "default", gateway: NET.router.ipv6 }));
        // The node side: the router address and the endpoint route on lxc1, the programs on it.
        const hostAddrs = ipJson<{ addr_info: { local: string }[] }[]>(topo.node.name, [
          "addr",
          "show",
          "dev",
          ep.hostIfname,
        ]);
        expect(hostAddrs[0]?.addr_info.map((a) => a.local)).toEqual(
          expect.arrayContaining([NET.router.ipv4, NET.router.ipv6]),
        );
        expect(ipJson<{ dst: string; dev: string }[]>(topo.node.name, ["route"])).toContainEqual(
          expect.objectContaining({ dst: NET.pods[0].ipv4, dev: ep.hostIfname }),
        );
        const attached = listAttachments({ iface: ep.hostIfname, netns: topo.node.ns });
        expect(attached.map((a) => `${a.hook} ${a.programName}`).sort()).toEqual([
          "tcEgress to_container",
          "tcIngress from_container",
        ]);
        const linkIds = attached.map((a) => a.linkId ?? 0).filter((id) => id !== 0);
        expect(linkIds.length).toBe(attachMode === "tcx" ? 2 : 0);
        if (attachMode === "netlink") {
          const filters = topo.node.exec("tc", ["filter", "show", "dev", ep.hostIfname, "ingress"]);
          expect(filters).toMatch(/bpf .*from_container direct-action/);
        }
        expect(readdirSync(`${topo.stateDir}/ledger`).length).toBe(3); // the index and one pin per attachment
        const policyMapId = node.datapath().policy.get(ep.id) ?? 0;
        expect(bpftoolHas("map", policyMapId)).toBe(true);
        expect(node.ipcache.get(`${NET.pods[0].ipv4}/32`)).toBe(ep.identity);
        expect(
          node
            .status()
            .attachments.map((a) => a.name)
            .sort(),
        ).toEqual(["ep1-egress", "ep1-ingress"]);
        expect(node.status().maps.find((m) => m.name === "dp_endpoints")?.entries).toBe(2);

        await node.removeEndpoint(ep.id);
        expect(
          ipJson<{ ifname: string }[]>(topo.node.name, ["link"])
            .map((l) => l.ifname)
            .sort(),
        ).toEqual(linksBefore);
        expect(ipJson<{ ifname: string }[]>(pod.name, ["link"]).map((l) => l.ifname)).toEqual(["lo"]);
        expect(ipJson<unknown[]>(topo.node.name, ["route"])).toEqual(routesBefore);
        for (const id of linkIds) expect(bpftoolHas("link", id)).toBe(false);
        expect(readdirSync(`${topo.stateDir}/ledger`)).toEqual(["index"]);
        expect(bpftoolHas("map", policyMapId)).toBe(false);
        expect(node.ipcache.entries()).toEqual(ipcacheBefore);
        expect([...node.datapath().endpoints.keys()]).toEqual([]);
        expect([...node.datapath().policy.keys()]).toEqual([]);
        expect(node.status().attachments).toEqual([]);
        expect(node.status().identities).toEqual([]);
        expect(node.endpoints()).toEqual([]);
      } finally {
        await node.destroy();
      }
    },
  );

  test("bad input is an EndpointError naming the endpoint and field; nothing changes", async () => {
    using topo = new Topology(2);
    const [p1, p2] = topo.pods as [typeof topo.node, typeof topo.node];
    const node = await openNode({
      stateDir: topo.stateDir,
      netns: topo.node.ns,
      hostRouting: "legacy",
      router: { ipv4: NET.router.ipv4 },
    });
    try {
      const first = await node.addEndpoint({ netns: p1.ns, ipv4: NET.pods[0].ipv4, labels: ["k8s:app=web"] });
      const before = {
        endpoints: node.endpoints(),
        links: ipJson<{ ifname: string }[]>(topo.node.name, ["link"]).map((l) => l.ifname),
        ipcache: node.ipcache.entries(),
      };
      const cases: [Parameters<typeof node.addEndpoint>[0], string, RegExp][] = [
        [{ netns: p2.ns, ipv4: "10.200.1.9", labels: ["k8s:app=a=b=", "bad label"] }, "labels", /labels are invalid/],
        [{ netns: p2.ns, ipv4: "10.200.1.9", labels: [] }, "labels", /labels are empty/],
        [{ netns: p2.ns, ipv4: "10.200.1.300", labels: ["k8s:app=x"] }, "ipv4", /not an address/],
        [{ netns: p2.ns, ipv4: "fd00::9", labels: ["k8s:app=x"] }, "ipv4", /not an IPv4 address/],
        [{ netns: p2.ns, ipv4: NET.pods[0].ipv4, labels: ["k8s:app=x"] }, "ipv4", /endpoint 1's address/],
        [{ netns: p2.ns, ipv4: NET.router.ipv4, labels: ["k8s:app=x"] }, "ipv4", /router address/],
        [{ netns: p2.ns, ipv4: "10.200.1.9", ipv6: "fd10::9", labels: ["k8s:app=x"] }, "ipv6", /IPv6 router address/],
        [{ netns: "dpt-no-such-netns", ipv4: "10.200.1.9", labels: ["k8s:app=x"] }, "netns", /cannot be opened/],
        [
          { netns: p2.ns, ifname: "lo", ipv4: "10.200.1.9", labels: ["k8s:app=x"] },
          "ifname",
          /exists in the pod's namespace/,
        ],
        [
          { netns: p2.ns, ifname: "way-too-long-name", ipv4: "10.200.1.9", labels: ["k8s:app=x"] },
          "ifname",
          /1-15 characters/,
        ],
      ];
      for (const [spec, field, message] of cases) {
        const err = await node.addEndpoint(spec).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, field).toBeInstanceOf(EndpointError);
        expect((err as EndpointError).field).toBe(field);
        expect((err as EndpointError).name).toBe("EndpointError");
        expect((err as EndpointError).message).toMatch(message);
        expect((err as EndpointError).message).toMatch(/^Cannot add endpoint "/);
      }
      await expect(node.removeEndpoint(42)).rejects.toMatchObject({
        name: "EndpointError",
        field: "id",
        endpoint: "42",
      });
      expect(node.endpoints()).toEqual(before.endpoints);
      expect(ipJson<{ ifname: string }[]>(topo.node.name, ["link"]).map((l) => l.ifname)).toEqual(before.links);
      expect(node.ipcache.entries()).toEqual(before.ipcache);
      expect(node.status().identities.map((i) => i.id)).toEqual([first.identity]);
      // Invalid rules are refused whole, naming the rule and field; the maps keep the previous policy.
      await node.setRules([
        { name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEntities: ["host"] }] },
      ]);
      const policyBefore = node.status().maps.filter((m) => m.name.startsWith("dp_policy/"));
      await expect(
        node.setRules([
          { name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEntities: ["world"] }] },
          { name: "bad", endpointSelector: {}, egress: [{ toCIDR: ["10.0.0.1/8"] }] },
        ]),
      ).rejects.toMatchObject({ name: "PolicyValidationError", rule: "bad", field: "egress[0].toCIDR[0]" });
      await expect(
        node.addRule({
          name: "ports",
          endpointSelector: {},
          ingress: [{ toPorts: [{ ports: [{ port: "70000", protocol: "TCP" }] }] }],
        }),
      ).rejects.toMatchObject({
        name: "PolicyValidationError",
        rule: "ports",
      });
      expect(node.engine.rules().map((r) => r.name)).toEqual(["web"]);
      expect(node.status().maps.filter((m) => m.name.startsWith("dp_policy/"))).toEqual(policyBefore);
      expect(node.endpoints()[0]?.enforcement).toEqual({ ingress: true, egress: false });
      await node.setRules([]);
      // The node still works after all that.
      await node.addEndpoint({ netns: p2.ns, ipv4: "10.200.1.9", labels: ["k8s:app=x"] });
      expect(topo.ping(p2, NET.pods[0].ipv4, 3)).toBe(true);
    } finally {
      await node.destroy();
    }
  });
});
