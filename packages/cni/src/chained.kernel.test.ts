// dp-cni chained after Debian's `bridge` plugin (Cilium's generic-veth
// chaining), driven the way runtimes drive a conflist: bridge ADD, then
// dp-cni ADD with the bridge's result as prevResult; DEL in reverse. The
// agent runs in this process over a node namespace; the containers'
// traffic crosses the bridge and dp's programs on the bridge's veths.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "@dp/agent/client";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { listAttachments } from "@dp/hooks";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type Conflist,
  CniRuntime,
  HAS_DEBIAN_PLUGINS,
  makeCniBin,
  startTestAgent,
  tcpProbe,
  tcpServer,
} from "./_test_runtime.ts";
import type { CniResult } from "./spec.ts";

beforeEach((t) => requireRoot(t));

describe("dp-cni chained after bridge", () => {
  test.skipIf(!HAS_DEBIAN_PLUGINS).each([false, true])(
    "conflist bridge + dp-cni: policed by dp, prevResult passed on, DEL in reverse leaves nothing (legacy routing: %s)",
    async (legacy) => {
      const tmp = mkdtempSync(join(tmpdir(), "dp-chain-"));
      using bpf = bpffsDir();
      using node = netns({ label: "dpcnode" });
      using podA = netns({ label: "dpca" });
      using podB = netns({ label: "dpcb" });
      const agent = await startTestAgent(node.name, bpf.path, join(tmp, "run"), {
        "enable-host-legacy-routing": legacy,
      });
      const stops: (() => void)[] = [];
      try {
        const client = new ApiClient({ socketPath: agent.socketPath });
        const runtime = new CniRuntime(makeCniBin(tmp), node.name);
        const bridge = `cnibr${Math.floor(Math.random() * 1e5)}`;
        const list: Conflist = {
          cniVersion: "1.0.0",
          name: "chain",
          plugins: [
            {
              type: "bridge",
              bridge,
              isGateway: true,
              ipMasq: false,
              ipam: {
                type: "host-local",
                ranges: [[{ subnet: "10.211.0.0/24" }]],
                routes: [{ dst: "0.0.0.0/0" }],
                dataDir: join(tmp, "ipam"),
              },
            },
            { type: "dp-cni", socketPath: agent.socketPath, labels: ["k8s:net=chain"] },
          ],
        };
        const a = {
          id: "ctr-a",
          netns: `/run/netns/${podA.name}`,
          args: "IgnoreUnknown=1;K8S_POD_NAME=a;K8S_POD_NAMESPACE=shop",
        };
        const b = {
          id: "ctr-b",
          netns: `/run/netns/${podB.name}`,
          args: "IgnoreUnknown=1;K8S_POD_NAME=b;K8S_POD_NAMESPACE=shop",
        };
        const [bridgeA, dpA] = (await runtime.add(list, a)) as [CniResult, CniResult];
        const [bridgeB, dpB] = (await runtime.add(list, b)) as [CniResult, CniResult];
        // A chained plugin passes prevResult on unchanged.
        expect(dpA).toEqual(bridgeA);
        expect(dpB).toEqual(bridgeB);
        const ipA = bridgeA.ips?.[0]?.address.split("/")[0] ?? "";
        const ipB = bridgeB.ips?.[0]?.address.split("/")[0] ?? "";
        expect([ipA, ipB]).toEqual(["10.211.0.2", "10.211.0.3"]);

        // The agent's endpoints sit on the bridge's host-side veths, with the labels of the config and CNI_ARGS.
        const eps = await client.endpoints();
        const hostVethA = bridgeA.interfaces?.find((i) => i.sandbox === undefined && i.name !== bridge)?.name;
        expect(eps.map((e) => [e.containerId, e.ipv4, e.hostIfname, e.existing])).toEqual([
          ["ctr-a", ipA, hostVethA, true],
          ["ctr-b", ipB, expect.any(String), true],
        ]);
        expect(eps[0]?.labels).toEqual([
          "cni:network=chain",
          "k8s:io.kubernetes.pod.name=a",
          "k8s:io.kubernetes.pod.namespace=shop",
          "k8s:net=chain",
        ]);
        for (const ep of eps) {
          const progs = listAttachments({ iface: ep.hostIfname, netns: node.ns }).map((x) => x.programName);
          expect(progs.sort()).toEqual(["from_container", "to_container"]);
          expect(node.exec("ip", ["-o", "link", "show", "dev", ep.hostIfname])).toContain(`master ${bridge}`);
        }

        // Real traffic across the bridge, then a rule: b accepts only c, so a's connection is dropped; b still reaches a.
        stops.push(await tcpServer(podA, 7070), await tcpServer(podB, 7070));
        expect(await tcpProbe(podA, ipB, 7070)).toBe("ok 5000");
        await client.importPolicy({
          rules: [
            {
              name: "b-only-from-c",
              endpointSelector: { matchLabels: { "io.kubernetes.pod.name": "b" } },
              ingress: [{ fromEndpoints: [{ matchLabels: { "io.kubernetes.pod.name": "c" } }] }],
            },
          ],
        });
        expect(await tcpProbe(podA, ipB, 7070)).toBe("timeout");
        expect(await tcpProbe(podB, ipA, 7070)).toBe("ok 5000");
        const drops = (await client.metrics()).filter((m) => m.reasonName === "policy-default-deny");
        expect(drops.reduce((n, m) => n + BigInt(m.packets), 0n)).toBeGreaterThan(0n);

        // DEL in reverse (dp-cni, then bridge), twice: no endpoint, no veth, addresses back in host-local's pool.
        for (const c of [a, b]) {
          for (let i = 0; i < 2; i++) {
            const runs = await runtime.del(list, c);
            expect(runs.map((r) => r.code)).toEqual([0, 0]);
          }
        }
        expect(await client.endpoints()).toEqual([]);
        expect(node.exec("ip", ["-o", "link", "show", "master", bridge]).trim()).toBe("");
        expect(readdirSync(join(tmp, "ipam", "chain")).filter((f) => f.startsWith("10."))).toEqual([]);
      } finally {
        for (const stop of stops) stop();
        await agent.close({ teardown: true });
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
