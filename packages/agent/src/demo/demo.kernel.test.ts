// `dp demo` end to end on the real kernel, in both host routing modes:
// the matrix has no difference, figures are printed, and nothing is left
// behind (namespaces, pins, directories, socket, agent process). Also a
// differing scenario (exit code 1), Ctrl-C midway (the `dp demo` command
// as a child process gets SIGINT once the agent runs: exit 130 and nothing
// left), and --keep followed by the teardown.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import { beforeEach, describe, expect, test } from "vitest";
import { requireRoot } from "@dp/core/testing";
import { ApiClient } from "../api/client.ts";
import { registerScenario } from "../connectivity/registry.ts";
import { dpBinPath } from "../lab/_agent_bin.ts";
import { destroyLabRecord, findOrphanLabs, LAB_RUN_DIR } from "../lab/lab.ts";
import { DEMO_KEEP_SOCKET, DEMO_STATE_FILE, runDemo, teardownDemo } from "./demo.ts";

beforeEach((t) => requireRoot(t));

function capture(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d: Buffer) => (text += d.toString()));
  return { out, text: () => text };
}

/** What of a lab is still there: namespaces, pins, its directory, its agent process. */
function leftovers(name: string, agentPid: number | undefined): string[] {
  const left: string[] = [];
  const netns = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
  left.push(...netns.filter((n) => n.startsWith(name)).map((n) => `netns ${n}`));
  if (existsSync(`/sys/fs/bpf/${name}`)) left.push(`pins /sys/fs/bpf/${name}`);
  if (existsSync(`${LAB_RUN_DIR}/${name}`)) left.push(`dir ${LAB_RUN_DIR}/${name}`);
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(name)) left.push(`process ${pid}`);
    } catch {
      // Gone meanwhile.
    }
  }
  if (agentPid !== undefined && existsSync(`/proc/${agentPid}`)) {
    const stat = readFileSync(`/proc/${agentPid}/stat`, "utf8");
    if (!/\) Z /.test(stat)) left.push(`agent ${agentPid}`);
  }
  return left;
}

function labOf(text: string): { name: string; agentPid: number | undefined } {
  const name = /creating namespaces (dpdemo-\d+-[0-9a-f]+)-node/.exec(text)?.[1];
  if (name === undefined) throw new Error(`no lab name in the output:\n${text}`);
  const pid = /agent started \(pid (\d+)\)/.exec(text)?.[1];
  return { name, agentPid: pid === undefined ? undefined : Number(pid) };
}

describe.each(["bpf", "legacy"] as const)("dp demo with %s host routing", (mode) => {
  test("every scenario as expected, figures printed, nothing left", { timeout: 180_000 }, async () => {
    const { out, text } = capture();
    const code = await runDemo({ hostRouting: mode, out, perfSeconds: 1, handleSignals: false });
    const output = text();
    expect(code, output).toBe(0);
    const label = mode === "bpf" ? "BPF" : "Legacy";
    expect(output).toMatch(new RegExp(`agent started \\(pid \\d+\\), host routing ${label}`));
    expect(output).toMatch(new RegExp(`✅ (\\d+)/\\1 scenarios as expected \\(host routing ${label}\\)`));
    expect(output).not.toMatch(/✗/);
    expect(output).toMatch(/policy-default-deny/);
    expect(output).toMatch(/pod-to-pod +client -> echo-same-node +TCP [\d.]+ [GM]bit\/s +UDP latency [\d.]+ µs avg/);
    expect(output).toMatch(/pod-to-world +client -> world \S+ +TCP [\d.]+ [GM]bit\/s +UDP latency [\d.]+ µs avg/);
    const lab = labOf(output);
    expect(leftovers(lab.name, lab.agentPid)).toEqual([]);
  });
});

test("a scenario that differs: exit code 1, the lab is still torn down", { timeout: 120_000 }, async () => {
  registerScenario({
    name: "test-demo-differs",
    description: "echo admits nothing, yet an allow is expected",
    rules: () => [{ endpointSelector: { matchLabels: { kind: "echo" } }, ingress: [{}] }],
    actions: [{ name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" }],
  });
  const { out, text } = capture();
  const code = await runDemo({ out, tests: /^test-demo-differs$/, perfSeconds: 0, handleSignals: false });
  expect(code, text()).toBe(1);
  expect(text()).toMatch(/❌ 1\/1 scenarios differ/);
  const lab = labOf(text());
  expect(leftovers(lab.name, lab.agentPid)).toEqual([]);
});

test.each([
  ["the agent has started", /agent started \(pid/],
  ["the pods are being deployed", /pod client: endpoint/],
  ["the connectivity test runs", /\[2\/\d+\] client-egress/],
])("Ctrl-C when %s (SIGINT to `dp demo`): exit 130, nothing left", { timeout: 120_000 }, async (_when, midway) => {
  const child = spawn(process.execPath, [dpBinPath(), "demo", "--host-routing", "legacy"], {
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, as a terminal's foreground job: Ctrl-C signals the group.
    detached: true,
  });
  let output = "";
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = once(child, "exit") as Promise<[number | null, string | null]>;
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
      if (midway.test(output)) resolve();
    });
    void exited.then(() => reject(new Error(`dp demo exited early:\n${output}`)));
  });
  process.kill(-(child.pid ?? 0), "SIGINT");
  const [code] = await exited;
  expect(code, output).toBe(130);
  expect(output).toMatch(/SIGINT: stopping, then tearing the lab down|tearing down lab/);
  const lab = labOf(output);
  expect(lab.agentPid).toBeGreaterThan(0);
  expect(leftovers(lab.name, lab.agentPid)).toEqual([]);
});

test("--keep leaves the lab running for `dp status`; the teardown removes it", { timeout: 120_000 }, async (t) => {
  if (existsSync(DEMO_KEEP_SOCKET) || existsSync(DEMO_STATE_FILE)) t.skip(`${DEMO_KEEP_SOCKET} is in use`);
  const { out, text } = capture();
  const code = await runDemo({ out, keep: true, tests: /^no-policies$/, perfSeconds: 0, handleSignals: false });
  let lab: { name: string; agentPid: number | undefined } | undefined;
  try {
    expect(code, text()).toBe(0);
    lab = labOf(text());
    expect(existsSync(DEMO_STATE_FILE)).toBe(true);
    const client = new ApiClient({ socketPath: DEMO_KEEP_SOCKET });
    expect((await client.status()).pid).toBeGreaterThan(0);
    const endpoints = await client.endpoints();
    expect(endpoints.map((e) => e.labels.find((l) => l.startsWith("k8s:name="))).sort()).toEqual([
      "k8s:name=client",
      "k8s:name=client2",
      "k8s:name=echo-same-node",
    ]);
    expect((await client.policy()).rules.map((r) => r.name)).toEqual(["demo-echo"]);
    expect(leftovers(lab.name, undefined).filter((l) => l.startsWith("netns")).length).toBe(5);
  } finally {
    const { out: tOut, text: tText } = capture();
    expect(await teardownDemo({ out: tOut }), tText()).toBe(0);
  }
  expect(existsSync(DEMO_STATE_FILE)).toBe(false);
  expect(existsSync(DEMO_KEEP_SOCKET)).toBe(false);
  expect(lab).toBeDefined();
  if (lab !== undefined) expect(leftovers(lab.name, lab.agentPid)).toEqual([]);
});

test(
  "a demo killed with SIGKILL leaves its lab; findOrphanLabs() finds it, destroyLabRecord() removes it",
  { timeout: 120_000 },
  async () => {
    const child = spawn(process.execPath, [dpBinPath(), "demo", "--host-routing", "bpf"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let output = "";
    const exited = once(child, "exit");
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        output += d.toString();
        if (/pod echo-same-node: endpoint/.test(output)) resolve();
      });
      void exited.then(() => reject(new Error(`dp demo exited early:\n${output}`)));
    });
    process.kill(-(child.pid ?? 0), "SIGKILL");
    await exited;
    const lab = labOf(output);
    // The agent runs in its own process group: it survived, with the namespaces and pins.
    expect(leftovers(lab.name, lab.agentPid).length).toBeGreaterThan(0);
    // Only this test's lab: `dp demo --teardown` removes every orphan, a lab someone else kept too.
    const orphans = findOrphanLabs().filter((o) => o.name === lab.name);
    try {
      expect(orphans.map((o) => [...o.namespaces].sort())).toEqual([
        ["client", "client2", "echo-same-node", "node", "out"].map((n) => `${lab.name}-${n}`),
      ]);
    } finally {
      for (const o of orphans) await destroyLabRecord(o);
    }
    expect(leftovers(lab.name, lab.agentPid)).toEqual([]);
  },
);
