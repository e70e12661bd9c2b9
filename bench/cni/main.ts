// bench/cni: CNI ADD and DEL latency of dp-cni, exec'd as a runtime execs
// it, from the built install (bin/dp-cni.cjs → dist/dp-cni.cjs, talking to
// the real `dp agent`; run `npm run build` first), against the standard
// `bridge` plugin with `host-local` IPAM from containernetworking-plugins
// (/usr/lib/cni), in the same run:
//
//   sequential   N containers (default 100) added one after the other, dp
//                and bridge interleaved, then deleted the same way
//   concurrent   C containers (default 20) added at once, then deleted at
//                once, for each plugin in turn
//
// Every ADD's result is checked (exit 0, an address). Last line:
// `cni add_p50_ms=X add_ratio=Y` (dp's sequential ADD median, and dp /
// bridge medians). Targets: p50 < 100 ms, ratio ≤ 2. Options: --containers
// N, --concurrent C, --netlink (the agent attaches its programs with
// netlink tc filters instead of tcx links: `enable-tcx: false`). Needs
// root; creates a node namespace dpbcni-<pid> (the agent's node and the
// bridge's host side), container namespaces dpbcni-<pid>-*,
// /sys/fs/bpf/dpbcni-<pid> and a temporary directory, and removes them at
// the end.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createNetns, deleteNetns, type Netns, withNetns } from "@dp/core";
import { type BenchAgent, startBenchAgent } from "../include/agent.ts";
import { median, option } from "../include/measure.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const DP_DIST = join(ROOT, "packages", "agent", "dist", "cli.js");
const DP_CNI = join(ROOT, "packages", "cni", "bin", "dp-cni.cjs");
const DP_CNI_DIST = join(ROOT, "packages", "cni", "dist", "dp-cni.cjs");
const PLUGINS = "/usr/lib/cni";

interface Run {
  readonly ms: number;
  readonly code: number;
  readonly stdout: string;
}

/** Execs a plugin from inside the node namespace (the bridge plugin makes its bridge where it runs). */
function exec(node: Netns, bin: string, env: Record<string, string>, config: string): Promise<Run> {
  const t0 = performance.now();
  const child: ChildProcess = withNetns(node, () =>
    spawn(bin, [], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin?.end(config);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${bin} ${env.CNI_COMMAND} failed (${code}): ${stdout}${stderr}`));
      else resolve({ ms, code, stdout });
    });
  });
}

/** One plugin under test: its binary and network config. */
interface Plugin {
  readonly name: string;
  readonly bin: string;
  readonly config: string;
}

/** The first address of an ADD result. */
function addressOf(r: Run): string {
  const result = JSON.parse(r.stdout) as { ips?: { address?: unknown }[] };
  const address = result.ips?.[0]?.address;
  return typeof address === "string" ? address : "";
}

function call(node: Netns, plugin: Plugin, command: "ADD" | "DEL", containerId: string, netns: string): Promise<Run> {
  return exec(
    node,
    plugin.bin,
    { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: "eth0", CNI_PATH: PLUGINS },
    plugin.config,
  ).then((r) => {
    if (command === "ADD" && !/^[0-9.]+\/\d+$/.test(addressOf(r)))
      throw new Error(`${plugin.name} ADD answered no address: ${r.stdout}`);
    return r;
  });
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? 0;
}

function line(label: string, xs: readonly number[]): string {
  return `  ${label.padEnd(34)} p50 ${median(xs).toFixed(1).padStart(6)} ms  p90 ${pct(xs, 90).toFixed(1).padStart(6)} ms  max ${Math.max(
    ...xs,
  )
    .toFixed(1)
    .padStart(6)} ms`;
}

export async function main(args: readonly string[]): Promise<void> {
  if (!existsSync(DP_DIST) || !existsSync(DP_CNI_DIST))
    throw new Error("bench/cni measures the built install: run `npm run build` first");
  for (const p of ["bridge", "host-local"])
    if (!existsSync(join(PLUGINS, p)))
      throw new Error(`bench/cni needs ${PLUGINS}/${p}: apt-get install containernetworking-plugins`);
  const count = option(args, "--containers", 100);
  const concurrent = option(args, "--concurrent", 20);
  const netlink = args.includes("--netlink");
  const tag = `dpbcni-${process.pid}`;
  const node = createNetns(tag);
  let agent: BenchAgent;
  try {
    agent = await startBenchAgent(tag, tag, ["bpf-policy-map-max: 1024", ...(netlink ? ["enable-tcx: false"] : [])]);
  } catch (err) {
    node.close();
    deleteNetns(tag);
    throw err;
  }
  const { dir, socket } = agent;
  const dp: Plugin = {
    name: "dp-cni",
    bin: DP_CNI,
    config: JSON.stringify({
      cniVersion: "1.1.0",
      name: "dpbench",
      type: "dp-cni",
      socketPath: socket,
      labels: ["k8s:app=bench"],
    }),
  };
  const bridge: Plugin = {
    name: "bridge+host-local",
    bin: join(PLUGINS, "bridge"),
    config: JSON.stringify({
      cniVersion: "1.0.0",
      name: "brbench",
      type: "bridge",
      bridge: `br${process.pid % 100000}`,
      isGateway: true,
      ipMasq: false,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.202.0.0/16" }]], dataDir: join(dir, "host-local") },
    }),
  };
  const names = Array.from({ length: count }, (_, i) => i);
  const pods = new Map<string, string>();
  const pod = (plugin: Plugin, i: number): string => {
    const name = `${tag}-${plugin === dp ? "d" : "b"}${i}`;
    if (!pods.has(name)) {
      createNetns(name).close();
      pods.set(name, `/run/netns/${name}`);
    }
    return pods.get(name) ?? "";
  };
  try {
    // Warm-up: the page cache, the agent's first endpoint, the bridge itself.
    for (const plugin of [dp, bridge])
      for (let i = 0; i < 3; i++) {
        await call(node, plugin, "ADD", `warm-${i}`, pod(plugin, count + i));
        await call(node, plugin, "DEL", `warm-${i}`, pod(plugin, count + i));
      }

    const seq = {
      dp: { add: [] as number[], del: [] as number[] },
      bridge: { add: [] as number[], del: [] as number[] },
    };
    for (const i of names) {
      seq.dp.add.push((await call(node, dp, "ADD", `seq-${i}`, pod(dp, i))).ms);
      seq.bridge.add.push((await call(node, bridge, "ADD", `seq-${i}`, pod(bridge, i))).ms);
    }
    for (const i of names) {
      seq.dp.del.push((await call(node, dp, "DEL", `seq-${i}`, pod(dp, i))).ms);
      seq.bridge.del.push((await call(node, bridge, "DEL", `seq-${i}`, pod(bridge, i))).ms);
    }

    const conc = new Map<Plugin, { add: number[]; del: number[]; addWall: number; delWall: number }>();
    for (const plugin of [dp, bridge]) {
      const ids = names.slice(0, concurrent);
      let t0 = performance.now();
      const adds = await Promise.all(ids.map((i) => call(node, plugin, "ADD", `conc-${i}`, pod(plugin, i))));
      const addWall = performance.now() - t0;
      const addresses = new Set(adds.map(addressOf));
      if (addresses.size !== ids.length) throw new Error(`${plugin.name}: concurrent ADDs got duplicate addresses`);
      t0 = performance.now();
      const dels = await Promise.all(ids.map((i) => call(node, plugin, "DEL", `conc-${i}`, pod(plugin, i))));
      const delWall = performance.now() - t0;
      conc.set(plugin, { add: adds.map((r) => r.ms), del: dels.map((r) => r.ms), addWall, delWall });
    }

    const addP50 = median(seq.dp.add);
    const ratio = addP50 / median(seq.bridge.add);
    console.log(
      `cni: node ${process.version}, kernel ${release()}, ${cpus().length} CPUs, ${count} sequential, ${concurrent} concurrent containers, programs attached with ${netlink ? "netlink tc filters" : "tcx links (where the kernel has them)"}`,
    );
    console.log(`sequential (one container at a time, dp and bridge interleaved):`);
    console.log(line("dp-cni ADD", seq.dp.add));
    console.log(line("bridge+host-local ADD", seq.bridge.add));
    console.log(line("dp-cni DEL", seq.dp.del));
    console.log(line("bridge+host-local DEL", seq.bridge.del));
    console.log(`concurrent (${concurrent} at once):`);
    for (const plugin of [dp, bridge]) {
      const c = conc.get(plugin);
      if (c === undefined) continue;
      console.log(`${line(`${plugin.name} ADD`, c.add)}  all ${c.addWall.toFixed(0)} ms`);
      console.log(`${line(`${plugin.name} DEL`, c.del)}  all ${c.delWall.toFixed(0)} ms`);
    }
    console.log(
      `  ADD+DEL p50 ratio (sequential)     ${((addP50 + median(seq.dp.del)) / (median(seq.bridge.add) + median(seq.bridge.del))).toFixed(2)}`,
    );
    console.log(`cni add_p50_ms=${addP50.toFixed(1)} add_ratio=${ratio.toFixed(2)}`);
  } catch (err) {
    if (agent.log() !== "") console.error(agent.log());
    throw err;
  } finally {
    await agent.stop();
    for (const name of pods.keys()) deleteNetns(name);
    node.close();
    deleteNetns(tag);
  }
}
