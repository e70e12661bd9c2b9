import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT } from "../btf/_test_btf.ts";
import { readCollectionSpec, type CollectionSpec } from "./collection_spec.ts";
import type { BtfHandle } from "../btf/btf_load.ts";
import { KsymError, type KsymTarget, parseKallsyms, patchKsym } from "./ksym.ts";

const DIR = join(ROOT, "bpf/build/testdata");

function spec(name: string): CollectionSpec {
  return readCollectionSpec(join(DIR, `${name}.o`));
}

function insn(
  s: CollectionSpec,
  program: string,
  index: number,
): { op: number; src: number; off: number; imm: number } {
  const p = s.programs.get(program);
  if (p === undefined) throw new Error(`no program ${program}`);
  const dv = new DataView(p.instructions.buffer, p.instructions.byteOffset, p.instructions.byteLength);
  return {
    op: dv.getUint8(index * 8),
    src: dv.getUint8(index * 8 + 1) >> 4,
    off: dv.getInt16(index * 8 + 2, true),
    imm: dv.getInt32(index * 8 + 4, true),
  };
}

describe("__ksym externs in a spec", () => {
  test("kfuncs are externs of kind func, weak as declared, and their calls references", () => {
    const s = spec("kfunc");
    expect(s.ksyms.map(({ name, kind, weak }) => ({ name, kind, weak }))).toEqual([
      { name: "bpf_cast_to_kern_ctx", kind: "func", weak: true },
      { name: "bpf_skb_ct_lookup", kind: "func", weak: false },
      { name: "bpf_ct_release", kind: "func", weak: false },
      { name: "bpf_dp_no_such_kfunc", kind: "func", weak: true },
    ]);
    for (const k of s.ksyms) expect(s.btf?.typeById(k.typeId)).toMatchObject({ kind: "func", name: k.name });
    const ct = s.programs.get("kfunc_ct");
    expect(ct?.references.map((r) => r.kind === "kfunc" && r.extern)).toEqual(["bpf_skb_ct_lookup", "bpf_ct_release"]);
    // Left as clang wrote them until loading: a call with imm -1.
    for (const r of ct?.references ?? [])
      expect(insn(s, "kfunc_ct", r.instruction)).toMatchObject({ op: 0x85, imm: -1 });
    // bpf_ksym_exists(): an ld_imm64 of each function, and the guarded call.
    expect(s.programs.get("kfunc_weak")?.references.map((r) => [r.kind, "extern" in r ? r.extern : ""])).toEqual([
      ["ksym", "bpf_cast_to_kern_ctx"],
      ["ksym", "bpf_dp_no_such_kfunc"],
      ["kfunc", "bpf_dp_no_such_kfunc"],
    ]);
  });

  test("a program whose kfunc the kernel lacks still parses, with its siblings", () => {
    const s = spec("kfunc_fail");
    expect([...s.programs.keys()]).toEqual(["fail_mismatch", "fail_missing", "fail_unguarded", "fail_sibling"]);
    expect(s.programs.get("fail_sibling")?.references).toEqual([]);
  });

  test("variables: typed ones carry their type, void ones 0", () => {
    const s = spec("ksym");
    const byName = new Map(s.ksyms.map((k) => [k.name, k]));
    expect([...byName.keys()].sort()).toEqual([
      "_text",
      "bpf_prog_active",
      "dp_no_such_sym",
      "dp_no_such_var",
      "runqueues",
    ]);
    expect(byName.get("_text")).toMatchObject({ kind: "var", typeId: 0, weak: false });
    expect(byName.get("dp_no_such_sym")).toMatchObject({ kind: "var", typeId: 0, weak: true });
    expect(byName.get("dp_no_such_var")).toMatchObject({ kind: "var", weak: true });
    const active = byName.get("bpf_prog_active");
    expect(active?.weak).toBe(false);
    expect(s.btf?.resolve(active?.typeId ?? 0)).toMatchObject({ kind: "int", size: 4 });
    // Kernel symbols are not global variables of the object.
    expect([...s.variables.keys()]).toEqual(["ksym_out"]);
    expect(s.programs.get("ksym_values")?.references.map((r) => r.kind)).toEqual(["mapValue", "ksym", "ksym", "ksym"]);
  });
});

describe("parseKallsyms()", () => {
  test("reads addresses by name, with module symbols and repeats", () => {
    const text = [
      "ffffffff81000000 T _text",
      "ffffffff81001000 t dup",
      "ffffffff81002000 t dup",
      "ffffffffc0001000 T mod_fn\t[some_mod]",
      "",
    ].join("\n");
    const syms = parseKallsyms(text);
    expect(syms.get("_text")).toEqual([0xffffffff81000000n]);
    expect(syms.get("dup")).toEqual([0xffffffff81001000n, 0xffffffff81002000n]);
    expect(syms.get("mod_fn")).toEqual([0xffffffffc0001000n]);
    expect(syms.has("")).toBe(false);
  });
});

describe("KsymError", () => {
  test("names the symbol and its kind", () => {
    const err = new KsymError("init_net", "symbol", "it is not in /proc/kallsyms");
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("KsymError");
    expect(err.message).toBe('Cannot resolve kernel symbol "init_net": it is not in /proc/kallsyms');
    expect(err).toMatchObject({ symbol: "init_net", kind: "symbol" });
  });
});

describe("patchKsym()", () => {
  /** A call and an ld_imm64, as clang leaves them. */
  function code(): Uint8Array {
    const b = new Uint8Array(24);
    b.set([0x85, 0x10, 0, 0, 0xff, 0xff, 0xff, 0xff], 0); // call -1
    b.set([0x18, 0x02], 8); // r2 = 0 ll
    return b;
  }
  function decode(b: Uint8Array, i: number): { src: number; off: number; imm: number; imm2?: number } {
    const dv = new DataView(b.buffer);
    const out = {
      src: dv.getUint8(i * 8 + 1) >> 4,
      off: dv.getInt16(i * 8 + 2, true),
      imm: dv.getInt32(i * 8 + 4, true),
    };
    return b[i * 8] === 0x18 ? { ...out, imm2: dv.getInt32(i * 8 + 12, true) } : out;
  }
  const resolver = (targets: Record<string, KsymTarget>): { resolve(name: string): KsymTarget } => ({
    resolve: (name) => targets[name],
  });
  // Only the identity of a module's BTF object matters for calls (it goes in fd_array).
  const modA = {} as BtfHandle;
  const modB = {} as BtfHandle;

  test("a vmlinux kfunc call is BPF_PSEUDO_KFUNC_CALL of its BTF id with off 0", () => {
    const b = code();
    const fdArray: (BtfHandle | undefined)[] = [undefined];
    patchKsym(
      b,
      { instruction: 0, kind: "kfunc", extern: "f" },
      resolver({ f: { kind: "btf", id: 777, module: undefined } }),
      fdArray,
    );
    expect(decode(b, 0)).toEqual({ src: 2, off: 0, imm: 777 });
    expect((b[1] ?? 0) & 0x0f).toBe(0); // dst_reg untouched
    expect(fdArray).toEqual([undefined]);
  });

  test("module kfuncs index fd_array from 1, one slot per module", () => {
    const fdArray: (BtfHandle | undefined)[] = [undefined];
    const r = resolver({
      a1: { kind: "btf", id: 10, module: modA },
      b1: { kind: "btf", id: 20, module: modB },
      a2: { kind: "btf", id: 11, module: modA },
    });
    const offs = ["a1", "b1", "a2"].map((extern) => {
      const b = code();
      patchKsym(b, { instruction: 0, kind: "kfunc", extern }, r, fdArray);
      return decode(b, 0);
    });
    expect(offs).toEqual([
      { src: 2, off: 1, imm: 10 },
      { src: 2, off: 2, imm: 20 },
      { src: 2, off: 1, imm: 11 },
    ]);
    expect(fdArray).toEqual([undefined, modA, modB]);
  });

  test("a weak kfunc the kernel lacks is a call of BTF id 0, off 0, and its address 0", () => {
    const b = code();
    const r = resolver({ gone: undefined });
    patchKsym(b, { instruction: 0, kind: "kfunc", extern: "gone" }, r, [undefined]);
    patchKsym(b, { instruction: 1, kind: "ksym", extern: "gone" }, r, [undefined]);
    expect(decode(b, 0)).toEqual({ src: 2, off: 0, imm: 0 });
    expect(decode(b, 1)).toEqual({ src: 0, off: 0, imm: 0, imm2: 0 });
  });

  test("a typed ksym is BPF_PSEUDO_BTF_ID; an untyped one its 64-bit address", () => {
    const b = code();
    patchKsym(
      b,
      { instruction: 1, kind: "ksym", extern: "v" },
      resolver({ v: { kind: "btf", id: 4242, module: undefined } }),
      [undefined],
    );
    expect(decode(b, 1)).toEqual({ src: 3, off: 0, imm: 4242, imm2: 0 });
    patchKsym(
      b,
      { instruction: 1, kind: "ksym", extern: "a" },
      resolver({ a: { kind: "address", address: 0xffffffff81000010n } }),
      [undefined],
    );
    expect(decode(b, 1)).toEqual({ src: 0, off: 0, imm: 0x81000010 | 0, imm2: -1 });
  });
});
