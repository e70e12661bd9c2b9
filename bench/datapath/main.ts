// bench/datapath: pod-to-pod throughput (iperf3) and TCP ping-pong latency
// (sockperf) on one node, four set-ups side by side in one run, measured in
// alternating rounds so that machine noise hits all of them alike:
//
//   bpf     a Node with eBPF host routing, a policy selecting both pods
//           (conntrack and policy lookups on every packet)
//   legacy  a Node with legacy host routing and the same policy
//   kernel  the same veths, addresses and routes, no BPF at all: the host
//           stack routes between the pods
//   veth    one veth pair straight between the two pods (the limit)
//
// Ratios are against `kernel`; last line:
//   datapath tput_ratio=X lat_ratio=Y legacy_tput_ratio=… legacy_lat_ratio=… veth_tput_ratio=… veth_lat_ratio=…
// Options: --rounds N (default 3), --seconds S per measurement (default 2),
// --same-cpu (client and server both on CPU 0: the wake-up of a task on
// another CPU, the same in every set-up and larger than any path's cost,
// drops out of the latency, so the ratios show the cost of the path).
// Server and client are pinned to CPUs 0 and 1 (taskset) so that every
// set-up gets the same placement; without it latency is bimodal.
// Needs root, iperf3 and sockperf; it creates namespaces named dpb-<pid>-*
// and removes them at the end.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { cpus, release } from "node:os";
import { createNetns, deleteNetns } from "@dp/core";
import { type Node, openNode } from "@dp/datapath";
import { iperf3Bps, median, option, sockperfLatencyUs, waitFor } from "../include/measure.ts";

const IPERF_PORT = 5201;
const SOCKPERF_PORT = 11111;
const SERVER = { ipv4: "10.210.1.1" };
const CLIENT = { ipv4: "10.210.1.2" };
const ROUTER = "10.210.0.1";
// Server and client pinned to different CPUs (when there are two): the same placement in every set-up.
const SERVER_CPU = "0";
// --same-cpu puts the client on the server's CPU.
let CLIENT_CPU = cpus().length > 1 ? "1" : "0";

type SetupName = "bpf" | "legacy" | "kernel" | "veth";

interface Setup {
  readonly name: SetupName;
  readonly server: string;
  readonly client: string;
  readonly cleanup: (() => Promise<void> | void)[];
}

function ipns(ns: string, args: string[]): string {
  return execFileSync("ip", ["netns", "exec", ns, ...args], { encoding: "utf8" });
}

function newNs(name: string, created: string[]): string {
  createNetns(name).close();
  created.push(name);
  ipns(name, ["ip", "link", "set", "lo", "up"]);
  return name;
}

/** A Node (bpf or legacy) with two pods and a policy that selects both. */
async function nodeSetup(name: "bpf" | "legacy", tag: string, created: string[]): Promise<Setup> {
  const nodeNs = newNs(`${tag}-${name}-node`, created);
  const server = newNs(`${tag}-${name}-srv`, created);
  const client = newNs(`${tag}-${name}-cli`, created);
  const stateDir = `/sys/fs/bpf/${tag}-${name}`;
  const node: Node = await openNode({
    stateDir,
    netns: nodeNs,
    hostRouting: name,
    router: { ipv4: ROUTER },
    ctGc: false,
  });
  await node.addEndpoint({ netns: server, ipv4: SERVER.ipv4, labels: ["k8s:app=server"] });
  await node.addEndpoint({ netns: client, ipv4: CLIENT.ipv4, labels: ["k8s:app=client"] });
  await node.setRules([
    {
      name: "server-in",
      endpointSelector: { matchLabels: { app: "server" } },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: "client" } }],
          toPorts: [
            {
              ports: [
                { port: String(IPERF_PORT), protocol: "TCP" },
                { port: String(SOCKPERF_PORT), protocol: "TCP" },
              ],
            },
          ],
        },
      ],
    },
    {
      name: "client-out",
      endpointSelector: { matchLabels: { app: "client" } },
      egress: [{ toEndpoints: [{ matchLabels: { app: "server" } }] }],
    },
  ]);
  return {
    name,
    server,
    client,
    cleanup: [
      async () => {
        await node.destroy();
        rmSync(stateDir, { recursive: true, force: true });
      },
    ],
  };
}

/** The same wiring as a Node's endpoints, with no program attached. */
function kernelSetup(tag: string, created: string[]): Setup {
  const nodeNs = newNs(`${tag}-kernel-node`, created);
  const server = newNs(`${tag}-kernel-srv`, created);
  const client = newNs(`${tag}-kernel-cli`, created);
  ipns(nodeNs, ["sysctl", "-qw", "net.ipv4.conf.all.forwarding=1"]);
  for (const [pod, ip, host] of [
    [server, SERVER.ipv4, "lxc1"],
    [client, CLIENT.ipv4, "lxc2"],
  ] as const) {
    ipns(nodeNs, ["ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pod]);
    ipns(nodeNs, ["ip", "link", "set", host, "up"]);
    ipns(nodeNs, ["ip", "addr", "add", `${ROUTER}/32`, "dev", host]);
    ipns(nodeNs, ["ip", "route", "add", `${ip}/32`, "dev", host]);
    ipns(pod, ["ip", "link", "set", "eth0", "up"]);
    ipns(pod, ["ip", "addr", "add", `${ip}/32`, "dev", "eth0"]);
    ipns(pod, ["ip", "route", "add", ROUTER, "dev", "eth0", "scope", "link"]);
    ipns(pod, ["ip", "route", "add", "default", "via", ROUTER, "dev", "eth0"]);
  }
  return { name: "kernel", server, client, cleanup: [] };
}

/** One veth pair straight between the pods. */
function vethSetup(tag: string, created: string[]): Setup {
  const server = newNs(`${tag}-veth-srv`, created);
  const client = newNs(`${tag}-veth-cli`, created);
  ipns(server, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", client]);
  ipns(server, ["ip", "addr", "add", `${SERVER.ipv4}/24`, "dev", "eth0"]);
  ipns(client, ["ip", "addr", "add", `${CLIENT.ipv4}/24`, "dev", "eth0"]);
  ipns(server, ["ip", "link", "set", "eth0", "up"]);
  ipns(client, ["ip", "link", "set", "eth0", "up"]);
  return { name: "veth", server, client, cleanup: [] };
}

function startServers(s: Setup, procs: ChildProcess[]): void {
  procs.push(
    spawn("ip", ["netns", "exec", s.server, "taskset", "-c", SERVER_CPU, "iperf3", "-s", "-p", String(IPERF_PORT)], {
      stdio: "ignore",
    }),
  );
  procs.push(
    spawn(
      "ip",
      [
        "netns",
        "exec",
        s.server,
        "taskset",
        "-c",
        SERVER_CPU,
        "sockperf",
        "sr",
        "--tcp",
        "-i",
        SERVER.ipv4,
        "-p",
        String(SOCKPERF_PORT),
      ],
      { stdio: "ignore" },
    ),
  );
}

function throughput(s: Setup, seconds: number): number {
  return iperf3Bps(
    ipns(s.client, [
      "taskset",
      "-c",
      CLIENT_CPU,
      "iperf3",
      "-c",
      SERVER.ipv4,
      "-p",
      String(IPERF_PORT),
      "-t",
      String(seconds),
      "-J",
    ]),
  );
}

function latency(s: Setup, seconds: number): number {
  const out = ipns(s.client, [
    "taskset",
    "-c",
    CLIENT_CPU,
    "sockperf",
    "pp",
    "--tcp",
    "-i",
    SERVER.ipv4,
    "-p",
    String(SOCKPERF_PORT),
    "-t",
    String(seconds),
  ]);
  return sockperfLatencyUs(out);
}

/**
 * Runs the benchmark.
 *
 * @param args `--rounds N`, `--seconds S`.
 */
export async function main(args: readonly string[]): Promise<void> {
  const rounds = option(args, "--rounds", 3);
  const seconds = option(args, "--seconds", 2);
  if (args.includes("--same-cpu")) CLIENT_CPU = SERVER_CPU;
  const tag = `dpb-${process.pid}`;
  const created: string[] = [];
  const procs: ChildProcess[] = [];
  const setups: Setup[] = [];
  mkdirSync("/sys/fs/bpf", { recursive: true });
  console.log(
    `datapath bench: ${cpus().length} CPUs, Linux ${release()}, ${rounds} rounds of ${seconds} s per measurement`,
  );
  try {
    setups.push(await nodeSetup("bpf", tag, created));
    setups.push(await nodeSetup("legacy", tag, created));
    setups.push(kernelSetup(tag, created));
    setups.push(vethSetup(tag, created));
    for (const s of setups) startServers(s, procs);
    for (const s of setups) await waitFor(() => latency(s, 1), `sockperf in ${s.name}`);
    const tput = new Map<SetupName, number[]>();
    const lat = new Map<SetupName, number[]>();
    for (let r = 0; r < rounds; r++) {
      for (const s of setups) {
        const t = throughput(s, seconds);
        const l = latency(s, seconds);
        tput.set(s.name, [...(tput.get(s.name) ?? []), t]);
        lat.set(s.name, [...(lat.get(s.name) ?? []), l]);
        console.log(`round ${r + 1} ${s.name.padEnd(6)} ${(t / 1e9).toFixed(2)} Gbit/s  ${l.toFixed(2)} us`);
      }
    }
    const T = (n: SetupName): number => median(tput.get(n) ?? []);
    const L = (n: SetupName): number => median(lat.get(n) ?? []);
    for (const n of ["bpf", "legacy", "kernel", "veth"] as const)
      console.log(`median ${n.padEnd(6)} ${(T(n) / 1e9).toFixed(2)} Gbit/s  ${L(n).toFixed(2)} us`);
    const f = (x: number): string => x.toFixed(3);
    console.log(
      `datapath tput_ratio=${f(T("bpf") / T("kernel"))} lat_ratio=${f(L("bpf") / L("kernel"))} legacy_tput_ratio=${f(T("legacy") / T("kernel"))} legacy_lat_ratio=${f(L("legacy") / L("kernel"))} veth_tput_ratio=${f(T("veth") / T("kernel"))} veth_lat_ratio=${f(L("veth") / L("kernel"))}`,
    );
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    for (const s of setups) for (const c of s.cleanup) await c();
    for (const n of created.reverse()) deleteNetns(n);
  }
}
