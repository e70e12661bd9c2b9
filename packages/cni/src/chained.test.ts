// Chaining without an agent: which configs are chained, what prevResult must
// give, and an agent that is not there (a socket path nothing listens on).
// chained.kernel.test.ts runs it after the real bridge plugin against an agent.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "@dp/agent/client";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { chainedAdd, chainedDel, isChained } from "./chained.ts";
import type { CniEnv, CniResult, NetConf } from "./spec.ts";

let dir: string;
let client: ApiClient;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dp-chain-"));
  client = new ApiClient({ socketPath: join(dir, "none.sock"), timeout: 1000 });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const BRIDGE_RESULT: CniResult = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "cni0", mac: "aa:aa:aa:aa:aa:01" },
    { name: "veth1234", mac: "aa:aa:aa:aa:aa:02" },
    { name: "eth0", mac: "aa:aa:aa:aa:aa:03", sandbox: "/run/netns/c1" },
  ],
  ips: [{ address: "10.22.0.5/16", gateway: "10.22.0.1", interface: 2 }],
  routes: [{ dst: "0.0.0.0/0" }],
  dns: {},
};

function conf(prevResult?: CniResult): NetConf {
  return { cniVersion: "1.0.0", name: "podnet", type: "dp-cni", ...(prevResult === undefined ? {} : { prevResult }) };
}

const ENV: CniEnv = {
  command: "ADD",
  containerId: "c1",
  netns: "/run/netns/c1",
  ifname: "eth0",
  args: [],
  path: [],
  vars: {},
};

describe("isChained", () => {
  test("a prevResult with a container interface is chained; none, or only host interfaces, is not", () => {
    expect(isChained(conf(BRIDGE_RESULT))).toBe(true);
    expect(isChained(conf())).toBe(false);
    expect(isChained(conf({ cniVersion: "1.0.0", interfaces: [{ name: "cni0" }], ips: [] }))).toBe(false);
    expect(isChained(conf({ cniVersion: "1.0.0", ips: [{ address: "10.0.0.1/24" }] }))).toBe(false); // an IPAM-only result
    expect(isChained(conf({ cniVersion: "1.0.0", interfaces: [{ name: "eth0", sandbox: "" }] }))).toBe(false);
    expect(isChained({ ...conf(), prevResult: { interfaces: "eth0" } } as unknown as NetConf)).toBe(false);
  });
});

describe("chainedAdd", () => {
  test("prevResult without CNI_IFNAME in the container is code 7 naming prevResult.interfaces", async () => {
    const err = await chainedAdd(conf(BRIDGE_RESULT), { ...ENV, ifname: "net1" }, client).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "CniError", code: 7, field: "prevResult.interfaces" });
    expect((err as Error).message).toBe(
      'Cannot chain after the previous plugin: its prevResult has no interface "net1" in the container',
    );
  });

  test("no IPv4 address for the interface is code 7 naming prevResult.ips", async () => {
    const v6only: CniResult = { ...BRIDGE_RESULT, ips: [{ address: "fd00::5/64", interface: 2 }] };
    const otherItf: CniResult = { ...BRIDGE_RESULT, ips: [{ address: "10.22.0.5/16", interface: 1 }] };
    for (const prev of [v6only, otherItf]) {
      const err = await chainedAdd(conf(prev), ENV, client).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 7, field: "prevResult.ips" });
    }
  });

  test("no CNI_NETNS is code 4", async () => {
    const err = await chainedAdd(conf(BRIDGE_RESULT), { ...ENV, netns: undefined }, client).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 4, field: "CNI_NETNS" });
  });

  test("an agent that does not answer is code 100, for ADD and DEL", async () => {
    const add = await chainedAdd(conf(BRIDGE_RESULT), ENV, client).catch((e: unknown) => e);
    expect(add).toMatchObject({ name: "CniError", code: 100 });
    expect((add as Error).message).toMatch(/^Cannot add container "c1" as a chained plugin: /);
    const del = await chainedDel(conf(), { ...ENV, command: "DEL" }, client).catch((e: unknown) => e);
    expect(del).toMatchObject({ name: "CniError", code: 100 });
  });
});
