// Every example runs as CI runs it: `npm run example -- <name>` (here the
// same command line, node with the "@dp/source" condition and tsx on
// examples/run.ts), as a child process. Each test checks what the example
// printed, that it exited 0, and that the namespaces it made are gone. The
// generated bindings the examples import must be what dp-gen writes today.
import { execFile, execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runExample(name: string): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ["--conditions=@dp/source", "--import", "tsx", "examples/run.ts", name],
      { cwd: ROOT, encoding: "utf8", timeout: 90_000 },
    );
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { status: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Runs an example, expects success, and checks that the namespaces its last line names are gone. */
async function runOk(name: string): Promise<string> {
  const run = await runExample(name);
  expect(run.status, `${name} failed:\n${run.stdout}\n${run.stderr}`).toBe(0);
  const removed = /^removed (.*)$/m.exec(run.stdout)?.[1] ?? "";
  const names = removed.match(/dp-ex-[a-z]+(?:-[a-z]+)?-\d+/g) ?? [];
  expect(names.length, `${name} names the namespaces it removed`).toBeGreaterThan(0);
  const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const ns of names) expect(left).not.toContain(ns);
  return run.stdout;
}

/** Lines in this order (other lines may come between them). */
function expectInOrder(stdout: string, lines: readonly (string | RegExp)[]): void {
  const all = stdout.split("\n");
  let at = 0;
  for (const line of lines) {
    const found = all.findIndex((l, i) => i >= at && (typeof line === "string" ? l === line : line.test(l)));
    expect(found, `${String(line)} after line ${at} of:\n${stdout}`).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
}

describe("examples", () => {
  describe("as root", () => {
    beforeEach((t) => requireRoot(t));

    test("xdp_counter counts the pings of each source address", async () => {
      const out = await runOk("xdp_counter");
      expectInOrder(out, [
        /^attached count_sources to eth0 in dp-ex-xdp-b-\d+ \((drv|skb) mode\)$/,
        "packets per source address:",
        /^ {2}10\.200\.0\.1 +3$/,
        /^ {2}10\.200\.0\.11 +2$/,
      ]);
    }, 120_000);

    test("tc_policy drops one port, sends another to a third, and shows the same with the packet kit", async () => {
      const out = await runOk("tc_policy");
      expectInOrder(out, [
        "without policy entries:",
        "  udp 10.201.0.2:7000 -> answered by 7000",
        "  udp 10.201.0.2:7001 -> answered by 7001",
        "with 7001 dropped and 7002 sent to 7000:",
        "  udp 10.201.0.2:7000 -> answered by 7000",
        "  udp 10.201.0.2:7001 -> no answer",
        "  udp 10.201.0.2:7002 -> answered by 7000",
        "policy entries:",
      ]);
      expect(out).toContain("  10.201.0.2:7001/udp drop, 1 packet(s)\n");
      expect(out).toContain("  10.201.0.2:7002/udp redirectPort to 7000, 1 packet(s)\n");
      expectInOrder(out, [
        "test run, port 7002: TC_ACT_OK, rewritten to port 7000, checksums valid",
        "test run, port 7001: TC_ACT_SHOT",
      ]);
    }, 120_000);

    test("ringbuf_events reads one event per ICMP packet and stops when ping exits", async () => {
      const out = await runOk("ringbuf_events");
      const events = out.split("\n").filter((l) => l.startsWith("  127.0.0.1 -> 127.0.0.1 icmp"));
      expect(events.filter((l) => l.includes("echo request, 98 bytes, ttl 64"))).toHaveLength(3);
      expect(events.filter((l) => l.includes("echo reply, 98 bytes, ttl 64"))).toHaveLength(3);
      expect(out).toContain("read 6 events, 0 lost\n");
    }, 120_000);

    test("routing_watch prints the link, address and route changes it makes, in order", async () => {
      const out = await runOk("routing_watch");
      expectInOrder(out, [
        /^\+ link br0/,
        /^\+ address 10\.203\.0\.1\/24 /,
        "+ route 10.203.0.0/24 table main",
        "+ route 10.204.0.0/16 via 10.203.0.254 table main",
        "- route 10.204.0.0/16 via 10.203.0.254 table main",
        /^- address 10\.203\.0\.1\/24 /,
        /^- link br0/,
        "watch ended",
      ]);
    }, 120_000);

    test("sockmap_redirect passes the echo through the sockhash", async () => {
      const out = await runOk("sockmap_redirect");
      expect(out).toContain('sent "hello through the sockhash", echoed "hello through the sockhash"\n');
      expect(out).toContain("sockets added to sock_hash: 2\n");
      // The request and the echo, at least: one message per sendmsg().
      expect(out).toMatch(/^messages redirected: \d+ \(52 bytes\)$/m);
    }, 120_000);

    test("eni_fake_ec2 allocates pod addresses from the fake EC2 and routes them in a namespace", async () => {
      const out = await runOk("eni_fake_ec2");
      const ips = [...out.matchAll(/^allocated (\S+) on eth\d+ /gm)].map((m) => m[1] ?? "");
      expect(ips).toHaveLength(3);
      expectInOrder(out, [
        ...ips.map((ip) => `  + rule 20: from all to ${ip} lookup main`),
        `pod addresses the kernel's rules hold: ${ips.join(", ")}`,
        `released ${ips[2]} (default/db-1):`,
        `  - rule 20: from all to ${ips[2]} lookup main`,
        `pod addresses the kernel's rules hold: ${ips.slice(0, 2).join(", ")}`,
      ]);
    }, 120_000);
  });

  test("npm run example without a known name lists the examples and exits 2", async () => {
    const run = await runExample("nope");
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      'npm run example -- <name>: no example "nope"; the examples are eni_fake_ec2, ringbuf_events, routing_watch, sockmap_redirect, tc_policy, xdp_counter',
    );
  }, 60_000);

  // The header of each generated file names the command that wrote it; run it with --check.
  const generated = readdirSync(new URL(".", import.meta.url), { recursive: true, encoding: "utf8" }).filter((f) =>
    f.endsWith(".gen.ts"),
  );
  test.each(generated)(
    "examples/%s is what dp-gen generates from the example's object",
    (file) => {
      const header = readFileSync(new URL(file, import.meta.url), "utf8").split("\n")[1] ?? "";
      const command = /^\/\/ Regenerate with: dp-gen (.*)$/.exec(header)?.[1];
      expect(command, header).toBeDefined();
      const args = (command ?? "").split(" ");
      const run = promisify(execFile)("npx", ["--no-install", "dp-gen", ...args, "--check"], {
        cwd: ROOT,
        encoding: "utf8",
      });
      return expect(run).resolves.toMatchObject({ stderr: "" });
    },
    60_000,
  );
});
