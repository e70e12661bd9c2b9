// bench/load: loading BPF objects with dp's loader against `bpftool prog
// loadall` (libbpf) in the same run, rounds alternating.
//
//   dp       readCollectionSpec(file) + loadCollection(spec) + close, in this process
//   bpftool  bpftool prog loadall FILE DIR (a process per object: exec, libbpf
//            open/load, pin) + removing the pins
//
// Both create the same maps and programs in the kernel, and both spend most
// of the time in the verifier. dp also loads each object once in a fresh
// Node process first ("cold": parsing vmlinux BTF for CO-RE included, Node's
// own start-up excluded), printed for reference.
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { cpus, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadCollection, readCollectionSpec } from "@dp/core";
import { bpffsDir } from "@dp/core/testing";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OBJECT_DIR = join(ROOT, "bpf/build/testdata");
/** Objects bpftool 7.1 loads too (sections.o uses tcx/* names it does not know). */
const OBJECTS = ["xdp_count", "globals", "subprog", "tailcall", "map_in_map", "core", "libbpf_style", "kconfig"];
const ROUNDS = 7;
const TARGET_RATIO = 1.2;

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
    execFileSync("bpftool", ["prog", "loadall", join(OBJECT_DIR, `${name}.o`), pins], { stdio: ["ignore", "ignore", "pipe"] });
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
  const out = execFileSync(process.execPath, ["--conditions=@dp/source", "--import", "tsx", "--input-type=module", "-e", script], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return Number(out.trim().split("\n").at(-1));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  using pins = bpffsDir();
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
  const cold = timeDpCold();
  const dpMedian = median(dp);
  const toolMedian = median(tool);
  const ratio = Math.round((dpMedian / toolMedian) * 100) / 100;
  console.log(`load: ${OBJECTS.length} objects (${OBJECTS.join(", ")}); dp loadCollection vs bpftool prog loadall`);
  console.log(`  one warm-up round each, then ${ROUNDS} alternating rounds; medians`);
  console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
  for (const line of rounds) console.log(line);
  console.log(`  median: bpftool ${toolMedian.toFixed(1)} ms, dp ${dpMedian.toFixed(1)} ms (${(dpMedian / OBJECTS.length).toFixed(2)} ms/object)`);
  const coldRatio = Math.round((cold / toolMedian) * 100) / 100;
  console.log(`  dp cold (fresh process, first loads, vmlinux BTF parsed): ${cold.toFixed(1)} ms, ${coldRatio.toFixed(2)}x bpftool`);
  console.log(`  ratio dp/bpftool ${ratio.toFixed(2)} (target <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? "met" : "NOT met"})`);
  console.log("");
  console.log(`load ratio=${ratio.toFixed(2)} cold_ratio=${coldRatio.toFixed(2)}`);
}
