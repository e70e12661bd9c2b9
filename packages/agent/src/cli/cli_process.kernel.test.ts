// The dp binary as a process: `dp agent` stops on SIGTERM with exit 0
// leaving the datapath pinned, a restarted `dp agent` adopts it, and a
// `dp monitor` running meanwhile reconnects and shows a drop made after
// the restart; SIGINT ends it with 130.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { openPinnedNode } from "@dp/datapath";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { ApiClient } from "../api/client.ts";

beforeEach((t) => requireRoot(t));

const DP = new URL("../../bin/dp.mjs", import.meta.url).pathname;

interface Proc {
  readonly child: ChildProcess;
  out: string;
  err: string;
}

function start(args: readonly string[]): Proc {
  // The sources, not a build that may be older than them.
  const child = spawn(process.execPath, [DP, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DP_FROM_SOURCE: "1" },
  });
  const p: Proc = { child, out: "", err: "" };
  child.stdout?.on("data", (d: Buffer) => (p.out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (p.err += d.toString()));
  return p;
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

async function exitCode(p: Proc): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  const [code] = (await once(p.child, "exit")) as [number | null];
  return code;
}

describe("dp as a process", () => {
  test("dp monitor reconnects across a dp agent restart that keeps the datapath", async () => {
    using bpf = bpffsDir();
    using nodeNs = netns({ label: "dpclipnode" });
    using web = netns({ label: "dpclipweb" });
    using cli = netns({ label: "dpclipcli" });
    const dir = mkdtempSync(join(tmpdir(), "dp-cli-proc-"));
    const socket = join(dir, "dp.sock");
    const config = join(dir, "config.yaml");
    writeFileSync(
      config,
      `state-dir: ${dir}\nbpf-root: ${bpf.path}\nnetns: ${nodeNs.name}\nipv4-range: 10.203.0.0/16\nenable-ipv6: "False"\nbpf-ct-global-tcp-max: 131072\nbpf-ct-global-any-max: 65536\n`,
    );
    const api = new ApiClient({ socketPath: socket });
    const healthy = (): Promise<boolean> =>
      api.healthz().then(
        () => true,
        () => false,
      );
    const procs: Proc[] = [];
    try {
      const first = start(["agent", "--config", config]);
      procs.push(first);
      await until("the agent", healthy);
      const w = await api.createEndpoint({ netns: web.name, labels: ["k8s:app=web"] });
      await api.createEndpoint({ netns: cli.name, labels: ["k8s:app=client"] });
      await api.importPolicy({
        rules: [
          { name: "web-in", endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEntities: ["host"] }] },
        ],
      });

      const monitor = start(["--socket", socket, "monitor", "--type", "drop", "--json", "--to", String(w.id)]);
      procs.push(monitor);
      await new Promise((r) => setTimeout(r, 1500));

      first.child.kill("SIGTERM");
      expect(await exitCode(first)).toBe(0);
      expect(first.err).toMatch(/the datapath keeps running/);
      {
        using pinned = openPinnedNode(`${bpf.path}/dp`);
        expect(pinned.endpoints().map((e) => e.id)).toContain(w.id);
      }
      await until("the monitor to notice", () => monitor.err.includes("dp: lost the agent; reconnecting"));

      const second = start(["agent", "--config", config, "--agent-teardown-on-stop"]);
      procs.push(second);
      await until("the restarted agent", healthy);
      expect((await api.status()).adopted.endpoints).toBe(2);
      await until("the monitor to reconnect", () => monitor.err.includes("dp: reconnected to the agent"));

      cli.exec("bash", ["-c", `echo x > /dev/udp/${w.ipv4}/9`]);
      await until("a drop in the monitor", () => monitor.out.includes('"kind":"event"'));
      const line = JSON.parse(monitor.out.split("\n")[0] ?? "");
      expect(line.event).toMatchObject({ type: "drop", endpointId: w.id, direction: "ingress", daddr: w.ipv4 });

      monitor.child.kill("SIGINT");
      expect(await exitCode(monitor)).toBe(130);
      second.child.kill("SIGTERM");
      expect(await exitCode(second)).toBe(0);
      expect(second.err).toMatch(/tearing the datapath down/);
    } finally {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
