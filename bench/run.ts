// Benchmark runner: `npm run bench -- <name> [args...]` imports
// bench/<name>/main.ts and runs its exported main(args).
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** What a benchmark module exports. */
interface Benchmark {
  main(args: readonly string[]): void | Promise<void>;
}

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** The benchmarks: directories under bench/ holding a main.ts. */
function listBenchmarks(): string[] {
  return readdirSync(BENCH_DIR, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(BENCH_DIR, entry.name, "main.ts")))
    .map((entry) => entry.name)
    .sort();
}

function isBenchmark(mod: unknown): mod is Benchmark {
  return typeof mod === "object" && mod !== null && typeof (mod as { main?: unknown }).main === "function";
}

function usage(problem: string | undefined): void {
  if (problem !== undefined) console.error(problem);
  console.error("usage: npm run bench -- <name> [args...]\n\nbenchmarks:");
  for (const name of listBenchmarks()) console.error(`  ${name}`);
}

async function run(argv: readonly string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    usage(undefined);
    return 1;
  }
  if (!listBenchmarks().includes(name)) {
    usage(`unknown benchmark "${name}"`);
    return 1;
  }
  const mod: unknown = await import(pathToFileURL(join(BENCH_DIR, name, "main.ts")).href);
  if (!isBenchmark(mod)) throw new TypeError(`bench/${name}/main.ts does not export a main() function`);
  await mod.main(args);
  return 0;
}

process.exitCode = await run(process.argv.slice(2));
