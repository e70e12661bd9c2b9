// A process killed at *every* system call of an attach sequence, for each
// kind of attachment a ledger covers: after each kill, reconcile() in
// another process must leave exactly the attachments that were there before
// (made by tools or by other code), nothing of the killed process, and an
// empty ledger.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { afterAll, afterEach, beforeEach, describe, expect, test } from "vitest";
import { ATTACH_FLAGS, type BpfProgram, detachProgram, attachProgram, loadProgram } from "@dp/core";
import { asm } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { type TestCgroup, testCgroup } from "./_test_cgroup.ts";
import { listAttachments } from "./attachments.ts";
import { openLedger, reconcile } from "./ledger.ts";

beforeEach((t) => requireRoot(t));

const CHILD = new URL("./_test_ledger_kill_child.ts", import.meta.url).pathname;
const ROOT = new URL("../../../", import.meta.url).pathname;
const TC_OBJECT = new URL("../../../bpf/build/testdata/hooks_tc.o", import.meta.url).pathname;

const cleanups: (() => void)[] = [];
const cleanupsAfterAll: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});
afterAll(() => {
  for (const c of cleanupsAfterAll.splice(0)) c();
});

type Kind = "tc" | "tc-update" | "xdp" | "tcx" | "cgroup";

// The child runs many times: bundled once into plain JavaScript, it starts
// several times faster than through the TypeScript loader.
let bundled: string | undefined;
function childScript(): string {
  if (bundled === undefined) {
    // Inside the repository, so that the bundle finds koffi in node_modules.
    mkdirSync(join(ROOT, "node_modules/.cache"), { recursive: true });
    const dir = mkdtempSync(join(ROOT, "node_modules/.cache/dp-kill-child-"));
    cleanupsAfterAll.push(() => rmSync(dir, { recursive: true, force: true }));
    bundled = join(dir, "child.mjs");
    buildSync({
      entryPoints: [CHILD],
      outfile: bundled,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      conditions: ["@dp/source"],
      external: ["koffi"],
      banner: { js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);' },
      logLevel: "error",
    });
  }
  return bundled;
}

/** Runs the child; `killed` when SIGKILL ended it, else the number of system calls its attach made. */
function runChild(
  kind: Kind,
  ns: TestNetns,
  ledgerDir: string,
  target: string,
  killAt: number,
): { killed: boolean; calls: number } {
  const r = spawnSync(process.execPath, [childScript(), kind, ns.name, "kv0", ledgerDir, target, String(killAt)], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 60_000,
  });
  if (r.signal === "SIGKILL") return { killed: true, calls: killAt };
  if (r.status !== 0) throw new Error(`child ${kind} (kill at ${killAt}) failed: ${r.status ?? r.signal}\n${r.stderr}`);
  return {
    killed: false,
    calls: (JSON.parse(r.stdout.trim().split("\n").at(-1) as string) as { calls: number }).calls,
  };
}

/** What is attached, as comparable text: hook, how, and program name. */
function attached(kind: Kind, ns: TestNetns, cgroup: string): string[] {
  const list = kind === "cgroup" ? listAttachments({ cgroup }) : listAttachments({ iface: "kv0", netns: ns.ns });
  return list.map((a) => `${a.hook}:${a.kind}:${a.programName}${a.xdpMode ? `:${a.xdpMode}` : ""}`).sort();
}

function foreignCgroupProgram(): BpfProgram {
  return loadProgram({
    name: "foreign_ops",
    type: "sockOps",
    license: "GPL",
    instructions: asm.program(asm.movImm(0, 1), asm.exit()),
  });
}

describe("the ledger when the attaching process is killed at every system call", () => {
  test.each<Kind>(["tc", "tc-update", "xdp", "tcx", "cgroup"])(
    "%s: reconcile() in another process leaves exactly the foreign attachments",
    (kind) => {
      const ns = netns();
      cleanups.push(() => ns.close());
      ns.exec("ip", ["link", "add", "kv0", "type", "veth", "peer", "name", "kv0p"]);
      ns.exec("ip", ["link", "set", "kv0", "up"]);
      ns.exec("ip", ["link", "set", "kv0p", "up"]);
      const dir = bpffsDir();
      cleanups.push(() => dir.close());
      const ledgerDir = dir.join("ledger");
      let cgroup = "";
      if (kind === "cgroup") {
        const cg: TestCgroup = testCgroup();
        cleanups.push(() => cg.close());
        cgroup = cg.path;
        const foreign = foreignCgroupProgram();
        attachProgram({ path: cgroup }, foreign, "cgroupSockOps", { flags: ATTACH_FLAGS.allowMulti });
        cleanups.push(() => {
          detachProgram({ path: cgroup }, foreign, "cgroupSockOps");
          foreign.close();
        });
      } else {
        // A filter added by tc: someone else's attachment on the same hook.
        ns.exec("tc", ["qdisc", "add", "dev", "kv0", "clsact"]);
        ns.exec("tc", [
          "filter",
          "add",
          "dev",
          "kv0",
          "ingress",
          "pref",
          "7",
          "bpf",
          "da",
          "obj",
          TC_OBJECT,
          "sec",
          "tc",
        ]);
      }
      const before = attached(kind, ns, cgroup);
      expect(before.length).toBe(1);

      const total = runChild(kind, ns, ledgerDir, cgroup, 0);
      expect(total.killed).toBe(false);
      expect(total.calls).toBeGreaterThan(3);
      let kills = 0;
      // killAt = total + 1 is the run that completes: its attachments too must be reconciled away.
      for (let killAt = 1; killAt <= total.calls + 1; killAt++) {
        const run = runChild(kind, ns, ledgerDir, cgroup, killAt);
        if (run.killed) kills += 1;
        using ledger = openLedger(ledgerDir);
        reconcile(ledger);
        expect({ killAt, attached: attached(kind, ns, cgroup) }).toEqual({ killAt, attached: before });
        expect({ killAt, entries: ledger.entries() }).toEqual({ killAt, entries: [] });
      }
      expect(kills).toBe(total.calls);
    },
    300_000,
  );
});
