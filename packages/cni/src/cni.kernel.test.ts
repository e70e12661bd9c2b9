// dp-cni driven exactly as container runtimes drive it: bin/dp-cni.cjs
// exec'd with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
// CNI_ARGS, CNI_PATH and the network config on stdin, against `dp agent`
// running over a node in a test namespace. Results are checked against
// the interfaces, addresses and routes really in the namespaces.
import { execFile } from "node:child_process";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { type CniCall, CniTestbed, execPlugin, type PluginRun, STANDARD_PLUGINS } from "./_test_cni.ts";

beforeEach((t) => requireRoot(t));

let bed: CniTestbed | undefined;

function testbed(): CniTestbed {
  bed = new CniTestbed();
  return bed;
}

afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

function run(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: "utf8", timeout: 20_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout });
    });
  });
}

function ok(r: PluginRun): Record<string, unknown> {
  if (r.code !== 0) throw new Error(`dp-cni failed (${r.code}): ${r.stdout}${r.stderr}`);
  return r.json ?? {};
}

interface IpAddr {
  ifname: string;
  address: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

describe("dp-cni without an agent", () => {
  test("VERSION lists the supported versions; STATUS fails with code 50", async () => {
    const b = testbed();
    const version = await b.cni({ command: "VERSION" }, { cniVersion: "1.0.0" });
    expect(version.code).toBe(0);
    expect(version.json).toEqual({ cniVersion: "1.1.0", supportedVersions: ["0.4.0", "1.0.0", "1.1.0"] });
    const status = await b.cni({ command: "STATUS" });
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ cniVersion: "1.1.0", code: 50, msg: expect.stringMatching(/ENOENT/) });
    // ADD without an agent: code 100, naming the socket.
    const add = await b.add("c-noagent");
    expect(add.code).toBe(1);
    expect(add.json).toMatchObject({ code: 100, details: `socket: ${b.socketPath}` });
  });

  test("a malformed config or environment is an error JSON naming the field, with a non-zero exit", async () => {
    const b = testbed();
    const env: CniCall = { command: "ADD", containerId: "c-bad", netns: "/run/netns/none", ifname: "eth0" };
    const cases: [unknown, Partial<CniCall>, number, RegExp][] = [
      [b.netconf({ labels: 5 }), {}, 7, /"labels" must be a list of labels/],
      [b.netconf({ labels: ["k8s:app=web", 3] }), {}, 7, /"labels\[1\]" must be a label/],
      [b.netconf({ socketPath: "" }), {}, 7, /"socketPath" must be a non-empty string/],
      [b.netconf({ ipam: { ranges: [] } }), {}, 7, /"ipam.type" must be a non-empty string/],
      [b.netconf({ name: undefined }), {}, 7, /"name" must be a non-empty string, got nothing/],
      [b.netconf({ cniVersion: "0.3.1" }), {}, 1, /"cniVersion" "0.3.1" is not supported/],
      ["{not json", {}, 6, /not JSON/],
      [b.netconf(), { netns: undefined }, 4, /CNI_NETNS is not set/],
      [b.netconf(), { command: "FROB" }, 4, /CNI_COMMAND "FROB" is not one of/],
    ];
    for (const [config, override, code, msg] of cases) {
      const r = await b.cni({ ...env, ...override }, config);
      expect(r.code, JSON.stringify(config)).toBe(1);
      expect(r.json, JSON.stringify(config)).toMatchObject({ code, msg: expect.stringMatching(msg) });
    }
  });
});

describe("dp-cni with the agent", () => {
  test("ADD answers the interfaces, addresses and routes the container really has; CHECK, DEL, DEL twice", async () => {
    const b = testbed();
    await b.startAgent();
    const add = await b.add(
      "c-web",
      b.netconf({ labels: ["k8s:app=web"], dns: { nameservers: ["10.96.0.10"] } }),
      "IgnoreUnknown=1;K8S_POD_NAME=web-0;K8S_POD_NAMESPACE=shop",
    );
    const result = ok(add) as {
      cniVersion: string;
      interfaces: { name: string; mac: string; sandbox?: string }[];
      ips: { address: string; gateway: string; interface: number }[];
      routes: { dst: string; gw: string }[];
      dns: unknown;
    };
    const netns = `/run/netns/${b.ns("c-web").name}`;
    expect(result.cniVersion).toBe("1.1.0");
    expect(result.dns).toEqual({ nameservers: ["10.96.0.10"] });
    const [host, pod] = result.interfaces;
    expect(pod).toMatchObject({ name: "eth0", sandbox: netns });
    expect(host?.sandbox).toBeUndefined();
    // The container's interface, address and routes, as the kernel has them.
    const addrs = JSON.parse(b.ns("c-web").exec("ip", ["-j", "addr", "show", "dev", "eth0"])) as IpAddr[];
    const v4 = addrs[0]?.addr_info.find((a) => a.family === "inet");
    expect(result.ips).toEqual([{ address: `${v4?.local}/${v4?.prefixlen}`, gateway: "10.201.0.1", interface: 1 }]);
    expect(addrs[0]?.address).toBe(pod?.mac);
    const routes = JSON.parse(b.ns("c-web").exec("ip", ["-j", "route", "show", "default"])) as {
      gateway: string;
      dev: string;
    }[];
    expect(routes).toEqual([expect.objectContaining({ gateway: "10.201.0.1", dev: "eth0" })]);
    expect(result.routes).toEqual([{ dst: "0.0.0.0/0", gw: routes[0]?.gateway }]);
    // The host side in the node's namespace.
    const link = JSON.parse(b.node.exec("ip", ["-j", "link", "show", "dev", host?.name ?? "?"])) as {
      address: string;
    }[];
    expect(link[0]?.address).toBe(host?.mac);
    // The agent's endpoint: the container id and the labels from the config and CNI_ARGS.
    const [ep] = await b.client().endpoints({ containerId: "c-web" });
    expect(ep?.labels).toEqual(
      expect.arrayContaining([
        "cni:network=dpnet",
        "k8s:app=web",
        "k8s:io.kubernetes.pod.name=web-0",
        "k8s:io.kubernetes.pod.namespace=shop",
      ]),
    );
    expect(`${ep?.ipv4}/32`).toBe(result.ips[0]?.address);

    const call = { containerId: "c-web", netns };
    expect(ok(await b.cni({ command: "CHECK", ...call }, b.netconf({ prevResult: result })))).toEqual({});
    // CHECK against a result that is not what the container has.
    const wrong = { ...result, ips: [{ ...result.ips[0], address: "10.201.99.99/32" }] };
    const bad = await b.cni({ command: "CHECK", ...call }, b.netconf({ prevResult: wrong }));
    expect(bad.json).toMatchObject({ code: 102, msg: expect.stringMatching(/prevResult has 10\.201\.99\.99/) });
    const noPrev = await b.cni({ command: "CHECK", ...call });
    expect(noPrev.json).toMatchObject({ code: 7, details: "field: prevResult" });
    expect(ok(await b.cni({ command: "STATUS" }))).toEqual({});

    const del = await b.cni({ command: "DEL", ...call }, b.netconf({ prevResult: result }));
    expect(del).toMatchObject({ code: 0, stdout: "" });
    expect(await b.client().endpoints()).toEqual([]);
    expect(b.node.exec("ip", ["-o", "link", "show"])).not.toContain(`${host?.name}@`);
    expect(b.ns("c-web").exec("ip", ["-o", "link", "show"])).not.toContain("eth0");
    // DEL again (and without CNI_NETNS, as after the runtime removed the namespace) still succeeds.
    expect((await b.cni({ command: "DEL", containerId: "c-web" })).code).toBe(0);
    // CHECK of a container the agent does not have.
    const gone = await b.cni({ command: "CHECK", ...call }, b.netconf({ prevResult: result }));
    expect(gone.json).toMatchObject({ code: 3 });
  });

  test("two ADDed containers reach each other; a 0.4.0 config gets a 0.4.0 result; loopback's result is passed on", async () => {
    const b = testbed();
    await b.startAgent();
    // c-one as in a conflist [loopback, dp-cni]: the real loopback plugin's result is dp-cni's prevResult.
    const netnsOne = b.container("c-one");
    const lo = ok(
      await execPlugin(
        `${STANDARD_PLUGINS}/loopback`,
        { command: "ADD", containerId: "c-one", netns: netnsOne },
        { cniVersion: "1.0.0", name: "dpnet", type: "loopback" },
      ),
    );
    const withLo = b.netconf({ cniVersion: "1.0.0", prevResult: lo });
    const one = ok(await b.cni({ command: "ADD", containerId: "c-one", netns: netnsOne }, withLo)) as {
      interfaces: { name: string }[];
      ips: { address: string; interface: number }[];
    };
    expect(one.interfaces.map((i) => i.name)).toEqual(["lo", expect.stringMatching(/^lxc/), "eth0"]);
    expect(one.ips.map((ip) => [ip.address.split("/")[0], ip.interface])).toEqual([
      ["127.0.0.1", 0],
      ["::1", 0],
      [expect.stringMatching(/^10\.201\./), 2],
    ]);
    // CHECK with the merged result: loopback's addresses are not the endpoint's business.
    const check = await b.cni(
      { command: "CHECK", containerId: "c-one", netns: netnsOne },
      b.netconf({ cniVersion: "1.0.0", prevResult: one }),
    );
    expect(check.code).toBe(0);
    const two = ok(await b.add("c-two", b.netconf({ cniVersion: "0.4.0" }))) as {
      cniVersion: string;
      ips: { address: string; version: string }[];
    };
    expect(two.cniVersion).toBe("0.4.0");
    expect(two.ips[0]?.version).toBe("4");
    const ipOne = one.ips[2]?.address.split("/")[0] ?? "";
    const ipTwo = two.ips[0]?.address.split("/")[0] ?? "";
    const ping = await run("ip", ["netns", "exec", b.ns("c-one").name, "ping", "-c", "2", "-W", "2", ipTwo]);
    expect(ping.stdout).toMatch(/2 received/);
    const back = await run("ip", ["netns", "exec", b.ns("c-two").name, "ping", "-c", "1", "-W", "2", ipOne]);
    expect(back.code).toBe(0);
  });

  test("20 concurrent ADDs get 20 distinct addresses; 20 concurrent DELs remove them all", async () => {
    const b = testbed();
    await b.startAgent();
    const ids = Array.from({ length: 20 }, (_, i) => `c-many-${i}`);
    const adds = await Promise.all(ids.map((id) => b.add(id)));
    const addresses = adds.map((r) => (ok(r) as { ips: { address: string }[] }).ips[0]?.address);
    expect(new Set(addresses).size).toBe(20);
    ids.forEach((id, i) =>
      expect(b.ns(id).exec("ip", ["-4", "-o", "addr", "show", "dev", "eth0"])).toContain(addresses[i]),
    );
    const dels = await Promise.all(ids.map((id) => b.cni({ command: "DEL", containerId: id })));
    expect(dels.map((r) => r.code)).toEqual(ids.map(() => 0));
    expect(await b.client().endpoints()).toEqual([]);
  });

  test("DEL after an agent restart, and after the agent lost the endpoint, succeeds; GC removes stale containers", async () => {
    const b = testbed();
    await b.startAgent();
    const kept = ok(await b.add("c-kept")) as { interfaces: { name: string }[] };
    ok(await b.add("c-lost"));
    ok(await b.add("c-stale"));
    // A crash: the next agent adopts the endpoints and their container ids.
    await b.stopAgent("SIGKILL");
    await b.startAgent();
    expect((await b.client().endpoints()).map((e) => e.containerId).sort()).toEqual(["c-kept", "c-lost", "c-stale"]);
    expect(
      (await b.cni({ command: "DEL", containerId: "c-kept", netns: `/run/netns/${b.ns("c-kept").name}` })).code,
    ).toBe(0);
    expect(b.node.exec("ip", ["-o", "link", "show"])).not.toContain(`${kept.interfaces[0]?.name}@`);
    // Lost: removed behind the plugin's back.
    const [lost] = await b.client().endpoints({ containerId: "c-lost" });
    await b.client().deleteEndpoint(lost?.id ?? 0);
    expect((await b.cni({ command: "DEL", containerId: "c-lost" })).code).toBe(0);
    // GC: only c-new is still valid on dpnet; c-other is on another network, which GC of dpnet leaves alone.
    ok(await b.add("c-new"));
    ok(await b.add("c-other", b.netconf({ name: "othernet" })));
    const gc = await b.cni(
      { command: "GC" },
      b.netconf({ "cni.dev/valid-attachments": [{ containerID: "c-new", ifname: "eth0" }] }),
    );
    expect(gc.code).toBe(0);
    expect((await b.client().endpoints()).map((e) => e.containerId).sort()).toEqual(["c-new", "c-other"]);
  });
});
