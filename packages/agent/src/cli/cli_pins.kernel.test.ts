// The dp command against a node's pins when no agent runs: a Node with two
// endpoints, a rule and real traffic, closed; then `dp status`, `dp
// endpoint list`, `dp bpf ...` read what the node left, checked against
// what the node itself reported and against bpftool.
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { openNode, openPinnedNode } from "@dp/datapath";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { runCli } from "./run_cli.ts";
import { toWire } from "./_sources.ts";

beforeEach((t) => requireRoot(t));

async function dp(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await runCli(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: {},
  });
  return { code, out, err };
}

describe("dp against pins", () => {
  test("dp status, endpoint, bpf ct/policy/ipcache/metrics read the pins when no agent answers", async () => {
    using dir = bpffsDir();
    using nodeNs = netns({ label: "dpclinode" });
    using web = netns({ label: "dpcliweb" });
    using client = netns({ label: "dpclicli" });
    const stateDir = dir.join("dp");
    const node = await openNode({ stateDir, netns: nodeNs.ns, router: { ipv4: "10.201.0.1" }, ctGc: false });
    let closed = false;
    try {
      const w = await node.addEndpoint({ netns: web.ns, ipv4: "10.201.1.1", labels: ["k8s:app=web"] });
      await node.addEndpoint({ netns: client.ns, ipv4: "10.201.1.2", labels: ["k8s:app=client"] });
      await node.setRules([
        {
          name: "web-icmp",
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [
            {
              fromEndpoints: [{ matchLabels: { app: "client" } }],
              toPorts: [{ ports: [{ port: "8", protocol: "ICMP" }] }],
            },
          ],
        },
      ]);
      client.exec("ping", ["-c", "2", "-i", "0.2", "-W", "1", "10.201.1.1"]);
      // Not allowed: TCP to web (a SYN that is dropped).
      try {
        client.exec("timeout", ["1", "bash", "-c", "exec 3<>/dev/tcp/10.201.1.1/80"]);
      } catch {
        // Refused by policy.
      }
      const endpoints = node.endpoints();
      const ct = node.listConntrack();
      const counters = node.status().counters.metrics;
      node.close();
      closed = true;

      const socket = ["--socket", join(tmpdir(), `dp-no-agent-${process.pid}.sock`), "--bpf-root", dir.path];
      const status = await dp([...socket, "status"]);
      expect(status.err).toBe("");
      expect(status.code).toBe(3);
      expect(status.out).toMatch(/^Agent: +Not reachable \(Cannot reach the dp agent/m);
      expect(status.out).toMatch(/^Endpoints: +2$/m);
      expect(status.out).toMatch(/^Encryption: +Disabled$/m);
      expect(status.out).toMatch(/^Policy: +1 rules$/m);
      expect(status.out).toMatch(/^ {2}dp_endpoints +2 +\d+/m);
      const statusJson = JSON.parse((await dp([...socket, "status", "--json"])).out);
      expect(statusJson.agent.reachable).toBe(false);
      expect(statusJson.pinned.endpoints).toBe(2);

      const eps = await dp([...socket, "endpoint", "list", "--json"]);
      expect(eps.code).toBe(0);
      expect(JSON.parse(eps.out)).toEqual(endpoints.map((e) => ({ ...toWire(e) })));
      const table = (await dp([...socket, "endpoint", "list"])).out;
      expect(table).toMatch(
        new RegExp(`^${w.id} +Enabled +Disabled +${w.identity} +k8s:app=web +10\\.201\\.1\\.1 +lxc${w.id}$`, "m"),
      );
      expect((await dp([...socket, "endpoint", "get", "999"])).code).toBe(1);

      const list = await dp([...socket, "bpf", "ct", "list", "--json"]);
      expect(list.code).toBe(0);
      expect(JSON.parse(list.out)).toEqual(toWire(ct));
      expect(ct.some((e) => e.protocol === 1)).toBe(true);
      const text = (await dp([...socket, "bpf", "ct", "list", "--protocol", "ICMP"])).out;
      expect(text).toMatch(
        /^ICMP OUT 10\.201\.1\.2:0 -> 10\.201\.1\.1:\d+ expires=\d+s state=established TxPackets=2 /m,
      );

      const policy = JSON.parse((await dp([...socket, "bpf", "policy", "get", String(w.id), "--json"])).out);
      const icmp = policy.find((e: { protocol: number; port: number }) => e.protocol === 1 && e.port === 8);
      // Policy runs on a connection's first packet: the second echo request was established.
      expect(icmp).toMatchObject({ direction: "ingress", deny: false, packets: "1" });
      expect((await dp([...socket, "bpf", "policy", "get", "999"])).code).toBe(1);

      const ipcache = JSON.parse((await dp([...socket, "bpf", "ipcache", "list", "--json"])).out);
      expect(ipcache).toContainEqual({ prefix: "10.201.1.1/32", identity: w.identity });
      expect(ipcache).toContainEqual({ prefix: "0.0.0.0/0", identity: 2 });

      const metrics = JSON.parse((await dp([...socket, "bpf", "metrics", "--json"])).out);
      expect(metrics).toEqual(toWire(counters));

      // bpftool agrees on the number of conntrack entries.
      const dump = JSON.parse(
        execFileSync("bpftool", ["-j", "map", "dump", "pinned", `${stateDir}/dp_ct_any`], { encoding: "utf8" }),
      );
      expect(ct.filter((e) => e.map === "any").length).toBe(dump.length);

      const flush = await dp([...socket, "bpf", "ct", "flush", "--protocol", "ICMP"]);
      expect(flush.code).toBe(0);
      expect(flush.out).toMatch(/^Deleted [1-9]\d* entries \(dp_ct_tcp 0, dp_ct_any [1-9]\d*\)$/m);
      expect(JSON.parse((await dp([...socket, "bpf", "ct", "list", "--protocol", "ICMP", "--json"])).out)).toEqual([]);
      using pinned = openPinnedNode(stateDir);
      expect(pinned.listConntrack({ protocol: "ICMP" })).toEqual([]);
    } finally {
      if (closed) {
        const again = await openNode({ stateDir, netns: nodeNs.ns, router: { ipv4: "10.201.0.1" }, ctGc: false });
        await again.destroy();
      } else await node.destroy();
    }
  });
});
