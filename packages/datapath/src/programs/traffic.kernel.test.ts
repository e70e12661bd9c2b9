// A smoke test of the programs with real packets: two pod namespaces
// behind host-side veths in a node namespace, from_container and
// to_container attached with tcx, ping between the pods in both host
// routing modes, IPv4 and IPv6, and a policy drop reported with its
// reason. (The full real-traffic suite comes with the Node.)
import { beforeEach, describe, expect, test } from "vitest";
import { netns, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { attachTc, type TcLink } from "@dp/hooks";
import { addr16, DIR, DROP, EP_FLAG, EVENT, familyOf, ID, PROTO, TestDatapath, TRACE, VERDICT } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

const ROUTER = { v4: "10.0.0.1", v6: "fd00::1" };
const PODS = [
  { v4: "10.0.1.1", v6: "fd00::1:1", id: 1, identity: 1001 },
  { v4: "10.0.1.2", v6: "fd00::1:2", id: 2, identity: 1002 },
] as const;

interface Pod {
  readonly ns: TestNetns;
  readonly hostIndex: number;
}

function mac(ns: TestNetns, dev: string): string {
  return (JSON.parse(ns.exec("ip", ["-j", "link", "show", dev])) as { address: string }[])[0]?.address ?? "";
}

/** Whether one ping gets an answer within a second; `attempts` pings until one does (a first IPv6 neighbour resolution can take longer). */
function pings(from: TestNetns, dst: string, attempts = 1): boolean {
  for (let i = 0; i < attempts; i++) {
    try {
      from.exec("ping", ["-c", "1", "-W", "1", dst]);
      return true;
    } catch {
      // No answer: try again.
    }
  }
  return false;
}

/** The node namespace with two pods wired as the Node will wire them, and the programs attached. */
function wire(node: TestNetns, pods: TestNetns[], dp: TestDatapath): { pods: Pod[]; links: TcLink[] } {
  node.exec("sh", [
    "-c",
    "echo 1 > /proc/sys/net/ipv4/conf/all/forwarding; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
  ]);
  const out: Pod[] = [];
  const links: TcLink[] = [];
  pods.forEach((ns, i) => {
    const spec = PODS[i] as (typeof PODS)[number];
    const { a: host, b: pod } = vethPair(node, ns);
    // The router address on every host-side veth answers the pod's ARP / NDP for its gateway.
    node.exec("ip", ["addr", "add", `${ROUTER.v4}/32`, "dev", host.name]);
    node.exec("ip", ["addr", "add", `${ROUTER.v6}/128`, "dev", host.name, "nodad"]);
    node.exec("ip", ["route", "add", `${spec.v4}/32`, "dev", host.name]);
    node.exec("ip", ["route", "add", `${spec.v6}/128`, "dev", host.name]);
    ns.exec("ip", ["addr", "add", `${spec.v4}/32`, "dev", pod.name]);
    ns.exec("ip", ["addr", "add", `${spec.v6}/128`, "dev", pod.name, "nodad"]);
    ns.exec("ip", ["route", "add", ROUTER.v4, "dev", pod.name, "scope", "link"]);
    ns.exec("ip", ["route", "add", "default", "via", ROUTER.v4, "dev", pod.name]);
    ns.exec("ip", ["route", "add", ROUTER.v6, "dev", pod.name]);
    ns.exec("ip", ["route", "add", "default", "via", ROUTER.v6, "dev", pod.name]);
    for (const ip of [spec.v4, spec.v6]) {
      dp.addEndpoint({
        ip,
        ifindex: host.index,
        id: spec.id,
        identity: spec.identity,
        mac: mac(ns, pod.name),
        nodeMac: mac(node, host.name),
      });
    }
    links.push(attachTc(host.index, dp.fromContainer, { direction: "ingress", mode: "tcx", netns: node.ns }));
    links.push(attachTc(host.index, dp.toContainer, { direction: "egress", mode: "tcx", netns: node.ns }));
    out.push({ ns, hostIndex: host.index });
  });
  dp.setIpcache("0.0.0.0/0", ID.world);
  dp.setIpcache("::/0", ID.world);
  return { pods: out, links };
}

describe.each(["bpf", "legacy"] as const)("real traffic, %s host routing", (mode) => {
  test.each(["v4", "v6"] as const)(
    "pods ping each other (%s); once pod 2 enforces ingress, pod 1's ping is dropped with its reason",
    (family) => {
      using node = netns({ label: "dpnode" });
      using p1 = netns({ label: "dppod" });
      using p2 = netns({ label: "dppod" });
      using dp = new TestDatapath({ hostRouting: mode, trace: true });
      const { pods, links } = wire(node, [p1, p2], dp);
      try {
        const [a, b] = PODS;
        expect(pings(p1, b[family], 3)).toBe(true);
        expect(pings(p2, a[family], 3)).toBe(true);
        expect(dp.ctEntries("any").length).toBeGreaterThan(0);
        // Where the echo requests and replies went: with BPF host routing straight into the
        // other pod (bpf_redirect_peer), in legacy mode through the stack and to_container.
        const traces = dp.events.drain().filter((e) => e.type === EVENT.trace);
        const hosts = pods.map((p) => p.hostIndex);
        const seen = new Set(traces.map((e) => `${e.reason}@${hosts.indexOf(e.ifindex)}`));
        expect([...seen].sort()).toEqual(
          mode === "bpf"
            ? [`${TRACE.toEndpoint}@0`, `${TRACE.toEndpoint}@1`]
            : [`${TRACE.toStack}@0`, `${TRACE.toStack}@1`, `${TRACE.toEndpoint}@0`, `${TRACE.toEndpoint}@1`].sort(),
        );
        expect(dp.metric(DROP.forwarded, DIR.ingress).packets).toBeGreaterThanOrEqual(4n);

        // Pod 2 enforces ingress from now on, with no entry: default deny.
        for (const ip of [b.v4, b.v6]) {
          const key = { addr: addr16(ip), family: familyOf(ip), pad: new Uint8Array(3) };
          const ep = dp.endpoints.get(key);
          if (ep === undefined) throw new Error(`no endpoint ${ip}`);
          dp.endpoints.set(key, { ...ep, flags: EP_FLAG.ingressEnforced });
        }
        dp.events.drain();
        expect(pings(p1, b[family])).toBe(false);
        const drop = dp.events.drain().find((e) => e.type === EVENT.drop);
        expect(drop).toMatchObject({
          reason: DROP.policyDefault,
          verdict: VERDICT.defaultDeny,
          direction: DIR.ingress,
          endpoint_id: b.id,
          src_identity: a.identity,
          dst_identity: b.identity,
          saddr: addr16(a[family]),
          daddr: addr16(b[family]),
          protocol: family === "v4" ? PROTO.icmp : PROTO.icmpv6,
        });
        // Pod 2's own pings still work: pod 1's echo replies are replies.
        expect(pings(p2, a[family], 3)).toBe(true);
      } finally {
        for (const l of links.reverse()) l.close();
      }
    },
  );
});
