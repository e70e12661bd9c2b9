import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type Btf,
  type BpfMap,
  type BpfProgram,
  type Collection,
  type CollectionSpec,
  createMap,
  KconfigError,
  kernelBtf,
  kernelVersion,
  loadCollection,
  MapCompatibilityError,
  type ProgramType,
  readCollectionSpec,
  SyscallError,
  VerifierError,
} from "@dp/core";
import { buildBtf, forbiddenSys, openFds, setSys } from "@dp/core/internal";
import { bpffsDir, requireKernel, requireRoot, type SkipContext } from "@dp/core/testing";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const TESTDATA = join(ROOT, "bpf/build/testdata");
const SOURCES = join(ROOT, "bpf/testdata");
const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const XDP_DROP = 1;
const XDP_PASS = 2;
const ETH_P_IP = 0x0800;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
/** Offset of `mark` in `struct __sk_buff` (after `len` and `pkt_type`). */
const SKB_MARK = 8;
/** A `struct __sk_buff` context up to and including `mark`; the kernel zero-fills the rest. */
const SKB_CTX_SIZE = 12;
/** Room for the whole output `struct __sk_buff` (192 bytes on Linux 6.x): a smaller buffer is ENOSPC. */
const SKB_CTX_OUT_SIZE = 256;

function objectSpec(name: string): CollectionSpec {
  return readCollectionSpec(join(TESTDATA, `${name}.o`));
}

/** Skips when bpf/build.sh could not build an object (the CO-RE ones need the kernel's BTF for vmlinux.h). */
function requireObject(t: SkipContext, name: string): void {
  if (!existsSync(join(TESTDATA, `${name}.o`))) t.skip(`bpf/build/testdata/${name}.o was not built (no vmlinux.h)`);
}

function bpftoolJson(...args: string[]): unknown {
  return JSON.parse(execFileSync("bpftool", ["-j", ...args], { encoding: "utf8" }));
}

function bpftoolText(...args: string[]): string {
  return execFileSync("bpftool", args, { encoding: "utf8" });
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function getU32(b: Uint8Array | undefined, offset = 0): number {
  if (b === undefined) throw new Error("no value");
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(offset, true);
}

function getU64(b: Uint8Array | undefined, offset = 0): bigint {
  if (b === undefined) throw new Error("no value");
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(offset, true);
}

/** The sum of a per-CPU u64 value over every CPU (each CPU's value padded to 8 bytes). */
function perCpuSum(b: Uint8Array | undefined): bigint {
  if (b === undefined) throw new Error("no value");
  let sum = 0n;
  for (let off = 0; off < b.length; off += 8) sum += getU64(b, off);
  return sum;
}

/** An Ethernet frame of `length` bytes with a local experimental ethertype (not IPv4). */
function frame(length: number): Uint8Array {
  const b = new Uint8Array(length);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]);
  return b;
}

/** An Ethernet + IPv4 packet of `length` bytes from 10.0.0.1 to 10.0.0.2 with IP protocol `protocol`. */
function ipv4Packet(protocol: number, length = 64): Uint8Array {
  const b = frame(Math.max(length, 34));
  const dv = new DataView(b.buffer);
  dv.setUint16(12, ETH_P_IP);
  b[14] = 0x45;
  dv.setUint16(16, length - 14);
  b[22] = 64; // ttl
  b[23] = protocol;
  b.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  return b.slice(0, length);
}

/** A `struct __sk_buff` context with `mark` set. */
function skbCtx(mark: number): Uint8Array {
  const ctx = new Uint8Array(SKB_CTX_SIZE);
  new DataView(ctx.buffer).setUint32(SKB_MARK, mark, true);
  return ctx;
}

function run(
  prog: BpfProgram,
  options: { data?: Uint8Array; mark?: number; repeat?: number; reset?: () => void } = {},
): number {
  return prog.testRun({
    data: options.data ?? frame(64),
    ...(options.mark === undefined ? {} : { ctx: skbCtx(options.mark), ctxOutSize: SKB_CTX_OUT_SIZE }),
    ...(options.repeat === undefined ? {} : { repeat: options.repeat }),
    ...(options.reset === undefined ? {} : { reset: options.reset }),
  }).retval;
}

/** The members of a struct of `btf` by name: byte offset and size. */
function structFields(btf: Btf, name: string): Map<string, { offset: number; size: number }> {
  const t = btf.typesByName(name, "struct")[0];
  if (t?.kind !== "struct") throw new Error(`no struct ${name}`);
  return new Map(t.members.map((m) => [m.name, { offset: m.bitOffset / 8, size: btf.sizeOf(m.typeId) }]));
}

/** Decodes a value of a struct of integers (4 or 8 bytes each) by its BTF. */
function decodeStruct(btf: Btf, name: string, bytes: Uint8Array | undefined): Record<string, number | bigint> {
  const out: Record<string, number | bigint> = {};
  for (const [field, { offset, size }] of structFields(btf, name)) {
    out[field] = size === 8 ? getU64(bytes, offset) : getU32(bytes, offset);
  }
  return out;
}

/** The byte offset of a member of a kernel struct, looking inside anonymous struct and union members. */
function memberOffset(btf: Btf, typeId: number, name: string): number | undefined {
  const t = btf.resolve(typeId);
  if (t.kind !== "struct" && t.kind !== "union") return undefined;
  for (const m of t.members) {
    if (m.name === name) return m.bitOffset / 8;
    if (m.name === "") {
      const inner = memberOffset(btf, m.typeId, name);
      if (inner !== undefined) return m.bitOffset / 8 + inner;
    }
  }
  return undefined;
}

/** The 1-based number of the first line of a testdata source that contains `marker`. */
function sourceLine(file: string, marker: string): number {
  const index = readFileSync(join(SOURCES, file), "utf8")
    .split("\n")
    .findIndex((l) => l.includes(marker));
  if (index < 0) throw new Error(`${marker} not found in ${file}`);
  return index + 1;
}

function text(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? b : b.subarray(0, nul));
}

/** What `bpftool prog show -j` prints for a program. */
interface BpftoolProg {
  readonly id: number;
  readonly type: string;
  readonly name: string;
  readonly btf_id?: number;
  readonly map_ids?: number[];
}

describe("sections.o", () => {
  beforeEach((t) => requireKernel(t, "6.6", "the tcx/ingress and tcx/egress programs (BPF_TCX_* attach types)"));

  /** Program type, bpftool's name for it, expected attach type, by program. */
  const programs: [string, ProgramType, string, string | undefined][] = [
    ["xdp_pass", "xdp", "xdp", "xdp"],
    ["xdp_drop_counted", "xdp", "xdp", "xdp"],
    ["tc_ok", "schedCls", "sched_cls", undefined],
    ["tc_shot_counted", "schedCls", "sched_cls", undefined],
    ["classifier_ok", "schedCls", "sched_cls", undefined],
    ["tcx_ingress_pass", "schedCls", "sched_cls", "tcxIngress"],
    ["tcx_egress_drop", "schedCls", "sched_cls", "tcxEgress"],
    ["sockops_ok", "sockOps", "sock_ops", "cgroupSockOps"],
    ["sk_msg_pass", "skMsg", "sk_msg", "skMsgVerdict"],
    ["stream_parser", "skSkb", "sk_skb", "skSkbStreamParser"],
    ["stream_verdict", "skSkb", "sk_skb", "skSkbStreamVerdict"],
    ["connect4_allow", "cgroupSockAddr", "cgroup_sock_addr", "cgroupInet4Connect"],
    ["connect6_allow", "cgroupSockAddr", "cgroup_sock_addr", "cgroupInet6Connect"],
    ["sendmsg4_allow", "cgroupSockAddr", "cgroup_sock_addr", "cgroupUdp4Sendmsg"],
    ["recvmsg4_allow", "cgroupSockAddr", "cgroup_sock_addr", "cgroupUdp4Recvmsg"],
    ["cgroup_skb_ingress_allow", "cgroupSkb", "cgroup_skb", "cgroupInetIngress"],
    ["cgroup_skb_egress_allow", "cgroupSkb", "cgroup_skb", "cgroupInetEgress"],
    ["socket_keep_all", "socketFilter", "socket_filter", undefined],
    ["kprobe_nanosleep", "kprobe", "kprobe", undefined],
    ["tracepoint_getpid", "tracepoint", "tracepoint", undefined],
    ["raw_tp_sys_enter", "rawTracepoint", "raw_tracepoint", undefined],
  ];

  test("loadCollection() loads all 21 programs with the type of their section; bpftool agrees", () => {
    const spec = objectSpec("sections");
    using coll = loadCollection(spec);
    expect([...coll.programs.keys()]).toEqual(programs.map(([name]) => name));
    for (const [name, type, bpftoolType, attachType] of programs) {
      const prog = coll.program(name);
      expect(spec.programs.get(name)?.type).toBe(type);
      expect(prog.expectedAttachType, name).toBe(attachType);
      const info = prog.info();
      expect(info, name).toMatchObject({ type, name: name.slice(0, 15) });
      expect(info.btfId, name).toBeGreaterThan(0);
      // bpftool takes the full name from the program's BTF func info when the kernel name is cut.
      const shown = bpftoolJson("prog", "show", "id", String(info.id)) as BpftoolProg;
      expect(shown, name).toMatchObject({ id: info.id, type: bpftoolType, name, btf_id: info.btfId });
    }
  });

  test("the second program of a section finds its map: test runs count into section_hits", () => {
    using coll = loadCollection(objectSpec("sections"));
    const hits = coll.map("section_hits");
    expect(run(coll.program("xdp_pass"))).toBe(XDP_PASS);
    // A run interrupted by a signal is started again: the counter it bumped is reset first.
    const zero = (slot: number) => (): void => void hits.set(u32(slot), new Uint8Array(8));
    expect(run(coll.program("xdp_drop_counted"), { repeat: 3, reset: zero(0) })).toBe(XDP_DROP);
    expect(run(coll.program("tc_ok"))).toBe(TC_ACT_OK);
    expect(run(coll.program("tc_shot_counted"), { repeat: 5, reset: zero(1) })).toBe(TC_ACT_SHOT);
    expect(run(coll.program("classifier_ok"))).toBe(TC_ACT_OK);
    expect(run(coll.program("tcx_egress_drop"))).toBe(TC_ACT_SHOT);
    // Socket filters see the packet after the Ethernet header.
    expect(run(coll.program("socket_keep_all"), { data: frame(77) })).toBe(77 - 14);
    expect(getU64(hits.get(u32(0)))).toBe(3n);
    expect(getU64(hits.get(u32(1)))).toBe(5n);
    const mapId = hits.info().id;
    expect(coll.program("xdp_drop_counted").info().mapIds).toEqual([mapId]);
    expect(coll.program("tc_shot_counted").info().mapIds).toEqual([mapId]);
    expect(coll.program("xdp_pass").info().mapIds).toEqual([]);
  });
});

describe("subprog.o", () => {
  test("subprog_tc returns 5 * skb->len and subprog_xdp XDP_PASS; each run counts in subprog_calls", () => {
    using coll = loadCollection(objectSpec("subprog"));
    const calls = coll.map("subprog_calls");
    expect(getU64(calls.get(u32(0)))).toBe(0n);
    expect(run(coll.program("subprog_tc"), { data: frame(64) })).toBe(320);
    expect(run(coll.program("subprog_tc"), { data: frame(101) })).toBe(505);
    expect(getU64(calls.get(u32(0)))).toBe(2n);
    // A run a signal interrupted is started again after the count is put back.
    const back = (): void => void calls.set(u32(0), new Uint8Array(new BigUint64Array([2n]).buffer));
    expect(run(coll.program("subprog_xdp"), { data: frame(64), repeat: 4, reset: back })).toBe(XDP_PASS);
    expect(getU64(calls.get(u32(0)))).toBe(6n);
  });

  test("each program carries its own copy of the subprograms: func info names them", () => {
    const spec = objectSpec("subprog");
    expect(
      spec.programs
        .get("subprog_tc")
        ?.funcInfo.map((f) => f.name)
        .sort(),
    ).toEqual(["add", "count_call", "global_len", "global_scale", "subprog_tc", "twice"]);
    expect(
      spec.programs
        .get("subprog_xdp")
        ?.funcInfo.map((f) => f.name)
        .sort(),
    ).toEqual(["add", "count_call", "subprog_xdp", "twice"]);
    using coll = loadCollection(spec);
    const info = coll.program("subprog_tc").info();
    const dump = bpftoolJson("prog", "dump", "xlated", "id", String(info.id)) as { proto?: string }[];
    // bpftool starts each function of the program with its prototype, such as "int twice(int x)".
    const functions = dump.flatMap((i) => (i.proto === undefined ? [] : [/(\w+)\(/.exec(i.proto)?.[1]]));
    expect(functions.sort()).toEqual(["add", "count_call", "global_len", "global_scale", "subprog_tc", "twice"]);
  });
});

describe("globals.o", () => {
  test("defaults: globals_tc returns magic (7) and writes .bss and .data, read back through variables", () => {
    using coll = loadCollection(objectSpec("globals"));
    const prog = coll.program("globals_tc");
    expect(coll.variable("bss_len").get()).toBe(0);
    expect(coll.variable("data_counter").get()).toBe(100n);
    expect(run(prog, { data: frame(64) })).toBe(7);
    expect(coll.variable("bss_magic_plus_one").get()).toBe(8);
    expect(coll.variable("bss_len").get()).toBe(64);
    expect(coll.variable("bss_big").get()).toBe(0x0102030405060708n);
    expect(text(coll.variable("bss_message").get() as Uint8Array)).toBe("magic=7");
    expect(coll.variable("data_counter").get()).toBe(101n);
    const pair = coll.variable("data_pair").get() as Uint8Array;
    expect(pair).toBeInstanceOf(Uint8Array);
    expect(pair.length).toBe(8);
    const dv = new DataView(pair.buffer, pair.byteOffset, 8);
    expect([dv.getUint32(0, true), dv.getInt32(4, true)]).toEqual([1, -3]);
    expect(coll.variable("custom_counter").get()).toBe(13);
    expect(run(prog, { data: frame(90) })).toBe(7);
    expect(coll.variable("bss_len").get()).toBe(90);
    expect(coll.variable("data_counter").get()).toBe(102n);
    expect(coll.variable("custom_counter").get()).toBe(23);
    // Constants read back from the frozen .rodata maps.
    expect(coll.variable("magic").get()).toBe(7);
    expect(coll.variable("small_signed").get()).toBe(-2);
    expect(coll.variable("enabled").get()).toBe(true);
    expect(coll.variable("custom_step").get()).toBe(10);
  });

  test("constants set before load change what the program computes", () => {
    const spec = objectSpec("globals");
    spec.constants.set("magic", 42).set("small_signed", -5).set("big_const", 0x1122334455667788n);
    using coll = loadCollection(spec);
    expect(run(coll.program("globals_tc"))).toBe(42);
    expect(coll.variable("magic").get()).toBe(42);
    expect(coll.variable("bss_magic_plus_one").get()).toBe(43);
    expect(coll.variable("bss_big").get()).toBe(0x1122334455667788n);
    expect(text(coll.variable("bss_message").get() as Uint8Array)).toBe("magic=42");
    const pair = coll.variable("data_pair").get() as Uint8Array;
    expect(new DataView(pair.buffer, pair.byteOffset, 8).getInt32(4, true)).toBe(-6);
  });

  test("enabled = false makes globals_tc return 0 while it still runs", () => {
    const spec = objectSpec("globals");
    spec.constants.set("enabled", false);
    using coll = loadCollection(spec);
    expect(run(coll.program("globals_tc"))).toBe(0);
    expect(coll.variable("enabled").get()).toBe(false);
    expect(text(coll.variable("bss_message").get() as Uint8Array)).toBe("magic=7");
  });

  test("variables written after load are what the next run sees", () => {
    using coll = loadCollection(objectSpec("globals"));
    coll.variable("data_counter").set(1000n);
    const pair = new Uint8Array(8);
    new DataView(pair.buffer).setUint32(0, 5, true);
    new DataView(pair.buffer).setInt32(4, 10, true);
    coll.variable("data_pair").set(pair);
    coll.variable("custom_counter").set(0);
    expect(coll.variable("data_counter").get()).toBe(1000n);
    run(coll.program("globals_tc"));
    expect(coll.variable("data_counter").get()).toBe(1001n);
    const after = coll.variable("data_pair").get() as Uint8Array;
    expect([...after]).toEqual([5, 0, 0, 0, 8, 0, 0, 0]);
    expect(coll.variable("custom_counter").get()).toBe(10);
    expect(() => coll.variable("data_counter").set(-1)).toThrow(RangeError);
    expect(() => coll.variable("data_pair").set(new Uint8Array(4))).toThrow(RangeError);
  });

  test("a .rodata variable cannot be set after load and the .rodata maps are frozen", () => {
    using coll = loadCollection(objectSpec("globals"));
    expect(() => coll.variable("magic").set(8)).toThrow(TypeError);
    expect(() => coll.variable("magic").set(8)).toThrow(/Cannot set variable "magic": it is a constant in \.rodata/);
    for (const name of [".rodata", ".rodata.custom", ".rodata.str1.1"]) {
      const map = coll.map(name);
      const value = map.get(u32(0)) as Uint8Array;
      try {
        map.set(u32(0), value);
        expect.unreachable(`${name} is writable`);
      } catch (err) {
        expect(err, name).toBeInstanceOf(SyscallError);
        expect((err as SyscallError).code, name).toBe("EPERM");
      }
    }
    expect(text(coll.map(".rodata.str1.1").get(u32(0)) as Uint8Array)).toBe("magic=%u");
    expect(run(coll.program("globals_tc"))).toBe(7);
  });

  test("bpftool map dump shows the BTF-typed values of .data and .bss as written", () => {
    using coll = loadCollection(objectSpec("globals"));
    coll.variable("data_counter").set(4242n);
    const pair = new Uint8Array(8);
    new DataView(pair.buffer).setUint32(0, 7, true);
    new DataView(pair.buffer).setInt32(4, -70, true);
    coll.variable("data_pair").set(pair);
    run(coll.program("globals_tc"), { data: frame(66) });
    const data = coll.map(".data").info();
    expect(data).toMatchObject({ name: "globals.data", type: "array", maxEntries: 1 });
    expect(data.btfId).toBeGreaterThan(0);
    const [entry] = bpftoolJson("map", "dump", "id", String(data.id)) as {
      formatted: { value: Record<string, unknown[]> };
    }[];
    expect(entry?.formatted.value).toEqual({ ".data": [{ data_counter: 4243 }, { data_pair: { a: 7, b: -72 } }] });
    const [bss] = bpftoolJson("map", "dump", "id", String(coll.map(".bss").info().id)) as {
      formatted: { value: Record<string, unknown[]> };
    }[];
    expect(bss?.formatted.value).toEqual({
      ".bss": [
        { bss_magic_plus_one: 8 },
        { bss_len: 66 },
        { bss_big: Number(0x0102030405060708n) },
        { bss_message: "magic=7" },
      ],
    });
  });
});

describe("tailcall.o", () => {
  test("tail_entry reaches jump_table[skb->mark] and falls through on empty slots", () => {
    using coll = loadCollection(objectSpec("tailcall"));
    const entry = coll.program("tail_entry");
    expect(run(entry, { mark: 0 })).toBe(10);
    expect(run(entry, { mark: 1 })).toBe(99);
    expect(run(entry, { mark: 2 })).toBe(20);
    expect(run(entry, { mark: 3 })).toBe(99);
    expect(run(entry, { mark: 4 })).toBe(99);
  });

  test("tail_entry_static reaches slot 2 until the slot is emptied", () => {
    using coll = loadCollection(objectSpec("tailcall"));
    const table = coll.map("jump_table");
    expect(run(coll.program("tail_entry_static"))).toBe(20);
    expect(table.delete(u32(2))).toBe(true);
    expect(run(coll.program("tail_entry_static"))).toBe(99);
    table.set(u32(2), coll.program("tail_target_a"));
    expect(run(coll.program("tail_entry_static"))).toBe(10);
  });

  test("jump_table holds the target programs in the slots .values names", () => {
    using coll = loadCollection(objectSpec("tailcall"));
    const table = coll.map("jump_table");
    expect(table.info()).toMatchObject({ type: "progArray", keySize: 4, valueSize: 4, maxEntries: 4 });
    expect(getU32(table.get(u32(0)))).toBe(coll.program("tail_target_a").info().id);
    expect(table.get(u32(1))).toBeUndefined();
    expect(getU32(table.get(u32(2)))).toBe(coll.program("tail_target_b").info().id);
    expect(table.get(u32(3))).toBeUndefined();
  });
});

describe("map_in_map.o", () => {
  test("the outer maps hold the inner maps their .values name", () => {
    using coll = loadCollection(objectSpec("map_in_map"));
    const outerArray = coll.map("outer_array");
    expect(outerArray.info()).toMatchObject({ type: "arrayOfMaps", valueSize: 4, maxEntries: 2 });
    expect(getU32(outerArray.get(u32(0)))).toBe(coll.map("inner_a").info().id);
    expect(getU32(outerArray.get(u32(1)))).toBe(coll.map("inner_b").info().id);
    const outerHash = coll.map("outer_hash");
    expect(outerHash.info()).toMatchObject({ type: "hashOfMaps", valueSize: 4, maxEntries: 4 });
    expect([...outerHash.keys()].map((k) => getU32(k))).toEqual([1]);
    expect(getU32(outerHash.get(u32(1)))).toBe(coll.map("inner_h").info().id);
    expect([...coll.map("outer_empty").keys()]).toEqual([]);
  });

  test("lookup_inner counts in outer_array[mark & 1] and stores skb->len in outer_hash[1][mark]", () => {
    using coll = loadCollection(objectSpec("map_in_map"));
    const prog = coll.program("lookup_inner");
    expect(run(prog, { mark: 0, data: frame(60) })).toBe(1);
    expect(run(prog, { mark: 0, data: frame(61) })).toBe(2);
    expect(run(prog, { mark: 5, data: frame(70) })).toBe(1);
    expect(getU64(coll.map("inner_a").get(u32(0)))).toBe(2n);
    expect(getU64(coll.map("inner_b").get(u32(0)))).toBe(1n);
    const innerH = coll.map("inner_h");
    expect(getU32(innerH.get(u32(0)))).toBe(61);
    expect(getU32(innerH.get(u32(5)))).toBe(70);
  });

  test("lookup_empty finds an inner map only after one is put into outer_empty", () => {
    using coll = loadCollection(objectSpec("map_in_map"));
    const prog = coll.program("lookup_empty");
    expect(run(prog, { mark: 3 })).toBe(0);
    using inner = createMap({ name: "dp_inner", type: "array", keySize: 4, valueSize: 4, maxEntries: 16 });
    coll.map("outer_empty").set(u32(3), inner);
    expect(run(prog, { mark: 3 })).toBe(1);
    expect(run(prog, { mark: 2 })).toBe(0);
  });
});

describe("core.o", () => {
  test("a relocation the target BTF cannot satisfy poisons its instruction, and the verifier error names the relocation", (t) => {
    requireObject(t, "core");
    // A target with no kernel types at all: field reads have no candidate.
    const tiny = buildBtf([
      { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
    ]);
    const before = openFds().length;
    let caught: unknown;
    try {
      loadCollection(objectSpec("core"), { targetBtf: tiny }).close();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(VerifierError);
    const err = caught as VerifierError;
    expect(err.message).toMatch(
      /^Cannot load schedCls program "core_values" of object "core" \(CO-RE relocation of instruction \d+, struct \S+ .* found no match in the kernel's BTF\)/,
    );
    expect(err.log.some((l) => l.includes("unknown#195896080"))).toBe(true);
    expect(err.source?.file).toBe("./bpf/testdata/core.c");
    expect(openFds().length).toBe(before);
  });

  test("core_values computes every field of struct core_result from the kernel's BTF", (t) => {
    requireObject(t, "core");
    const vmlinux = kernelBtf();
    const spec = objectSpec("core");
    using coll = loadCollection(spec);
    const data = frame(93);
    expect(run(coll.program("core_values"), { data })).toBe(93);

    const skb = vmlinux.typesByName("sk_buff", "struct")[0];
    if (skb?.kind !== "struct") throw new Error("vmlinux has no struct sk_buff");
    const mapType = vmlinux.typesByName("bpf_map_type", "enum")[0];
    const ringbuf =
      mapType?.kind === "enum" ? mapType.values.find((v) => v.name === "BPF_MAP_TYPE_RINGBUF")?.value : undefined;
    expect(ringbuf).toBe(27);
    const local = spec.btf?.typesByName("sk_buff", "struct")[0];
    expect(local).toBeDefined();

    const result = decodeStruct(spec.btf as Btf, "core_result", coll.map("core_out").get(u32(0)));
    expect(result).toEqual({
      skb_len_exists: 1,
      missing_field_exists: 0,
      skb_len_size: 4,
      skb_len_offset: memberOffset(vmlinux, skb.id, "len"),
      sk_buff_exists: 1,
      missing_type_exists: 0,
      sk_buff_size: skb.size,
      sk_buff_kernel_id: skb.id,
      sk_buff_local_id: local?.id,
      ringbuf_exists: 1,
      missing_enum_exists: 0,
      tgid: process.pid,
      ringbuf_value: 27n,
      tgid_flavour: process.pid,
      net_ns_inum: statSync("/proc/self/ns/net").ino,
      skb_len: 93,
      pad: 0,
    });
  });

  test("coreRelocations lists every relocation of core_values with its kernel value", (t) => {
    requireObject(t, "core");
    const vmlinux = kernelBtf();
    const spec = objectSpec("core");
    using coll = loadCollection(spec);
    const relos = coll.coreRelocations.get("core_values") ?? [];
    expect(relos.length).toBe(spec.programs.get("core_values")?.coreRelos.length);
    expect(new Set(relos.map((r) => r.relo.kind))).toEqual(
      new Set([
        "fieldByteOffset",
        "fieldByteSize",
        "fieldExists",
        "typeIdLocal",
        "typeIdTarget",
        "typeExists",
        "typeSize",
        "enumvalExists",
        "enumvalValue",
      ]),
    );
    expect(relos.filter((r) => r.targetValue === "poisoned")).toEqual([]);
    const skb = vmlinux.typesByName("sk_buff", "struct")[0];
    if (skb?.kind !== "struct") throw new Error("vmlinux has no struct sk_buff");
    const values = (kind: string): unknown[] => relos.filter((r) => r.relo.kind === kind).map((r) => r.targetValue);
    expect(values("typeIdTarget")).toEqual([skb.id]);
    expect(values("typeSize")).toEqual([skb.size]);
    expect(values("enumvalValue")).toEqual([27]);
    expect(values("fieldExists").sort()).toEqual([0, 1]);
    expect(values("typeExists").sort()).toEqual([0, 1]);
    expect(values("enumvalExists").sort()).toEqual([0, 1]);
    for (const r of relos) expect(r.description).not.toBe("");
  });
});

describe("pinned_a.o, pinned_b.o, pinned_bad.o", () => {
  const PINNED = "dp_testdata_pinned";

  test("b reuses the map a pinned by name and reads what a wrote", () => {
    using dir = bpffsDir();
    using a = loadCollection(objectSpec("pinned_a"), { pinPath: dir.path });
    expect(readdirSync(dir.path)).toEqual([PINNED]);
    expect(run(a.program("pinned_put"), { mark: 3, data: frame(77) })).toBe(0);
    expect(run(a.program("pinned_put"), { mark: 9, data: frame(120) })).toBe(0);
    using b = loadCollection(objectSpec("pinned_b"), { pinPath: dir.path });
    expect(b.map(PINNED).info().id).toBe(a.map(PINNED).info().id);
    expect(run(b.program("pinned_get"), { mark: 3 })).toBe(77);
    expect(run(b.program("pinned_get"), { mark: 9 })).toBe(120);
    expect(run(b.program("pinned_get"), { mark: 4 })).toBe(-1 >>> 0);
    expect(b.program("pinned_get").info().mapIds).toEqual([a.map(PINNED).info().id]);
    expect(readdirSync(dir.path)).toEqual([PINNED]);
  });

  test("the pin outlives the collection that made it", () => {
    using dir = bpffsDir();
    let id: number;
    {
      using a = loadCollection(objectSpec("pinned_a"), { pinPath: dir.path });
      run(a.program("pinned_put"), { mark: 1, data: frame(55) });
      id = a.map(PINNED).info().id;
    }
    using b = loadCollection(objectSpec("pinned_b"), { pinPath: dir.path });
    expect(b.map(PINNED).info().id).toBe(id);
    expect(run(b.program("pinned_get"), { mark: 1 })).toBe(55);
  });

  test("pinned_bad fails with a MapCompatibilityError naming valueSize and leaves nothing behind", () => {
    using dir = bpffsDir();
    using a = loadCollection(objectSpec("pinned_a"), { pinPath: dir.path });
    const fds = openFds().length;
    try {
      loadCollection(objectSpec("pinned_bad"), { pinPath: dir.path });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(MapCompatibilityError);
      const e = err as MapCompatibilityError;
      expect(e).toMatchObject({ name: "MapCompatibilityError", map: PINNED, field: "valueSize" });
      expect(e.message).toBe(
        `Cannot use map "${PINNED}" of object "pinned_bad" pinned at ${JSON.stringify(dir.join(PINNED))}: valueSize is 8, the object needs 4`,
      );
    }
    expect(openFds().length).toBe(fds);
    expect(readdirSync(dir.path)).toEqual([PINNED]);
    expect(a.map(PINNED).closed).toBe(false);
  });

  test("options.maps replaces the object's map and the collection does not close it", () => {
    using dir = bpffsDir();
    using a = loadCollection(objectSpec("pinned_a"), { pinPath: dir.path });
    using empty = bpffsDir();
    run(a.program("pinned_put"), { mark: 2, data: frame(88) });
    const shared = a.map(PINNED);
    {
      using b = loadCollection(objectSpec("pinned_b"), { pinPath: empty.path, maps: { [PINNED]: shared } });
      expect(b.map(PINNED)).toBe(shared);
      expect(run(b.program("pinned_get"), { mark: 2 })).toBe(88);
    }
    expect(shared.closed).toBe(false);
    expect(readdirSync(empty.path)).toEqual([]);
    expect(getU64(shared.get(u32(2)))).toBe(88n);
  });

  test("options.maps with an incompatible map fails with a MapCompatibilityError", () => {
    using other = createMap({ name: "dp_u32", type: "hash", keySize: 4, valueSize: 4, maxEntries: 16 });
    const fds = openFds().length;
    expect(() => loadCollection(objectSpec("pinned_b"), { maps: { [PINNED]: other } })).toThrow(
      `Cannot use map "${PINNED}" of object "pinned_b" given in options.maps: valueSize is 4, the object needs 8`,
    );
    expect(openFds().length).toBe(fds);
    expect(other.closed).toBe(false);
  });
});

describe("kconfig.o", () => {
  function procConfig(t: SkipContext): Map<string, string> {
    if (!existsSync("/proc/config.gz")) t.skip("no /proc/config.gz (CONFIG_IKCONFIG_PROC is off)");
    const config = new Map<string, string>();
    for (const line of gunzipSync(readFileSync("/proc/config.gz")).toString("utf8").split("\n")) {
      const m = /^(CONFIG_\w+)=(.*)$/.exec(line);
      if (m !== null) config.set(m[1] as string, m[2] as string);
    }
    return config;
  }

  function versionCode(): number {
    const v = kernelVersion();
    return (v.major << 16) + (v.minor << 8) + Math.min(v.patch, 255);
  }

  test("kconfig_values sees LINUX_KERNEL_VERSION, CONFIG_BPF_SYSCALL and CONFIG_HZ of the running kernel", (t) => {
    const config = procConfig(t);
    const spec = objectSpec("kconfig");
    using coll = loadCollection(spec);
    expect(run(coll.program("kconfig_values"))).toBe(config.get("CONFIG_BPF_SYSCALL") === "y" ? 1 : 0);
    const [major, minor] = (execFileSync("uname", ["-r"], { encoding: "utf8" }).match(/^(\d+)\.(\d+)/) ?? [])
      .slice(1)
      .map(Number);
    expect(versionCode() >> 8).toBe(((major as number) << 8) + (minor as number));
    expect(decodeStruct(spec.btf as Btf, "kconfig_result", coll.map("kconfig_out").get(u32(0)))).toEqual({
      linux_kernel_version: versionCode(),
      bpf_syscall: config.get("CONFIG_BPF_SYSCALL") === "y" ? 1 : 0,
      hz: Number(config.get("CONFIG_HZ")),
      no_such_option: 0,
    });
  });

  test("kernelConfig overrides the running kernel's configuration", () => {
    const spec = objectSpec("kconfig");
    const kernelConfig = new Map([
      ["CONFIG_BPF_SYSCALL", "n"],
      ["CONFIG_HZ", "1234"],
      ["CONFIG_DP_NO_SUCH_OPTION", "y"],
    ]);
    using coll = loadCollection(spec, { kernelConfig });
    expect(run(coll.program("kconfig_values"))).toBe(0);
    expect(decodeStruct(spec.btf as Btf, "kconfig_result", coll.map("kconfig_out").get(u32(0)))).toEqual({
      linux_kernel_version: versionCode(),
      bpf_syscall: 0,
      hz: 1234,
      no_such_option: 1,
    });
    // The .kconfig map is frozen like .rodata.
    const kconfigMap = coll.map(".kconfig");
    expect(() => kconfigMap.set(u32(0), kconfigMap.get(u32(0)) as Uint8Array)).toThrow(SyscallError);
  });

  test("a strong CONFIG_ extern missing from the configuration fails with a KconfigError", () => {
    const fds = openFds().length;
    try {
      loadCollection(objectSpec("kconfig"), { kernelConfig: new Map([["CONFIG_BPF_SYSCALL", "y"]]) });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(KconfigError);
      expect(err).toMatchObject({ name: "KconfigError", externName: "CONFIG_HZ" });
      expect((err as Error).message).toMatch(/^Cannot set \.kconfig extern "CONFIG_HZ": the option is not set/);
      expect((err as Error).message).toMatch(/\(object "kconfig"\)$/);
    }
    expect(openFds().length).toBe(fds);
  });
});

describe("libbpf_style.o", () => {
  /** Ring buffer records are the 20-byte event plus an 8-byte header, rounded up to 8. */
  const RECORD = 32;
  /** The ring buffer refuses a record that would fill it exactly (producer − consumer must stay below its size). */
  const CAPACITY = (256 * 1024) / RECORD - 1;

  function lost(coll: Collection): bigint {
    return perCpuSum(coll.map("lost").get(u32(0)));
  }

  /**
   * Runs the program once per packet, `times` times: single runs, not
   * `repeat`, which a signal can interrupt after some repetitions (their
   * events already reserved) so that the retried run would count them twice.
   */
  function runEach(prog: BpfProgram, data: Uint8Array, times: number): number {
    let retval = -1;
    for (let i = 0; i < times; i++) retval = run(prog, { data });
    return retval;
  }

  test("loads unmodified; tc_events returns TC_ACT_OK and reserves one event per IPv4 packet", (t) => {
    requireObject(t, "libbpf_style");
    using coll = loadCollection(objectSpec("libbpf_style"));
    expect(coll.map("events").info()).toMatchObject({ type: "ringbuf", maxEntries: 256 * 1024 });
    const prog = coll.program("tc_events");
    expect(run(prog, { data: ipv4Packet(IPPROTO_UDP) })).toBe(TC_ACT_OK);
    expect(lost(coll)).toBe(0n);
    // Nobody reads the ring buffer: once it is full, every further event is counted in `lost`.
    expect(runEach(prog, ipv4Packet(IPPROTO_TCP), CAPACITY + 99)).toBe(TC_ACT_OK);
    expect(lost(coll)).toBe(100n);
  });

  test("packets that are not IPv4 produce no events", (t) => {
    requireObject(t, "libbpf_style");
    using coll = loadCollection(objectSpec("libbpf_style"));
    expect(runEach(coll.program("tc_events"), frame(64), CAPACITY + 10)).toBe(TC_ACT_OK);
    const arp = frame(64);
    arp.set([0x08, 0x06], 12);
    expect(runEach(coll.program("tc_events"), arp, CAPACITY + 10)).toBe(TC_ACT_OK);
    expect(lost(coll)).toBe(0n);
  });

  test("the const volatile only_protocol set before load filters the events", (t) => {
    requireObject(t, "libbpf_style");
    const spec = objectSpec("libbpf_style");
    spec.constants.set("only_protocol", IPPROTO_UDP);
    using coll = loadCollection(spec);
    expect(coll.variable("only_protocol").get()).toBe(IPPROTO_UDP);
    const prog = coll.program("tc_events");
    expect(runEach(prog, ipv4Packet(IPPROTO_TCP), CAPACITY + 50)).toBe(TC_ACT_OK);
    expect(lost(coll)).toBe(0n);
    expect(runEach(prog, ipv4Packet(IPPROTO_UDP), CAPACITY + 50)).toBe(TC_ACT_OK);
    expect(lost(coll)).toBe(50n);
  });
});

describe("verifier_fail.o", () => {
  test("deref_unchecked is rejected with a VerifierError that names the marked source line", () => {
    const line = sourceLine("verifier_fail.c", "/* VERIFIER_FAIL_LINE");
    const fds = openFds().length;
    try {
      loadCollection(objectSpec("verifier_fail"));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VerifierError);
      const e = err as VerifierError;
      expect(e).toMatchObject({ name: "VerifierError", syscall: "bpf", op: "BPF_PROG_LOAD", code: "EACCES" });
      expect(e.source).toMatchObject({ file: "./bpf/testdata/verifier_fail.c", line });
      expect(e.source?.text).toContain("return *value + 1;");
      expect(e.message).toContain(`verifier_fail.c:${line}`);
      expect(e.message).toMatch(/^Cannot load schedCls program "deref_unchecked"/);
      expect(e.message).toMatch(/invalid mem access 'map_value_or_null'/);
      // The summary is short; the whole log is kept.
      expect(e.log.length).toBeGreaterThan(3);
      expect(e.log.some((l) => l.includes("R0 invalid mem access 'map_value_or_null'"))).toBe(true);
      expect(e.log.some((l) => /^0: /.test(l))).toBe(true);
      expect(e.formatLog()).toBe(e.log.join("\n"));
    }
    expect(openFds().length).toBe(fds);
  });

  test('programs: ["ok"] loads the good program alone', () => {
    using coll = loadCollection(objectSpec("verifier_fail"), { programs: ["ok"] });
    expect([...coll.programs.keys()]).toEqual(["ok"]);
    expect([...coll.maps.keys()]).toEqual([]);
    expect(run(coll.program("ok"))).toBe(0);
  });
});

describe("loadCollection() with a subset of programs", () => {
  test('programs: ["tail_entry"] loads the prog array and the programs it holds', () => {
    using coll = loadCollection(objectSpec("tailcall"), { programs: ["tail_entry"] });
    expect([...coll.programs.keys()]).toEqual(["tail_target_a", "tail_target_b", "tail_entry"]);
    expect([...coll.maps.keys()]).toEqual(["jump_table"]);
    expect(run(coll.program("tail_entry"), { mark: 2 })).toBe(20);
    expect(run(coll.program("tail_entry"), { mark: 0 })).toBe(10);
  });

  test("a subset loads only the maps its programs use", () => {
    using coll = loadCollection(objectSpec("sections"), { programs: ["xdp_pass", "tc_shot_counted"] });
    expect([...coll.programs.keys()]).toEqual(["xdp_pass", "tc_shot_counted"]);
    expect([...coll.maps.keys()]).toEqual(["section_hits"]);
    using bare = loadCollection(objectSpec("sections"), { programs: ["tc_ok"] });
    expect([...bare.maps.keys()]).toEqual([]);
  });

  test("a map pinned by name whose name would escape pinPath is a RangeError before any system call", () => {
    const spec = objectSpec("pinned_a");
    const [name, map] = [...spec.maps].find(([, m]) => m.pinning === "byName") ?? [];
    expect(map).toBeDefined();
    for (const bad of ["..", ".", "../evil", "a/b"]) {
      const maps = new Map([...spec.maps].map(([n, m]) => (n === name && map ? [bad, { ...map, name: bad }] : [n, m])));
      const programs = new Map(
        [...spec.programs].map(([n, p]) => [
          n,
          { ...p, references: p.references.map((r) => ("map" in r && r.map === name ? { ...r, map: bad } : r)) },
        ]),
      );
      const evil = { ...spec, maps, programs } as CollectionSpec;
      const previous = setSys(forbiddenSys());
      try {
        expect(() => loadCollection(evil, { pinPath: "/sys/fs/bpf/dp-never-created" })).toThrow(
          new RangeError(
            `Cannot pin map ${JSON.stringify(bad)} of object "pinned_a" by name: the name is not a file name (it is ".", "..", or holds "/" or a NUL)`,
          ),
        );
      } finally {
        setSys(previous);
      }
    }
  });

  test("an unknown program name is a RangeError before any system call", () => {
    const spec = objectSpec("tailcall");
    const previous = setSys(forbiddenSys());
    try {
      expect(() => loadCollection(spec, { programs: ["tail_entry", "nope"] })).toThrow(RangeError);
      expect(() => loadCollection(spec, { programs: ["nope"] })).toThrow(
        /^Cannot load program "nope": not in object "tailcall" \(programs: tail_target_a, tail_target_b, tail_entry, tail_entry_static\)$/,
      );
    } finally {
      setSys(previous);
    }
  });
});

describe("bpftool cross-checks", () => {
  /** `; <source text> [file:<name> line_num:<n> line_col:<c>]` lines of `bpftool prog dump xlated … linum`. */
  const LINUM = /^; (.*) \[file:(\S+) line_num:(\d+) line_col:(\d+)\]$/;

  test("prog dump xlated linum shows source lines that match the object's sources", () => {
    using coll = loadCollection(objectSpec("subprog"));
    const id = coll.program("subprog_tc").info().id;
    const dump = bpftoolText("prog", "dump", "xlated", "id", String(id), "linum");
    const source = readFileSync(join(SOURCES, "subprog.c"), "utf8").split("\n");
    const marked = dump
      .split("\n")
      .map((l) => LINUM.exec(l))
      .filter((m) => m !== null);
    expect(marked.length).toBeGreaterThan(5);
    for (const m of marked) {
      expect(m[2]).toBe("./bpf/testdata/subprog.c");
      expect(source[Number(m[3]) - 1]?.trim()).toBe((m[1] as string).trim());
    }
    const lines = new Set(marked.map((m) => Number(m[3])));
    expect(lines.has(sourceLine("subprog.c", "return twice(len) + global_scale(len);"))).toBe(true);
    expect(lines.has(sourceLine("subprog.c", "return a + b;"))).toBe(true);
  });

  test("btf dump of the program's and the map's BTF lists the object's types", (t) => {
    requireObject(t, "core");
    using coll = loadCollection(objectSpec("core"));
    const prog = coll.program("core_values").info();
    const map = coll.map("core_out").info();
    expect(prog.btfId).toBeGreaterThan(0);
    expect(map.btfId).toBe(prog.btfId);
    const dump = bpftoolText("btf", "dump", "id", String(prog.btfId));
    expect(dump).toMatch(/^\[\d+\] STRUCT 'core_result' size=72 vlen=17$/m);
    expect(dump).toMatch(/^\s+'net_ns_inum' type_id=\d+ bits_offset=480$/m);
    expect(dump).toMatch(/^\[\d+\] FUNC 'core_values' type_id=\d+ linkage=global$/m);
    expect(dump).toMatch(/^\[\d+\] DATASEC '\.maps' size=\d+ vlen=1$/m);
  });

  test("prog show names the program's BTF and maps", () => {
    using coll = loadCollection(objectSpec("map_in_map"));
    const info = coll.program("lookup_inner").info();
    const shown = bpftoolText("prog", "show", "id", String(info.id));
    expect(shown).toMatch(new RegExp(`^${info.id}: sched_cls\\s+name lookup_inner\\s+tag ${info.tag}`, "m"));
    expect(shown).toMatch(new RegExp(`\\bbtf_id ${info.btfId}\\b`));
    const ids = [coll.map("outer_array").info().id, coll.map("outer_hash").info().id];
    expect([...info.mapIds].sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
    expect(shown).toMatch(new RegExp(`map_ids ${info.mapIds.join(",")}\n`));
  });
});

describe("Collection", () => {
  test("close() closes every map and program it made; nothing stays open", () => {
    const fds = openFds().length;
    const coll = loadCollection(objectSpec("globals"));
    const maps: BpfMap[] = [...coll.maps.values()];
    const programs: BpfProgram[] = [...coll.programs.values()];
    expect(openFds().length).toBeGreaterThan(fds);
    coll.close();
    coll.close();
    expect(maps.every((m) => m.closed)).toBe(true);
    expect(programs.every((p) => p.closed)).toBe(true);
    expect(openFds().length).toBe(fds);
  });

  test("map(), program() and variable() name what exists when the name is unknown", () => {
    using coll = loadCollection(objectSpec("subprog"));
    expect(() => coll.map("nope")).toThrow(/No map "nope" in the collection \(maps: subprog_calls\)/);
    expect(() => coll.program("nope")).toThrow(RangeError);
    expect(() => coll.variable("nope")).toThrow(RangeError);
  });
});
