// bench/load: loading BPF objects with dp's loader against `bpftool prog
// loadall` (libbpf) in the same run, rounds alternating.
//
//   dp       readCollectionSpec(file) + loadCollection(spec) + close, in this process
//   bpftool  bpftool prog loadall FILE DIR (a process per object: exec, libbpf
//            open/load, pin) + removing the pins
//
// Both create the same maps and programs in the kernel, and both spend most
// of the time in the verifier.
//
// Cold: the first load of every object in a fresh process, the kernel's
// BTF not yet read (CO-RE, kconfig probes and attach targets need it):
//   dp       a fresh Node process loads every object once, timed inside it
//            (Node's own start-up excluded)
//   bpftool  a fresh round of bpftool processes (each one is cold: libbpf
//            reads the kernel's BTF in every process)
// COLD_ROUNDS fresh processes each, alternating; medians.
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCollection, readCollectionSpec } from "@dp/core";
import { bpffsDir } from "@dp/core/testing";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OBJECT_DIR = join(ROOT, "bpf/build/testdata");
/** Objects bpftool 7.1 loads too (sections.o uses tcx/* names it does not know; fentry/lsm need trampolines). */
const OBJECTS = [
  "xdp_count",
  "globals",
  "subprog",
  "tailcall",
  "map_in_map",
  "core",
  "libbpf_style",
  "kconfig",
  "libbpf_tracing",
  "libbpf_usdt",
  "libbpf_iter",
  "libbpf_perf",
  "libbpf_nolicense",
];
const ROUNDS = 7;
const COLD_ROUNDS = 3;
const TARGET_RATIO = 1.2;
const TARGET_COLD_RATIO = 1.5;

function timeDp(): number {
  const start = process.hrtime.bigint();
  for (const name of OBJECTS) {
    const spec = readCollectionSpec(join(OBJECT_DIR, `${name}.o`));
    using coll = loadCollection(spec);
    if (coll.programs.size === 0) throw new Error(`load: dp loaded no program from ${name}.o`);
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function timeBpftool(dir: string): number {
  const start = process.hrtime.bigint();
  for (const name of OBJECTS) {
    const pins = join(dir, name);
    execFileSync("bpftool", ["prog", "loadall", join(OBJECT_DIR, `${name}.o`), pins], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    if (readdirSync(pins).length === 0) throw new Error(`load: bpftool pinned no program from ${name}.o`);
    rmSync(pins, { recursive: true });
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** dp's first load of every object in a fresh process (timed inside it). */
function timeDpCold(): number {
  const script = `
    import { loadCollection, readCollectionSpec } from "@dp/core";
    const start = process.hrtime.bigint();
    for (const name of ${JSON.stringify(OBJECTS)}) {
      loadCollection(readCollectionSpec(${JSON.stringify(OBJECT_DIR)} + "/" + name + ".o")).close();
    }
    console.log(Number(process.hrtime.bigint() - start) / 1e6);
  `;
  const out = execFileSync(
    process.execPath,
    ["--conditions=@dp/source", "--import", "tsx", "--input-type=module", "-e", script],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  );
  return Number(out.trim().split("\n").at(-1));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  using pins = bpffsDir();
  // Cold first: nothing of dp's loader has run in any process yet.
  const coldDp: number[] = [];
  const coldTool: number[] = [];
  for (let r = 0; r < COLD_ROUNDS; r++) {
    coldDp.push(timeDpCold());
    coldTool.push(timeBpftool(pins.path));
  }
  // Warm-up: JIT for dp, page cache for bpftool and the objects.
  timeDp();
  timeBpftool(pins.path);
  const dp: number[] = [];
  const tool: number[] = [];
  const rounds: string[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const b = timeBpftool(pins.path);
    const d = timeDp();
    tool.push(b);
    dp.push(d);
    rounds.push(`  round ${r + 1}: bpftool ${b.toFixed(1)} ms, dp ${d.toFixed(1)} ms`);
  }
  const dpMedian = median(dp);
  const toolMedian = median(tool);
  const ratio = Math.round((dpMedian / toolMedian) * 100) / 100;
  const coldDpMedian = median(coldDp);
  const coldToolMedian = median(coldTool);
  const coldRatio = Math.round((coldDpMedian / coldToolMedian) * 100) / 100;
  console.log(`load: ${OBJECTS.length} objects (${OBJECTS.join(", ")}); dp loadCollection vs bpftool prog loadall`);
  console.log(`  one warm-up round each, then ${ROUNDS} alternating rounds; medians`);
  console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
  for (const line of rounds) console.log(line);
  console.log(
    `  median: bpftool ${toolMedian.toFixed(1)} ms, dp ${dpMedian.toFixed(1)} ms (${(dpMedian / OBJECTS.length).toFixed(2)} ms/object)`,
  );
  console.log(
    `  cold (fresh processes, kernel BTF not yet read; ${COLD_ROUNDS} alternating rounds, medians): ` +
      `bpftool ${coldToolMedian.toFixed(1)} ms [${coldTool.map((x) => x.toFixed(0)).join(", ")}], ` +
      `dp ${coldDpMedian.toFixed(1)} ms [${coldDp.map((x) => x.toFixed(0)).join(", ")}]`,
  );
  console.log(
    `  ratio dp/bpftool ${ratio.toFixed(2)} (target <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? "met" : "NOT met"})`,
  );
  console.log(
    `  cold ratio dp/bpftool ${coldRatio.toFixed(2)} (target <= ${TARGET_COLD_RATIO}: ${coldRatio <= TARGET_COLD_RATIO ? "met" : "NOT met"})`,
  );
  console.log("");
  console.log(`load ratio=${ratio.toFixed(2)} cold_ratio=${coldRatio.toFixed(2)}`);
}
