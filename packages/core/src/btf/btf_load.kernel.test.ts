import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { createMap, loadProgram, VerifierError } from "@dp/core";
import { openFds, rawFd } from "@dp/core/internal";
import { requireKernel, requireRoot } from "@dp/core/testing";
import { type Btf, buildBtf, encodeBtf, parseBtf } from "./btf.ts";
import { encodeFuncInfo, encodeLineInfo, parseBtfExt } from "./btf_ext.ts";
import {
  type BtfFeatures,
  findKernelBtfType,
  fixupDatasecs,
  hasBtfFeature,
  kernelBtf,
  kernelBtfFeatures,
  loadBtf,
  sanitizeBtf,
} from "./btf_load.ts";
import { btfKindsObject, HAS_CLANG, readObjectFile, ROOT, type TestObject } from "./_test_btf.ts";

beforeEach((t) => requireRoot(t));

const XDP_COUNT = join(ROOT, "bpf/build/testdata/xdp_count.o");
const NONE: BtfFeatures = {
  func: false,
  funcGlobal: false,
  datasec: false,
  float: false,
  declTag: false,
  typeTag: false,
  enum64: false,
};
const BPF_PSEUDO_MAP_FD = 1;

function bpftool(...args: string[]): unknown {
  return JSON.parse(execFileSync("bpftool", ["-j", ...args], { encoding: "utf8" }));
}

function objectBtf(path: string): { obj: TestObject; btf: Btf } {
  const obj = readObjectFile(path);
  return { obj, btf: fixupDatasecs(parseBtf(obj.btf), obj.layouts) };
}

function typeId(btf: Btf, name: string): number {
  const t = btf.typesByName(name)[0];
  if (t === undefined) throw new Error(`no type ${name}`);
  return t.id;
}

/** count_packets's instructions with the xdp_counters reference pointing at `mapFd`. */
function relocatedXdp(obj: TestObject, mapFd: number): Uint8Array {
  const insns = (obj.sections.get("xdp")?.bytes ?? new Uint8Array()).slice();
  const rel = obj.sections.get(".relxdp")?.bytes ?? new Uint8Array();
  const rdv = new DataView(rel.buffer, rel.byteOffset, rel.byteLength);
  const idv = new DataView(insns.buffer);
  for (let p = 0; p + 16 <= rel.length; p += 16) {
    const off = Number(rdv.getBigUint64(p, true));
    const sym = obj.symbols[Number(rdv.getBigUint64(p + 8, true) >> 32n) - 1];
    expect(sym?.name).toBe("xdp_counters");
    expect(insns[off]).toBe(0x18);
    insns[off + 1] = ((insns[off + 1] as number) & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
    idv.setInt32(off + 4, mapFd, true);
  }
  return insns;
}

describe("loadBtf()", () => {
  test("loads xdp_count.o's BTF: bpftool lists it by id", () => {
    const { btf } = objectBtf(XDP_COUNT);
    using handle = loadBtf(btf);
    const info = handle.info();
    expect(info.id).toBeGreaterThan(0);
    expect(info.size).toBe(encodeBtf(btf).length);
    const shown = bpftool("btf", "show", "id", String(info.id)) as { id: number; size: number };
    expect(shown).toMatchObject({ id: info.id, size: info.size });
    handle.close();
    expect(handle.closed).toBe(true);
    handle.close();
    expect(() => handle.fd).toThrow(/closed/);
  });

  test("gives a map typed keys and values: bpftool map dump prints member names", () => {
    const { btf } = objectBtf(XDP_COUNT);
    using handle = loadBtf(btf);
    using map = createMap({
      name: "btf_counters",
      type: "array",
      keySize: 4,
      valueSize: 16,
      maxEntries: 2,
      btf: { fd: handle.fd, keyTypeId: typeId(btf, "__u32"), valueTypeId: typeId(btf, "counters") },
    });
    const value = new Uint8Array(16);
    new DataView(value.buffer).setBigUint64(0, 7n, true);
    new DataView(value.buffer).setBigUint64(8, 512n, true);
    map.set(new Uint8Array([1, 0, 0, 0]), value);
    const id = map.info().id;
    expect(bpftool("map", "show", "id", String(id))).toMatchObject({ btf_id: handle.info().id });
    const dump = bpftool("map", "dump", "id", String(id)) as { formatted: { key: number; value: unknown } }[];
    expect(dump.map((e) => e.formatted)).toEqual([
      { key: 0, value: { packets: 0, bytes: 0 } },
      { key: 1, value: { packets: 7, bytes: 512 } },
    ]);
  });

  test("carries func_info and line_info into a program: bpftool shows count_packets's source lines", () => {
    const { obj, btf } = objectBtf(XDP_COUNT);
    const ext = parseBtfExt(obj.ext as Uint8Array, btf);
    using handle = loadBtf(btf);
    using map = createMap({
      type: "percpuArray",
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
      btf: { fd: handle.fd, keyTypeId: typeId(btf, "__u32"), valueTypeId: typeId(btf, "counters") },
    });
    const funcs = ext.funcInfo.get("xdp") ?? [];
    const lines = ext.lineInfo.get("xdp") ?? [];
    using prog = loadProgram({
      name: "count_packets",
      type: "xdp",
      license: "Dual BSD/GPL",
      instructions: relocatedXdp(obj, rawFd(map.fd)),
      btf: {
        fd: handle.fd,
        funcInfo: encodeFuncInfo(funcs.map((f) => ({ instruction: f.insnOffset / 8, typeId: f.typeId }))),
        lineInfo: encodeLineInfo(lines.map((l) => ({ ...l, instruction: l.insnOffset / 8 }))),
      },
    });
    expect(prog.info().btfId).toBe(handle.info().id);
    const xlated = execFileSync("bpftool", ["prog", "dump", "xlated", "id", String(prog.info().id), "linum"], {
      encoding: "utf8",
    });
    expect(xlated).toMatch(/int count_packets\(struct xdp_md \*ctx\)/);
    expect(xlated).toMatch(/__u32 key = 0; \[file:\.\/bpf\/testdata\/xdp_count\.c line_num:20 line_col:8\]/);
    expect(prog.testRun({ data: new Uint8Array(64) }).retval).toBe(2);
    const dump = bpftool("map", "dump", "id", String(map.info().id)) as {
      formatted: { values: { value: { packets: number; bytes: number } }[] };
    }[];
    const sum = (dump[0]?.formatted.values ?? []).reduce(
      (a, v) => ({ packets: a.packets + v.value.packets, bytes: a.bytes + v.value.bytes }),
      { packets: 0, bytes: 0 },
    );
    expect(sum).toEqual({ packets: 1, bytes: 64 });
  });

  test("throws a VerifierError with the kernel's BTF log when the BTF is broken", () => {
    // Straight from clang: DATASEC sizes are 0 until fixupDatasecs.
    const raw = readObjectFile(XDP_COUNT).btf;
    let err: unknown;
    try {
      loadBtf(raw, { logSize: 16 }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    const v = err as VerifierError;
    expect(v).toMatchObject({ op: "BPF_BTF_LOAD", code: "EINVAL", truncated: false });
    expect(v.log.join("\n")).toMatch(/magic: 0xeb9f/);
    expect(v.log.at(-1)).toMatch(/DATASEC \.maps.*size == 0/);
    expect(v.message).toMatch(
      /^Cannot load BTF: EINVAL \(invalid argument\): \[\d+\] DATASEC \.maps size=0 vlen=1 size == 0/,
    );
  });

  test("rejects a Btf the kernel cannot take even after sanitizing, naming the type", () => {
    const btf = buildBtf([
      { kind: "int", id: 1, name: "wide", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 40 },
    ]);
    expect(() => loadBtf(btf).close()).toThrow(/\[1\] INT wide size=4 .*nr_bits exceeds type_size/);
  });

  test("loads BTF with every rewrite forced on (the view of a pre-5.0 kernel)", () => {
    const { btf } = objectBtf(XDP_COUNT);
    using handle = loadBtf(btf, { features: NONE });
    using map = createMap({
      type: "array",
      keySize: 4,
      valueSize: 16,
      maxEntries: 1,
      btf: { fd: handle.fd, keyTypeId: typeId(btf, "__u32"), valueTypeId: typeId(btf, "counters") },
    });
    const dump = bpftool("map", "dump", "id", String(map.info().id)) as { formatted: unknown }[];
    expect(dump[0]?.formatted).toEqual({ key: 0, value: { packets: 0, bytes: 0 } });
    const raw = execFileSync("bpftool", ["btf", "dump", "id", String(handle.info().id)], { encoding: "utf8" });
    expect(raw).toMatch(/STRUCT '_maps' size=32 vlen=1/);
    expect(raw).toMatch(/TYPEDEF 'count_packets'/);
    expect(raw).not.toMatch(/DATASEC|FUNC_PROTO|\bVAR\b/);
  });

  test.skipIf(!HAS_CLANG)("loads btf_kinds.o's BTF as it is and with every rewrite forced on", () => {
    const { btf } = objectBtf(btfKindsObject());
    using plain = loadBtf(btf);
    using old = loadBtf(sanitizeBtf(btf, NONE), { sanitize: false });
    expect(plain.info().id).not.toBe(old.info().id);
    const raw = execFileSync("bpftool", ["btf", "dump", "id", String(old.info().id)], { encoding: "utf8" });
    expect(raw).toMatch(/INT 'enum64_placeholder' size=1/);
    expect(raw).not.toMatch(/FLOAT|ENUM64|DECL_TAG|TYPE_TAG|DATASEC/);
  });
});

describe("hasBtfFeature()", () => {
  test("finds every feature on a 6.x kernel and caches the answers", (t) => {
    requireKernel(t, "6.0", "BTF_KIND_ENUM64");
    const features = kernelBtfFeatures();
    expect(features).toEqual({
      func: true,
      funcGlobal: true,
      datasec: true,
      float: true,
      declTag: true,
      typeTag: true,
      enum64: true,
    });
    expect(hasBtfFeature("enum64")).toBe(true);
    expect(() => hasBtfFeature("nope" as keyof BtfFeatures)).toThrow(TypeError);
  });
});

describe("kernelBtf()", () => {
  test("parses vmlinux once and returns the same object", () => {
    const a = kernelBtf();
    expect(kernelBtf()).toBe(a);
    expect(a.typesByName("sk_buff", "struct")).toHaveLength(1);
  });
});

describe("findKernelBtfType()", () => {
  test("finds attach targets in vmlinux; for a missing one it goes through every kernel BTF object and closes each", () => {
    const iter = findKernelBtfType("bpf_iter_tcp", "func");
    expect(iter).toEqual({
      id: kernelBtf().typesByName("bpf_iter_tcp", "func")[0]?.id,
      module: undefined,
      handle: undefined,
      btf: kernelBtf(),
    });
    // A loaded BTF object of our own is listed too, but it is no kernel BTF.
    using own = loadBtf(
      buildBtf([
        { kind: "funcProto", id: 1, name: "", returnTypeId: 0, params: [] },
        { kind: "func", id: 2, name: "dp_no_such_function", typeId: 1, linkage: "global" },
      ]),
    );
    expect(own.info().id).toBeGreaterThan(0);
    const fds = openFds().length;
    expect(findKernelBtfType("dp_no_such_function", "func")).toBeUndefined();
    expect(openFds().length).toBe(fds);
    // Modules listed by the kernel are what /sys/kernel/btf holds besides vmlinux.
    const modules = readdirSync("/sys/kernel/btf").filter((m) => m !== "vmlinux");
    for (const m of modules.slice(0, 1)) {
      const btf = parseBtf(new Uint8Array(readFileSync(join("/sys/kernel/btf", m))), { base: kernelBtf() });
      const fn = btf.types.find((t) => t.kind === "func");
      if (fn === undefined) continue;
      const found = findKernelBtfType(fn.name, "func");
      try {
        expect(found?.module === m || found?.module === undefined).toBe(true);
      } finally {
        found?.handle?.close();
      }
    }
  });
});
