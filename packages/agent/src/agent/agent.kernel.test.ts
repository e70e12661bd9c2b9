// The agent in this process over a real node in a test namespace: the API
// with real pods and real TCP, the monitor, status, metrics scraped over
// HTTP and compared with the maps, the socket's permissions.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { connect } from "node:net";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import type { PolicyRule } from "@dp/datapath";
import { ApiClient } from "../api/client.ts";
import type { MonitorLine } from "../api/types.ts";
import { ConfigError } from "../config/config_error.ts";
import { AgentTestbed } from "./_test_agent.ts";
import { type Agent, startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

beforeEach((t) => requireRoot(t));

function run(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const quiet = createLogger({ stream: { write: () => true } });

const WEB_FROM_CLIENT: PolicyRule = {
  name: "web-from-client",
  endpointSelector: { matchLabels: { app: "web" } },
  ingress: [
    { fromEndpoints: [{ matchLabels: { app: "client" } }], toPorts: [{ ports: [{ port: "8080", protocol: "TCP" }] }] },
  ],
};

async function withAgent(
  pods: number,
  flags: Readonly<Record<string, string | boolean>>,
  fn: (bed: AgentTestbed, agent: Agent, client: ApiClient) => Promise<void>,
): Promise<void> {
  using bed = new AgentTestbed(pods);
  const agent = await startAgent(bed.config(flags), { logger: quiet });
  try {
    await fn(bed, agent, new ApiClient({ socketPath: agent.socketPath }));
  } finally {
    await agent.close({ teardown: true });
  }
}

describe("startAgent()", () => {
  test("the API adds pods with IPAM addresses; an imported policy allows and denies real TCP; the monitor streams the drop", async () => {
    await withAgent(3, {}, async (bed, agent, client) => {
      const [webNs, clientNs, otherNs] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0], (typeof bed.pods)[0]];
      const web = await client.createEndpoint({ netns: webNs.name, labels: ["k8s:app=web"], containerId: "cid-web" });
      const cl = await client.createEndpoint({ netns: clientNs.name, labels: ["k8s:app=client"] });
      const other = await client.createEndpoint({ netns: otherNs.name, labels: ["k8s:app=other"], ipv4: "10.200.9.9" });
      // IPAM: the first free addresses after the router, both families; a given address is kept.
      expect([web.ipv4, cl.ipv4, other.ipv4]).toEqual(["10.200.0.2", "10.200.0.3", "10.200.9.9"]);
      expect([web.ipv6, cl.ipv6]).toEqual(["fd10::2", "fd10::3"]);
      expect(webNs.exec("ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain("10.200.0.2/32");
      expect((await client.endpoints()).map((e) => [e.id, e.containerId])).toEqual([
        [web.id, "cid-web"],
        [cl.id, undefined],
        [other.id, undefined],
      ]);
      expect(await client.endpoint(web.id)).toEqual(web);

      await bed.server(webNs, 8080);
      expect(await bed.tcp(otherNs, web.ipv4, 8080)).toBe("ok 10000");

      const policy = await client.importPolicy({ rules: [WEB_FROM_CLIENT] });
      expect(policy.revision).toBe(1);
      expect(policy.rules.map((r) => r.name)).toEqual(["web-from-client"]);
      expect((await client.policyMap(web.id)).some((e) => e.direction === "ingress" && e.port === 8080)).toBe(true);

      const controller = new AbortController();
      const lines: MonitorLine[] = [];
      const reading = (async () => {
        for await (const line of client.monitor({ types: ["drop"], endpoint: web.id, signal: controller.signal })) {
          lines.push(line);
          if (line.kind === "event") controller.abort();
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      expect(await bed.tcp(clientNs, web.ipv4, 8080)).toBe("ok 10000");
      expect(await bed.tcp(otherNs, web.ipv4, 8080, 100, 1000)).toBe("timeout");
      const timer = setTimeout(() => controller.abort(), 5000);
      await reading;
      clearTimeout(timer);
      const drop = lines.find((l) => l.kind === "event");
      expect(drop).toMatchObject({
        kind: "event",
        event: {
          type: "drop",
          endpointId: web.id,
          direction: "ingress",
          saddr: other.ipv4,
          daddr: web.ipv4,
          dport: 8080,
        },
      });
      expect(drop?.kind === "event" && drop.event.type === "drop" ? drop.event.reason : "").toMatch(/policy/);

      // Trace agrees with what happened.
      const trace = await client.tracePolicy({ from: { endpoint: other.id }, to: { endpoint: web.id }, port: 8080 });
      expect(trace.verdict).toBe("denied");
      // Conntrack: the allowed connection from the client is there, by endpoint.
      const ct = await client.conntrack({ endpoint: cl.id, dport: 8080 });
      expect(ct.length).toBeGreaterThan(0);
      expect(agent.node.listConntrack({ address: cl.ipv4, dport: 8080 }).length).toBe(ct.length);

      // Deleting the policy opens the port again; deleting an endpoint removes its veth.
      expect((await client.deletePolicy(["web-from-client"])).revision).toBe(2);
      expect(await bed.tcp(otherNs, web.ipv4, 8080)).toBe("ok 10000");
      await client.deleteEndpoint(other.id);
      expect((await client.endpoints()).map((e) => e.id)).toEqual([web.id, cl.id]);
      expect(bed.node.exec("ip", ["-o", "link", "show"])).not.toContain(other.hostIfname);
      await expect(client.deleteEndpoint(other.id)).rejects.toMatchObject({ code: "not-found", status: 404 });
      // A bad request names the field; nothing is created.
      await expect(client.createEndpoint({ netns: "dpt-no-such-ns", labels: ["k8s:app=x"] })).rejects.toMatchObject({
        code: "bad-request",
        field: "netns",
      });
      await expect(
        client.importPolicy({
          rules: [
            WEB_FROM_CLIENT,
            { name: "bad", endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: "x" }] }] }] },
          ],
        }),
      ).rejects.toMatchObject({
        code: "bad-request",
        field: expect.stringMatching(/^rules\[1\]\.ingress\[0\]\.toPorts/),
      });
      expect((await client.endpoints()).length).toBe(2);
      expect((await client.policy()).rules).toEqual([]);
    });
  });

  test("status and the metrics endpoint match the state created and the maps after real traffic", async () => {
    await withAgent(
      2,
      { "prometheus-serve-addr": "127.0.0.1:0", "cluster-name": "lab", "cluster-id": "7" },
      async (bed, agent, client) => {
        const [webNs, clientNs] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0]];
        const web = await client.createEndpoint({ netns: webNs.name, labels: ["k8s:app=web"] });
        await client.createEndpoint({ netns: clientNs.name, labels: ["k8s:app=client"] });
        await client.importPolicy({ rules: [WEB_FROM_CLIENT] });
        await bed.server(webNs, 8080);
        await bed.server(webNs, 9090);
        expect(await bed.tcp(clientNs, web.ipv4, 8080, 50_000)).toBe("ok 50000");
        expect(await bed.tcp(clientNs, web.ipv4, 9090, 100, 800)).toBe("timeout");

        const status = await client.status();
        expect(status).toMatchObject({
          pid: process.pid,
          cluster: { name: "lab", id: 7 },
          node: { netns: bed.node.name, stateDir: `${bed.bpf.path}/dp`, devices: [] },
          hostRouting: { mode: agent.node.hostRouting, reason: agent.resolved.hostRouting.reason },
          attachMode: agent.node.attachMode,
          endpoints: { total: 2, policyMapFull: 0 },
          identities: 2,
          policy: { rules: 1, revision: 1 },
          adopted: { endpoints: 0 },
          unsupported: [],
        });
        expect(status.controllers.map((c) => c.name).sort()).toEqual(["ct-gc", "monitor"]);
        expect(status.maps.find((m) => m.name === `dp_policy/${web.id}`)?.entries).toBeGreaterThan(0);
        const ipcache = status.maps.find((m) => m.name === "dp_ipcache");
        expect(ipcache?.entries).toBe(agent.node.ipcache.entries().length);

        const address = agent.metricsAddress;
        expect(address?.port).toBeGreaterThan(0);
        const counter = (text: string, name: string, labels: string): number => {
          const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
          return Number(line?.split(" ").at(-1) ?? Number.NaN);
        };
        const sum = (reason: number, direction: string, what: "packets" | "bytes"): number =>
          agent.node
            .status()
            .counters.metrics.filter((c) => c.reason === reason && c.direction === direction)
            .reduce((n, c) => n + Number(c[what]), 0);
        const before = { fwd: sum(0, "egress", "packets"), drop: sum(2, "ingress", "packets") };
        const res = await fetch(`http://127.0.0.1:${address?.port}/metrics`);
        expect(res.status).toBe(200);
        const text = await res.text();
        const after = { fwd: sum(0, "egress", "packets"), drop: sum(2, "ingress", "packets") };
        const reasonName = agent.node.status().counters.metrics.find((c) => c.reason === 2)?.reasonName;
        expect(reasonName).toBeDefined();
        const fwd = counter(text, "dp_forward_count_total", 'direction="egress"');
        const drops = counter(text, "dp_drop_count_total", `reason="${reasonName}",direction="ingress"`);
        expect(fwd).toBeGreaterThanOrEqual(before.fwd);
        expect(fwd).toBeLessThanOrEqual(after.fwd);
        // 50 kB of TCP went through (segments may be GSO-sized).
        expect(counter(text, "dp_forward_bytes_total", 'direction="egress"')).toBeGreaterThan(50_000);
        expect(drops).toBeGreaterThanOrEqual(Math.max(1, before.drop));
        expect(drops).toBeLessThanOrEqual(after.drop);
        expect(text).toMatch(/^dp_endpoint 2$/m);
        expect(text).toMatch(/^dp_policy 1$/m);
        expect(text).toMatch(/^dp_identity\{type="cluster"\} 2$/m);
        expect(text).toMatch(new RegExp(`^dp_bpf_map_pressure\\{map_name="dp_policy/${web.id}"\\} 0\\.\\d+`, "m"));
        expect(text).toMatch(/^dp_policy_regeneration_time_stats_seconds_count [1-9]/m);
        const apiCounters = await client.metrics();
        expect(apiCounters.find((c) => c.reason === 2 && c.direction === "ingress")?.packets).toBe(
          String(sum(2, "ingress", "packets")),
        );
        expect((await fetch(`http://127.0.0.1:${address?.port}/nope`)).status).toBe(404);
      },
    );
  });

  test("a monitor client that never reads does not block the agent", async () => {
    await withAgent(2, {}, async (bed, _agent, client) => {
      const [webNs, clientNs] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0]];
      const web = await client.createEndpoint({ netns: webNs.name, labels: ["k8s:app=web"] });
      await client.createEndpoint({ netns: clientNs.name, labels: ["k8s:app=client"] });
      await client.importPolicy({ rules: [WEB_FROM_CLIENT] });
      const slow = connect(bed.socketPath);
      slow.write("GET /v1/monitor HTTP/1.1\r\nhost: dp\r\n\r\n");
      slow.pause();
      try {
        const flood = bed.udp(clientNs, web.ipv4, 7777, 20_000);
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const t0 = performance.now();
          expect((await client.status()).endpoints.total).toBe(2);
          times.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 100));
        }
        await flood;
        expect(Math.max(...times)).toBeLessThan(1000);
        const drops = (await client.metrics()).filter((c) => c.reason !== 0).reduce((n, c) => n + Number(c.packets), 0);
        expect(drops).toBeGreaterThan(10_000);
        // The slow client's connection is still open and gets lines once it reads.
        let got = "";
        slow.on("data", (d: Buffer) => (got += d.toString()));
        slow.resume();
        const end = Date.now() + 5000;
        while (!got.includes('"kind":"lost"') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        expect(got).toMatch(/"kind":"lost","count":\d+,"why":"(slow-reader|ring-buffer)"/);
        expect(got).toContain('"kind":"event"');
      } finally {
        slow.destroy();
      }
    });
  });

  test("the API socket is root's: a non-root user is refused", async () => {
    await withAgent(0, {}, async (bed) => {
      // Asynchronously: the agent answers from this process's event loop.
      const url = "http://dp/v1/healthz";
      const asRoot = await run("curl", ["-sS", "--unix-socket", bed.socketPath, url]);
      expect(asRoot).toEqual({ code: 0, stdout: '{"ok":true}', stderr: "" });
      const nobody = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-sS",
        "-v",
        "--unix-socket",
        bed.socketPath,
        url,
      ]);
      expect(nobody.code).toBe(7);
      expect(nobody.stderr).toMatch(/connect fail for .*dp\.sock: Permission denied/);
      expect(nobody.stdout).toBe("");
      // The socket's own mode refuses, not only its directories.
      chmodSync(dirname(bed.stateDir), 0o755);
      chmodSync(bed.stateDir, 0o755);
      const again = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "curl",
        "-sS",
        "-v",
        "--unix-socket",
        bed.socketPath,
        url,
      ]);
      expect(again.stderr).toMatch(/connect fail for .*dp\.sock: Permission denied/);
    });
  });

  test("a second agent on the same socket is refused before it changes anything", async () => {
    await withAgent(0, {}, async (bed) => {
      const other = bed.config({ "bpf-root": `${bed.bpf.path}/second` });
      await expect(startAgent(other, { logger: quiet })).rejects.toThrow(/another agent is running/);
      expect(existsSync(`${bed.bpf.path}/second`)).toBe(false);
    });
  });

  test("a missing device is a ConfigError naming the key, before the kernel is touched", async () => {
    using bed = new AgentTestbed(0);
    const err = await startAgent(bed.config({ devices: "eth9" }), { logger: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.key)).toEqual(["devices"]);
    expect((err as Error).message).toMatch(/devices: "eth9" does not exist/);
    expect(readdirSync(bed.bpf.path)).toEqual([]);
    expect(existsSync(bed.socketPath)).toBe(false);
  });

  test("enable-ipsec loads the key file into status; a bad key file is a ConfigError naming the key and line, never the key", async () => {
    using bed = new AgentTestbed(0);
    mkdirSync(bed.stateDir, { recursive: true });
    const keyFile = join(bed.stateDir, "ipsec-keys");
    const key = "00112233445566778899aabbccddeeff00112233";
    writeFileSync(
      keyFile,
      `3+ rfc4106(gcm(aes)) 0x${key} 128\n4+ rfc4106(gcm(aes)) 0x${key.replace("00", "ff")} 128\n`,
    );
    const agent = await startAgent(bed.config({ "enable-ipsec": true, "ipsec-key-file": keyFile }), { logger: quiet });
    try {
      expect(agent.node.encryption).toBe("ipsec");
      const status = await new ApiClient({ socketPath: agent.socketPath }).status();
      expect(status.encryption).toEqual({ mode: "ipsec", keyIds: [3, 4], nodeKeys: [], xfrmErrors: {} });
    } finally {
      await agent.close({ teardown: true });
    }
    writeFileSync(keyFile, `3+ rfc4106(gcm(aes)) 0x${key.slice(2)} 128\n`);
    const err = await startAgent(bed.config({ "enable-ipsec": true, "ipsec-key-file": keyFile }), {
      logger: quiet,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.key)).toEqual(["ipsec-key-file"]);
    expect((err as Error).message).toMatch(/ipsec-key-file: ".*ipsec-keys" is not a key file: .*line 1/);
    expect((err as Error).message).not.toContain(key.slice(2));
    expect(existsSync(bed.socketPath)).toBe(false);
  });

  test("close({ teardown: true }) removes the endpoints, pins, socket and agent files", async () => {
    using bed = new AgentTestbed(1);
    const agent = await startAgent(bed.config(), { logger: quiet });
    const client = new ApiClient({ socketPath: agent.socketPath });
    const ep = await client.createEndpoint({
      netns: bed.pods[0]?.name ?? "",
      labels: ["k8s:app=a"],
      containerId: "c1",
    });
    expect(existsSync(`${bed.stateDir}/agent.json`)).toBe(true);
    await agent.close({ teardown: true });
    expect(existsSync(bed.socketPath)).toBe(false);
    expect(existsSync(`${bed.stateDir}/agent.json`)).toBe(false);
    expect(readdirSync(bed.bpf.path)).toEqual([]);
    expect(bed.node.exec("ip", ["-o", "link", "show"])).not.toContain(ep.hostIfname);
    expect(bed.pods[0]?.exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
  });
});
