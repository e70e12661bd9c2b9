// The Node of docs/datapath.md: a node in its own network namespace with
// two pods, a rule, the monitor, status and a restart. Type-checked with
// `npx tsc -p docs/examples`. Run it as root after `bash bpf/build.sh`:
// it creates the namespaces dp-ex-node, dp-ex-web and dp-ex-client and
// removes them at the end:
// `node --conditions=@dp/source --import tsx docs/examples/datapath_node.ts`
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createNetns, deleteNetns } from "@dp/core";
import { formatMonitorEvent, openNode } from "@dp/datapath";

const names = ["dp-ex-node", "dp-ex-web", "dp-ex-client"] as const;
for (const n of names) createNetns(n).close();
function sh(ns: string, cmd: string[]): string {
  return execFileSync("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8" });
}

try {
  // #region open
  const node = await openNode({
    stateDir: "/sys/fs/bpf/dp-example", // maps, ledger and endpoint records (bpffs)
    netns: "dp-ex-node", // default: the caller's namespace
    hostRouting: "auto", // "bpf" when the kernel has bpf_redirect_peer and bpf_redirect_neigh
    router: { ipv4: "10.200.0.1", ipv6: "fd10::1" }, // the pods' gateway, on every host-side veth
    mapSizes: { "bpf-ct-global-tcp-max": 65536, "bpf-policy-map-max": 4096 },
    ctTimeouts: { tcp: 3600 },
  });
  console.log(node.status().hostRouting); // { mode: "bpf", reason: "auto: the kernel has ..." }
  // #endregion open

  // #region endpoints
  const web = await node.addEndpoint({
    netns: "dp-ex-web",
    ipv4: "10.200.1.1",
    ipv6: "fd10::1:1",
    labels: ["k8s:app=web"],
  });
  const client = await node.addEndpoint({
    netns: "dp-ex-client",
    ipv4: "10.200.1.2",
    ipv6: "fd10::1:2",
    labels: ["k8s:app=client"],
  });
  await node.setRules([
    {
      name: "web-from-client",
      endpointSelector: { matchLabels: { app: "web" } },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: "client" } }],
          toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }],
        },
      ],
    },
  ]);
  // #endregion endpoints

  // #region monitor
  const stop = new AbortController();
  const drops = (async () => {
    for await (const e of node.monitor({ types: ["drop"], endpoint: web.id, signal: stop.signal }))
      console.log(formatMonitorEvent(e));
  })();
  // ICMP is not allowed into web: dropped, reported with reason and identities.
  assert.throws(() => sh("dp-ex-client", ["ping", "-c", "1", "-W", "1", "10.200.1.1"]));
  await new Promise((resolve) => setTimeout(resolve, 100)); // let the reader take the event
  stop.abort();
  await drops; // xx drop (Policy denied) to endpoint 1, ifindex 3, identity 257->256: 10.200.1.2 -> 10.200.1.1 icmp EchoRequest ...
  // #endregion monitor

  // #region status
  const status = node.status();
  for (const m of status.maps) console.log(`${m.name} ${m.entries}/${m.maxEntries}`);
  console.log(
    status.endpoints.map((e) => `${e.id} ${e.ipv4} identity ${e.identity} ingress enforced ${e.enforcement.ingress}`),
  );
  console.log(status.counters.metrics.filter((c) => c.reasonName !== "forwarded"));
  // #endregion status

  // #region restart
  node.close(); // the process may also just exit or die: everything stays in the kernel
  const again = await openNode({
    stateDir: "/sys/fs/bpf/dp-example",
    netns: "dp-ex-node",
    router: { ipv4: "10.200.0.1", ipv6: "fd10::1" },
  });
  assert.deepEqual(
    again.endpoints().map((e) => e.id),
    [web.id, client.id],
  );
  console.log(again.status().adopted); // { maps: ["dp_events", ..., "dp_ct_tcp", ...], endpoints: 2, attachments: 4 }
  // #endregion restart

  // #region teardown
  await again.removeEndpoint(client.id); // the veth pair, routes, attachments, map entries, identity
  await again.destroy(); // every endpoint, the pinned maps, the ledger's pins (empty directories stay)
  // #endregion teardown
} finally {
  for (const n of names) deleteNetns(n);
}
