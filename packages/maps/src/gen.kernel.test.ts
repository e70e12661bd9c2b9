import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeEach, describe, expect, test } from "vitest";
import { type BpfProgram, type Collection, loadCollection, readCollectionSpec } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { bind, type ObjectVariable } from "./_test_typed_maps.gen.ts";

beforeEach((t) => requireRoot(t));

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const TC_ACT_OK = 0;
/** Offset of `mark` in `struct __sk_buff`, which fill_maps uses as its seed. */
const SKB_MARK = 8;
const SKB_CTX_SIZE = 12;
const PACKET = 64;

function load(): Collection {
  return loadCollection(readCollectionSpec(join(ROOT, "bpf/build/testdata/typed_maps.o")));
}

/** Runs fill_maps once with `skb->mark = seed`. */
function fill(prog: BpfProgram, seed: number): number {
  const ctx = new Uint8Array(SKB_CTX_SIZE);
  new DataView(ctx.buffer).setUint32(SKB_MARK, seed, true);
  return prog.testRun({ data: new Uint8Array(PACKET), ctx }).retval;
}

describe("generated bind() for typed_maps.o", () => {
  test("bind() maps decode what fill_maps wrote, through the generated codecs", () => {
    using coll = load();
    using objs = bind(coll);
    const { maps, programs } = objs;
    const seed = 5;
    expect(fill(programs.fill_maps, seed)).toBe(TC_ACT_OK);

    expect(maps.policy.get({ identity: seed, dport: 80, proto: 6, pad: 0 })).toEqual({
      packets: 5000n,
      bytes: 0x1122334455667788n,
      action: 1,
      flags: new Uint8Array([1, 2, 3]),
      proxy_port: 15001,
    });
    expect(maps.policy.get({ identity: seed + 1, dport: 80, proto: 6, pad: 0 })).toBeUndefined();
    expect(maps.backends.get(seed % 4)).toEqual({
      addr: 0x0a000001 + seed,
      port: 8080,
      mac: new Uint8Array([2, 0, 0, 0, 0, seed]),
      u: { weight: seed, raw: new Uint8Array([seed, 0, 0, 0]) },
      addr6: new Uint8Array([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, seed]),
      nested: { a: -seed, b: seed },
    });
    const stats = maps.stats.get(0) ?? [];
    expect(stats.reduce((sum, c) => sum + c.packets, 0n)).toBe(1n);
    expect(stats.reduce((sum, c) => sum + c.bytes, 0n)).toBe(BigInt(PACKET));
    expect(maps.odd.get(0)).toEqual({ a: 1, b: 2n, c: 3, d: [4, 5, 6], name: "odd" });
    expect(maps.packed.get(0)).toEqual({ a: 7, b: 0x01020304 });
    expect(maps.lru.get(seed)).toBe(BigInt(seed * 2));
    expect((maps.percpu_hash.get(seed) ?? []).reduce((sum, n) => sum + n, 0n)).toBe(1n);
    expect(maps.mmap_counters.get(seed % 8)).toBe(1n);
    expect(maps.queue.pop()).toBe(seed);
    expect(maps.stack.pop()).toBe(seed);
    const [event] = maps.events.drain();
    expect(event).toBeInstanceOf(Uint8Array);
    const view = new DataView((event as Uint8Array).buffer, (event as Uint8Array).byteOffset);
    expect([view.getUint32(0, true), view.getUint32(4, true)]).toEqual([seed, PACKET]);
  });

  test("bind() variables read what fill_maps wrote and what the object initialised", () => {
    using coll = load();
    using objs = bind(coll);
    const { maps, variables, programs } = objs;
    maps.routes.set("10.1.0.0/16", 7);
    expect(variables.last_route.get()).toBe(0);
    expect(variables.run_count.get()).toBe(0n);

    fill(programs.fill_maps, 3);
    fill(programs.fill_maps, 4);
    expect(variables.last_route.get()).toBe(7);
    expect(variables.run_count.get()).toBe(2n);
    expect(variables.totals.get()).toEqual({ packets: 5n, bytes: 6n });
    expect(variables.verdict.get()).toBe(TC_ACT_OK);
    expect(variables.default_nested.get()).toEqual({ a: -1, b: 2 });
  });

  test("bind() variables write through their codecs, leaving their neighbours alone", () => {
    using coll = load();
    using objs = bind(coll);
    const { variables, programs } = objs;
    variables.totals.set({ packets: 9n, bytes: 0xffff_ffff_ffffn });
    variables.last_route.set(42);
    expect(variables.totals.get()).toEqual({ packets: 9n, bytes: 0xffff_ffff_ffffn });
    expect(variables.last_route.get()).toBe(42);
    expect(variables.run_count.get()).toBe(0n);
    fill(programs.fill_maps, 1);
    expect(variables.run_count.get()).toBe(1n);
    expect(() => variables.last_route.set(-1)).toThrow(RangeError);
    const verdict = variables.verdict as unknown as ObjectVariable<number>;
    expect(() => verdict.set(2)).toThrow(new TypeError('Cannot set variable "verdict": it is a constant in .rodata'));
  });

  test("bind() typed maps write values the program's maps hold", () => {
    using coll = load();
    using objs = bind(coll);
    const { maps } = objs;
    const key = { identity: 1, dport: 443, proto: 17, pad: 0 };
    maps.policy.set(key, { packets: 1n, bytes: 2n, action: 3, flags: new Uint8Array([4, 5, 6]), proxy_port: 8443 });
    const raw = coll.map("policy").get(new Uint8Array([1, 0, 0, 0, 0x01, 0xbb, 17, 0]));
    expect(raw).toEqual(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 4, 5, 6, 0x20, 0xfb, 0, 0]));
    expect(() =>
      maps.policy.set(
        { ...key, dport: 70000 },
        { packets: 0n, bytes: 0n, action: 0, flags: new Uint8Array(3), proxy_port: 0 },
      ),
    ).toThrow(RangeError);
  });

  test("bind() maps ring buffers on first use and close() unmaps them", () => {
    using coll = load();
    const objs = bind(coll);
    const events = objs.maps.events;
    expect(objs.maps.events).toBe(events);
    expect(events.closed).toBe(false);
    objs.close();
    expect(events.closed).toBe(true);
    objs.close();
  });

  test("bind() throws RangeError naming a map the collection lacks", () => {
    using other = loadCollection(readCollectionSpec(join(ROOT, "bpf/build/testdata/xdp_count.o")));
    expect(() => bind(other)).toThrow(RangeError);
    expect(() => bind(other)).toThrow(/No map "backends"/);
  });
});
