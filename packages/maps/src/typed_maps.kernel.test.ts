// The typed map classes over the maps of bpf/testdata/typed_maps.o (which
// carry BTF): values written by fill_maps through BPF_PROG_TEST_RUN decode
// in TypeScript, and values dp writes show up in `bpftool map dump` exactly,
// field by field as bpftool formats them from the BTF.
import { beforeEach, describe, expect, test } from "vitest";
import { possibleCpus } from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import {
  ArrayMap,
  ArrayOfMaps,
  HashMap,
  type Infer,
  LpmTrieMap,
  LruHashMap,
  PerCpuArrayMap,
  PerCpuHashMap,
  ProgArrayMap,
  QueueMap,
  RingBuffer,
  SockHash,
  SockMap,
  StackMap,
  array,
  be16,
  cstring,
  i32,
  ipv4,
  ipv6,
  mac,
  struct,
  u16,
  u32,
  u64,
  u8,
  union,
} from "@dp/maps";
import { bpftoolDump, fill, hex, loadTypedMaps } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

const PolicyKey = struct({ identity: u32, dport: be16, proto: u8, pad: u8 }, { name: "struct policy_key", size: 8 });
const PolicyEntry = struct(
  { packets: u64, bytes: u64, action: u8, flags: array(u8, 3), proxy_port: be16 },
  { name: "struct policy_entry", size: 24 },
);
const Nested = struct({ a: i32, b: u16 }, { name: "struct nested", size: 8 });
const Backend = struct(
  { addr: ipv4, port: be16, mac, u: union({ weight: u32, raw: array(u8, 4) }), addr6: ipv6, nested: Nested },
  { name: "struct backend", size: 40 },
);
const Counters = struct({ packets: u64, bytes: u64 }, { name: "struct counters", size: 16 });
const OddLayout = struct(
  { a: u8, b: u64, c: u16, d: array(u32, 3), name: cstring(5) },
  { name: "struct odd_layout", size: 40 },
);
const PackedPair = struct({ a: u8, b: u32 }, { name: "struct packed_pair", size: 5, packed: true });
const Event = struct({ seed: u32, len: u32 }, { name: "struct event", size: 8 });

/** What bpftool prints for a __be16 field: the bytes read in host order. */
function swap16(n: number): number {
  return ((n & 0xff) << 8) | (n >> 8);
}

function encoded<T>(codec: { size: number; encode(v: T, view: DataView, offset: number): void }, value: T): string {
  const b = new Uint8Array(codec.size);
  codec.encode(value, new DataView(b.buffer), 0);
  return hex(b);
}

function udpSocket(): ReturnType<typeof openSocket> {
  const sock = openSocket(2, 2, 0, "udp socket");
  const addr = new Uint8Array(16);
  new DataView(addr.buffer).setUint16(0, 2, true); // AF_INET, port 0
  addr.set([127, 0, 0, 1], 4);
  if (sys().bind(rawFd(sock), addr, 16) !== 0) throw new Error("bind failed");
  return sock;
}

describe("typed maps over typed_maps.o", () => {
  test("HashMap decodes fill_maps' policy entry and writes entries bpftool formats field by field", () => {
    using coll = loadTypedMaps();
    const policy = new HashMap(coll.map("policy"), PolicyKey, PolicyEntry);
    fill(coll, 5);
    expect(policy.get({ identity: 5, dport: 80, proto: 6, pad: 0 })).toEqual({
      packets: 5000n,
      bytes: 0x1122334455667788n,
      action: 1,
      flags: [1, 2, 3],
      proxy_port: 15001,
    });
    expect(policy.get({ identity: 5, dport: 81, proto: 6, pad: 0 })).toBeUndefined();

    const key = { identity: 0xdeadbeef, dport: 443, proto: 17, pad: 0 };
    const value: Infer<typeof PolicyEntry> = {
      packets: 2n ** 64n - 1n,
      bytes: 7n,
      action: 2,
      flags: [9, 8, 7],
      proxy_port: 8443,
    };
    policy.set(key, value);
    const dump = bpftoolDump(policy.map);
    expect(dump).toHaveLength(2);
    const mine = dump.find((e) => e.key === encoded(PolicyKey, key));
    expect(mine?.value).toBe(encoded(PolicyEntry, value));
    expect(mine?.formatted).toEqual({
      key: { identity: 0xdeadbeef, dport: swap16(443), proto: 17, pad: 0 },
      value: { packets: 2n ** 64n - 1n, bytes: 7, action: 2, flags: [9, 8, 7], proxy_port: swap16(8443) },
    });
    expect(new Map([...policy].map(([k, v]) => [k.identity, v.packets]))).toEqual(
      new Map([
        [5, 5000n],
        [0xdeadbeef, 2n ** 64n - 1n],
      ]),
    );
  });

  test("ArrayMap decodes the backend with its union, network-order fields and nested struct", () => {
    using coll = loadTypedMaps();
    const backends = new ArrayMap(coll.map("backends"), Backend);
    fill(coll, 5);
    expect(backends.get(1)).toEqual({
      addr: "10.0.0.6",
      port: 8080,
      mac: "02:00:00:00:00:05",
      u: { weight: 5, raw: [5, 0, 0, 0] },
      addr6: "fd00::5",
      nested: { a: -5, b: 5 },
    });
    expect(backends.get(0)?.addr).toBe("0.0.0.0");
    expect(backends.size).toBe(4);

    backends.set(2, {
      addr: "192.168.1.2",
      port: 53,
      mac: "aa:bb:cc:dd:ee:ff",
      u: { raw: [1, 2, 3, 4] },
      addr6: "2001:db8::1",
      nested: { a: -100_000, b: 65535 },
    });
    const entry = bpftoolDump(backends.map).find((e) => e.key === "02000000");
    expect(entry?.formatted?.value).toEqual({
      addr: 0x0201a8c0,
      port: swap16(53),
      mac: [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
      u: { weight: 0x04030201, raw: [1, 2, 3, 4] },
      addr6: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      nested: { a: -100_000, b: 65535 },
    });
  });

  test("PerCpuArrayMap reads the per-CPU stats and writes one value per CPU", () => {
    using coll = loadTypedMaps();
    const stats = new PerCpuArrayMap(coll.map("stats"), Counters);
    fill(coll, 1);
    fill(coll, 2);
    const perCpu = stats.get(0);
    expect(perCpu).toHaveLength(possibleCpus());
    expect(stats.sum(0)).toEqual({ packets: 2n, bytes: 128n });

    const written = Array.from({ length: possibleCpus() }, (_, cpu) => ({
      packets: BigInt(cpu + 1),
      bytes: BigInt(100 * (cpu + 1)),
    }));
    stats.set(0, written);
    const dump = bpftoolDump(stats.map);
    expect(dump[0]?.formatted?.values).toEqual(
      written.map((value, cpu) => ({ cpu, value: { packets: Number(value.packets), bytes: Number(value.bytes) } })),
    );
    expect(stats.get(0)).toEqual(written);
  });

  test("ArrayMap decodes the padded odd_layout and the packed pair", () => {
    using coll = loadTypedMaps();
    const odd = new ArrayMap(coll.map("odd"), OddLayout);
    const packed = new ArrayMap(coll.map("packed"), PackedPair);
    fill(coll, 1);
    expect(odd.get(0)).toEqual({ a: 1, b: 2n, c: 3, d: [4, 5, 6], name: "odd" });
    expect(packed.get(0)).toEqual({ a: 7, b: 0x01020304 });

    odd.set(0, { a: 255, b: 1n << 40n, c: 65535, d: [1, 2, 0xffffffff], name: "abcd" });
    packed.set(0, { a: 1, b: 0xa0b0c0d0 });
    expect(bpftoolDump(odd.map)[0]?.formatted?.value).toEqual({
      a: 255,
      b: 2 ** 40,
      c: 65535,
      d: [1, 2, 0xffffffff],
      name: "abcd",
    });
    expect(bpftoolDump(packed.map)[0]).toMatchObject({
      value: "01d0c0b0a0",
      formatted: { value: { a: 1, b: 0xa0b0c0d0 } },
    });
  });

  test("LruHashMap and PerCpuHashMap read what fill_maps wrote", () => {
    using coll = loadTypedMaps();
    const lru = new LruHashMap(coll.map("lru"), u32, u64);
    const counts = new PerCpuHashMap(coll.map("percpu_hash"), u32, u64);
    for (const seed of [3, 4, 4]) fill(coll, seed);
    expect(lru.get(3)).toBe(6n);
    expect(new Map(lru.entries())).toEqual(
      new Map([
        [3, 6n],
        [4, 8n],
      ]),
    );
    expect(counts.sum(4)).toBe(2n);
    expect(counts.sum(3)).toBe(1n);
    expect(counts.get(4)).toHaveLength(possibleCpus());

    counts.set(9, 5n);
    const entry = bpftoolDump(counts.map).find((e) => e.key === "09000000");
    expect(entry?.formatted?.values).toEqual(Array.from({ length: possibleCpus() }, (_, cpu) => ({ cpu, value: 5 })));
  });

  test("LpmTrieMap: prefixes stored from TypeScript steer fill_maps' lookup of 10.1.2.3", () => {
    using coll = loadTypedMaps();
    const routes = new LpmTrieMap(coll.map("routes"), u32);
    routes.setMany([
      ["10.0.0.0/8", 1],
      ["10.1.0.0/16", 2],
      [{ prefixLen: 24, addr: "10.1.2.0" }, 3],
      ["10.1.3.0/24", 4],
    ]);
    fill(coll, 1);
    expect(coll.variable("last_route").get()).toBe(3);
    expect(routes.lookup("10.1.2.3")).toBe(3);
    routes.delete("10.1.2.0/24");
    fill(coll, 1);
    expect(coll.variable("last_route").get()).toBe(2);

    const dump = bpftoolDump(routes.map);
    expect(dump.map((e) => e.formatted?.key)).toEqual(
      expect.arrayContaining([
        { prefixlen: 8, addr: [10, 0, 0, 0] },
        { prefixlen: 16, addr: [10, 1, 0, 0] },
        { prefixlen: 24, addr: [10, 1, 3, 0] },
      ]),
    );
    expect(new Set(routes.keys())).toEqual(new Set(["10.0.0.0/8", "10.1.0.0/16", "10.1.3.0/24"]));
  });

  test("QueueMap pops fill_maps' values in FIFO order, StackMap in LIFO order", () => {
    using coll = loadTypedMaps();
    const queue = new QueueMap(coll.map("queue"), u32);
    const stack = new StackMap(coll.map("stack"), u32);
    for (const seed of [1, 2, 3]) fill(coll, seed);
    expect(queue.peek()).toBe(1);
    expect([queue.pop(), queue.pop(), queue.pop(), queue.pop()]).toEqual([1, 2, 3, undefined]);
    expect(stack.peek()).toBe(3);
    expect([stack.pop(), stack.pop(), stack.pop(), stack.pop()]).toEqual([3, 2, 1, undefined]);
  });

  test("RingBuffer decodes the events fill_maps submitted", () => {
    using coll = loadTypedMaps();
    const events = new RingBuffer(coll.map("events"), Event);
    for (const seed of [7, 8, 9]) fill(coll, seed);
    expect(events.drain()).toEqual([7, 8, 9].map((seed) => ({ seed, len: 64 })));
    expect(events.drain()).toEqual([]);
    events.close();
  });

  test("MappedArray sees fill_maps' atomic adds and its writes reach bpf(2) and bpftool", () => {
    using coll = loadTypedMaps();
    const counters = new ArrayMap(coll.map("mmap_counters"), u64);
    using mem = counters.mmap();
    for (const seed of [3, 11, 4]) fill(coll, seed);
    expect([mem.get(3), mem.get(4), mem.get(5)]).toEqual([2n, 1n, 0n]);
    mem.set(6, 42n);
    expect(counters.get(6)).toBe(42n);
    expect(bpftoolDump(counters.map).find((e) => e.key === "06000000")?.formatted?.value).toBe(42);
    fill(coll, 6);
    expect(mem.get(6)).toBe(43n);
  });

  test("ProgArrayMap and ArrayOfMaps store objects and return their ids", () => {
    using coll = loadTypedMaps();
    const jumps = new ProgArrayMap(coll.map("jumps"));
    const slots = new ArrayOfMaps(coll.map("per_slot"));
    const prog = coll.program("fill_maps");
    jumps.set(2, prog);
    expect(jumps.get(2)).toBe(prog.info().id);
    expect([...jumps.keys()]).toEqual([2]);
    using inner = ArrayMap.create(u64, { maxEntries: 2 });
    slots.set(1, inner);
    expect(slots.get(1)).toBe(inner.map.info().id);
    expect([...slots]).toEqual([[1, inner.map.info().id]]);
    expect(
      bpftoolDump(slots.map)
        .filter((e) => e.value !== undefined)
        .map((e) => e.key),
    ).toEqual(["01000000"]);
  });

  test("SockMap and SockHash store sockets under typed keys and return their cookies", () => {
    using coll = loadTypedMaps();
    const socks = new SockMap(coll.map("socks"));
    const byKey = new SockHash(coll.map("sock_hash"), PolicyKey);
    using a = udpSocket();
    using b = udpSocket();
    socks.set(3, a);
    const key = { identity: 1, dport: 53, proto: 17, pad: 0 };
    byKey.set(key, b);
    expect(typeof socks.get(3)).toBe("bigint");
    expect(byKey.get(key)).not.toBe(socks.get(3));
    expect([...byKey.keys()]).toEqual([key]);
    expect(bpftoolDump(byKey.map).map((e) => e.key)).toEqual([encoded(PolicyKey, key)]);
    expect(byKey.delete(key)).toBe(true);
    expect(byKey.get(key)).toBeUndefined();
  });
});
