// The plugin's pure parts: the network config and environment parsers,
// labels, result versions, and runCni's answers that need no agent
// (VERSION, malformed input, an agent that is not there).
import { describe, expect, test } from "vitest";
import { endpointResult, resultForVersion } from "./_result.ts";
import { cniLabels } from "./labels.ts";
import { runCni } from "./run_cni.ts";
import { CniError } from "./spec/cni_error.ts";
import { parseCniEnv } from "./spec/parse_env.ts";
import { parseNetConf } from "./spec/parse_netconf.ts";

const BASE = { cniVersion: "1.1.0", name: "dpnet", type: "dp-cni" };
const ADD = { CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/c1", CNI_IFNAME: "eth0" };

function fieldOf(fn: () => unknown): [number, string | undefined] {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return [err.code, err.field];
    throw err;
  }
  throw new Error("did not throw");
}

describe("parseNetConf()", () => {
  test("keeps every key as it came", () => {
    const conf = parseNetConf(JSON.stringify({ ...BASE, ipam: { type: "host-local", dataDir: "/x" }, extra: [1] }));
    expect(conf).toEqual({ ...BASE, ipam: { type: "host-local", dataDir: "/x" }, extra: [1] });
  });

  test("names the field at fault, with the spec's codes", () => {
    const cases: [unknown, number, string | undefined][] = [
      [{ ...BASE, labels: { app: 1 } }, 7, "labels.app"],
      [{ ...BASE, args: { cni: { labels: [""] } } }, 7, "args.cni.labels[0]"],
      [{ ...BASE, runtimeConfig: { labels: "x" } }, 7, "runtimeConfig.labels"],
      [{ ...BASE, dns: [] }, 7, "dns"],
      [{ ...BASE, prevResult: { ips: [{ address: "10.0.0.1" }] } }, 7, "prevResult.ips[0].address"],
      [{ ...BASE, prevResult: { interfaces: [{}] } }, 7, "prevResult.interfaces[0].name"],
      [{ ...BASE, "cni.dev/valid-attachments": [{ containerID: 1 }] }, 7, "cni.dev/valid-attachments[0]"],
      [{ ...BASE, type: 3 }, 7, "type"],
      [{ ...BASE, cniVersion: "2.0.0" }, 1, "cniVersion"],
      [[BASE], 6, undefined],
    ];
    for (const [conf, code, field] of cases)
      expect(
        fieldOf(() => parseNetConf(JSON.stringify(conf))),
        JSON.stringify(conf),
      ).toEqual([code, field]);
    expect(fieldOf(() => parseNetConf(""))).toEqual([6, undefined]);
  });
});

describe("parseCniEnv()", () => {
  test("checks what each command needs", () => {
    expect(fieldOf(() => parseCniEnv({ ...ADD, CNI_CONTAINERID: "" }))).toEqual([4, "CNI_CONTAINERID"]);
    expect(fieldOf(() => parseCniEnv({ ...ADD, CNI_IFNAME: undefined }))).toEqual([4, "CNI_IFNAME"]);
    expect(fieldOf(() => parseCniEnv({ ...ADD, CNI_ARGS: "A=1;broken" }))).toEqual([4, "CNI_ARGS"]);
    expect(fieldOf(() => parseCniEnv({}))).toEqual([4, "CNI_COMMAND"]);
    expect(parseCniEnv({ ...ADD, CNI_COMMAND: "DEL", CNI_NETNS: "" }).netns).toBeUndefined();
    expect(parseCniEnv({ CNI_COMMAND: "GC" })).toMatchObject({ containerId: "", ifname: "", args: [], path: [] });
  });
});

describe("cniLabels()", () => {
  test("the network label, the config's, the runtime's and the pod's, without duplicates", () => {
    const conf = parseNetConf(
      JSON.stringify({
        ...BASE,
        labels: { "k8s:app": "web", "k8s:tier": "" },
        args: { cni: { labels: ["k8s:app=web", "team=a"] } },
        runtimeConfig: { labels: ["env=prod"] },
      }),
    );
    const env = parseCniEnv({ ...ADD, CNI_ARGS: "K8S_POD_NAME=web-0;K8S_POD_UID=u;IgnoreUnknown=1" });
    expect(cniLabels(conf, env)).toEqual([
      "cni:network=dpnet",
      "k8s:app=web",
      "k8s:tier",
      "team=a",
      "env=prod",
      "k8s:io.kubernetes.pod.name=web-0",
    ]);
    // A network name that cannot be a label value gives no network label.
    expect(cniLabels({ ...conf, name: "a".repeat(64), labels: [] }, env)[0]).toBe("k8s:app=web");
  });
});

describe("results", () => {
  const ep = {
    id: 3,
    identity: 256,
    labels: ["k8s:app=web"],
    netns: "/run/netns/c1",
    ifname: "eth0",
    hostIfname: "lxc3",
    hostIfindex: 9,
    ipv4: "10.200.0.3",
    ipv6: "fd10::3",
    mac: "02:00:00:00:00:03",
    hostMac: "02:00:00:00:01:03",
    enforcement: { ingress: false, egress: false },
    policyMapFull: false,
    containerId: "c1",
    router: { ipv4: "10.200.0.1", ipv6: "fd10::1" },
  };

  test("an endpoint's result, and the same in 0.4.0", () => {
    const result = endpointResult(ep, parseNetConf(JSON.stringify(BASE)), parseCniEnv(ADD));
    expect(result).toEqual({
      cniVersion: "1.1.0",
      interfaces: [
        { name: "lxc3", mac: "02:00:00:00:01:03" },
        { name: "eth0", mac: "02:00:00:00:00:03", sandbox: "/run/netns/c1" },
      ],
      ips: [
        { address: "10.200.0.3/32", gateway: "10.200.0.1", interface: 1 },
        { address: "fd10::3/128", gateway: "fd10::1", interface: 1 },
      ],
      routes: [
        { dst: "0.0.0.0/0", gw: "10.200.0.1" },
        { dst: "::/0", gw: "fd10::1" },
      ],
      dns: {},
    });
    const old = resultForVersion(result, "0.4.0");
    expect(old.ips?.map((ip) => ip.version)).toEqual(["4", "6"]);
    expect(resultForVersion(old, "1.0.0").ips?.[0]).toEqual(result.ips?.[0]);
  });
});

describe("runCni()", () => {
  test("VERSION needs no config; errors are JSON with the config's version and exit status 1", async () => {
    expect(await runCni({ env: { CNI_COMMAND: "VERSION" }, stdin: "" })).toEqual({
      stdout: '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n',
      exitCode: 0,
    });
    const bad = await runCni({ env: ADD, stdin: JSON.stringify({ ...BASE, cniVersion: "1.0.0", labels: 1 }) });
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: "1.0.0", code: 7, details: "field: labels" });
    const none = await runCni({ env: ADD, stdin: JSON.stringify({ ...BASE, socketPath: "/nonexistent/dp.sock" }) });
    expect(JSON.parse(none.stdout)).toMatchObject({
      code: 100,
      msg: expect.stringMatching(/Cannot add container "c1"/),
    });
  });
});
