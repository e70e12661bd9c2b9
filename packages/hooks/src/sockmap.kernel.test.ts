import { beforeEach, describe, expect, test } from "vitest";
import {
  type BpfMap,
  type Collection,
  loadCollection,
  loadProgram,
  queryPrograms,
  readCollectionSpec,
  SyscallError,
} from "@dp/core";
import { asm } from "@dp/core/internal";
import { netns, requireRoot } from "@dp/core/testing";
import { bytes, SockHash, SockMap } from "@dp/maps";
import { ECHO_CLIENT, runInNetns, testCgroup } from "./_test_cgroup.ts";
import { attachCgroup } from "./cgroup.ts";
import { attachSockmap } from "./sockmap.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../bpf/build/testdata/hooks_sockmap.o", import.meta.url).pathname;
const REDIRECTED = 0;
const REDIRECTED_BYTES = 1;
const INSERTED = 2;

function load(): Collection {
  return loadCollection(readCollectionSpec(OBJECT));
}

function stat(map: BpfMap, slot: number): bigint {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, slot, true);
  const value = map.get(key);
  return value === undefined ? 0n : new DataView(value.buffer, value.byteOffset).getBigUint64(0, true);
}

function passProgram(type: "skMsg" | "skSkb", name: string): ReturnType<typeof loadProgram> {
  // SK_PASS (1); a stream parser returns the length, which 1 also is for a 1-byte message.
  return loadProgram({ name, type, license: "GPL", instructions: asm.program(asm.movImm(0, 1), asm.exit()) });
}

describe("attachSockmap()", () => {
  test("an sk_msg program redirects data between two local TCP sockets that a sock_ops program put in a sockhash", async () => {
    using ns = netns({ label: "skmsg" });
    using cg = testCgroup();
    using coll = load();
    const stats = coll.map("redirect_stats");
    const socks = new SockHash(coll.map("sock_hash"), bytes(16));
    const message = "hello through the sockhash";
    {
      using msg = attachSockmap(socks, coll.program("msg_redirect"), "skMsgVerdict");
      using ops = attachCgroup(cg.path, coll.program("sockops_insert"), "cgroupSockOps");
      expect(msg.kind).toBe("sockmap");
      expect(queryPrograms({ fd: socks.map }, "skMsgVerdict").programs.map((p) => p.programId)).toEqual([
        msg.programId,
      ]);

      expect(await runInNetns(ns, cg.path, ECHO_CLIENT, ["1", message])).toEqual([message]);
      // Both ends went into the map; the request and the echo were redirected.
      expect(stat(stats, INSERTED)).toBe(2n);
      expect(stat(stats, REDIRECTED)).toBeGreaterThanOrEqual(2n);
      expect(stat(stats, REDIRECTED_BYTES)).toBe(BigInt(2 * message.length));
      expect(ops.attached).toBe(true);
    }
    // Without the sk_msg program, sockets still enter the map but data takes the normal path.
    const before = stat(stats, REDIRECTED);
    using ops = attachCgroup(cg.path, coll.program("sockops_insert"), "cgroupSockOps");
    expect(await runInNetns(ns, cg.path, ECHO_CLIENT, ["1", message])).toEqual([message]);
    expect(stat(stats, INSERTED)).toBe(4n);
    expect(stat(stats, REDIRECTED)).toBe(before);
    ops.detach();
  });

  test("sk_skb parser and verdict programs attach to a sockmap and detach exactly", () => {
    using socks = SockMap.create({ name: "t_skb", maxEntries: 4 });
    using coll = load();
    const parser = coll.program("skb_parser");
    const verdict = coll.program("skb_verdict");
    const p = attachSockmap(socks, parser, "skSkbStreamParser");
    const v = attachSockmap(socks, verdict, "skSkbStreamVerdict");
    expect(queryPrograms({ fd: socks.map }, "skSkbStreamParser").programs.map((x) => x.programId)).toEqual([
      parser.info().id,
    ]);
    expect(queryPrograms({ fd: socks.map }, "skSkbStreamVerdict").programs.map((x) => x.programId)).toEqual([
      verdict.info().id,
    ]);
    v.detach();
    v.detach();
    expect(queryPrograms({ fd: socks.map }, "skSkbStreamVerdict").programs).toEqual([]);
    expect(queryPrograms({ fd: socks.map }, "skSkbStreamParser").programs).toHaveLength(1);
    p.detach();
    expect(queryPrograms({ fd: socks.map }, "skSkbStreamParser").programs).toEqual([]);
  });

  test("attachSockmap() refuses to displace another program unless replace: true; update() swaps; detach() leaves a newer program alone", () => {
    using socks = SockMap.create({ name: "t_msg", maxEntries: 4 });
    using a = passProgram("skMsg", "msg_a");
    using b = passProgram("skMsg", "msg_b");
    using c = passProgram("skMsg", "msg_c");
    const ids = (): number[] => queryPrograms({ fd: socks.map }, "skMsgVerdict").programs.map((x) => x.programId);
    using first = attachSockmap(socks, a, "skMsgVerdict");
    let err: unknown;
    try {
      attachSockmap(socks, b, "skMsgVerdict").detach();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe("EBUSY");
    expect((err as Error).message).toMatch(new RegExp(`program ${a.info().id} is attached there.*replace: true`));
    expect(ids()).toEqual([a.info().id]);

    first.update(b);
    expect(first.programId).toBe(b.info().id);
    expect(ids()).toEqual([b.info().id]);

    using second = attachSockmap(socks, c, "skMsgVerdict", { replace: true });
    expect(ids()).toEqual([c.info().id]);
    first.detach(); // b is no longer attached: nothing to do, c stays
    expect(ids()).toEqual([c.info().id]);
    second.detach();
    expect(ids()).toEqual([]);
  });

  test("a sockmap attachment stays after close() while the map lives", () => {
    using socks = SockMap.create({ name: "t_keep", maxEntries: 4 });
    using a = passProgram("skMsg", "msg_keep");
    const link = attachSockmap(socks, a, "skMsgVerdict");
    link.close();
    expect(link.closed).toBe(true);
    expect(queryPrograms({ fd: socks.map }, "skMsgVerdict").programs.map((x) => x.programId)).toEqual([a.info().id]);
    link.detach(); // a released handle detaches nothing
    expect(queryPrograms({ fd: socks.map }, "skMsgVerdict").programs).toHaveLength(1);
  });
});
