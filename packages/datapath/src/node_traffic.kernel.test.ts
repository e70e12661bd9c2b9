// The Node with real traffic: a node namespace with an uplink veth to an
// "outside" namespace, pods in their own namespaces, both host routing
// modes, IPv4 and IPv6. TCP connects and transfers data (a small Node.js
// socket server and client run with `ip netns exec`), ping; policy by
// identity, entity (host, world) and CIDR, changed at run time.
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { NET, Topology } from "./_test_node.ts";
import type { MonitorEvent } from "./monitor/event.ts";
import { openNode } from "./node.ts";

beforeEach((t) => requireRoot(t));

describe.each(["bpf", "legacy"] as const)("a node with %s host routing", (mode) => {
  test.each(["ipv4", "ipv6"] as const)(
    "pods, host and outside talk (%s) as the rules allow; a rule change applies to new connections",
    async (family) => {
      using topo = new Topology(3);
      const node = await openNode({
        stateDir: topo.stateDir,
        netns: topo.node.ns,
        hostRouting: mode,
        router: NET.router,
        uplink: topo.uplink,
      });
      try {
        expect(node.status().hostRouting.mode).toBe(mode);
        const [web, client, other] = await Promise.all([
          node.addEndpoint({ netns: topo.pods[0]?.ns ?? "", ...NET.pods[0], labels: ["k8s:app=web"] }),
          node.addEndpoint({ netns: topo.pods[1]?.ns ?? "", ...NET.pods[1], labels: ["k8s:app=client"] }),
          node.addEndpoint({ netns: topo.pods[2]?.ns ?? "", ...NET.pods[2], labels: ["k8s:app=other"] }),
        ]);
        if (web === undefined || client === undefined || other === undefined) throw new Error("unreachable");
        const [pWeb, pClient, pOther] = topo.pods as [typeof topo.node, typeof topo.node, typeof topo.node];
        const ip = (i: 0 | 1 | 2): string => NET.pods[i][family];
        const hostIp = family === "ipv4" ? NET.uplink.node4 : NET.uplink.node6;
        const outIp = family === "ipv4" ? NET.uplink.out4 : NET.uplink.out6;
        await topo.server(pWeb, 8080);
        await topo.server(pWeb, 9090);
        await topo.server(topo.outside, 7070);
        await topo.server(topo.node, 6060);

        // No rule: everything flows.
        expect(topo.ping(pClient, ip(0), 3)).toBe(true);
        expect(await topo.tcp(pClient, ip(0), 8080)).toBe("ok 100000");
        expect(await topo.tcp(pOther, ip(0), 9090)).toBe("ok 100000");
        expect(await topo.tcp(pClient, outIp, 7070)).toBe("ok 100000");
        expect(await topo.tcp(pClient, hostIp, 6060)).toBe("ok 100000");

        // web admits client on 8080 only; client may reach web, the host and the outside prefix only.
        const outPrefix = family === "ipv4" ? "192.168.200.0/24" : "fd20::/64";
        await node.setRules([
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
          {
            name: "client-out",
            endpointSelector: { matchLabels: { app: "client" } },
            egress: [{ toEndpoints: [{ matchLabels: { app: "web" } }] }, { toEntities: ["host"] }],
          },
        ]);
        expect(node.endpoints().map((e) => e.enforcement)).toEqual([
          { ingress: true, egress: false },
          { ingress: false, egress: true },
          { ingress: false, egress: false },
        ]);
        expect(await topo.tcp(pClient, ip(0), 8080)).toBe("ok 100000");
        expect(await topo.tcp(pClient, ip(0), 9090, 1000, 1000)).toBe("timeout");
        expect(await topo.tcp(pOther, ip(0), 8080, 1000, 1000)).toBe("timeout");
        expect(topo.ping(pClient, ip(0))).toBe(false);
        // Replies pass: web's own connections out are allowed (egress not enforced) and come back.
        await topo.server(pOther, 5050);
        expect(await topo.tcp(pWeb, ip(2), 5050)).toBe("ok 100000");
        // Entities and CIDR: host allowed, outside not yet.
        expect(await topo.tcp(pClient, hostIp, 6060)).toBe("ok 100000");
        expect(await topo.tcp(pClient, outIp, 7070, 1000, 1000)).toBe("timeout");
        await node.addRule({
          name: "client-outside",
          endpointSelector: { matchLabels: { app: "client" } },
          egress: [{ toCIDR: [outPrefix] }],
        });
        expect(await topo.tcp(pClient, outIp, 7070)).toBe("ok 100000");
        // The outside reaching web: not from client, so dropped at web's ingress.
        expect(await topo.tcp(topo.outside, ip(0), 8080, 1000, 1000)).toBe("timeout");
        await node.addRule({
          name: "web-world",
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [{ fromEntities: ["world"] }],
        });
        expect(await topo.tcp(topo.outside, ip(0), 8080)).toBe("ok 100000");

        // A rule change: other may now reach web on 9090.
        await node.addRule({
          name: "other-9090",
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { app: "other" } }],
              toPorts: [{ ports: [{ port: "9090", protocol: "TCP" }] }],
            },
          ],
        });
        expect(await topo.tcp(pOther, ip(0), 9090)).toBe("ok 100000");
        await node.deleteRule("other-9090");
        expect(await topo.tcp(pOther, ip(0), 9090, 1000, 1000)).toBe("timeout");

        const drops = node.status().counters.metrics.filter((m) => m.reasonName === "policy-default-deny");
        expect(drops.reduce((n, m) => n + m.packets, 0n)).toBeGreaterThan(0n);

        // The drop as the monitor reports it: reason, direction, endpoint and identities.
        node.datapath().events.drain(); // earlier events
        const stop = new AbortController();
        const seen: MonitorEvent[] = [];
        const reading = (async () => {
          for await (const e of node.monitor({ types: ["drop"], endpoint: web.id, signal: stop.signal })) seen.push(e);
        })();
        expect(await topo.tcp(pOther, ip(0), 9090, 1000, 1000)).toBe("timeout");
        stop.abort();
        await reading;
        expect(seen[0]).toMatchObject({
          type: "drop",
          reason: "policy-default-deny",
          direction: "ingress",
          endpointId: web.id,
          srcIdentity: other.identity,
          dstIdentity: web.identity,
          saddr: ip(2),
          daddr: ip(0),
          dport: 9090,
          protocol: 6,
        });
      } finally {
        await node.destroy();
      }
    },
  );
});
