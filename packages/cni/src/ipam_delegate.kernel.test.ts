// dp-cni as the only plugin with `ipam: { type: host-local }`: the
// addresses come from Debian's host-local (exec'd by dp-cni from CNI_PATH),
// the agent wires the endpoints with them, the pods talk, and DEL gives the
// addresses back to host-local's pool.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "@dp/agent/client";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
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

describe("dp-cni with host-local IPAM", () => {
  test.skipIf(!HAS_DEBIAN_PLUGINS)(
    "ADD takes host-local's addresses, the pods talk through dp, DEL returns them to the pool",
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), "dp-hl-"));
      using bpf = bpffsDir();
      using node = netns({ label: "dphnode" });
      using podA = netns({ label: "dpha" });
      using podB = netns({ label: "dphb" });
      const agent = await startTestAgent(node.name, bpf.path, join(tmp, "run"));
      const stops: (() => void)[] = [];
      try {
        const client = new ApiClient({ socketPath: agent.socketPath });
        const runtime = new CniRuntime(makeCniBin(tmp), node.name);
        const dataDir = join(tmp, "ipam");
        const list: Conflist = {
          cniVersion: "1.1.0",
          name: "hl",
          plugins: [
            {
              type: "dp-cni",
              socketPath: agent.socketPath,
              labels: { app: "hl" },
              ipam: { type: "host-local", ranges: [[{ subnet: "10.212.0.0/24", gateway: "10.212.0.1" }]], dataDir },
            },
          ],
        };
        const a = { id: "hl-a", netns: `/run/netns/${podA.name}` };
        const b = { id: "hl-b", netns: `/run/netns/${podB.name}` };
        const [resA] = (await runtime.add(list, a)) as [CniResult];
        const [resB] = (await runtime.add(list, b)) as [CniResult];
        const ipA = resA.ips?.[0]?.address.split("/")[0];
        const ipB = resB.ips?.[0]?.address.split("/")[0];
        expect([ipA, ipB]).toEqual(["10.212.0.2", "10.212.0.3"]);
        expect(
          readdirSync(join(dataDir, "hl"))
            .filter((f) => f.startsWith("10."))
            .sort(),
        ).toEqual(["10.212.0.2", "10.212.0.3"]);
        // The agent made the endpoints with those addresses (its own pool untouched).
        const eps = await client.endpoints();
        expect(eps.map((e) => [e.containerId, e.ipv4, e.existing])).toEqual([
          ["hl-a", ipA, false],
          ["hl-b", ipB, false],
        ]);
        expect(podA.exec("ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain(`${ipA}/32`);
        stops.push(await tcpServer(podB, 7171));
        expect(await tcpProbe(podA, ipB ?? "", 7171)).toBe("ok 5000");

        // DEL (twice): the endpoint goes and host-local frees the address; the next ADD gets a fresh one.
        for (let i = 0; i < 2; i++) expect((await runtime.del(list, a)).map((r) => r.code)).toEqual([0]);
        expect((await client.endpoints()).map((e) => e.containerId)).toEqual(["hl-b"]);
        expect(readdirSync(join(dataDir, "hl")).filter((f) => f.startsWith("10."))).toEqual(["10.212.0.3"]);
        expect(podA.exec("ip", ["-o", "link"])).not.toContain("eth0");
        await runtime.del(list, b);
        expect(await client.endpoints()).toEqual([]);
        expect(readdirSync(join(dataDir, "hl")).filter((f) => f.startsWith("10."))).toEqual([]);
      } finally {
        for (const stop of stops) stop();
        await agent.close({ teardown: true });
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
