// bench/sockmap: TCP between two local endpoints (127.0.0.1 in one network
// namespace), with and without @dp/sockmap, measured in alternating
// rounds in one run so that machine noise hits both alike:
//
//   accel   server and client in a cgroup accelerated by accelerate()
//   plain   server and client in a sibling cgroup without it (the normal
//           TCP/IP stack over lo)
//
// Measurements: sockperf TCP ping-pong latency, iperf3 throughput with 1
// stream and with 8 streams (-P 8). Ratios are accel / plain; last line:
//   sockmap lat_ratio=X tput_ratio=Y tput8_ratio=Z
// Options: --rounds N (default 3), --seconds S per measurement (default 2),
// --same-cpu (server and client both on CPU 0: no cross-CPU wake-ups, so
// latency shows the per-message path cost). By default server and client
// are pinned to CPUs 0 and 1 (taskset). Needs root,
// iperf3 and sockperf; it creates a namespace dpb-<pid>-sockmap and two
// cgroups, and removes them at the end.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, rmdirSync } from "node:fs";
import { cpus, release } from "node:os";
import { createNetns, deleteNetns } from "@dp/core";
import { findCgroup2Mount } from "@dp/hooks";
import { accelerate } from "@dp/sockmap";
import { iperf3Bps, median, option, sockperfLatencyUs, waitFor } from "../include/measure.ts";

const HOST = "127.0.0.1";
const SERVER_CPU = "0";
let clientCpu = cpus().length > 1 ? "1" : "0";

interface Side {
  readonly name: "accel" | "plain";
  readonly cgroup: string;
  readonly iperfPort: number;
  readonly sockperfPort: number;
}

/** The argv of a command run in `cgroup` and namespace `ns`, pinned to `cpu`. */
function inCgroup(cgroup: string, ns: string, cpu: string, argv: string[]): string[] {
  return [
    "sh",
    "-c",
    `echo $$ > "${cgroup}/cgroup.procs" && exec ip netns exec ${ns} taskset -c ${cpu} "$@"`,
    "sh",
    ...argv,
  ];
}

function run(cgroup: string, ns: string, argv: string[]): string {
  const [cmd, ...rest] = inCgroup(cgroup, ns, clientCpu, argv);
  return execFileSync(cmd as string, rest, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
}

function throughput(s: Side, ns: string, seconds: number, streams: number): number {
  return iperf3Bps(
    run(s.cgroup, ns, [
      "iperf3",
      "-c",
      HOST,
      "-p",
      String(s.iperfPort),
      "-t",
      String(seconds),
      "-P",
      String(streams),
      "-J",
    ]),
  );
}

function latency(s: Side, ns: string, seconds: number): number {
  const out = run(s.cgroup, ns, [
    "sockperf",
    "pp",
    "--tcp",
    "-i",
    HOST,
    "-p",
    String(s.sockperfPort),
    "-t",
    String(seconds),
  ]);
  return sockperfLatencyUs(out);
}

/** Removes a cgroup once the processes killed in it are gone. */
async function removeCgroup(path: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      rmdirSync(path);
      return;
    } catch (err) {
      if (i >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Runs the benchmark.
 *
 * @param args `--rounds N`, `--seconds S`.
 */
export async function main(args: readonly string[]): Promise<void> {
  const rounds = option(args, "--rounds", 3);
  const seconds = option(args, "--seconds", 2);
  if (args.includes("--same-cpu")) clientCpu = SERVER_CPU;
  const root = findCgroup2Mount();
  if (root === undefined) throw new Error("bench/sockmap needs a cgroup2 mount");
  const tag = `dpb-${process.pid}`;
  const ns = `${tag}-sockmap`;
  const sides: Side[] = [
    { name: "accel", cgroup: `${root}/${tag}-accel`, iperfPort: 5301, sockperfPort: 11311 },
    { name: "plain", cgroup: `${root}/${tag}-plain`, iperfPort: 5302, sockperfPort: 11312 },
  ];
  const procs: ChildProcess[] = [];
  console.log(
    `sockmap bench: ${cpus().length} CPUs, Linux ${release()}, ${rounds} rounds of ${seconds} s per measurement, server on CPU ${SERVER_CPU}, client on CPU ${clientCpu}`,
  );
  createNetns(ns).close();
  for (const s of sides) mkdirSync(s.cgroup);
  const acc = accelerate({ cgroup: sides[0]?.cgroup as string, local: ["127.0.0.0/8", "::1"] });
  try {
    execFileSync("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    for (const s of sides) {
      const [c1, ...a1] = inCgroup(s.cgroup, ns, SERVER_CPU, ["iperf3", "-s", "-p", String(s.iperfPort)]);
      procs.push(spawn(c1 as string, a1, { stdio: "ignore" }));
      const [c2, ...a2] = inCgroup(s.cgroup, ns, SERVER_CPU, [
        "sockperf",
        "sr",
        "--tcp",
        "-i",
        HOST,
        "-p",
        String(s.sockperfPort),
      ]);
      procs.push(spawn(c2 as string, a2, { stdio: "ignore" }));
    }
    for (const s of sides) await waitFor(() => latency(s, ns, 1), `sockperf in ${s.name}`);
    const results = new Map<string, number[]>();
    const add = (k: string, v: number): void => void results.set(k, [...(results.get(k) ?? []), v]);
    for (let r = 0; r < rounds; r++) {
      for (const s of sides) {
        const t1 = throughput(s, ns, seconds, 1);
        const t8 = throughput(s, ns, seconds, 8);
        const l = latency(s, ns, seconds);
        add(`${s.name}.t1`, t1);
        add(`${s.name}.t8`, t8);
        add(`${s.name}.lat`, l);
        console.log(
          `round ${r + 1} ${s.name}  1 stream ${(t1 / 1e9).toFixed(2)} Gbit/s  8 streams ${(t8 / 1e9).toFixed(2)} Gbit/s  ${l.toFixed(2)} us`,
        );
      }
    }
    const M = (k: string): number => median(results.get(k) ?? []);
    for (const s of sides) {
      console.log(
        `median ${s.name}  1 stream ${(M(`${s.name}.t1`) / 1e9).toFixed(2)} Gbit/s  8 streams ${(M(`${s.name}.t8`) / 1e9).toFixed(2)} Gbit/s  ${M(`${s.name}.lat`).toFixed(2)} us`,
      );
    }
    const st = acc.stats();
    console.log(
      `accel counters: redirected ${st.redirected} msgs / ${st.redirectedBytes} bytes, fallback ${st.fallbackBytes} bytes (noPeer ${st.fallback.noPeer}, draining ${st.fallback.draining}, backlog ${st.fallback.backlog}), inserted ${st.inserted}`,
    );
    const f = (x: number): string => x.toFixed(3);
    console.log(
      `sockmap lat_ratio=${f(M("accel.lat") / M("plain.lat"))} tput_ratio=${f(M("accel.t1") / M("plain.t1"))} tput8_ratio=${f(M("accel.t8") / M("plain.t8"))}`,
    );
  } finally {
    for (const p of procs) p.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    acc.close();
    deleteNetns(ns);
    for (const s of sides) await removeCgroup(s.cgroup);
  }
}
