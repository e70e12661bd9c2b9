import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmdirSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type BpfMap,
  type Collection,
  loadCollection,
  loadProgram,
  openPinnedLink,
  readCollectionSpec,
  SyscallError,
  unpin,
} from "@dp/core";
import { asm } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { ECHO_CLIENT, runInNetns, testCgroup } from "./_test_cgroup.ts";
import { waitUntil } from "./_test_net.ts";
import { attachCgroup, findCgroup2Mount, mountCgroup2 } from "./cgroup.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../bpf/build/testdata/hooks_cgroup.o", import.meta.url).pathname;
const ACTIVE_ESTABLISHED = 4;
const PASSIVE_ESTABLISHED = 5;

function load(): Collection {
  return loadCollection(readCollectionSpec(OBJECT));
}

function count(map: BpfMap, op: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, op, true);
  const value = map.get(key);
  return value === undefined ? 0n : new DataView(value.buffer, value.byteOffset).getBigUint64(0, true);
}

interface BpftoolCgroupProg {
  readonly id: number;
  readonly attach_type: string;
  readonly name: string;
}

function bpftoolCgroup(path: string): BpftoolCgroupProg[] {
  return JSON.parse(
    execFileSync("bpftool", ["-j", "cgroup", "show", path], { encoding: "utf8" }).trim() || "[]",
  ) as BpftoolCgroupProg[];
}

describe("attachCgroup()", () => {
  test("a sock_ops program attached to a cgroup counts the TCP connections made in it, and only those", async () => {
    using ns = netns({ label: "cgops" });
    using cg = testCgroup();
    using coll = load();
    const prog = coll.program("count_sockops");
    const counts = coll.map("sockops_counts");
    {
      using link = attachCgroup(cg.path, prog, "cgroupSockOps");
      expect(link.kind).toBe("cgroup");
      expect(link.programId).toBe(prog.info().id);
      expect(link.cgroupId).toBeGreaterThan(0n);
      expect(bpftoolCgroup(cg.path)).toEqual([expect.objectContaining({ id: prog.info().id, name: "count_sockops" })]);
      expect(bpftoolCgroup(cg.path)[0]?.attach_type).toMatch(/sock_ops/);

      expect(await runInNetns(ns, cg.path, ECHO_CLIENT, ["3", "hello"])).toEqual(["hello", "hello", "hello"]);
      expect(count(counts, ACTIVE_ESTABLISHED)).toBe(3n);
      expect(count(counts, PASSIVE_ESTABLISHED)).toBe(3n);

      // The same connections from outside the cgroup are not seen.
      expect(await runInNetns(ns, undefined, ECHO_CLIENT, ["2", "hello"])).toEqual(["hello", "hello"]);
      expect(count(counts, ACTIVE_ESTABLISHED)).toBe(3n);
    }
    // Disposed: detached, so the cgroup's connections are no longer counted.
    expect(bpftoolCgroup(cg.path)).toEqual([]);
    expect(await runInNetns(ns, cg.path, ECHO_CLIENT, ["1"])).toEqual(["hello"]);
    expect(count(counts, ACTIVE_ESTABLISHED)).toBe(3n);
  });

  test("update() swaps the program in place; detach() twice is a no-op", () => {
    using cg = testCgroup();
    using a = loadProgram({
      name: "ops_a",
      type: "sockOps",
      license: "GPL",
      instructions: asm.program(asm.movImm(0, 1), asm.exit()),
    });
    using b = loadProgram({
      name: "ops_b",
      type: "sockOps",
      license: "GPL",
      instructions: asm.program(asm.movImm(0, 1), asm.exit()),
    });
    const link = attachCgroup(cg.path, a, "cgroupSockOps");
    const linkId = link.linkId;
    link.update(b);
    expect(link.programId).toBe(b.info().id);
    expect(link.linkId).toBe(linkId);
    expect(bpftoolCgroup(cg.path).map((p) => p.id)).toEqual([b.info().id]);
    link.detach();
    expect(link.attached).toBe(false);
    link.detach();
    expect(bpftoolCgroup(cg.path)).toEqual([]);
  });

  test("a pinned cgroup link outlives its handle until detached through the pin", () => {
    using cg = testCgroup();
    using dir = bpffsDir();
    using prog = loadProgram({
      name: "ops_pin",
      type: "sockOps",
      license: "GPL",
      instructions: asm.program(asm.movImm(0, 1), asm.exit()),
    });
    const path = dir.join("cgroup_link");
    {
      using link = attachCgroup(cg.path, prog, "cgroupSockOps");
      link.pin(path);
    }
    expect(bpftoolCgroup(cg.path).map((p) => p.id)).toEqual([prog.info().id]);
    {
      using again = openPinnedLink(path);
      again.detach();
    }
    unpin(path);
    // The kernel releases a link whose last reference was the pin from a work queue.
    waitUntil(() => bpftoolCgroup(cg.path).length === 0);
    expect(bpftoolCgroup(cg.path)).toEqual([]);
  });

  test("attachCgroup() explains a directory that is not a cgroup v2 one, and a missing one", () => {
    using prog = loadProgram({
      name: "ops",
      type: "sockOps",
      license: "GPL",
      instructions: asm.program(asm.movImm(0, 1), asm.exit()),
    });
    const tmp = mkdtempSync("/tmp/dpt-notcg-");
    try {
      let err: unknown;
      try {
        attachCgroup(tmp, prog, "cgroupSockOps").detach();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("EBADF");
      expect((err as Error).message).toMatch(
        /Cannot attach sockOps program "ops" to cgroup ".*" as "cgroupSockOps".*not a cgroup v2 directory/,
      );
    } finally {
      rmdirSync(tmp);
    }
    expect(() => attachCgroup("/sys/fs/cgroup/dp-no-such-cgroup", prog, "cgroupSockOps")).toThrow(
      /ENOENT.*no such cgroup directory/,
    );
    const v1 = "/sys/fs/cgroup/cpu";
    if (existsSync(v1) && findCgroup2Mount() !== "/sys/fs/cgroup") {
      expect(() => attachCgroup(v1, prog, "cgroupSockOps")).toThrow(/EBADF.*not a cgroup v2 directory/);
    }
  });
});

describe("mountCgroup2()", () => {
  test("mountCgroup2() mounts the hierarchy on a directory once, then reports it there", () => {
    const dir = mkdtempSync("/tmp/dpt-cg2-");
    try {
      expect(mountCgroup2(dir)).toBe(true);
      try {
        expect(mountCgroup2(dir)).toBe(false);
        const mounts = execFileSync("findmnt", ["-n", "-o", "FSTYPE", dir], { encoding: "utf8" }).trim();
        expect(mounts).toBe("cgroup2");
        expect(findCgroup2Mount()).toBeDefined();
      } finally {
        execFileSync("umount", [dir]);
      }
    } finally {
      rmdirSync(dir);
    }
  });

  test("mountCgroup2() without a path does nothing when cgroup2 is mounted", (t) => {
    if (findCgroup2Mount() === undefined) t.skip("cgroup2 is not mounted on this host");
    expect(mountCgroup2()).toBe(false);
  });

  test("mountCgroup2() names a missing directory", () => {
    expect(() => mountCgroup2("/tmp/dp-no-such-dir-for-cgroup2")).toThrow(
      /Cannot mount cgroup2 on "\/tmp\/dp-no-such-dir-for-cgroup2": ENOENT.*create the directory first/,
    );
  });
});
