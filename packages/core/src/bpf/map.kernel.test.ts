import { execFileSync } from "node:child_process";
import { beforeEach, describe, expect, test } from "vitest";
import {
  BpfMap,
  ClosedError,
  createMap,
  type MapSpec,
  type MapValue,
  MAP_FLAGS,
  NotSupportedError,
  openPinnedMap,
  possibleCpus,
  SyscallError,
  loadProgram,
} from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function bpftoolDump(path: string): { key: string; value?: string; values?: string[] }[] {
  const out = JSON.parse(execFileSync("bpftool", ["-j", "map", "dump", "pinned", path], { encoding: "utf8" })) as {
    key: string[];
    value?: string[] | { error: string };
    values?: { cpu: number; value: string[] }[];
  }[];
  const join = (bytes: string[]): string => bytes.map((x) => x.slice(2)).join("");
  return out.map((e) => ({
    key: join(e.key),
    // Empty slots of array-like maps come with {"error": ...} instead of bytes.
    ...(Array.isArray(e.value) ? { value: join(e.value) } : {}),
    ...(e.values ? { values: e.values.map((v) => join(v.value)) } : {}),
  }));
}

interface Case {
  readonly spec: MapSpec;
  /** Entries to write: key index -> value. */
  readonly key: (i: number) => Uint8Array;
  readonly value: (i: number, map: BpfMap) => MapValue;
  /** What a lookup returns for entry i (fd-valued maps return ids or cookies). */
  readonly expected?: (i: number, map: BpfMap) => Uint8Array | undefined;
  readonly count: number;
  readonly deletable: boolean;
  /** Array-like maps: every index is a key for next-key iteration. */
  readonly arrayLike?: boolean;
  /** Deleting a missing key reports false (cpumap reports success). */
  readonly strictDelete?: boolean;
  readonly batch: boolean;
  /** bpftool shows the raw value bytes we wrote. */
  readonly dumpValues: boolean;
  readonly setup?: () => { values: MapValue[]; expected?: Uint8Array[]; close(): void };
}

const cpus = possibleCpus();

function perCpu(valueSize: number, i: number): Uint8Array {
  const stride = Math.ceil(valueSize / 8) * 8;
  const b = new Uint8Array(stride * cpus);
  for (let c = 0; c < cpus; c++) b.set(u32(i * 100 + c), c * stride);
  return b;
}

function plain(i: number): MapValue {
  return u64(i * 1000 + 7);
}

const CASES: Record<string, Case> = {
  hash: {
    spec: { name: "t_hash", type: "hash", keySize: 4, valueSize: 8, maxEntries: 64 },
    key: u32,
    value: plain,
    count: 20,
    deletable: true,
    batch: true,
    dumpValues: true,
  },
  percpuHash: {
    spec: { name: "t_pchash", type: "percpuHash", keySize: 4, valueSize: 4, maxEntries: 64 },
    key: u32,
    value: (i) => perCpu(4, i),
    count: 10,
    deletable: true,
    batch: true,
    dumpValues: true,
  },
  lruHash: {
    spec: { name: "t_lru", type: "lruHash", keySize: 8, valueSize: 8, maxEntries: 256 },
    key: u64,
    value: plain,
    count: 20,
    deletable: true,
    batch: true,
    dumpValues: true,
  },
  lruPercpuHash: {
    spec: { name: "t_lrupc", type: "lruPercpuHash", keySize: 4, valueSize: 8, maxEntries: 256 },
    key: u32,
    value: (i) => perCpu(8, i),
    count: 10,
    deletable: true,
    batch: true,
    dumpValues: true,
  },
  array: {
    spec: { name: "t_array", type: "array", keySize: 4, valueSize: 8, maxEntries: 8 },
    key: u32,
    value: plain,
    count: 8,
    deletable: false,
    batch: true,
    dumpValues: true,
  },
  percpuArray: {
    spec: { name: "t_pcarray", type: "percpuArray", keySize: 4, valueSize: 4, maxEntries: 4 },
    key: u32,
    value: (i) => perCpu(4, i),
    count: 4,
    deletable: false,
    batch: true,
    dumpValues: true,
  },
  lpmTrie: {
    spec: { name: "t_lpm", type: "lpmTrie", keySize: 8, valueSize: 4, maxEntries: 64, flags: MAP_FLAGS.noPrealloc },
    // 10.i.0.0/16
    key: (i) => new Uint8Array([16, 0, 0, 0, 10, i, 0, 0]),
    value: (i) => u32(i),
    count: 6,
    deletable: true,
    batch: true,
    dumpValues: true,
  },
  devmap: {
    spec: { name: "t_devmap", type: "devmap", keySize: 4, valueSize: 4, maxEntries: 4 },
    key: u32,
    value: () => u32(1), // loopback in the test namespace
    count: 2,
    deletable: true,
    strictDelete: false,
    arrayLike: true,
    batch: false,
    dumpValues: true,
  },
  devmapHash: {
    spec: { name: "t_devhash", type: "devmapHash", keySize: 4, valueSize: 4, maxEntries: 4 },
    key: u32,
    value: () => u32(1),
    count: 2,
    deletable: true,
    batch: false,
    dumpValues: true,
  },
  cpumap: {
    spec: { name: "t_cpumap", type: "cpumap", keySize: 4, valueSize: 4, maxEntries: cpus },
    key: u32,
    value: () => u32(192),
    count: cpus,
    deletable: true,
    strictDelete: false,
    batch: false,
    dumpValues: true,
  },
};

function writeAll(map: BpfMap, c: Case, values: MapValue[]): void {
  for (let i = 0; i < c.count; i++) map.set(c.key(i), values[i] as MapValue);
}

describe("createMap() with every map type", () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: create, set, get, iterate, batch, delete, pin, reopen, bpftool dump`, () => {
      using ns = netns({ label: name.slice(0, 8) });
      using dir = bpffsDir();
      ns.run(() => {
        using map = createMap(c.spec);
        const values = Array.from({ length: c.count }, (_, i) => c.value(i, map));
        writeAll(map, c, values);
        for (let i = 0; i < c.count; i++) {
          expect(hex(map.get(c.key(i)) as Uint8Array)).toBe(hex(values[i] as Uint8Array));
        }
        // Iteration sees exactly what was written.
        const seen = new Map([...map.entries()].map(([k, v]) => [hex(k), hex(v)]));
        expect(seen.size).toBe(c.count);
        for (let i = 0; i < c.count; i++) expect(seen.get(hex(c.key(i)))).toBe(hex(values[i] as Uint8Array));
        expect([...map.keys()].length).toBe(c.arrayLike ? c.spec.maxEntries : c.count);

        // Batch lookup, or a typed NotSupportedError.
        const keys = new Uint8Array(c.spec.keySize * 64);
        const vals = new Uint8Array(map.valueBytes * 64);
        if (c.batch) {
          const r = map.lookupBatch(keys, vals);
          expect(r.count).toBe(c.count);
          expect(r.cursor).toBeUndefined();
        } else {
          expect(() => map.lookupBatch(keys, vals)).toThrow(NotSupportedError);
        }

        // bpftool shows the same entries.
        const path = dir.join(name);
        map.pin(path);
        const dumped = bpftoolDump(path).filter((e) => !c.arrayLike || e.value !== undefined);
        expect(dumped.length).toBe(c.count);
        if (c.dumpValues) {
          for (const e of dumped) {
            const mine = seen.get(e.key);
            expect(mine).toBeDefined();
            if (e.values) {
              const stride = Math.ceil(c.spec.valueSize / 8) * 8 * 2;
              expect(e.values.length).toBe(cpus);
              e.values.forEach((v, cpu) => expect(mine?.slice(cpu * stride, cpu * stride + v.length)).toBe(v));
            } else {
              expect(e.value).toBe(mine);
            }
          }
        }

        // Reopen from the pin.
        using again = openPinnedMap(path);
        expect(again.type).toBe(c.spec.type);
        expect(again.info().id).toBe(map.info().id);
        expect(hex(again.get(c.key(0)) as Uint8Array)).toBe(hex(values[0] as Uint8Array));

        // Delete.
        if (c.deletable) {
          expect(map.delete(c.key(0))).toBe(true);
          expect(map.get(c.key(0))).toBeUndefined();
          if (c.strictDelete ?? true) expect(map.delete(c.key(0))).toBe(false);
          expect([...again.entries()].length).toBe(c.count - 1);
        } else {
          expect(() => map.delete(c.key(0))).toThrow(SyscallError);
        }
      });
    });
  }
});

describe("fd-valued maps", () => {
  test("progArray stores programs and returns their ids", () => {
    using dir = bpffsDir();
    using map = createMap({ name: "t_progs", type: "progArray", keySize: 4, valueSize: 4, maxEntries: 4 });
    const insns = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
    using prog = loadProgram({ name: "tail", type: "xdp", license: "GPL", instructions: insns });
    map.set(u32(1), prog);
    expect(new DataView((map.get(u32(1)) as Uint8Array).buffer).getUint32(0, true)).toBe(prog.info().id);
    // Next-key walks visit every index of an array; entries() only the filled ones.
    expect([...map.keys()].length).toBe(4);
    expect([...map.entries()].map(([k]) => hex(k))).toEqual([hex(u32(1))]);
    map.pin(dir.join("progs"));
    expect(
      bpftoolDump(dir.join("progs"))
        .filter((e) => e.value !== undefined)
        .map((e) => e.key),
    ).toEqual([hex(u32(1))]);
    using again = openPinnedMap(dir.join("progs"));
    expect(again.type).toBe("progArray");
    expect(map.delete(u32(1))).toBe(true);
    expect(map.get(u32(1))).toBeUndefined();
  });

  for (const type of ["arrayOfMaps", "hashOfMaps"] as const) {
    test(`${type} stores inner maps and returns their ids`, () => {
      using dir = bpffsDir();
      const inner: MapSpec = { type: "array", keySize: 4, valueSize: 4, maxEntries: 2 };
      using outer = createMap({
        name: `t_${type}`.slice(0, 15),
        type,
        keySize: 4,
        valueSize: 4,
        maxEntries: 4,
        innerMap: inner,
      });
      using a = createMap(inner);
      using b = createMap(inner);
      outer.set(u32(0), a);
      outer.set(u32(2), b);
      const ids = [...outer.entries()].map(([, v]) => new DataView(v.buffer).getUint32(0, true)).sort();
      expect(ids).toEqual([a.info().id, b.info().id].sort());
      if (type === "hashOfMaps") {
        expect(outer.lookupBatch(new Uint8Array(16), new Uint8Array(16)).count).toBe(2);
      }
      outer.pin(dir.join("outer"));
      expect(bpftoolDump(dir.join("outer")).filter((e) => e.value !== undefined).length).toBe(2);
      using again = openPinnedMap(dir.join("outer"));
      expect(again.type).toBe(type);
      expect(outer.delete(u32(0))).toBe(true);
      expect([...again.entries()].length).toBe(1);
    });
  }

  for (const type of ["sockmap", "sockhash"] as const) {
    test(`${type} stores bound UDP sockets and returns their cookies`, () => {
      using dir = bpffsDir();
      using map = createMap({ name: `t_${type}`, type, keySize: 4, valueSize: 8, maxEntries: 4 });
      using sock = openSocket(2, 2, 0, "udp socket");
      const addr = new Uint8Array(16);
      const dv = new DataView(addr.buffer);
      dv.setUint16(0, 2, true); // AF_INET
      addr.set([127, 0, 0, 1], 4);
      expect(sys().bind(rawFd(sock), addr, 16)).toBe(0);
      map.set(u32(3), sock);
      const cookie = map.get(u32(3)) as Uint8Array;
      expect(new DataView(cookie.buffer).getBigUint64(0, true)).toBeGreaterThan(0n);
      expect([...map.entries()].map(([k]) => hex(k))).toEqual([hex(u32(3))]);
      map.pin(dir.join("socks"));
      expect(
        bpftoolDump(dir.join("socks"))
          .filter((e) => e.value !== undefined)
          .map((e) => e.key),
      ).toEqual([hex(u32(3))]);
      using again = openPinnedMap(dir.join("socks"));
      expect(again.type).toBe(type);
      expect(map.delete(u32(3))).toBe(true);
      expect(map.get(u32(3))).toBeUndefined();
    });
  }
});

describe("keyless maps", () => {
  test("queue pops in FIFO order and stack in LIFO order", () => {
    using dir = bpffsDir();
    using queue = createMap({ name: "t_queue", type: "queue", keySize: 0, valueSize: 4, maxEntries: 4 });
    using stack = createMap({ name: "t_stack", type: "stack", keySize: 0, valueSize: 4, maxEntries: 4 });
    for (const n of [1, 2, 3]) {
      queue.push(u32(n));
      stack.push(u32(n));
    }
    expect(hex(queue.peek() as Uint8Array)).toBe(hex(u32(1)));
    queue.pin(dir.join("queue"));
    using again = openPinnedMap(dir.join("queue"));
    expect(again.type).toBe("queue");
    expect([queue.pop(), again.pop(), queue.pop()].map((v) => hex(v as Uint8Array))).toEqual(
      [1, 2, 3].map((n) => hex(u32(n))),
    );
    expect(queue.pop()).toBeUndefined();
    expect([stack.pop(), stack.pop(), stack.pop()].map((v) => hex(v as Uint8Array))).toEqual(
      [3, 2, 1].map((n) => hex(u32(n))),
    );
    // Full queue: E2BIG, unless told to overwrite.
    for (const n of [1, 2, 3, 4]) queue.push(u32(n));
    expect(() => queue.push(u32(5))).toThrow(/E2BIG.*map is full/);
    queue.push(u32(5), { mode: "exist" });
    expect(hex(queue.pop() as Uint8Array)).toBe(hex(u32(2)));
  });

  test("ringbuf is created, pinned and reopened; element operations are refused with a typed error", () => {
    using dir = bpffsDir();
    using ring = createMap({ name: "t_ring", type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 * 4 });
    expect(ring.info()).toMatchObject({ type: "ringbuf", maxEntries: 16384 });
    ring.pin(dir.join("ring"));
    using again = openPinnedMap(dir.join("ring"));
    expect(again.type).toBe("ringbuf");
    const shown = JSON.parse(
      execFileSync("bpftool", ["-j", "map", "show", "pinned", dir.join("ring")], { encoding: "utf8" }),
    );
    expect(shown).toMatchObject({ type: "ringbuf", name: "t_ring", bytes_value: 0 });
    expect(() => ring.peek()).toThrow(NotSupportedError);
    expect(() => ring.peek()).toThrow(/peek on ringbuf maps not supported/);
  });
});

describe("BpfMap bulk operations", () => {
  test("updateBatch(), lookupBatch() with a cursor and deleteBatch() move many entries per call", () => {
    using map = createMap({ name: "t_batch", type: "hash", keySize: 4, valueSize: 8, maxEntries: 4096 });
    const n = 3000;
    const keys = new Uint8Array(n * 4);
    const values = new Uint8Array(n * 8);
    for (let i = 0; i < n; i++) {
      keys.set(u32(i), i * 4);
      values.set(u64(i * 3), i * 8);
    }
    expect(map.updateBatch(keys, values)).toBe(n);
    // Refused before any entry is written: no misleading progress count.
    expect(() => map.updateBatch(keys, values, { lock: true })).toThrow(
      /^Cannot batch update entries in map "t_batch": EINVAL/,
    );
    const outK = new Uint8Array(1024 * 4);
    const outV = new Uint8Array(1024 * 8);
    let total = 0;
    let cursor;
    const seen = new Set<number>();
    do {
      const r = map.lookupBatch(outK, outV, cursor === undefined ? {} : { cursor });
      for (let i = 0; i < r.count; i++) {
        const k = new DataView(outK.buffer).getUint32(i * 4, true);
        expect(new DataView(outV.buffer).getBigUint64(i * 8, true)).toBe(BigInt(k * 3));
        seen.add(k);
      }
      total += r.count;
      cursor = r.cursor;
    } while (cursor !== undefined);
    expect(total).toBe(n);
    expect(seen.size).toBe(n);
    expect(map.deleteBatch(keys.subarray(0, 1000 * 4))).toBe(1000);
    expect([...map.keys()].length).toBe(n - 1000);
    expect(() => map.deleteBatch(keys.subarray(0, 4))).toThrow(/after 0 of 1 entries: ENOENT/);
  });

  test("set() with mode noExist/exist and a full map report EEXIST, ENOENT and E2BIG with hints", () => {
    using map = createMap({ name: "t_modes", type: "hash", keySize: 4, valueSize: 4, maxEntries: 2 });
    map.set(u32(1), u32(1), { mode: "noExist" });
    expect(() => map.set(u32(1), u32(2), { mode: "noExist" })).toThrow(/EEXIST/);
    expect(() => map.set(u32(9), u32(2), { mode: "exist" })).toThrow(/ENOENT/);
    map.set(u32(2), u32(2));
    try {
      map.set(u32(3), u32(3));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({ syscall: "bpf", op: "BPF_MAP_UPDATE_ELEM", code: "E2BIG", errno: 7 });
      expect((err as SyscallError).hint).toMatch(/full/);
    }
  });

  test("freeze() makes the map read-only for user space", () => {
    using map = createMap({ name: "t_frozen", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.set(u32(0), u32(5));
    map.freeze();
    expect(() => map.set(u32(0), u32(6))).toThrow(/EPERM.*frozen/);
    expect(hex(map.get(u32(0)) as Uint8Array)).toBe(hex(u32(5)));
  });
});

describe("BpfMap misuse", () => {
  test("a closed map throws ClosedError and close() is idempotent", () => {
    const map = createMap({ name: "t_closed", type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
    map.close();
    map.close();
    expect(map.closed).toBe(true);
    expect(() => map.get(u32(1))).toThrow(ClosedError);
    expect(() => map.set(u32(1), u32(1))).toThrow(ClosedError);
    expect(() => map.info()).toThrow(ClosedError);
    expect(() => [...map.keys()]).toThrow(ClosedError);
  });

  test("keys and values of the wrong size are RangeErrors naming the map", () => {
    using map = createMap({ name: "t_sizes", type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
    expect(() => map.get(new Uint8Array(3))).toThrow(/Invalid key for map "t_sizes": expected 4 bytes, got 3/);
    expect(() => map.set(u32(1), new Uint8Array(5))).toThrow(RangeError);
  });

  test("openPinnedMap() of a missing path is ENOENT", () => {
    using dir = bpffsDir();
    expect(() => openPinnedMap(dir.join("nothing"))).toThrow(/Cannot open pinned map .*ENOENT/);
  });
});
