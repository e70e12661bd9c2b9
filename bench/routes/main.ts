// bench/routes: dp's batched route inserts against `ip -batch`, each in a
// fresh network namespace, rounds alternating; then a dump of 100k routes.
//
//   insert  rt.routes.addMany(10k routes)   vs  ip -n NS -batch FILE (10k "route add" lines)
//   dump    rt.routes.list() of 100k routes
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { openRouting, type RouteSpec } from "@dp/routing";
import { netns, type TestNetns } from "@dp/core/testing";

const INSERT_ROUTES = 10_000;
const DUMP_ROUTES = 100_000;
const ROUNDS = 5;
const TABLE = 100;
const GATEWAY = "10.255.0.2";
const TARGET_SPEEDUP = 2;

/** The i-th benchmark prefix: 10.a.b.0/24 below 10.255.0.0/16. */
function prefix(i: number): string {
  return `${10 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}.0/24`;
}

/** A namespace with one veth end up and addressed, the routes' next hop on it. */
function prepare(label: string): TestNetns {
  const ns = netns({ label });
  ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  ns.exec("ip", ["link", "set", "d0", "up"]);
  ns.exec("ip", ["link", "set", "d1", "up"]);
  ns.exec("ip", ["addr", "add", "10.255.0.1/16", "dev", "d0"]);
  return ns;
}

function countRoutes(ns: TestNetns): number {
  return ns
    .exec("ip", ["route", "show", "table", String(TABLE)])
    .trim()
    .split("\n")
    .filter(Boolean).length;
}

function timeIpBatch(dir: string): number {
  const file = join(dir, "routes.batch");
  const lines: string[] = [];
  for (let i = 0; i < INSERT_ROUTES; i++) lines.push(`route add ${prefix(i)} via ${GATEWAY} dev d0 table ${TABLE}`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  using ns = prepare("ipb");
  const start = process.hrtime.bigint();
  execFileSync("ip", ["-n", ns.name, "-batch", file], { stdio: "inherit" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (countRoutes(ns) !== INSERT_ROUTES) throw new Error("routes: ip -batch did not insert every route");
  return ms;
}

function specs(n: number): RouteSpec[] {
  return Array.from({ length: n }, (_, i) => ({ dst: prefix(i), via: GATEWAY, dev: "d0", table: TABLE }));
}

function timeDp(): number {
  using ns = prepare("dp");
  using rt = openRouting({ netns: ns.ns });
  const routes = specs(INSERT_ROUTES);
  const start = process.hrtime.bigint();
  rt.routes.addMany(routes);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (countRoutes(ns) !== INSERT_ROUTES) throw new Error("routes: dp did not insert every route");
  return ms;
}

function timeDump(): { ms: number; count: number } {
  using ns = prepare("dump");
  using rt = openRouting({ netns: ns.ns });
  rt.routes.addMany(specs(DUMP_ROUTES));
  let best = Infinity;
  let count = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    const routes = rt.routes.list({ table: TABLE });
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e6);
    count = routes.length;
  }
  if (count !== DUMP_ROUTES) throw new Error(`routes: dump saw ${count} routes, expected ${DUMP_ROUTES}`);
  return { ms: best, count };
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "dp-bench-routes-"));
  try {
    // One untimed round of each first: dp's code is compiled by the JIT on
    // first use, and ip's binary and libraries come into the page cache.
    timeIpBatch(dir);
    timeDp();
    let ipBest = Infinity;
    let dpBest = Infinity;
    const rounds: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ip = timeIpBatch(dir);
      const dp = timeDp();
      rounds.push(`  round ${r + 1}: ip -batch ${ip.toFixed(1)} ms, dp ${dp.toFixed(1)} ms`);
      ipBest = Math.min(ipBest, ip);
      dpBest = Math.min(dpBest, dp);
    }
    const dump = timeDump();
    const speedup = Math.round((ipBest / dpBest) * 100) / 100;
    console.log("routes: 10k IPv4 routes (via a gateway, table 100) into a fresh namespace; dp addMany vs ip -batch");
    console.log(`  one warm-up round each, then ${ROUNDS} alternating rounds; best of each`);
    console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
    for (const line of rounds) console.log(line);
    console.log(
      `  insert best: ip -batch ${ipBest.toFixed(1)} ms (${((ipBest * 1e3) / INSERT_ROUTES).toFixed(1)} us/route),` +
        ` dp ${dpBest.toFixed(1)} ms (${((dpBest * 1e3) / INSERT_ROUTES).toFixed(1)} us/route)`,
    );
    console.log(
      `  insert speedup ${speedup.toFixed(2)}x (target >= ${TARGET_SPEEDUP}: ${speedup >= TARGET_SPEEDUP ? "met" : "NOT met"})`,
    );
    console.log(`  dump of ${dump.count.toLocaleString("en-US")} routes: ${dump.ms.toFixed(1)} ms (best of ${ROUNDS})`);
    console.log("");
    console.log(`routes insert_speedup=${speedup.toFixed(2)} dump_ms=${dump.ms.toFixed(1)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
