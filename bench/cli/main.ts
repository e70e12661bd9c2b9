// bench/cli: the dp command's wall time from a fresh process, from the
// built install (bin/dp.mjs → dist/cli.js; run `npm run build` first):
//
//   status    `dp status` against a running agent (`dp agent`, the real
//             binary, on a node in a private namespace, socket and bpffs)
//   ct list   `dp bpf ct list` of a conntrack map holding 10k entries,
//             against `bpftool map dump pinned` of the same map, in
//             alternating rounds; also `dp` from the pins (no agent) and
//             with --json, for the record
//
// Last line: `cli status_ms=X ct_list_ratio=Y` (targets: status < 300 ms,
// ratio ≤ 2; ratio = dp / bpftool medians). Options: --rounds N (default
// 7), --entries N (default 10000). Needs root and bpftool; creates a
// namespace dpbcli-<pid>, /sys/fs/bpf/dpbcli-<pid> and a temporary
// directory, and removes them at the end.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createNetns, deleteNetns, openPinnedMap } from "@dp/core";
import { type BenchAgent, DP_BIN, startBenchAgent } from "../include/agent.ts";
import { median, option } from "../include/measure.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const DIST = join(ROOT, "packages", "agent", "dist", "cli.js");
const KEY_SIZE = 40;
const VALUE_SIZE = 64;

/** Runs a command to completion; returns its wall time (ms) and output. */
function timed(cmd: string, args: readonly string[]): { ms: number; out: string; code: number } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 1 << 28 });
  const ms = performance.now() - t;
  if (r.error !== undefined) throw r.error;
  return { ms, out: r.stdout, code: r.status ?? -1 };
}

function dp(args: readonly string[]): { ms: number; out: string; code: number } {
  return timed(process.execPath, [DP_BIN, ...args]);
}

/** 10k TCP entries that stay alive for an hour (the agent's GC keeps them). */
function fillConntrack(path: string, count: number): void {
  const keys = new Uint8Array(count * KEY_SIZE);
  const values = new Uint8Array(count * VALUE_SIZE);
  const vv = new DataView(values.buffer);
  const alive = process.hrtime.bigint() + 3600n * 1_000_000_000n;
  for (let i = 0; i < count; i++) {
    const k = i * KEY_SIZE;
    keys.set([0xff, 0xff, 10, 200, (i >> 8) & 0xff, i & 0xff], k + 10);
    keys.set([0xff, 0xff, 10, 201, 0, 1], k + 26);
    const sport = 30000 + (i % 30000);
    keys.set([sport >> 8, sport & 0xff, 0, 80, 6, 4, i % 2, 0], k + 32);
    const v = i * VALUE_SIZE;
    vv.setBigUint64(v, alive, true);
    vv.setBigUint64(v + 8, 1n, true);
    vv.setBigUint64(v + 16, 10n, true);
    vv.setBigUint64(v + 24, 1500n, true);
    vv.setUint32(v + 48, 256 + (i % 1000), true);
    vv.setUint8(v + 56, 2);
    vv.setUint8(v + 57, 1);
  }
  using map = openPinnedMap(path);
  map.updateBatch(keys, values);
}

export async function main(args: readonly string[]): Promise<void> {
  if (!existsSync(DIST)) throw new Error("bench/cli measures the built install: run `npm run build` first");
  const rounds = option(args, "--rounds", 7);
  const entries = option(args, "--entries", 10_000);
  const tag = `dpbcli-${process.pid}`;
  createNetns(tag).close();
  let agent: BenchAgent;
  try {
    agent = await startBenchAgent(tag, tag);
  } catch (err) {
    deleteNetns(tag);
    throw err;
  }
  const { bpfRoot, dir, socket } = agent;
  const stateDir = `${bpfRoot}/dp`;
  try {
    fillConntrack(`${stateDir}/dp_ct_tcp`, entries);

    // Warm the page cache for node, the dist files and bpftool alike.
    dp(["--socket", socket, "status"]);
    timed("bpftool", ["map", "dump", "pinned", `${stateDir}/dp_ct_tcp`]);

    const status: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = dp(["--socket", socket, "status"]);
      if (r.code !== 0 || !/^Host Routing:/m.test(r.out)) throw new Error(`dp status failed:\n${r.out}`);
      status.push(r.ms);
    }

    const ctAgent: number[] = [];
    const ctPins: number[] = [];
    const ctJson: number[] = [];
    const bpftool: number[] = [];
    let bpftoolFormat = "";
    const noAgent = join(dir, "no-agent.sock");
    for (let i = 0; i < rounds; i++) {
      const a = dp(["--socket", socket, "bpf", "ct", "list"]);
      const lines = a.out.split("\n").filter((l) => l.startsWith("TCP ")).length;
      if (a.code !== 0 || lines !== entries) throw new Error(`dp bpf ct list printed ${lines} entries, not ${entries}`);
      ctAgent.push(a.ms);
      const b = timed("bpftool", ["map", "dump", "pinned", `${stateDir}/dp_ct_tcp`]);
      if (b.code !== 0) throw new Error("bpftool map dump failed");
      bpftoolFormat = b.out.includes('"key": {') ? "formatted through the map's BTF" : "hex bytes";
      bpftool.push(b.ms);
      const p = dp(["--socket", noAgent, "--bpf-root", bpfRoot, "bpf", "ct", "list"]);
      if (p.code !== 0) throw new Error("dp bpf ct list from the pins failed");
      ctPins.push(p.ms);
      ctJson.push(dp(["--socket", socket, "bpf", "ct", "list", "--json"]).ms);
    }

    const statusMs = median(status);
    const ratio = median(ctAgent) / median(bpftool);
    console.log(
      `cli: node ${process.version}, kernel ${release()}, ${cpus().length} CPUs, ${rounds} rounds, ${entries} conntrack entries`,
    );
    console.log(
      `  dp status (agent)            ${statusMs.toFixed(1)} ms median  (min ${Math.min(...status).toFixed(1)})`,
    );
    console.log(`  dp bpf ct list (agent)       ${median(ctAgent).toFixed(1)} ms median`);
    console.log(`  dp bpf ct list (pins)        ${median(ctPins).toFixed(1)} ms median`);
    console.log(`  dp bpf ct list --json        ${median(ctJson).toFixed(1)} ms median`);
    console.log(`  bpftool map dump pinned      ${median(bpftool).toFixed(1)} ms median (${bpftoolFormat})`);
    console.log(`  pins / bpftool               ${(median(ctPins) / median(bpftool)).toFixed(2)}`);
    console.log(`cli status_ms=${statusMs.toFixed(1)} ct_list_ratio=${ratio.toFixed(2)}`);
  } catch (err) {
    if (agent.log() !== "") console.error(agent.log());
    throw err;
  } finally {
    await agent.stop();
    deleteNetns(tag);
  }
}
