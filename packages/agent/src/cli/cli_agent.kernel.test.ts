// The dp command against a live agent on a private socket: the agent runs
// in this process (startAgent) on a node in a test namespace; endpoints
// come from its API. What `dp` prints from the agent must equal what the
// pins show, and `dp monitor` must show a real drop.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { openPinnedNode } from "@dp/datapath";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { startAgent } from "../agent/agent.ts";
import { createLogger } from "../agent/logger.ts";
import { ApiClient } from "../api/client.ts";
import { loadConfig } from "../config/load_config.ts";
import { toWire } from "./_sources.ts";
import { runCli } from "./run_cli.ts";

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

describe("dp against a live agent", () => {
  test("dp status, endpoint, policy, bpf and monitor answer from the agent on a private socket", async () => {
    using bpf = bpffsDir();
    using nodeNs = netns({ label: "dpclianode" });
    using web = netns({ label: "dpcliaweb" });
    using cli = netns({ label: "dpcliacli" });
    const dir = mkdtempSync(join(tmpdir(), "dp-cli-agent-"));
    const { config } = loadConfig({
      flags: {
        "state-dir": dir,
        "bpf-root": bpf.path,
        netns: nodeNs.name,
        "ipv4-range": "10.202.0.0/16",
        "enable-ipv6": "false",
        "bpf-ct-global-tcp-max": "131072",
        "bpf-ct-global-any-max": "65536",
      },
    });
    const agent = await startAgent(config, { logger: createLogger({ stream: { write: () => true } }) });
    try {
      const socket = ["--socket", config["socket-path"]];
      const api = new ApiClient({ socketPath: config["socket-path"] });
      const w = await api.createEndpoint({ netns: web.name, labels: ["k8s:app=web"] });
      const c = await api.createEndpoint({ netns: cli.name, labels: ["k8s:app=client"] });

      const status = await dp([...socket, "status"]);
      expect(status.code).toBe(0);
      expect(status.out).toMatch(/^Agent: +Ok {3}dp /m);
      expect(status.out).toMatch(/^Endpoints: +2$/m);
      expect(status.out).toMatch(/^Host Routing: +(BPF|Legacy) +\(.+\)$/m);
      const statusJson = JSON.parse((await dp([...socket, "status", "--json"])).out);
      expect(statusJson).toEqual(await api.status().then((s) => ({ ...s, controllers: statusJson.controllers })));
      expect(statusJson.node.stateDir).toBe(`${bpf.path}/dp`);
      expect(statusJson.endpoints.total).toBe(2);
      expect(statusJson.maps).toContainEqual({ name: "dp_ct_tcp", entries: 0, maxEntries: 131072 });
      expect(statusJson.maps).toContainEqual({ name: "dp_ct_any", entries: 0, maxEntries: 65536 });
      expect(statusJson.maps).toContainEqual({ name: "dp_endpoints", entries: 2, maxEntries: expect.any(Number) });

      expect(JSON.parse((await dp([...socket, "endpoint", "list", "--json"])).out)).toEqual(await api.endpoints());
      expect((await dp([...socket, "endpoint", "get", String(w.id)])).out).toMatch(/^Labels: +k8s:app=web$/m);
      const missing = await dp([...socket, "endpoint", "get", "999"]);
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/^hint: list what exists with `dp endpoint list`$/m);
      expect((await dp([...socket, "identity", "get", String(w.identity)])).out).toMatch(/^Labels: +k8s:app=web$/m);

      const file = join(dir, "policy.yaml");
      writeFileSync(
        file,
        `name: web-icmp
endpointSelector: { matchLabels: { app: web } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: client } }]
    toPorts: [{ ports: [{ port: "8", protocol: ICMP }] }]
`,
      );
      expect((await dp([...socket, "policy", "import", file])).out).toMatch(/^Imported 1 rules; revision \d+$/m);
      const trace = await dp([
        ...socket,
        "policy",
        "trace",
        "--src",
        String(c.id),
        "--dst",
        String(w.id),
        "--dport",
        "80/TCP",
      ]);
      expect(trace.out).toMatch(/^Final verdict: DENIED$/m);

      // Traffic: an allowed ping, then a denied one (UDP is not allowed) seen by the monitor.
      cli.exec("ping", ["-c", "1", "-W", "1", w.ipv4]);
      const stop = new AbortController();
      let seen = "";
      const peek = (): Promise<string> => Promise.resolve(seen);
      const monitor = (async () => {
        let out = "";
        const code = await runCli([...socket, "monitor", "--type", "drop", "--to", String(w.id)], {
          stdout: { write: (t: string) => ((out += t), (seen = out)) },
          stderr: { write: () => true },
          env: {},
          signal: stop.signal,
        });
        return { code, out };
      })();
      await new Promise((r) => setTimeout(r, 500));
      // (exec blocks this process, where the agent runs: give it time to stream the event.)
      cli.exec("bash", ["-c", `echo x > /dev/udp/${w.ipv4}/9`]);
      for (let i = 0; i < 30 && !/xx drop/.test(await peek()); i++) await new Promise((r) => setTimeout(r, 100));
      stop.abort("SIGINT");
      const mon = await monitor;
      expect(mon.code).toBe(130);
      expect(mon.out).toMatch(new RegExp(`^xx drop \\(Policy denied\\) to endpoint ${w.id}, .*udp`, "m"));

      // What the agent answers equals what the pins hold.
      using pinned = openPinnedNode(`${bpf.path}/dp`);
      expect(JSON.parse((await dp([...socket, "bpf", "ct", "list", "--json"])).out)).toEqual(
        toWire(pinned.listConntrack()),
      );
      const policy = JSON.parse((await dp([...socket, "bpf", "policy", "get", String(w.id), "--json"])).out);
      expect(policy.map((e: { port: number; protocol: number }) => `${e.protocol}/${e.port}`)).toEqual(
        (pinned.policyMap(w.id) ?? []).map((e) => `${e.protocol}/${e.port}`),
      );
      expect(JSON.parse((await dp([...socket, "bpf", "ipcache", "list", "--json"])).out)).toEqual(
        expect.arrayContaining(pinned.ipcache()),
      );
      const metrics = JSON.parse((await dp([...socket, "bpf", "metrics", "--json"])).out);
      expect(metrics).toEqual(toWire(pinned.counters().metrics));
      expect(metrics.some((m: { reason: number; packets: string }) => m.reason !== 0 && m.packets !== "0")).toBe(true);

      const flush = await dp([...socket, "bpf", "ct", "flush", "--protocol", "ICMP", "--json"]);
      expect(JSON.parse(flush.out).any).toBeGreaterThan(0);
      expect(pinned.listConntrack({ protocol: "ICMP" })).toEqual([]);

      expect((await dp([...socket, "policy", "delete"])).code).toBe(2);
      expect((await dp([...socket, "policy", "delete", "--all"])).out).toMatch(/^Deleted; 0 rules left/m);
    } finally {
      await agent.close({ teardown: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
