// bench/xfrm: dp's batched xfrm policy inserts against `ip -batch`, each in
// a fresh network namespace, rounds alternating; then a dump of the 10k
// policies, dp against `ip xfrm policy list`.
//
//   insert  x.policies.addMany(10k policies)  vs  ip -n NS -batch FILE (10k "xfrm policy add" lines)
//   dump    x.policies.list() of 10k          vs  ip -n NS xfrm policy list
//
// Each policy is what Cilium installs per remote node: an outbound policy
// from the local pod CIDR to one remote host, with an ESP tunnel template.
//
// What each side's time includes:
//   ip   starting the process (fork, exec, dynamic linking), switching into
//        the namespace (-n), opening its netlink socket, reading and parsing
//        the batch file (insert) or formatting the text (dump), the requests
//        and the kernel's work;
//   dp   opening its netlink socket in the namespace (openXfrm: switching
//        into it and back), checking and encoding the specs (insert) or
//        decoding the replies (dump), the requests and the kernel's work.
//        Starting Node and loading dp are not included: dp is a library in
//        an already running process, where ip is a new process per command.
// Creating the namespaces and counting the result are outside both.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { openXfrm, type XfrmPolicySpec } from "@dp/ipsec";
import { netns, type TestNetns } from "@dp/core/testing";

const POLICIES = 10_000;
const ROUNDS = 5;
const TARGET_SPEEDUP = 2;

/** The i-th remote host: 10.a.b.c below 10.128.0.0/9. */
function remote(i: number): string {
  return `10.${128 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

function tunnelDst(i: number): string {
  return `192.168.${(i >> 8) & 0xff}.${i & 0xff}`;
}

function specs(): XfrmPolicySpec[] {
  return Array.from({ length: POLICIES }, (_, i) => ({
    selector: { src: "10.0.0.1", dst: remote(i) },
    dir: "out" as const,
    mark: { value: 0xe00, mask: 0xf00 },
    templates: [{ src: "192.168.255.1", dst: tunnelDst(i), proto: "esp" as const, reqid: 1, mode: "tunnel" as const }],
  }));
}

function batchLines(): string {
  const lines: string[] = [];
  for (let i = 0; i < POLICIES; i++) {
    lines.push(
      `xfrm policy add src 10.0.0.1 dst ${remote(i)} dir out mark 0xe00 mask 0xf00 ` +
        `tmpl src 192.168.255.1 dst ${tunnelDst(i)} proto esp reqid 1 mode tunnel`,
    );
  }
  return `${lines.join("\n")}\n`;
}

function countPolicies(ns: TestNetns): number {
  const m = /OUT (\d+)/.exec(ns.exec("ip", ["xfrm", "policy", "count"]));
  return Number(m?.[1] ?? -1);
}

function ms(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function timeIpBatch(file: string): number {
  using ns = netns({ label: "ipb" });
  const start = process.hrtime.bigint();
  execFileSync("ip", ["-n", ns.name, "-batch", file], { stdio: "inherit" });
  const took = ms(start);
  if (countPolicies(ns) !== POLICIES) throw new Error("xfrm: ip -batch did not insert every policy");
  return took;
}

/** Collects garbage left by earlier rounds (the runner passes --expose-gc), so a round times itself only. */
function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function timeDp(all: readonly XfrmPolicySpec[]): number {
  using ns = netns({ label: "dp" });
  collect();
  const start = process.hrtime.bigint();
  {
    using x = openXfrm({ netns: ns.ns });
    x.policies.addMany(all);
  }
  const took = ms(start);
  if (countPolicies(ns) !== POLICIES) throw new Error("xfrm: dp did not insert every policy");
  return took;
}

function timeDump(all: readonly XfrmPolicySpec[]): { dp: number; ip: number } {
  using ns = netns({ label: "dump" });
  {
    using x = openXfrm({ netns: ns.ns });
    x.policies.addMany(all);
  }
  let dp = Infinity;
  let ip = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    let start = process.hrtime.bigint();
    const out = execFileSync("ip", ["-n", ns.name, "xfrm", "policy", "list"], { maxBuffer: 256 << 20 });
    ip = Math.min(ip, ms(start));
    const ipCount = out
      .toString("utf8")
      .split("\n")
      .filter((l) => l.startsWith("src ")).length;
    if (ipCount !== POLICIES) throw new Error(`xfrm: ip listed ${ipCount} policies, expected ${POLICIES}`);
    collect();
    start = process.hrtime.bigint();
    let listed;
    {
      using x = openXfrm({ netns: ns.ns });
      listed = x.policies.list();
    }
    dp = Math.min(dp, ms(start));
    if (listed.length !== POLICIES) throw new Error(`xfrm: dp listed ${listed.length} policies, expected ${POLICIES}`);
  }
  return { dp, ip };
}

/** Runs the benchmark and prints the summary line last. */
export function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "dp-bench-xfrm-"));
  try {
    const file = join(dir, "policies.batch");
    writeFileSync(file, batchLines());
    const all = specs();
    // One untimed round of each first: dp's code is compiled by the JIT on
    // first use, and ip's binary and libraries come into the page cache.
    timeIpBatch(file);
    timeDp(all);
    let ipBest = Infinity;
    let dpBest = Infinity;
    const rounds: string[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ip = timeIpBatch(file);
      const dp = timeDp(all);
      rounds.push(`  round ${r + 1}: ip -batch ${ip.toFixed(1)} ms, dp ${dp.toFixed(1)} ms`);
      ipBest = Math.min(ipBest, ip);
      dpBest = Math.min(dpBest, dp);
    }
    const dump = timeDump(all);
    const speedup = Math.round((ipBest / dpBest) * 100) / 100;
    const dumpSpeedup = Math.round((dump.ip / dump.dp) * 100) / 100;
    console.log(
      "xfrm: 10k outbound policies (host selector, mark, ESP tunnel template) into a fresh namespace; dp addMany vs ip -batch",
    );
    console.log(`  one warm-up round each, then ${ROUNDS} alternating rounds; best of each`);
    console.log(
      "  ip's times include its process start, namespace switch and socket; dp's include opening its socket in the namespace (not Node's start)",
    );
    console.log(`  kernel ${release()}, node ${process.version}, ${cpus()[0]?.model ?? "unknown cpu"}`);
    for (const line of rounds) console.log(line);
    console.log(
      `  insert best: ip -batch ${ipBest.toFixed(1)} ms (${((ipBest * 1e3) / POLICIES).toFixed(1)} us/policy),` +
        ` dp ${dpBest.toFixed(1)} ms (${((dpBest * 1e3) / POLICIES).toFixed(1)} us/policy)`,
    );
    console.log(
      `  insert speedup ${speedup.toFixed(2)}x (target >= ${TARGET_SPEEDUP}: ${speedup >= TARGET_SPEEDUP ? "met" : "NOT met"})`,
    );
    console.log(
      `  dump of ${POLICIES.toLocaleString("en-US")} policies (best of ${ROUNDS}): ip xfrm policy list ${dump.ip.toFixed(1)} ms, dp ${dump.dp.toFixed(1)} ms`,
    );
    console.log("");
    console.log(
      `xfrm insert_speedup=${speedup.toFixed(2)} dump_speedup=${dumpSpeedup.toFixed(2)} insert_ip_ms=${ipBest.toFixed(1)} insert_dp_ms=${dpBest.toFixed(1)} dump_ip_ms=${dump.ip.toFixed(1)} dump_dp_ms=${dump.dp.toFixed(1)}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
