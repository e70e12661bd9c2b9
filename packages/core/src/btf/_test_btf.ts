// Test helpers for the BTF tests: a tiny ELF64 section and symbol reader
// (independent of src/elf.ts), the compiled test objects, and bpftool's
// view of an object's BTF as an oracle.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DatasecLayout } from "./btf_load.ts";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../../../..", import.meta.url));

/** One ELF section. */
export interface TestSection {
  readonly name: string;
  readonly type: number;
  readonly size: number;
  readonly bytes: Uint8Array;
}

/** One ELF symbol. */
export interface TestSymbol {
  readonly name: string;
  readonly value: number;
  readonly section: string | undefined;
  readonly bind: number;
  readonly type: number;
}

/** What the BTF tests need from an object file. */
export interface TestObject {
  readonly sections: ReadonlyMap<string, TestSection>;
  readonly symbols: readonly TestSymbol[];
  /** `.BTF`. */
  readonly btf: Uint8Array;
  /** `.BTF.ext`, when present. */
  readonly ext: Uint8Array | undefined;
  /** Section sizes and global variable offsets, for fixupDatasecs. */
  readonly layouts: ReadonlyMap<string, DatasecLayout>;
}

const SHT_NOBITS = 8;
const SHT_SYMTAB = 2;
const STB_GLOBAL = 1;
const STB_WEAK = 2;
const STT_OBJECT = 1;

function cstr(b: Uint8Array, off: number): string {
  const end = b.indexOf(0, off);
  return new TextDecoder().decode(b.subarray(off, end < 0 ? b.length : end));
}

/** Reads the sections and symbols of a little-endian ELF64 object. */
export function readObject(bytes: Uint8Array): TestObject {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(dv.getBigUint64(0x28, true));
  const shentsize = dv.getUint16(0x3a, true);
  const shnum = dv.getUint16(0x3c, true);
  const shstrndx = dv.getUint16(0x3e, true);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const p = shoff + i * shentsize;
    const type = dv.getUint32(p + 4, true);
    const offset = Number(dv.getBigUint64(p + 24, true));
    const size = Number(dv.getBigUint64(p + 32, true));
    return {
      nameOff: dv.getUint32(p, true),
      type,
      size,
      link: dv.getUint32(p + 40, true),
      bytes: type === SHT_NOBITS ? new Uint8Array(0) : bytes.subarray(offset, offset + size),
    };
  });
  const shstr = raw[shstrndx]?.bytes ?? new Uint8Array(0);
  const names = raw.map((s) => cstr(shstr, s.nameOff));
  const sections = new Map<string, TestSection>();
  raw.forEach((s, i) =>
    sections.set(names[i] as string, { name: names[i] as string, type: s.type, size: s.size, bytes: s.bytes }),
  );
  const symbols: TestSymbol[] = [];
  const symtab = raw.find((s) => s.type === SHT_SYMTAB);
  if (symtab !== undefined) {
    const strtab = raw[symtab.link]?.bytes ?? new Uint8Array(0);
    const sdv = new DataView(symtab.bytes.buffer, symtab.bytes.byteOffset, symtab.bytes.byteLength);
    for (let p = 24; p + 24 <= symtab.bytes.length; p += 24) {
      const info = sdv.getUint8(p + 4);
      const shndx = sdv.getUint16(p + 6, true);
      symbols.push({
        name: cstr(strtab, sdv.getUint32(p, true)),
        value: Number(sdv.getBigUint64(p + 8, true)),
        section: shndx > 0 && shndx < 0xff00 ? names[shndx] : undefined,
        bind: info >> 4,
        type: info & 0xf,
      });
    }
  }
  const layouts = new Map<string, DatasecLayout>();
  for (const [name, s] of sections) {
    const offsets = new Map<string, number>();
    for (const sym of symbols) {
      if (sym.section === name && sym.type === STT_OBJECT && (sym.bind === STB_GLOBAL || sym.bind === STB_WEAK)) {
        offsets.set(sym.name, sym.value);
      }
    }
    layouts.set(name, { size: s.size, offsets });
  }
  const btf = sections.get(".BTF")?.bytes;
  if (btf === undefined) throw new Error("object has no .BTF section");
  return { sections, symbols, btf, ext: sections.get(".BTF.ext")?.bytes, layouts };
}

/** Whether clang-19 is installed. */
export const HAS_CLANG: boolean = spawnSync("clang-19", ["--version"]).status === 0;
/** Whether bpftool is installed. */
export const HAS_BPFTOOL: boolean = spawnSync("bpftool", ["version"]).status === 0;

/** The objects bpf/build.sh made from bpf/testdata/*.c (building them when missing). */
export function testdataObjects(): string[] {
  const dir = join(ROOT, "bpf/build/testdata");
  if (!existsSync(join(dir, "xdp_count.o")) && HAS_CLANG)
    execFileSync("bash", [join(ROOT, "bpf/build.sh")], { stdio: "pipe" });
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".o"))
    .sort()
    .map((f) => join(dir, f));
}

let kindsObject: string | undefined;

/** Compiles packages/core/testdata/btf_kinds.c with clang-19 into bpf/build/core-test/ (once per process; the build folder is not tracked). */
export function btfKindsObject(): string {
  if (kindsObject === undefined) {
    const dir = join(ROOT, "bpf/build/core-test");
    mkdirSync(dir, { recursive: true });
    // Test files run in parallel workers: each compiles to its own name and
    // renames over the shared one (the output is the same bytes each time).
    const out = join(dir, "btf_kinds.o");
    const tmp = join(dir, `btf_kinds.o.${process.pid}`);
    execFileSync(
      "clang-19",
      [
        "-target",
        "bpf",
        "-g",
        "-O2",
        "-Wall",
        "-Werror",
        `-ffile-prefix-map=${ROOT}=`,
        "-fdebug-compilation-dir=.",
        "-c",
        "packages/core/testdata/btf_kinds.c",
        "-o",
        tmp,
      ],
      { cwd: ROOT, stdio: "pipe" },
    );
    renameSync(tmp, out);
    kindsObject = out;
  }
  return kindsObject;
}

/** Reads an object file. */
export function readObjectFile(path: string): TestObject {
  return readObject(new Uint8Array(readFileSync(path)));
}

/** A type as `bpftool -j btf dump file X` prints it. */
export interface BpftoolType {
  readonly id: number;
  readonly kind: string;
  readonly name: string;
  readonly [key: string]: unknown;
}

/**
 * bpftool's JSON dump of a BTF file (an object or raw BTF), with enum
 * values as decimal strings: 64-bit values do not fit a double, and
 * bpftool 7.1 prints 32-bit unsigned values with bit 31 set sign-extended
 * to 64 bits, which this undoes.
 */
export function bpftoolTypes(path: string): BpftoolType[] {
  const text = execFileSync("bpftool", ["-j", "btf", "dump", "file", path], { maxBuffer: 1 << 30, encoding: "utf8" });
  const safe = text.replace(/"val":(-?\d+)/g, '"val":"$1"');
  const types = (JSON.parse(safe) as { types: BpftoolType[] }).types;
  for (const t of types) {
    if (t.kind !== "ENUM") continue;
    const signed = t["encoding"] === "SIGNED";
    for (const v of t["values"] as { val: string }[]) {
      const n = BigInt(v.val);
      v.val = String(signed ? BigInt.asIntN(32, n) : BigInt.asUintN(32, n));
    }
  }
  return types;
}
