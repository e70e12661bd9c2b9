// bench/conntrack: conntrack garbage collection of 1M entries (half of
// them expired) with @dp/datapath's gcConntrack (BPF_MAP_LOOKUP_BATCH
// chunks + BPF_MAP_DELETE_BATCH of the expired keys) against the classic C
// walk (GET_NEXT_KEY + LOOKUP_ELEM + DELETE_ELEM per key, baseline.c), on
// the same map, filled identically before each side, rounds alternating.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BpfMap, createMap, readCollectionSpec } from "@dp/core";
import { gcConntrack } from "@dp/datapath";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const BUILD_DIR = join(HERE, "..", ".build");
const OBJECT = join(ROOT, "bpf", "build", "datapath", "from_container.o");
const ENTRIES = 1_000_000;
const MAX_ENTRIES = 1 << 20; // the node's default dp_ct_tcp size
const ROUNDS = 5;
const FILL_CHUNK = 65_536;
const KEY_SIZE = 40;
const VALUE_SIZE = 64;
const TARGET_SPEEDUP = 2;

function build(name: string, source: string): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  const binary = join(BUILD_DIR, name);
  execFileSync(
    process.env["CC"] ?? "cc",
    ["-O2", "-Wall", "-Wextra", "-I", join(HERE, "..", "include"), "-o", binary, source],
    {
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  return binary;
}

/** The CT map as from_container.o declares it, at the node's size. */
function ctMap(name: string, maxEntries: number): BpfMap {
  const m = readCollectionSpec(OBJECT).maps.get(name);
  if (m === undefined) throw new Error(`conntrack: ${OBJECT} has no map ${name}`);
  if (m.spec.keySize !== KEY_SIZE || m.spec.valueSize !== VALUE_SIZE)
    throw new Error(`conntrack: ${name} is not ${KEY_SIZE} → ${VALUE_SIZE} bytes`);
  return createMap({ ...m.spec, maxEntries });
}

/**
 * 1M distinct IPv4 TCP tuples 10.x.y.z:port → 10.255.0.1:80 (egress scope)
 * with established entries; odd ones expired long ago, even ones an hour
 * after `now`.
 */
function entries(now: bigint): { keys: Uint8Array; values: Uint8Array } {
  const keys = new Uint8Array(ENTRIES * KEY_SIZE);
  const values = new Uint8Array(ENTRIES * VALUE_SIZE);
  const vv = new DataView(values.buffer);
  const alive = now + 3600n * 1_000_000_000n;
  for (let i = 0; i < ENTRIES; i++) {
    const k = i * KEY_SIZE;
    keys.set([0xff, 0xff, 10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff], k + 10);
    keys.set([0xff, 0xff, 10, 255, 0, 1], k + 26);
    keys.set([(40000 + (i % 20000)) >> 8, (40000 + (i % 20000)) & 0xff, 0, 80, 6, 4, 2, 0], k + 32);
    const v = i * VALUE_SIZE;
    vv.setBigUint64(v, i % 2 === 1 ? 1_000n : alive, true); // expires
    vv.setBigUint64(v + 8, 1n, true); // created
    vv.setBigUint64(v + 16, 10n, true); // tx_packets
    vv.setUint32(v + 48, 256 + (i % 1000), true); // src_identity
    vv.setUint8(v + 56, 2); // established
    vv.setUint8(v + 57, 1); // seen a packet without SYN
  }
  return { keys, values };
}

function fill(map: BpfMap, data: { keys: Uint8Array; values: Uint8Array }): void {
  for (let at = 0; at < ENTRIES; at += FILL_CHUNK) {
    const n = Math.min(FILL_CHUNK, ENTRIES - at);
    map.updateBatch(
      data.keys.subarray(at * KEY_SIZE, (at + n) * KEY_SIZE),
      data.values.subarray(at * VALUE_SIZE, (at + n) * VALUE_SIZE),
    );
  }
}

interface Pass {
  ms: number;
  removed: number;
  kept: number;
}

function check(side: string, pass: Pass): Pass {
  if (pass.removed !== ENTRIES / 2 || pass.kept !== ENTRIES / 2) {
    throw new Error(`conntrack: ${side} removed ${pass.removed} and kept ${pass.kept}, expected ${ENTRIES / 2} each`);
  }
  return pass;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  const baseline = build("conntrack-baseline", join(HERE, "baseline.c"));
  const pinDir = `/sys/fs/bpf/dp-bench-conntrack-${process.pid}`;
  const pin = `${pinDir}/ct`;
  const tcp = ctMap("dp_ct_tcp", MAX_ENTRIES);
  const any = ctMap("dp_ct_any", 1024); // empty: gcConntrack also scans it
  try {
    tcp.pin(pin);
    const now = process.hrtime.bigint();
    const data = entries(now);
    const dp: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      fill(tcp, data);
      globalThis.gc?.();
      const start = process.hrtime.bigint();
      const result = gcConntrack({ tcp, any }, { now });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      dp.push(check("gcConntrack", { ms, removed: result.tcp.removed, kept: result.tcp.kept }).ms);

      fill(tcp, data);
      const out = JSON.parse(
        execFileSync(baseline, [pin, String(now)], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }),
      ) as Pass;
      c.push(check("the C walk", out).ms);
    }
    const best = { dp: Math.min(...dp), c: Math.min(...c) };
    const speedup = best.c / best.dp;
    console.log(
      `conntrack: GC of ${ENTRIES.toLocaleString("en")} CT entries (half expired) in a ${MAX_ENTRIES}-entry dp_ct_tcp; best of ${ROUNDS} alternating rounds`,
    );
    console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
    console.log(
      `  gcConntrack (batch lookup + batch delete): best ${best.dp.toFixed(0)} ms, median ${median(dp).toFixed(0)} ms (${dp.map((x) => x.toFixed(0)).join(" ")})`,
    );
    console.log(
      `  C walk (next key + lookup + delete):       best ${best.c.toFixed(0)} ms, median ${median(c).toFixed(0)} ms (${c.map((x) => x.toFixed(0)).join(" ")})`,
    );
    console.log(
      `  speedup ${speedup.toFixed(2)} (target >= ${TARGET_SPEEDUP}: ${speedup >= TARGET_SPEEDUP ? "met" : "NOT met"})`,
    );
    console.log("");
    console.log(`conntrack gc_ms=${best.dp.toFixed(0)} c_walk_ms=${best.c.toFixed(0)} speedup=${speedup.toFixed(2)}`);
  } finally {
    any.close();
    tcp.close();
    rmSync(pinDir, { recursive: true, force: true });
  }
}
