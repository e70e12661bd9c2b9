// bench/maps: @dp/maps typed maps against C doing raw bpf(2) calls on the
// same kernel maps, in the same run, rounds alternating.
//
//   get    policy.get(key) → decoded struct policy_entry  vs BPF_MAP_LOOKUP_ELEM (bench/maps/baseline.c)
//   set    policy.set(key, entry)                         vs BPF_MAP_UPDATE_ELEM
//   dump   [...counts.entries()] of 1M u32 → u64 entries   vs GET_NEXT_KEY + LOOKUP_ELEM per key (bench/map-ops/baseline.c)
//   mmap   MappedArray get + set over a BPF_F_MMAPABLE array, in ops/s
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { cpus, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMap, unpin } from "@dp/core";
import { array, ArrayMap, be16, HashMap, type Infer, struct, u32, u64, u8 } from "@dp/maps";

const HERE = dirname(fileURLToPath(import.meta.url));
const BUILD_DIR = join(HERE, "..", ".build");
const OPS_KEYS = 4096;
const OPS = 1_000_000;
const WARMUP = 100_000;
const ROUNDS = 5;
const DUMP_ENTRIES = 1_000_000;
const MMAP_ENTRIES = 1024;
const MMAP_OPS = 50_000_000;

const TARGET_RATIO = 1.3;
const TARGET_DUMP = 3;
const TARGET_MMAP_MOPS = 50;

/** bpf/testdata/typed_maps.c's policy key and value. */
const PolicyKey = struct({ identity: u32, dport: be16, proto: u8, pad: u8 }, { name: "struct policy_key", size: 8 });
const PolicyEntry = struct(
  { packets: u64, bytes: u64, action: u8, flags: array(u8, 3), proxyPort: be16 },
  { name: "struct policy_entry", size: 24 },
);
type PolicyKey = Infer<typeof PolicyKey>;
type PolicyEntry = Infer<typeof PolicyEntry>;

function build(name: string, source: string): string {
  mkdirSync(BUILD_DIR, { recursive: true });
  const binary = join(BUILD_DIR, name);
  execFileSync(
    process.env["CC"] ?? "cc",
    ["-O2", "-Wall", "-Wextra", "-I", join(HERE, "..", "include"), "-o", binary, source],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  return binary;
}

function runJson(binary: string, args: readonly string[]): Record<string, unknown> {
  return JSON.parse(execFileSync(binary, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })) as Record<
    string,
    unknown
  >;
}

function key(i: number): PolicyKey {
  return { identity: i, dport: 80, proto: 6, pad: 0 };
}

function entry(i: number): PolicyEntry {
  return { packets: BigInt(i), bytes: BigInt(2 * i), action: 1, flags: [1, 2, 3], proxyPort: 15001 };
}

function timeGets(policy: HashMap<PolicyKey, PolicyEntry>, keys: readonly PolicyKey[], ops: number): number {
  const mask = keys.length - 1;
  let sink = 0n;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) {
    const v = policy.get(keys[i & mask] as PolicyKey);
    if (v === undefined) throw new Error(`maps: key ${i & mask} is missing`);
    sink += v.packets;
  }
  const ns = Number(process.hrtime.bigint() - start) / ops;
  if (sink < 0n) throw new Error("unreachable");
  return ns;
}

function timeSets(
  policy: HashMap<PolicyKey, PolicyEntry>,
  keys: readonly PolicyKey[],
  values: readonly PolicyEntry[],
  ops: number,
): number {
  const mask = keys.length - 1;
  const start = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) policy.set(keys[i & mask] as PolicyKey, values[i & mask] as PolicyEntry);
  return Number(process.hrtime.bigint() - start) / ops;
}

interface Pair {
  dp: number;
  c: number;
}

function interleave(rounds: number, dp: () => number, c: () => number): Pair {
  const best = { dp: Infinity, c: Infinity };
  for (let r = 0; r < rounds; r++) {
    globalThis.gc?.();
    best.dp = Math.min(best.dp, dp());
    best.c = Math.min(best.c, c());
  }
  return best;
}

function benchOps(baseline: string, pin: string): { get: Pair; set: Pair } {
  using policy = HashMap.create(PolicyKey, PolicyEntry, { name: "bench_policy", maxEntries: OPS_KEYS });
  const keys = Array.from({ length: OPS_KEYS }, (_, i) => key(i));
  const values = Array.from({ length: OPS_KEYS }, (_, i) => entry(i));
  for (let i = 0; i < OPS_KEYS; i++) policy.set(keys[i] as PolicyKey, values[i] as PolicyEntry);
  policy.map.pin(pin);
  const id = policy.map.info().id;
  const c = (op: "lookup" | "update"): number => {
    const out = runJson(baseline, [op, pin, String(OPS_KEYS), String(OPS), String(WARMUP)]);
    if (out["mapId"] !== id) throw new Error(`maps: the C baseline opened map ${String(out["mapId"])}, not ${id}`);
    return out["nsPerOp"] as number;
  };
  timeGets(policy, keys, WARMUP);
  const get = interleave(
    ROUNDS,
    () => timeGets(policy, keys, OPS),
    () => c("lookup"),
  );
  timeSets(policy, keys, values, WARMUP);
  const set = interleave(
    ROUNDS,
    () => timeSets(policy, keys, values, OPS),
    () => c("update"),
  );
  unpin(pin);
  // The C updates wrote the same values: the map still holds what dp wrote.
  const check = policy.get(keys[7] as PolicyKey);
  if (check?.bytes !== 14n || check.proxyPort !== 15001)
    throw new Error(`maps: unexpected value after the runs: ${String(check?.bytes)}`);
  return { get, set };
}

function timeDump(counts: HashMap<number, bigint>): number {
  const start = process.hrtime.bigint();
  let n = 0;
  let keySum = 0;
  for (const [k, v] of counts.entries()) {
    n++;
    keySum += k;
    if (v !== BigInt(k) * 3n + 1n) throw new Error(`maps: value of key ${k} is ${v}`);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (n !== DUMP_ENTRIES || keySum !== (DUMP_ENTRIES * (DUMP_ENTRIES - 1)) / 2)
    throw new Error(`maps: dump saw ${n} entries`);
  return ms;
}

function benchDump(baseline: string, pin: string): Pair {
  using counts = HashMap.create(u32, u64, { name: "bench_dump", maxEntries: 1 << 20 });
  const chunk = 65_536;
  for (let start = 0; start < DUMP_ENTRIES; start += chunk) {
    const batch: [number, bigint][] = [];
    for (let i = start; i < Math.min(start + chunk, DUMP_ENTRIES); i++) batch.push([i, BigInt(i) * 3n + 1n]);
    counts.setMany(batch);
  }
  counts.map.pin(pin);
  timeDump(counts);
  const c = (): number => {
    const out = runJson(baseline, ["dump", pin, String(DUMP_ENTRIES), "0", "1"]);
    return Math.min(...(out["ms"] as number[]));
  };
  const best = interleave(ROUNDS, () => timeDump(counts), c);
  unpin(pin);
  return best;
}

function benchMmap(): number {
  using raw = createMap({
    name: "bench_mmap",
    type: "array",
    keySize: 4,
    valueSize: 4,
    maxEntries: MMAP_ENTRIES,
    flags: 1024,
  });
  using arr = new ArrayMap(raw, u32);
  using mem = arr.mmap();
  const mask = MMAP_ENTRIES - 1;
  const run = (ops: number): number => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ops; i += 2) {
      const at = (i >> 1) & mask;
      mem.set(at, (mem.get(at) + 1) >>> 0);
    }
    return Number(process.hrtime.bigint() - start);
  };
  run(1_000_000);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) best = Math.min(best, run(MMAP_OPS));
  // The counters went through shared memory: the syscall path sees them.
  const first = arr.get(0);
  if (first === undefined || first === 0) throw new Error("maps: mmap writes are not visible through bpf(2)");
  return MMAP_OPS / (best / 1e3); // ops per µs = millions per second
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  const structBaseline = build("maps-baseline", join(HERE, "baseline.c"));
  const dumpBaseline = build("map-ops-baseline", join(HERE, "..", "map-ops", "baseline.c"));
  const pinDir = `/sys/fs/bpf/dp-bench-maps-${process.pid}`;
  try {
    const { get, set } = benchOps(structBaseline, `${pinDir}/policy`);
    const dump = benchDump(dumpBaseline, `${pinDir}/dump`);
    const mops = benchMmap();
    const getRatio = get.dp / get.c;
    const setRatio = set.dp / set.c;
    const speedup = dump.c / dump.dp;
    const verdict = (ok: boolean): string => (ok ? "met" : "NOT met");
    console.log(
      "maps: @dp/maps typed maps vs raw bpf(2) from C on the same maps; best of " + ROUNDS + " alternating rounds",
    );
    console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
    console.log(
      `  get  struct policy_key -> struct policy_entry: dp ${get.dp.toFixed(0)} ns/op, C ${get.c.toFixed(0)} ns/op, ratio ${getRatio.toFixed(2)} (target <= ${TARGET_RATIO}: ${verdict(getRatio <= TARGET_RATIO)})`,
    );
    console.log(
      `  set  struct policy_key -> struct policy_entry: dp ${set.dp.toFixed(0)} ns/op, C ${set.c.toFixed(0)} ns/op, ratio ${setRatio.toFixed(2)} (target <= ${TARGET_RATIO}: ${verdict(setRatio <= TARGET_RATIO)})`,
    );
    console.log(
      `  dump 1M u32 -> u64 entries: dp entries() ${dump.dp.toFixed(0)} ms, C key walk ${dump.c.toFixed(0)} ms, speedup ${speedup.toFixed(2)} (target >= ${TARGET_DUMP}: ${verdict(speedup >= TARGET_DUMP)})`,
    );
    console.log(
      `  mmap u32 array get+set: ${mops.toFixed(0)} M ops/s (target >= ${TARGET_MMAP_MOPS}: ${verdict(mops >= TARGET_MMAP_MOPS)})`,
    );
    console.log("");
    console.log(
      `maps get_ratio=${getRatio.toFixed(2)} set_ratio=${setRatio.toFixed(2)} dump_speedup=${speedup.toFixed(2)} mmap_mops=${mops.toFixed(0)}`,
    );
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
  }
}
