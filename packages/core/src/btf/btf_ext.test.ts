import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, test } from "vitest";
import { type Btf, BtfSyntaxError, parseBtf } from "./btf.ts";
import { type BtfExt, encodeFuncInfo, encodeLineInfo, parseBtfExt } from "./btf_ext.ts";
import { btfKindsObject, HAS_CLANG, readObjectFile, ROOT, type TestObject, testdataObjects } from "./_test_btf.ts";

const XDP_COUNT = join(ROOT, "bpf/build/testdata/xdp_count.o");

function load(path: string): { obj: TestObject; btf: Btf; ext: BtfExt } {
  const obj = readObjectFile(path);
  const btf = parseBtf(obj.btf);
  if (obj.ext === undefined) throw new Error(`${path} has no .BTF.ext`);
  return { obj, btf, ext: parseBtfExt(obj.ext, btf) };
}

const sources = new Map<string, string[] | undefined>();

/** The lines of a source file a line_info record names, or undefined when it is not in the checkout. */
function sourceLines(fileName: string): string[] | undefined {
  if (!sources.has(fileName)) {
    const path = fileName.startsWith("/") ? fileName : join(ROOT, fileName);
    sources.set(fileName, existsSync(path) ? readFileSync(path, "utf8").split("\n") : undefined);
  }
  return sources.get(fileName);
}

function expectLinesMatchSources(name: string, ext: BtfExt, obj: TestObject): number {
  let checked = 0;
  for (const [section, records] of ext.lineInfo) {
    const size = obj.sections.get(section)?.size;
    expect(size, `${name}: section ${section}`).toBeDefined();
    let last = -1;
    for (const r of records) {
      expect(r.insnOffset % 8).toBe(0);
      expect(r.insnOffset).toBeLessThan(size ?? 0);
      expect(r.insnOffset).toBeGreaterThanOrEqual(last);
      last = r.insnOffset;
      const lines = sourceLines(r.fileName);
      if (lines === undefined) continue;
      expect(r.sourceLine, `${name} ${r.fileName}:${r.line}`).toBe(lines[r.line - 1]);
      checked++;
    }
  }
  return checked;
}

describe("parseBtfExt()", () => {
  test("reads xdp_count.o: count_packets starts the xdp section and every line_info names its xdp_count.c line", () => {
    const { obj, btf, ext } = load(XDP_COUNT);
    expect(ext.funcInfoRecordSize).toBe(8);
    expect(ext.lineInfoRecordSize).toBe(16);
    expect([...ext.funcInfo]).toEqual([
      ["xdp", [{ insnOffset: 0, typeId: btf.typesByName("count_packets")[0]?.id, name: "count_packets" }]],
    ]);
    const lines = ext.lineInfo.get("xdp") ?? [];
    expect(lines.length).toBeGreaterThan(5);
    expect(new Set(lines.map((l) => l.fileName))).toEqual(new Set(["./bpf/testdata/xdp_count.c"]));
    expect(lines[0]).toMatchObject({
      insnOffset: 0,
      sourceLine: "int count_packets(struct xdp_md *ctx)",
      line: 18,
      column: 0,
    });
    expect(lines.some((l) => l.sourceLine.includes("c->bytes += ctx->data_end - ctx->data;"))).toBe(true);
    expect(lines.find((l) => l.sourceLine === "\t__u32 key = 0;")).toMatchObject({ line: 20, column: 8 });
    for (const l of lines) {
      expect(btf.stringAt(l.fileNameOffset)).toBe(l.fileName);
      expect(btf.stringAt(l.sourceLineOffset)).toBe(l.sourceLine);
    }
    expect(expectLinesMatchSources("xdp_count.o", ext, obj)).toBe(lines.length);
    expect(ext.coreRelos.size).toBe(0);
  });

  test.skipIf(!HAS_CLANG)(
    "reads btf_kinds.o: a static subprogram in .text and CO-RE relocations with access strings",
    () => {
      const { obj, btf, ext } = load(btfKindsObject());
      expect(ext.funcInfo.get("socket")?.map((f) => f.name)).toEqual(["kinds"]);
      expect(ext.funcInfo.get(".text")?.map((f) => [f.name, f.insnOffset])).toEqual([["helper", 0]]);
      expect(ext.lineInfo.get(".text")?.[0]).toMatchObject({
        fileName: "./packages/core/testdata/btf_kinds.c",
        sourceLine: "\treturn (f->a + f->c) * scale;",
      });
      expectLinesMatchSources("btf_kinds.o", ext, obj);
      const relos = ext.coreRelos.get("socket") ?? [];
      expect(ext.coreReloRecordSize).toBe(16);
      expect(relos.map((r) => [btf.typeById(r.typeId)?.name, r.accessString, r.kind])).toEqual([
        ["sk_buff___local", "0:1", "fieldByteOffset"],
        ["sk_buff___local", "0:0", "fieldByteSize"],
        ["sk_buff___local", "0:1", "fieldExists"],
        ["sk_buff___local", "0", "typeSize"],
        ["big", "0", "enumvalValue"],
      ]);
      const code = obj.sections.get("socket")?.bytes ?? new Uint8Array();
      for (const r of relos) expect(r.insnOffset).toBeLessThan(code.length);
    },
  );

  test("reads the .BTF.ext of every test object, and each source line is the line of its file", () => {
    const paths = [...testdataObjects(), ...(HAS_CLANG ? [btfKindsObject()] : [])];
    for (const path of paths) {
      const obj = readObjectFile(path);
      if (obj.ext === undefined) continue;
      const btf = parseBtf(obj.btf);
      const ext = parseBtfExt(obj.ext, btf);
      for (const [section, funcs] of ext.funcInfo) {
        expect(obj.sections.has(section), `${basename(path)} ${section}`).toBe(true);
        for (const f of funcs) expect(btf.typeById(f.typeId)?.kind).toBe("func");
      }
      expectLinesMatchSources(basename(path), ext, obj);
    }
  });

  describe("corrupt input", () => {
    const { obj, btf } = load(XDP_COUNT);
    const raw = obj.ext as Uint8Array;
    const dv0 = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const hdrLen = dv0.getUint32(4, true);
    const func = hdrLen + dv0.getUint32(8, true);
    const line = hdrLen + dv0.getUint32(16, true);
    const cases: [string, (dv: DataView) => void, number, RegExp][] = [
      ["bad magic", (dv) => dv.setUint16(0, 0x1234, true), 0, /bad magic 0x1234/],
      ["big-endian", (dv) => dv.setUint16(0, 0x9feb, true), 0, /big-endian/],
      ["version", (dv) => dv.setUint8(2, 3), 2, /unsupported version 3/],
      ["header length", (dv) => dv.setUint32(4, 12, true), 4, /header length 12/],
      ["func_info outside", (dv) => dv.setUint32(12, 0xffff_0000, true), 8, /func_info block/],
      ["func_info unaligned", (dv) => dv.setUint32(8, 2, true), 8, /not 4-byte aligned/],
      ["record size", (dv) => dv.setUint32(func, 4, true), func, /func_info record size 4 is invalid/],
      ["no records", (dv) => dv.setUint32(func + 8, 0, true), func + 8, /has no records/],
      ["too many records", (dv) => dv.setUint32(func + 8, 0x1000_0000, true), func + 8, /268435456 records of 8 bytes/],
      ["section name", (dv) => dv.setUint32(func + 4, 0xfff_fff, true), func + 4, /section name offset 16777215/],
      [
        "not a func",
        (dv) => dv.setUint32(func + 12 + 4, 1, true),
        func + 16,
        /func_info type 1 is a ptr, expected a func/,
      ],
      [
        "unaligned instruction",
        (dv) => dv.setUint32(func + 12, 3, true),
        func + 12,
        /instruction offset 3 is not a multiple of 8/,
      ],
      ["file name", (dv) => dv.setUint32(line + 12 + 4, 0xfff_fff, true), line + 16, /file name offset/],
      [
        "a short block",
        (dv) => dv.setUint32(12, dv.getUint32(12, true) - 4, true),
        func + 8,
        /has 1 records of 8 bytes, but only 4 bytes are left/,
      ],
      [
        "a truncated section header",
        (dv) => dv.setUint32(12, 8, true),
        func + 4,
        /truncated func_info section header: 4 bytes left, expected 8/,
      ],
    ];
    test.each(cases)("throws a BtfSyntaxError with the offset for %s", (_what, corrupt, offset, message) => {
      const b = raw.slice();
      const dv = new DataView(b.buffer);
      corrupt(dv);
      let err: unknown;
      try {
        parseBtfExt(b, btf);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BtfSyntaxError);
      expect((err as Error).message).toMatch(message);
      expect((err as BtfSyntaxError).section).toBe(".BTF.ext");
      expect((err as BtfSyntaxError).offset).toBe(offset);
    });

    test.skipIf(!HAS_CLANG)("throws a BtfSyntaxError for an unknown CO-RE relocation kind", () => {
      const k = load(btfKindsObject());
      const b = (k.obj.ext as Uint8Array).slice();
      const dv = new DataView(b.buffer);
      const core = dv.getUint32(4, true) + dv.getUint32(24, true);
      dv.setUint32(core + 12 + 12, 42, true);
      expect(() => parseBtfExt(b, k.btf)).toThrow(/core_relo kind 42 is unknown/);
    });
  });

  describe("fuzzing", () => {
    const inputs = [XDP_COUNT, ...(HAS_CLANG ? [btfKindsObject()] : [])].map((p) => {
      const { obj, btf } = load(p);
      return [basename(p), obj.ext as Uint8Array, btf] as const;
    });

    test.each(inputs)("every truncation of %s's .BTF.ext gives records or a BtfSyntaxError", (_name, raw, btf) => {
      for (let len = 0; len < raw.length; len++) {
        const start = performance.now();
        try {
          parseBtfExt(raw.subarray(0, len), btf);
        } catch (err) {
          if (!(err instanceof BtfSyntaxError)) throw err;
        }
        expect(performance.now() - start).toBeLessThan(1000); // a hang detector, not a speed target
      }
      expect(() => parseBtfExt(raw.subarray(0, 10), btf)).toThrow(BtfSyntaxError);
    });

    test.each(inputs)("bit flips of %s's .BTF.ext give records or a BtfSyntaxError", (_name, raw, btf) => {
      let a = 0x5eed;
      const rand = (): number => {
        a = (Math.imul(a, 1103515245) + 12345) >>> 0;
        return a / 4294967296;
      };
      for (let i = 0; i < 3000; i++) {
        const b = raw.slice();
        for (let f = 0; f < 1 + Math.floor(rand() * 3); f++) {
          const pos = Math.floor(rand() * b.length);
          b[pos] = (b[pos] as number) ^ (1 << Math.floor(rand() * 8));
        }
        const start = performance.now();
        try {
          parseBtfExt(b, btf);
        } catch (err) {
          if (!(err instanceof BtfSyntaxError)) throw err;
        }
        expect(performance.now() - start).toBeLessThan(1000); // a hang detector, not a speed target
      }
    });
  });
});

describe("encodeFuncInfo() and encodeLineInfo()", () => {
  test("write kernel records from instruction indexes", () => {
    const { btf, ext } = load(XDP_COUNT);
    const lines = ext.lineInfo.get("xdp") ?? [];
    const bytes = encodeLineInfo(lines.map((l) => ({ ...l, instruction: l.insnOffset / 8 })));
    expect(bytes.length).toBe(lines.length * 16);
    const dv = new DataView(bytes.buffer);
    lines.forEach((l, i) => {
      expect(dv.getUint32(i * 16, true)).toBe(l.insnOffset / 8);
      expect(btf.stringAt(dv.getUint32(i * 16 + 8, true))).toBe(l.sourceLine);
      expect(dv.getUint32(i * 16 + 12, true) >>> 10).toBe(l.line);
    });
    expect(encodeFuncInfo([{ instruction: 3, typeId: 19 }])).toEqual(new Uint8Array([3, 0, 0, 0, 19, 0, 0, 0]));
  });

  test("refuse values that do not fit their fields", () => {
    expect(() => encodeFuncInfo([{ instruction: -1, typeId: 1 }])).toThrow(RangeError);
    expect(() =>
      encodeLineInfo([{ instruction: 0, fileNameOffset: 0, sourceLineOffset: 0, line: 1 << 22, column: 0 }]),
    ).toThrow(/line 4194304/);
    expect(() =>
      encodeLineInfo([{ instruction: 0, fileNameOffset: 0, sourceLineOffset: 0, line: 1, column: 1024 }]),
    ).toThrow(/column 1024/);
  });
});
