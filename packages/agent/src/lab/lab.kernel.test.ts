// The lab on the real kernel: the topology (uplink, addresses, routes of
// the outside), the agent as a child process answering with the asked
// mode and the lab's namespace and device, destroy() removing everything,
// the uplink carrying IPv6 at once (no first packet lost to neighbour
// discovery), and an abort while the agent starts leaving nothing behind.
import { existsSync, readdirSync } from "node:fs";
import { beforeEach, expect, test } from "vitest";
import { openNetns } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { openRouting } from "@dp/routing";
import { type NetnsRunResult, runInNetns } from "./_netns_exec.ts";
import { createLab, LAB_NET, LAB_RUN_DIR } from "./lab.ts";

beforeEach((t) => requireRoot(t));

function namespacesOf(name: string): string[] {
  return (existsSync("/run/netns") ? readdirSync("/run/netns") : []).filter((n) => n.startsWith(name));
}

test("a lab: node and outside namespaces, the agent serving the node; destroy() removes all", async () => {
  const lab = await createLab({ hostRouting: "legacy" });
  const pid = lab.agentPid;
  try {
    expect(namespacesOf(lab.name).sort()).toEqual([lab.nodeNetns, lab.outsideNetns].sort());
    const status = await lab.client.status();
    expect(status.hostRouting.mode).toBe("legacy");
    expect(status.node.devices).toEqual([lab.uplink]);
    expect(status.node.netns).toContain(lab.nodeNetns);
    expect(existsSync(`${lab.bpfRoot}/dp`)).toBe(true);
    {
      using ns = openNetns(lab.nodeNetns);
      using rt = openRouting({ netns: ns });
      expect(rt.addresses.list({ dev: lab.uplink }).map((a) => a.address)).toEqual(
        expect.arrayContaining([`${LAB_NET.uplink.node4}/24`, `${LAB_NET.uplink.node6}/64`]),
      );
    }
    using out = openNetns(lab.outsideNetns);
    using rt = openRouting({ netns: out });
    const routes = rt.routes.list({ table: "main" }).map((r) => `${r.dst} via ${r.via ?? "-"}`);
    expect(routes).toEqual(
      expect.arrayContaining([
        `${LAB_NET.ipv4Range} via ${LAB_NET.uplink.node4}`,
        `${LAB_NET.ipv6Range} via ${LAB_NET.uplink.node6}`,
      ]),
    );
  } finally {
    await lab.destroy();
  }
  expect(namespacesOf(lab.name)).toEqual([]);
  expect(existsSync(lab.bpfRoot)).toBe(false);
  expect(existsSync(lab.dir)).toBe(false);
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  await expect(lab.client.healthz()).rejects.toThrow(/socket|agent/i);
});

test("the uplink carries IPv6 as soon as the lab is made: the first ping6 each way is answered", async () => {
  const lab = await createLab({ hostRouting: "legacy" });
  try {
    // The local routes first: asking for a link makes the kernel process its pending link events.
    for (const [netns, ipv6] of [
      [lab.nodeNetns, LAB_NET.uplink.node6],
      [lab.outsideNetns, LAB_NET.uplink.outside6],
    ] as const) {
      using ns = openNetns(netns);
      using rt = openRouting({ netns: ns });
      const local = rt.routes.list({ table: "local", family: 6 }).filter((r) => r.type === "local");
      expect(local.map((r) => r.dst)).toContain(`${ipv6}/128`);
    }
    {
      using out = openNetns(lab.outsideNetns);
      using rt = openRouting({ netns: out });
      expect(rt.links.get("eth0")?.operState).toBe("up");
    }
    // One echo request each, within a second: a lost neighbour solicitation would cost the 1 s retransmission.
    const ping = (netns: string, dst: string): Promise<NetnsRunResult> =>
      runInNetns(netns, "ping", ["-n", "-q", "-c", "1", "-W", "1", dst], 5000);
    const [toOutside, toNode] = await Promise.all([
      ping(lab.nodeNetns, LAB_NET.uplink.outside6),
      ping(lab.outsideNetns, LAB_NET.uplink.node6),
    ]);
    expect(toOutside.code, toOutside.stdout + toOutside.stderr).toBe(0);
    expect(toNode.code, toNode.stdout + toNode.stderr).toBe(0);
  } finally {
    await lab.destroy();
  }
});

test("aborting while the agent starts removes what was made", async () => {
  const stop = new AbortController();
  let name = "";
  const creating = createLab({
    hostRouting: "bpf",
    signal: stop.signal,
    onProgress: (m) => {
      const found = /namespaces (dpdemo-\d+-[0-9a-f]+)-node/.exec(m)?.[1];
      if (found !== undefined) name = found;
      if (m.startsWith("starting the agent")) setTimeout(() => stop.abort(new Error("stop")), 50);
    },
  });
  await expect(creating).rejects.toThrow("stop");
  expect(name).not.toBe("");
  expect(namespacesOf(name)).toEqual([]);
  expect(existsSync(`/sys/fs/bpf/${name}`)).toBe(false);
  expect(existsSync(`${LAB_RUN_DIR}/${name}`)).toBe(false);
});
