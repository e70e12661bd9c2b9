import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { HAS_CLANG, ROOT } from "../btf/_test_btf.ts";
import { MapDefinitionError } from "./object_maps.ts";
import { parseElf } from "./elf.ts";
import {
  type CollectionProgramSpec,
  type CollectionSpec,
  ObjectError,
  parseCollectionSpec,
  readCollectionSpec,
} from "./collection_spec.ts";

const DIR = join(ROOT, "bpf/build/testdata");
/** Objects that parse; unknown_section.o is refused (tested below). */
const OBJECTS = readdirSync(DIR)
  .filter((f) => f.endsWith(".o") && f !== "unknown_section.o")
  .sort();
/** Objects without a license section. */
const NO_LICENSE = new Set(["libbpf_nolicense.o"]);

function spec(name: string): CollectionSpec {
  return readCollectionSpec(join(DIR, `${name}.o`));
}

function program(s: CollectionSpec, name: string): CollectionProgramSpec {
  const p = s.programs.get(name);
  if (p === undefined) throw new Error(`no program ${name}`);
  return p;
}

interface Insn {
  readonly op: number;
  readonly src: number;
  readonly imm: number;
}

function insns(p: CollectionProgramSpec): Insn[] {
  const dv = new DataView(p.instructions.buffer, p.instructions.byteOffset, p.instructions.byteLength);
  const out: Insn[] = [];
  for (let i = 0; i < p.instructions.length / 8; i++) {
    out.push({ op: dv.getUint8(i * 8), src: dv.getUint8(i * 8 + 1) >> 4, imm: dv.getInt32(i * 8 + 4, true) });
  }
  return out;
}

describe("readCollectionSpec()", () => {
  test.each(OBJECTS)("parses %s", (file) => {
    const s = readCollectionSpec(join(DIR, file));
    expect(s.name).toBe(file.replace(/\.o$/, ""));
    expect(s.programs.size).toBeGreaterThan(0);
    expect(s.license).toMatch(NO_LICENSE.has(file) ? /^$/ : /GPL/);
    for (const p of s.programs.values()) {
      expect(p.instructions.length % 8).toBe(0);
      // The program's own function comes first.
      expect(p.funcInfo[0]).toMatchObject({ instruction: 0, name: p.name });
      for (const r of p.references) {
        expect(insns(p)[r.instruction]?.op).toBe(r.kind === "kfunc" ? 0x85 : 0x18);
        if (r.kind === "map" || r.kind === "mapValue") expect(s.maps.has(r.map)).toBe(true);
        if (r.kind === "kfunc" || r.kind === "ksym") expect(s.ksyms.map((k) => k.name)).toContain(r.extern);
      }
    }
  });

  test("finds every program of sections.o with the type its section names", () => {
    const s = spec("sections");
    const types = Object.fromEntries(
      [...s.programs.values()].map((p) => [p.name, [p.sectionName, p.type, p.expectedAttachType]]),
    );
    expect(s.programs.size).toBe(21);
    expect(types).toMatchObject({
      xdp_pass: ["xdp", "xdp", "xdp"],
      xdp_drop_counted: ["xdp", "xdp", "xdp"],
      tc_ok: ["tc", "schedCls", undefined],
      tcx_ingress_pass: ["tcx/ingress", "schedCls", "tcxIngress"],
      tcx_egress_drop: ["tcx/egress", "schedCls", "tcxEgress"],
      sockops_ok: ["sockops", "sockOps", "cgroupSockOps"],
      sk_msg_pass: ["sk_msg", "skMsg", "skMsgVerdict"],
      stream_parser: ["sk_skb/stream_parser", "skSkb", "skSkbStreamParser"],
      stream_verdict: ["sk_skb/stream_verdict", "skSkb", "skSkbStreamVerdict"],
      connect4_allow: ["cgroup/connect4", "cgroupSockAddr", "cgroupInet4Connect"],
      cgroup_skb_egress_allow: ["cgroup_skb/egress", "cgroupSkb", "cgroupInetEgress"],
      socket_keep_all: ["socket", "socketFilter", undefined],
      kprobe_nanosleep: ["kprobe/do_nanosleep", "kprobe", undefined],
    });
    expect(program(s, "kprobe_nanosleep").attachTo).toBe("do_nanosleep");
  });

  test("links .text subprograms after the program and points every call at a function start", () => {
    const s = spec("subprog");
    for (const name of ["subprog_tc", "subprog_xdp"]) {
      const p = program(s, name);
      const starts = new Map(p.funcInfo.map((f) => [f.instruction, f.name]));
      const code = insns(p);
      const callees = new Set<string>();
      code.forEach((insn, i) => {
        if (insn.op !== 0x85 || insn.src !== 1) return;
        const target = i + insn.imm + 1;
        expect(starts.has(target), `${name}: call at ${i} lands on ${target}`).toBe(true);
        callees.add(starts.get(target) as string);
      });
      expect(callees.size).toBeGreaterThan(0);
      // Every linked function is called by someone.
      for (const f of p.funcInfo.slice(1)) expect(callees.has(f.name)).toBe(true);
      // Line info stays in order and inside the program.
      expect(p.lineInfo.map((l) => l.instruction)).toEqual(
        [...p.lineInfo.map((l) => l.instruction)].sort((a, b) => a - b),
      );
      expect(Math.max(...p.lineInfo.map((l) => l.instruction))).toBeLessThan(code.length);
    }
    // count_call's map reference moved with it.
    const tc = program(s, "subprog_tc");
    const countCall = tc.funcInfo.find((f) => f.name === "count_call");
    expect(countCall).toBeDefined();
    expect(tc.references).toEqual([
      { instruction: (countCall?.instruction ?? 0) + 4, kind: "map", map: "subprog_calls" },
    ]);
  });

  test("turns global data into array maps and variables", () => {
    const s = spec("globals");
    expect([...s.maps.keys()]).toEqual([
      ".rodata",
      ".rodata.custom",
      ".data",
      ".data.custom",
      ".bss",
      ".rodata.str1.1",
    ]);
    expect(s.maps.get(".rodata")).toMatchObject({
      kind: "data",
      freeze: true,
      spec: { name: "globals.rodata", type: "array", keySize: 4, valueSize: 17, maxEntries: 1, flags: 128 | 1024 },
    });
    expect(s.maps.get(".bss")).toMatchObject({
      freeze: false,
      spec: { name: "globals.bss", valueSize: 32, flags: 1024 },
    });
    expect(s.maps.get(".rodata.str1.1")?.spec.name).toBe(".rodata.str1.1");
    expect(new TextDecoder().decode(s.maps.get(".rodata.str1.1")?.contents)).toBe("magic=%u\0");
    expect(s.variables.get("small_signed")).toEqual({
      name: "small_signed",
      section: ".rodata",
      offset: 4,
      size: 2,
      typeId: expect.any(Number),
      readOnly: true,
    });
    expect(s.variables.get("bss_message")).toMatchObject({ section: ".bss", offset: 16, size: 16, readOnly: false });
    const refs = program(s, "globals_tc").references;
    const byMap = (map: string): number[] =>
      refs.filter((r) => r.kind === "mapValue" && r.map === map).map((r) => (r.kind === "mapValue" ? r.offset : -1));
    expect(byMap(".rodata").sort()).toEqual([0, 16, 4, 8].sort());
    expect(byMap(".bss").sort()).toEqual([0, 16, 4, 8].sort());
    expect(byMap(".rodata.str1.1")).toEqual([0]);
  });

  test("reads and writes constants by their BTF type", () => {
    const s = spec("globals");
    expect(s.constants.names()).toEqual(["magic", "small_signed", "big_const", "enabled", "custom_step"]);
    expect(s.constants.get("magic")).toBe(7);
    expect(s.constants.get("small_signed")).toBe(-2);
    expect(s.constants.get("big_const")).toBe(0x0102030405060708n);
    expect(s.constants.get("enabled")).toBe(true);
    s.constants
      .set("magic", 0xffff_ffff)
      .set("small_signed", -32768)
      .set("big_const", 5)
      .set("enabled", false)
      .set("custom_step", 1);
    expect(s.constants.get("magic")).toBe(0xffff_ffff);
    expect(s.constants.get("big_const")).toBe(5n);
    const rodata = s.maps.get(".rodata")?.contents as Uint8Array;
    expect([...rodata.subarray(0, 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x00, 0x80]);
    expect(rodata[16]).toBe(0);

    expect(() => s.constants.set("magic", 2 ** 32)).toThrow(
      /constant "magic" \(u32 .*\): 4294967296 is outside 0\.\.4294967295/,
    );
    expect(() => s.constants.set("small_signed", 32768)).toThrow(RangeError);
    expect(() => s.constants.set("magic", 1.5)).toThrow(TypeError);
    expect(() => s.constants.set("enabled", 1)).toThrow(/expected a boolean, got number 1/);
    expect(() => s.constants.set("big_const", 2 ** 60)).toThrow(TypeError);
    expect(() => s.constants.set("data_counter", 1)).toThrow(/in \.data, not \.rodata/);
    expect(() => s.constants.set("nope", 1)).toThrow(/no such constant \(constants: magic, small_signed/);
    // A failed set leaves the value alone.
    expect(s.constants.get("magic")).toBe(0xffff_ffff);
  });

  test("records .kconfig externs and their references", () => {
    const s = spec("kconfig");
    expect(s.kconfig.map((k) => [k.name, k.weak])).toEqual([
      ["LINUX_KERNEL_VERSION", false],
      ["CONFIG_BPF_SYSCALL", false],
      ["CONFIG_HZ", false],
      ["CONFIG_DP_NO_SUCH_OPTION", true],
    ]);
    expect(s.maps.get(".kconfig")).toMatchObject({
      kind: "kconfig",
      freeze: true,
      spec: { name: "kconfig.kconfig", type: "array" },
    });
    const externs = program(s, "kconfig_values")
      .references.filter((r) => r.kind === "kconfig")
      .map((r) => (r.kind === "kconfig" ? r.extern : ""));
    expect(new Set(externs)).toEqual(
      new Set(["LINUX_KERNEL_VERSION", "CONFIG_BPF_SYSCALL", "CONFIG_HZ", "CONFIG_DP_NO_SUCH_OPTION"]),
    );
  });

  test("gives CO-RE records to the program they belong to", () => {
    const p = program(spec("core"), "core_values");
    expect(p.coreRelos.length).toBeGreaterThanOrEqual(15);
    expect(new Set(p.coreRelos.map((r) => r.relo.kind))).toEqual(
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
  });

  test("keeps initial values of prog arrays and maps of maps", () => {
    expect(spec("tailcall").maps.get("jump_table")?.initialValues.length).toBeGreaterThan(0);
    const mim = spec("map_in_map");
    expect(mim.maps.get("outer_array")?.initialValues.map((v) => v.symbol)).toContain("inner_a");
  });
});

describe("parseCollectionSpec() errors", () => {
  test("names the object, section and instruction of a bad relocation", () => {
    const bytes = new Uint8Array(readFileSync(join(DIR, "subprog.o")));
    // Turn subprog_tc's first call (relocated to global_len) into a jump: a call relocation on a non-call.
    const tc = parseElf(bytes).sectionByName("tc");
    expect(bytes[tc?.offset ?? 0]).toBe(0x85);
    bytes[tc?.offset ?? 0] = 0x05;
    expect(() => parseCollectionSpec(bytes, { name: "subprog" })).toThrow(
      new ObjectError(
        "subprog",
        'section "tc" instruction 0: relocation to "global_len" on opcode 0x5, expected ld_imm64 or call',
      ),
    );
  });
});

// --- fuzz-style robustness ---------------------------------------------------------

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("parseCollectionSpec() on truncated and bit-flipped objects", () => {
  const FUZZ = ["globals.o", "subprog.o", "map_in_map.o", "core.o", "kconfig.o"];
  test.each(FUZZ)("throws only SyntaxErrors, quickly, for bit flips and truncations of %s", (file) => {
    const clean = new Uint8Array(readFileSync(join(DIR, file)));
    const random = prng(0xd00d ^ clean.length);
    const start = performance.now();
    let worst = 0;
    let rejected = 0;
    const iterations = 400;
    for (let i = 0; i < iterations; i++) {
      let bytes: Uint8Array;
      if (i % 8 === 0) {
        bytes = clean.slice(0, Math.floor(random() * clean.length));
      } else {
        bytes = clean.slice();
        const flips = 1 + Math.floor(random() * 4);
        for (let f = 0; f < flips; f++) {
          const at = Math.floor(random() * bytes.length);
          bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(random() * 8));
        }
      }
      const t0 = performance.now();
      try {
        parseCollectionSpec(bytes, { name: file });
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw new Error(`iteration ${i}: ${String(err)}`, { cause: err });
        rejected++;
      }
      worst = Math.max(worst, performance.now() - t0);
    }
    // Hang detectors with room for a loaded machine, not speed targets.
    expect(worst).toBeLessThan(2000);
    expect(performance.now() - start).toBeLessThan(60_000);
    expect(rejected).toBeGreaterThan(iterations / 20);
  });
});

describe("readCollectionSpec() on objects written for libbpf 1.x", () => {
  test("refuses a program in a section name libbpf 1.x does not know, naming the section and the program", () => {
    expect(() => spec("unknown_section")).toThrow(ObjectError);
    expect(() => spec("unknown_section")).toThrow(
      'Invalid BPF object "unknown_section": section "xdp_prog" (program "old_style") is not a libbpf program section name',
    );
  });

  test("gives hidden global functions (also weak ones) static linkage in the BTF, as libbpf does", () => {
    const s = spec("libbpf_perf");
    const linkage = (name: string): string | undefined => {
      const t = s.btf?.typesByName(name, "func")[0];
      return t?.kind === "func" ? t.linkage : undefined;
    };
    expect(linkage("first_byte")).toBe("static");
    expect(linkage("add_len")).toBe("static");
    expect(linkage("perf_events")).toBe("global");
    // The file itself says global: the change is the loader's.
    const elf = parseElf(new Uint8Array(readFileSync(join(DIR, "libbpf_perf.o"))));
    expect(elf.symbols.find((x) => x.name === "add_len")).toMatchObject({ bind: "weak", visibility: "hidden" });
    expect(s.maps.get("events")?.spec).toMatchObject({ type: "perfEventArray", maxEntries: 0 });
  });

  test("reads an object without a license section with an empty license", () => {
    const s = spec("libbpf_nolicense");
    expect(s.license).toBe("");
    expect(s.programs.get("xdp_pass")?.license).toBe("");
  });
});

describe.skipIf(!HAS_CLANG)("parseCollectionSpec() errors name the object", () => {
  test("a bad map definition is a MapDefinitionError naming the map and the object", () => {
    const dir = mkdtempSync(join(tmpdir(), "dp-spec-"));
    try {
      writeFileSync(
        join(dir, "bad_map.c"),
        '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nstruct { __uint(type, 9999); __uint(max_entries, 1); } odd SEC(".maps");\nchar LICENSE[] SEC("license") = "GPL";\n',
      );
      execFileSync(
        "clang-19",
        [
          "-target",
          "bpf",
          "-g",
          "-O2",
          "-idirafter",
          `/usr/include/${execFileSync("uname", ["-m"], { encoding: "utf8" }).trim()}-linux-gnu`,
          "-c",
          "bad_map.c",
          "-o",
          "bad_map.o",
        ],
        { cwd: dir, stdio: "pipe" },
      );
      const parse = (): unknown => readCollectionSpec(join(dir, "bad_map.o"));
      expect(parse).toThrow(MapDefinitionError);
      expect(parse).toThrow('Invalid map "odd" in .maps: unknown map type 9999 (object "bad_map")');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Compiles a C snippet (with linux/bpf.h and bpf_helpers.h) into object bytes. */
function compileSnippet(body: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "dp-spec-"));
  try {
    writeFileSync(
      join(dir, "x.c"),
      `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n${body}\nchar LICENSE[] SEC("license") = "GPL";\n`,
    );
    execFileSync(
      "clang-19",
      [
        "-target",
        "bpf",
        "-g",
        "-O2",
        "-idirafter",
        `/usr/include/${execFileSync("uname", ["-m"], { encoding: "utf8" }).trim()}-linux-gnu`,
        "-c",
        "x.c",
        "-o",
        "x.o",
      ],
      { cwd: dir, stdio: "pipe" },
    );
    return readFileSync(join(dir, "x.o"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!HAS_CLANG)("spec hygiene", () => {
  test("static variables and hidden globals are not public variables; their data stays in the map", () => {
    const spec = parseCollectionSpec(
      compileSnippet(`
int shown = 1;
static int file_static = 2;
__attribute__((visibility("hidden"))) int hidden_global = 3;
static volatile const int static_const = 4;
SEC("tc") int prog(struct __sk_buff *skb) {
  static int in_function;
  in_function++;
  file_static++;
  return shown + file_static + hidden_global + static_const + in_function;
}`),
      { name: "hygiene" },
    );
    expect([...spec.variables.keys()]).toEqual(["shown"]);
    // The data section still holds them all (in_function is in .bss).
    const data = spec.maps.get(".data")?.contents ?? new Uint8Array();
    expect([...data].filter((b) => b !== 0).sort()).toEqual([1, 2, 3]);
    expect(() => spec.constants.set("static_const", 5)).toThrow();
  });

  test("a .maps definition with non-zero bytes is a MapDefinitionError naming the map", () => {
    const bytes = compileSnippet(`
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} initialized SEC(".maps") = { .max_entries = (void *)8 };`);
    const parse = (): unknown => parseCollectionSpec(bytes, { name: "dirty" });
    expect(parse).toThrow(MapDefinitionError);
    expect(parse).toThrow(
      'Invalid map "initialized" in .maps: its definition holds non-zero bytes (at byte 8): a map is defined by its BTF type, not by initialized data (object "dirty")',
    );
  });
});
