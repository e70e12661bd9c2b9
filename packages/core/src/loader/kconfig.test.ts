import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { describe, expect, test } from "vitest";
import { type BtfType, buildBtf } from "../btf/btf.ts";
import { parseBtf } from "../btf/btf.ts";
import { parseElf } from "./elf.ts";
import {
  kconfigData,
  type KconfigExtern,
  KconfigError,
  kconfigExterns,
  parseKernelConfig,
  readKernelConfig,
} from "./kconfig.ts";
import { HAS_BPFTOOL, ROOT } from "../btf/_test_btf.ts";
import { forbiddenSys, setSys } from "@dp/core/internal";

function int(id: number, name: string, size: number, signed: boolean, bool = false): BtfType {
  return { kind: "int", id, name, size, signed, char: false, bool, bitOffset: 0, bits: size * 8 };
}

// Every shape an extern can have, and some it cannot.
const BTF = buildBtf([
  int(1, "int", 4, true),
  int(2, "unsigned int", 4, false),
  int(3, "_Bool", 1, false, true),
  int(4, "char", 1, true),
  int(5, "unsigned char", 1, false),
  int(6, "short", 2, true),
  int(7, "unsigned long long", 8, false),
  int(8, "long long", 8, true),
  {
    kind: "enum",
    id: 9,
    name: "libbpf_tristate",
    size: 4,
    signed: false,
    values: [
      { name: "TRI_NO", value: 0 },
      { name: "TRI_YES", value: 1 },
      { name: "TRI_MODULE", value: 2 },
    ],
  },
  { kind: "array", id: 10, name: "", elementTypeId: 4, indexTypeId: 2, length: 8 },
  { kind: "typedef", id: 11, name: "__u32", typeId: 2 },
  { kind: "const", id: 12, name: "", typeId: 11 },
  { kind: "volatile", id: 13, name: "", typeId: 3 },
  {
    kind: "struct",
    id: 14,
    name: "s",
    size: 4,
    kindFlag: false,
    members: [{ name: "a", typeId: 1, bitOffset: 0, bitSize: 0 }],
  },
  int(15, "__int128", 16, true),
  { kind: "enum", id: 16, name: "other", size: 4, signed: false, values: [{ name: "A", value: 0 }] },
  { kind: "array", id: 17, name: "", elementTypeId: 1, indexTypeId: 2, length: 2 },
  { kind: "array", id: 18, name: "", elementTypeId: 4, indexTypeId: 2, length: 0 },
  {
    kind: "enum64",
    id: 19,
    name: "libbpf_tristate",
    size: 8,
    signed: false,
    values: [{ name: "TRI_MODULE", value: 2n }],
  },
  { kind: "var", id: 20, name: "CONFIG_VAR", typeId: 1, linkage: "extern" },
  { kind: "ptr", id: 21, name: "", typeId: 4 },
  int(22, "unsigned short", 2, false),
  int(23, "_Bool", 2, false, true),
  { kind: "typedef", id: 24, name: "s_t", typeId: 14 },
]);

const T = {
  int: 1,
  uint: 2,
  bool: 3,
  char: 4,
  uchar: 5,
  short: 6,
  u64: 7,
  s64: 8,
  tristate: 9,
  char8: 10,
  constU32: 12,
  volatileBool: 13,
  struct: 14,
  int128: 15,
  otherEnum: 16,
  intArray: 17,
  char0: 18,
  tristate64: 19,
  var: 20,
  ptr: 21,
  u16: 22,
  wideBool: 23,
  structTypedef: 24,
} as const;

const V6_18_44 = { major: 6, minor: 18, patch: 44 };

/** The bytes of one extern `CONFIG_X` of `typeId` set to `raw`. */
function value(typeId: number, raw: string): number[] {
  const layout = kconfigData(BTF, [{ name: "CONFIG_X", typeId, weak: false }], {
    config: new Map([["CONFIG_X", raw]]),
  });
  return [...layout.data];
}

/** The error of setting one extern `CONFIG_X` of `typeId` to `raw`. */
function failure(typeId: number, raw: string | undefined, weak = false): KconfigError {
  const config = new Map(raw === undefined ? [] : [["CONFIG_X", raw]]);
  try {
    kconfigData(BTF, [{ name: "CONFIG_X", typeId, weak }], { config, kernelVersion: V6_18_44 });
  } catch (err) {
    expect(err).toBeInstanceOf(KconfigError);
    expect((err as KconfigError).externName).toBe("CONFIG_X");
    expect((err as KconfigError).name).toBe("KconfigError");
    expect((err as KconfigError).message).toMatch(/^Cannot set \.kconfig extern "CONFIG_X": /);
    return err as KconfigError;
  }
  return expect.unreachable("no error");
}

function le(v: bigint, size: number): number[] {
  return Array.from({ length: size }, (_, i) => Number((BigInt.asUintN(64, v) >> BigInt(i * 8)) & 0xffn));
}

describe("kconfigData()", () => {
  test("kconfigData() lays externs out by alignment (largest first), then size, then name", () => {
    const externs: KconfigExtern[] = [
      { name: "CONFIG_B_BOOL", typeId: T.bool, weak: false },
      { name: "CONFIG_STR", typeId: T.char8, weak: false },
      { name: "CONFIG_A_BOOL", typeId: T.bool, weak: false },
      { name: "CONFIG_SHORT", typeId: T.short, weak: false },
      { name: "CONFIG_U64", typeId: T.u64, weak: false },
      { name: "CONFIG_INT", typeId: T.int, weak: false },
      { name: "LINUX_KERNEL_VERSION", typeId: T.uint, weak: false },
    ];
    const config = new Map([
      ["CONFIG_A_BOOL", "y"],
      ["CONFIG_B_BOOL", "n"],
      ["CONFIG_STR", '"abc"'],
      ["CONFIG_SHORT", "-2"],
      ["CONFIG_U64", "0x1122334455667788"],
      ["CONFIG_INT", "250"],
    ]);
    const layout = kconfigData(BTF, externs, { config, kernelVersion: V6_18_44 });
    expect([...layout.offsets]).toEqual([
      ["CONFIG_U64", 0],
      ["CONFIG_INT", 8],
      ["LINUX_KERNEL_VERSION", 12],
      ["CONFIG_SHORT", 16],
      ["CONFIG_A_BOOL", 18],
      ["CONFIG_B_BOOL", 19],
      ["CONFIG_STR", 20],
    ]);
    expect(layout.size).toBe(28);
    expect([...layout.data]).toEqual([
      ...le(0x1122334455667788n, 8),
      ...le(250n, 4),
      ...le((6n << 16n) + (18n << 8n) + 44n, 4),
      ...le(-2n, 2),
      1,
      0,
      ...[0x61, 0x62, 0x63, 0, 0, 0, 0, 0],
    ]);
  });

  test("kconfigData() returns empty data when there are no externs", () => {
    expect(kconfigData(BTF, [], { config: new Map() })).toEqual({
      size: 0,
      offsets: new Map(),
      data: new Uint8Array(0),
    });
  });

  test.each([
    ["bool", T.bool, "y", [1]],
    ["bool", T.bool, "n", [0]],
    ["volatile bool", T.volatileBool, "y", [1]],
    ["tristate", T.tristate, "y", [1, 0, 0, 0]],
    ["tristate", T.tristate, "n", [0, 0, 0, 0]],
    ["tristate", T.tristate, "m", [2, 0, 0, 0]],
    ["64-bit tristate", T.tristate64, "m", [2, 0, 0, 0, 0, 0, 0, 0]],
    ["char", T.char, "y", [0x79]],
    ["char", T.char, "n", [0x6e]],
    ["char", T.char, "m", [0x6d]],
    ["char", T.char, "65", [65]],
    ["char", T.char, "-1", [0xff]],
    ["unsigned char", T.uchar, "255", [0xff]],
    ["int", T.int, "250", le(250n, 4)],
    ["int", T.int, "0x1f", le(0x1fn, 4)],
    ["int", T.int, "0X1F", le(0x1fn, 4)],
    ["int", T.int, "010", le(8n, 4)],
    ["int", T.int, "0", le(0n, 4)],
    ["int", T.int, "-5", le(-5n, 4)],
    ["int", T.int, "-2147483648", le(-2147483648n, 4)],
    ["int", T.int, "2147483647", le(2147483647n, 4)],
    ["unsigned int", T.uint, "4294967295", le(4294967295n, 4)],
    ["const __u32", T.constU32, "0x10", le(16n, 4)],
    ["short", T.short, "-32768", le(-32768n, 2)],
    ["unsigned short", T.u16, "65535", le(65535n, 2)],
    ["unsigned long long", T.u64, "18446744073709551615", le((1n << 64n) - 1n, 8)],
    ["unsigned long long", T.u64, "-1", le(-1n, 8)],
    ["long long", T.s64, "-9223372036854775808", le(-(1n << 63n), 8)],
    ["char[8]", T.char8, '"hello"', [0x68, 0x65, 0x6c, 0x6c, 0x6f, 0, 0, 0]],
    ["char[8]", T.char8, '""', [0, 0, 0, 0, 0, 0, 0, 0]],
    ["char[8] (cut to 7 bytes and a NUL)", T.char8, '"0123456789"', [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0]],
    ["the VAR's type", T.var, "7", le(7n, 4)],
  ])("kconfigData() stores %s from %j", (_type, typeId, raw, bytes) => {
    expect(value(typeId, raw)).toEqual(bytes);
  });

  test.each([
    ["bool", T.bool, "m", /value "m" needs a tristate or char type, not bool/],
    ["bool", T.bool, "1", /value "1" needs an integer type, not bool/],
    ["bool", T.bool, '"y"', /value "y" needs a char array type, not bool/],
    ["tristate", T.tristate, "2", /needs an integer type, not enum libbpf_tristate/],
    ["int", T.int, "y", /value "y" needs a bool, tristate or char type, not int/],
    ["int", T.int, '"250"', /needs a char array type, not int/],
    ["int", T.int, "2147483648", /value 2147483648 is out of range for a 4-byte signed integer/],
    ["int", T.int, "-2147483649", /value -2147483649 is out of range for a 4-byte signed integer/],
    ["unsigned int", T.uint, "4294967296", /out of range for a 4-byte unsigned integer/],
    ["unsigned int", T.uint, "-1", /out of range for a 4-byte unsigned integer/],
    ["unsigned char", T.uchar, "256", /out of range for a 1-byte unsigned integer/],
    ["char", T.char, "128", /out of range for a 1-byte signed integer/],
    ["short", T.short, "32768", /out of range for a 2-byte signed integer/],
    ["unsigned long long", T.u64, "18446744073709551616", /is not a valid integer/],
    ["int", T.int, "12abc", /value "12abc" is not a valid integer/],
    ["int", T.int, "0x", /is not a valid integer/],
    ["int", T.int, "08", /is not a valid integer/],
    ["int", T.int, "250 ", /is not a valid integer/],
    ["char[8]", T.char8, "y", /needs a bool, tristate or char type, not char array/],
    ["char[8]", T.char8, "7", /needs an integer type, not char array/],
    ["char[8]", T.char8, '"open', /invalid string value "open/],
    ["char[8]", T.char8, '"', /invalid string value "/],
  ])("kconfigData() rejects a %s from %j", (_type, typeId, raw, message) => {
    expect(failure(typeId, raw).message).toMatch(message);
  });

  test.each([
    ["a struct", T.struct, /unsupported type struct "s" \(id 14\)/],
    ["a typedef of a struct", T.structTypedef, /unsupported type struct "s"/],
    ["a 16-byte integer", T.int128, /unsupported type int "__int128"/],
    ["a 2-byte bool", T.wideBool, /unsupported type int "_Bool"/],
    ["an enum other than libbpf_tristate", T.otherEnum, /unsupported type enum "other"/],
    ["an int array", T.intArray, /unsupported type array/],
    ["an empty char array", T.char0, /unsupported type array/],
    ["a pointer", T.ptr, /unsupported type ptr/],
  ])("kconfigData() rejects %s even for a weak extern", (_what, typeId, message) => {
    expect(failure(typeId, "y", true).message).toMatch(message);
  });

  test("kconfigData() rejects a type id that does not exist", () => {
    expect(failure(99, "y").message).toMatch(/its BTF type 99 does not exist/);
  });

  test("kconfigData() leaves a missing weak option zero and names a missing strong one", () => {
    const layout = kconfigData(
      BTF,
      [
        { name: "CONFIG_X", typeId: T.int, weak: true },
        { name: "CONFIG_Y", typeId: T.bool, weak: true },
      ],
      { config: new Map([["CONFIG_Y", "y"]]) },
    );
    expect([...layout.data]).toEqual([0, 0, 0, 0, 1]);
    expect(failure(T.int, undefined).message).toMatch(/the option is not set in the kernel configuration/);
  });

  test("kconfigData() encodes LINUX_KERNEL_VERSION with the patch level capped at 255", () => {
    const externs = [{ name: "LINUX_KERNEL_VERSION", typeId: T.uint, weak: false }];
    const at = (patch: number): number[] => [
      ...kconfigData(BTF, externs, { kernelVersion: { major: 5, minor: 10, patch } }).data,
    ];
    expect(at(44)).toEqual(le((5n << 16n) + (10n << 8n) + 44n, 4));
    expect(at(300)).toEqual(le((5n << 16n) + (10n << 8n) + 255n, 4));
    const asBool = () =>
      kconfigData(BTF, [{ name: "LINUX_KERNEL_VERSION", typeId: T.bool, weak: false }], { kernelVersion: V6_18_44 });
    expect(asBool).toThrow(/"LINUX_KERNEL_VERSION": value 397868 is not a bool/);
    const asShort = () =>
      kconfigData(BTF, [{ name: "LINUX_KERNEL_VERSION", typeId: T.short, weak: false }], { kernelVersion: V6_18_44 });
    expect(asShort).toThrow(/out of range for a 2-byte signed integer/);
  });

  test("kconfigData() rejects unknown LINUX_ externs unless weak, and names other than CONFIG_ and LINUX_", () => {
    const config = new Map<string, string>();
    const one = (name: string, weak: boolean) => kconfigData(BTF, [{ name, typeId: T.bool, weak }], { config });
    expect(() => one("LINUX_HAS_TIME_TRAVEL", false)).toThrow(/"LINUX_HAS_TIME_TRAVEL": unknown LINUX_ extern/);
    expect([...one("LINUX_HAS_TIME_TRAVEL", true).data]).toEqual([0]);
    expect(() => one("HZ", true)).toThrow(new KconfigError("HZ", "unknown extern (expected a CONFIG_ or LINUX_ name)"));
  });

  test("kconfigData() takes LINUX_ externs from the configuration first, without probing the kernel", () => {
    const config = new Map([
      ["LINUX_HAS_BPF_COOKIE", "y"],
      ["LINUX_HAS_SYSCALL_WRAPPER", "n"],
      ["LINUX_KERNEL_VERSION", "0x60000"],
    ]);
    const externs = [
      { name: "LINUX_HAS_BPF_COOKIE", typeId: T.bool, weak: false },
      { name: "LINUX_HAS_SYSCALL_WRAPPER", typeId: T.bool, weak: false },
      { name: "LINUX_KERNEL_VERSION", typeId: T.uint, weak: false },
    ];
    const restore = setSys(forbiddenSys());
    try {
      const layout = kconfigData(BTF, externs, { config });
      const at = (name: string): number => layout.offsets.get(name) ?? -1;
      expect(layout.data[at("LINUX_HAS_BPF_COOKIE")]).toBe(1);
      expect(layout.data[at("LINUX_HAS_SYSCALL_WRAPPER")]).toBe(0);
      expect(new DataView(layout.data.buffer).getUint32(at("LINUX_KERNEL_VERSION"), true)).toBe(0x60000);
    } finally {
      setSys(restore);
    }
  });

  test("kconfigData() rejects two externs with the same name", () => {
    const extern = { name: "CONFIG_X", typeId: T.int, weak: false };
    expect(() => kconfigData(BTF, [extern, extern], { config: new Map([["CONFIG_X", "1"]]) })).toThrow(
      /"CONFIG_X": declared twice/,
    );
  });
});

describe("parseKernelConfig()", () => {
  test("parseKernelConfig() keeps CONFIG_ lines with raw values and skips comments and unset options", () => {
    const text = [
      "#",
      "# Automatically generated file; DO NOT EDIT.",
      'CONFIG_CC_VERSION_TEXT="gcc (GCC) 14.2.0"',
      "CONFIG_HZ=250",
      "# CONFIG_NUMA is not set",
      "",
      'CONFIG_CMDLINE="a=b c"',
      "CONFIG_BPF=y",
      "CONFIG_HZ=1000",
    ].join("\n");
    expect([...parseKernelConfig(text)]).toEqual([
      ["CONFIG_CC_VERSION_TEXT", '"gcc (GCC) 14.2.0"'],
      ["CONFIG_HZ", "250"],
      ["CONFIG_CMDLINE", '"a=b c"'],
      ["CONFIG_BPF", "y"],
    ]);
  });

  test.each(["CONFIG_HZ", "CONFIG_HZ="])("parseKernelConfig() rejects %j", (line) => {
    expect(() => parseKernelConfig(`CONFIG_A=y\n${line}\n`)).toThrow(
      new SyntaxError(
        `Invalid kernel configuration at line 2: expected CONFIG_NAME=value, found ${JSON.stringify(line)}`,
      ),
    );
  });
});

const PROC_CONFIG = "/proc/config.gz";
const HAS_PROC_CONFIG = existsSync(PROC_CONFIG);

describe("readKernelConfig()", () => {
  test.skipIf(!HAS_PROC_CONFIG)("readKernelConfig() reads /proc/config.gz once", () => {
    const config = readKernelConfig();
    expect(readKernelConfig()).toBe(config);
    const text = gunzipSync(readFileSync(PROC_CONFIG)).toString("utf8");
    const lines = text.split("\n").filter((l) => l.startsWith("CONFIG_"));
    expect(config.size).toBe(new Set(lines.map((l) => l.slice(0, l.indexOf("=")))).size);
    expect(`CONFIG_BPF=${config.get("CONFIG_BPF")}`).toBe(lines.find((l) => l.startsWith("CONFIG_BPF=")));
  });
});

const KCONFIG_OBJECT = join(ROOT, "bpf/build/testdata/kconfig.o");

function kconfigObject(): { elf: ReturnType<typeof parseElf>; btf: ReturnType<typeof parseBtf> } {
  const elf = parseElf(new Uint8Array(readFileSync(KCONFIG_OBJECT)));
  const btf = parseBtf(elf.sectionByName(".BTF")?.data() ?? new Uint8Array());
  return { elf, btf };
}

describe("kconfigExterns()", () => {
  test("kconfigExterns() finds kconfig.o's four externs, one weak, with their types", () => {
    const { elf, btf } = kconfigObject();
    const externs = kconfigExterns(elf, btf);
    expect(externs.map((e) => [e.name, btf.resolve(e.typeId).name, e.weak])).toEqual([
      ["LINUX_KERNEL_VERSION", "unsigned int", false],
      ["CONFIG_BPF_SYSCALL", "_Bool", false],
      ["CONFIG_HZ", "int", false],
      ["CONFIG_DP_NO_SUCH_OPTION", "_Bool", true],
    ]);
  });

  test("kconfigExterns() rejects an extern symbol whose BTF variable is not extern", () => {
    const { elf } = kconfigObject();
    const btf = buildBtf([
      int(1, "int", 4, true),
      { kind: "var", id: 2, name: "CONFIG_HZ", typeId: 1, linkage: "global" },
      { kind: "datasec", id: 3, name: ".kconfig", size: 0, vars: [{ typeId: 2, offset: 0, size: 4 }] },
    ]);
    expect(() => kconfigExterns(elf, btf)).toThrow(
      /"CONFIG_HZ": its BTF var \(id 2\) has global linkage, expected extern/,
    );
  });

  test("kconfigData() lays kconfig.o out as bpftool's skeleton does", (t) => {
    if (!HAS_BPFTOOL) return t.skip("needs bpftool");
    const { elf, btf } = kconfigObject();
    const layout = kconfigData(btf, kconfigExterns(elf, btf), {
      config: new Map([
        ["CONFIG_BPF_SYSCALL", "y"],
        ["CONFIG_HZ", "100"],
      ]),
      kernelVersion: V6_18_44,
    });
    const skeleton = execFileSync("bpftool", ["gen", "skeleton", KCONFIG_OBJECT], { encoding: "utf8" });
    const body = /struct kconfig__kconfig \{\n([^}]*)\}/.exec(skeleton)?.[1] ?? "";
    const members = [...body.matchAll(/(\w+);/g)].map((m) => m[1]);
    expect(members).toEqual([...layout.offsets.keys()]);
    expect([...layout.offsets.values()]).toEqual([0, 4, 8, 9]);
    expect(layout.size).toBe(10);
  });

  test.skipIf(!HAS_PROC_CONFIG)("kconfigData() fills kconfig.o's externs from the running kernel", () => {
    const { elf, btf } = kconfigObject();
    const layout = kconfigData(btf, kconfigExterns(elf, btf));
    const dv = new DataView(layout.data.buffer);
    const at = (name: string): number => layout.offsets.get(name) ?? -1;
    const text = gunzipSync(readFileSync(PROC_CONFIG)).toString("utf8");
    const hz = /^CONFIG_HZ=(\d+)$/m.exec(text)?.[1];
    expect(hz).toBeDefined();
    expect(dv.getInt32(at("CONFIG_HZ"), true)).toBe(Number(hz));
    expect(dv.getUint8(at("CONFIG_BPF_SYSCALL"))).toBe(/^CONFIG_BPF_SYSCALL=y$/m.test(text) ? 1 : 0);
    expect(dv.getUint8(at("CONFIG_DP_NO_SUCH_OPTION"))).toBe(0);
    const [major, minor, patch] = (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release()) ?? [])
      .slice(1)
      .map((n) => Number(n ?? 0));
    expect(dv.getUint32(at("LINUX_KERNEL_VERSION"), true)).toBe(
      ((major ?? 0) << 16) + ((minor ?? 0) << 8) + Math.min(patch ?? 0, 255),
    );
  });
});
