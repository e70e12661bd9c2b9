// The agent in a child process: SIGKILL while a TCP transfer between two
// pods runs, a new agent on the same state adopts it and the transfer
// completes; SIGTERM with teardown removes everything, without leaves the
// datapath working.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import type { PolicyRule } from "@dp/datapath";
import { ApiClient } from "../api/client.ts";
import type { AgentConfig } from "../config/agent_config.ts";
import { AgentTestbed } from "./_test_agent.ts";
import { startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

beforeEach((t) => requireRoot(t));

const CHILD = new URL("./_test_agent_child.ts", import.meta.url).pathname;
const RULES: PolicyRule[] = [
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
];

/** Starts `_test_agent_child.ts` and waits until it serves the API. */
async function startChild(config: AgentConfig, procs: Set<ChildProcess>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--conditions=@dp/source", "--import", "tsx", CHILD, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  procs.add(child);
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`agent child exited with ${code}: ${err}`)));
  });
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  const exited = once(child, "exit") as Promise<[number | null, string | null]>;
  child.kill(signal);
  const [code] = await exited;
  return code;
}

describe("the agent in a process", () => {
  test("SIGKILL and restart: a running TCP transfer completes, endpoints and rules are adopted; SIGTERM with teardown removes everything", async () => {
    using bed = new AgentTestbed(3);
    const procs = new Set<ChildProcess>();
    try {
      const [webNs, clientNs, thirdNs] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0], (typeof bed.pods)[0]];
      const config = bed.config({ "agent-teardown-on-stop": true });
      const first = await startChild(config, procs);
      const client = new ApiClient({ socketPath: bed.socketPath });
      const web = await client.createEndpoint({ netns: webNs.name, labels: ["k8s:app=web"], containerId: "web-1" });
      const cl = await client.createEndpoint({ netns: clientNs.name, labels: ["k8s:app=client"], containerId: "cl-1" });
      const policy = await client.importPolicy({ rules: RULES });
      const endpointsBefore = await client.endpoints();
      await bed.server(webNs, 8080);
      await bed.server(webNs, 9090);

      let connected!: () => void;
      const up = new Promise<void>((resolve) => (connected = resolve));
      const transfer = bed.stream(clientNs, web.ipv4, 8080, 4, () => connected());
      await up;
      // A monitor stream ends without an error when its agent dies (so `dp monitor` can reconnect).
      const monitorEnded = (async () => {
        for await (const line of client.monitor({ types: ["drop"] })) void line;
        return "ended";
      })();
      await new Promise((r) => setTimeout(r, 500));
      expect(await stop(first, "SIGKILL")).toBe(null);
      expect(await monitorEnded).toBe("ended");
      expect(existsSync(bed.socketPath)).toBe(true); // stale: nobody removed it

      const second = await startChild(config, procs);
      const result = await transfer;
      expect(result).toMatch(/^ok \d+$/);
      expect(Number(result.split(" ")[1])).toBeGreaterThan(100 * 4096);

      const status = await client.status();
      expect(status.pid).toBe(second.pid);
      expect(status.adopted.endpoints).toBe(2);
      expect(status.adopted.attachments).toBeGreaterThan(0);
      expect(await client.endpoints()).toEqual(endpointsBefore);
      expect((await client.endpoints()).map((e) => e.containerId)).toEqual(["web-1", "cl-1"]);
      expect(await client.policy()).toEqual(policy);
      // Policy is still enforced by the adopted datapath.
      expect(await bed.tcp(clientNs, web.ipv4, 8080)).toBe("ok 10000");
      expect(await bed.tcp(clientNs, web.ipv4, 9090, 100, 800)).toBe("timeout");
      // IPAM restored the addresses in use: a new pod gets the next free ones.
      const third = await client.createEndpoint({ netns: thirdNs.name, labels: ["k8s:app=third"] });
      expect([web.ipv4, cl.ipv4, third.ipv4]).toEqual(["10.200.0.2", "10.200.0.3", "10.200.0.4"]);

      expect(await stop(second, "SIGTERM")).toBe(0);
      expect(existsSync(bed.socketPath)).toBe(false);
      expect(existsSync(`${bed.stateDir}/agent.json`)).toBe(false);
      expect(readdirSync(bed.bpf.path)).toEqual([]);
      expect(bed.node.exec("ip", ["-o", "link", "show"]).trim().split("\n")).toHaveLength(1); // lo only
      expect(webNs.exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
      expect(clientNs.exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
      expect(thirdNs.exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
    } finally {
      for (const p of procs) p.kill("SIGKILL");
    }
  });

  test("SIGTERM without teardown leaves the datapath enforcing policy; the next agent adopts it", async () => {
    using bed = new AgentTestbed(2);
    const procs = new Set<ChildProcess>();
    try {
      const [webNs, clientNs] = bed.pods as [(typeof bed.pods)[0], (typeof bed.pods)[0]];
      const config = bed.config({ "agent-teardown-on-stop": false });
      const child = await startChild(config, procs);
      const client = new ApiClient({ socketPath: bed.socketPath });
      const web = await client.createEndpoint({ netns: webNs.name, labels: ["k8s:app=web"] });
      await client.createEndpoint({ netns: clientNs.name, labels: ["k8s:app=client"] });
      await client.importPolicy({ rules: RULES });
      await bed.server(webNs, 8080);
      await bed.server(webNs, 9090);
      expect(await stop(child, "SIGTERM")).toBe(0);
      expect(existsSync(bed.socketPath)).toBe(false);
      expect(readdirSync(`${bed.bpf.path}/dp`).length).toBeGreaterThan(0);
      // No agent runs: the datapath keeps allowing and denying.
      expect(await bed.tcp(clientNs, web.ipv4, 8080)).toBe("ok 10000");
      expect(await bed.tcp(clientNs, web.ipv4, 9090, 100, 800)).toBe("timeout");
      // An agent in this process adopts it, then tears it down.
      const agent = await startAgent(config, { logger: createLogger({ stream: { write: () => true } }) });
      expect(agent.status().adopted.endpoints).toBe(2);
      expect(agent.status().policy).toEqual({ rules: 1, revision: 1 });
      await agent.close({ teardown: true });
      expect(readdirSync(bed.bpf.path)).toEqual([]);
    } finally {
      for (const p of procs) p.kill("SIGKILL");
    }
  });
});
