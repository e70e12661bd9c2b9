import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { createMap, loadProgram, VerifierError } from "@dp/core";
import { rawFd } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import { fixupDatasecs, loadBtf } from "../btf/btf_load.ts";
import { parseBtf } from "../btf/btf.ts";
import { encodeFuncInfo, encodeLineInfo, parseBtfExt } from "../btf/btf_ext.ts";
import { BPF_RELOCATION_TYPE, parseElf } from "./elf.ts";
import { readObjectFile, ROOT } from "../btf/_test_btf.ts";
import { failingInstruction, withSource } from "./verifier_source.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = join(ROOT, "bpf/build/testdata/verifier_fail.o");
const SOURCE = join(ROOT, "bpf/testdata/verifier_fail.c");
const INSN = 8;
const BPF_PSEUDO_MAP_FD = 1;

/** The 1-based line of verifier_fail.c whose trailing comment starts with VERIFIER_FAIL_LINE. */
function markedLine(): number {
  const index = readFileSync(SOURCE, "utf8")
    .split("\n")
    .findIndex((l) => /;\s*\/\* VERIFIER_FAIL_LINE/.test(l));
  expect(index).toBeGreaterThanOrEqual(0);
  return index + 1;
}

describe("withSource()", () => {
  test("withSource() maps deref_unchecked's rejection to the VERIFIER_FAIL_LINE line through line_info", () => {
    const bytes = new Uint8Array(readFileSync(OBJECT));
    const elf = parseElf(bytes);
    const obj = readObjectFile(OBJECT);
    const btf = fixupDatasecs(parseBtf(obj.btf), obj.layouts);
    const ext = parseBtfExt(obj.ext ?? new Uint8Array(), btf);

    const sym = elf.symbols.find((s) => s.name === "deref_unchecked");
    const section = elf.sections[sym?.sectionIndex ?? 0];
    expect(sym?.type).toBe("func");
    expect(section?.name).toBe("tc");
    if (sym === undefined || section === undefined) return;
    const start = sym.value;
    const end = sym.value + sym.size;
    const instructions = section.data().slice(start, end);

    // The only relocation in the function: the ld_imm64 of fail_values.
    const relocations = (elf.relocations.get(section.index) ?? []).filter((r) => r.offset >= start && r.offset < end);
    expect(relocations.map((r) => [elf.symbols[r.symbolIndex]?.name, r.type])).toEqual([
      ["fail_values", BPF_RELOCATION_TYPE.ldImm64],
    ]);
    using map = createMap({ name: "fail_values", type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 });
    const dv = new DataView(instructions.buffer, instructions.byteOffset, instructions.byteLength);
    for (const r of relocations) {
      const at = r.offset - start;
      dv.setUint8(at + 1, (dv.getUint8(at + 1) & 0x0f) | (BPF_PSEUDO_MAP_FD << 4));
      dv.setInt32(at + 4, rawFd(map.fd), true);
    }

    const inFunction = <T extends { insnOffset: number }>(records: readonly T[] | undefined): T[] =>
      (records ?? []).filter((r) => r.insnOffset >= start && r.insnOffset < end);
    const funcInfo = inFunction(ext.funcInfo.get("tc")).map((r) => ({
      instruction: (r.insnOffset - start) / INSN,
      typeId: r.typeId,
    }));
    const lines = inFunction(ext.lineInfo.get("tc")).map((r) => ({ ...r, instruction: (r.insnOffset - start) / INSN }));
    expect(funcInfo).toHaveLength(1);

    using handle = loadBtf(btf);
    let err: unknown;
    try {
      loadProgram({
        name: "deref_unchecked",
        type: "schedCls",
        license: "Dual BSD/GPL",
        instructions,
        btf: { fd: handle.fd, funcInfo: encodeFuncInfo(funcInfo), lineInfo: encodeLineInfo(lines) },
      }).close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VerifierError);
    const plain = err as VerifierError;
    expect(plain.source).toBeUndefined();
    expect(plain.log.join("\n")).toMatch(/R0 invalid mem access 'map_value_or_null'/);

    const line = markedLine();
    const mapped = withSource(plain, lines);
    expect(mapped).not.toBe(plain);
    expect(mapped.source).toMatchObject({
      instruction: failingInstruction(plain.log),
      file: "./bpf/testdata/verifier_fail.c",
      line,
    });
    expect(mapped.source?.text).toContain("VERIFIER_FAIL_LINE");
    expect(mapped.message).toContain(`at ./bpf/testdata/verifier_fail.c:${line}: return *value + 1;`);
    expect(
      mapped.message.startsWith(`Cannot load schedCls program "deref_unchecked": EACCES (permission denied): `),
    ).toBe(true);
    expect(mapped).toMatchObject({
      syscall: plain.syscall,
      op: plain.op,
      errno: plain.errno,
      code: plain.code,
      log: plain.log,
      truncated: plain.truncated,
    });

    // The kernel printed the line too; without line_info, withSource() reads it from the log.
    const fromLog = withSource(plain);
    expect(fromLog.source).toMatchObject({ file: "verifier_fail.c", line, column: 0 });
    expect(fromLog.source?.text).toContain("VERIFIER_FAIL_LINE");
  });
});
