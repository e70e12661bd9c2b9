// Kernel functions (kfuncs) and kernel symbols (`__ksym` externs) of
// bpf/testdata/kfunc.c, kfunc_fail.c and ksym.c: resolved against the
// running kernel's BTF and /proc/kallsyms, run with BPF_PROG_TEST_RUN, and
// compared with what libbpf (`bpftool prog loadall`) does with the same
// objects.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type CollectionSpec,
  KsymError,
  loadCollection,
  readCollectionSpec,
  SyscallError,
  VerifierError,
} from "@dp/core";
import { readKernelConfig } from "@dp/core/internal";
import { bpffsDir, requireConfig, requireRoot } from "@dp/core/testing";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const TESTDATA = join(ROOT, "bpf/build/testdata");

function objectSpec(name: string): CollectionSpec {
  return readCollectionSpec(join(TESTDATA, `${name}.o`));
}

/** A 64-byte frame: the tc test runs' skb->len. */
const FRAME = new Uint8Array(64);

/** What the kernel runs: `bpftool prog dump xlated`, one line per instruction. */
function xlated(id: number): string {
  return execFileSync("bpftool", ["prog", "dump", "xlated", "id", String(id)], { encoding: "utf8" });
}

/** `bpftool prog loadall` into a fresh bpffs directory: the pinned programs' ids, or libbpf's complaint. */
function bpftoolLoadall(
  object: string,
  dir: string,
): { ok: true; ids: Map<string, number> } | { ok: false; stderr: string } {
  const pins = join(dir, object);
  const r = spawnSync("bpftool", ["prog", "loadall", join(TESTDATA, `${object}.o`), pins], { encoding: "utf8" });
  if (r.status !== 0) return { ok: false, stderr: r.stderr };
  const ids = new Map<string, number>();
  for (const name of execFileSync("ls", [pins], { encoding: "utf8" })
    .split("\n")
    .filter((n) => n !== "")) {
    const shown = JSON.parse(
      execFileSync("bpftool", ["-j", "prog", "show", "pinned", join(pins, name)], { encoding: "utf8" }),
    ) as { id: number };
    ids.set(name, shown.id);
  }
  return { ok: true, ids };
}

describe("kfuncs", () => {
  test("kfunc calls resolve against vmlinux BTF and run", (t) => {
    requireConfig(t, "CONFIG_NF_CONNTRACK");
    using coll = loadCollection(objectSpec("kfunc"));
    expect([...coll.programs.keys()]).toEqual(["kfunc_ctx", "kfunc_ct", "kfunc_weak"]);
    // bpf_cast_to_kern_ctx(skb)->len
    expect(coll.program("kfunc_ctx").testRun({ data: FRAME }).retval).toBe(FRAME.length);
    // bpf_skb_ct_lookup finds no connection: -opts.error is ENOENT.
    expect(coll.program("kfunc_ct").testRun({ data: FRAME }).retval).toBe(2);
    // bpf_ksym_exists: the present kfunc yes, the weak missing one no.
    expect(coll.program("kfunc_weak").testRun({ data: FRAME }).retval).toBe(1);

    // The kernel resolved the calls (bpf_cast_to_kern_ctx it inlines into a move).
    expect(xlated(coll.program("kfunc_ct").info().id)).toMatch(
      /call bpf_skb_ct_lookup#\d+[\s\S]*call bpf_ct_release#\d+/,
    );
    // The weak missing kfunc's call was pruned as dead code; the present one's address was loaded.
    const weak = xlated(coll.program("kfunc_weak").info().id);
    expect(weak).not.toContain("call");
    expect(weak).toMatch(/r2 = 0xffff[0-9a-f]{12}\n[\s\S]*r2 = 0x0\n/);
  });

  test("libbpf loads the same programs with the same instructions", (t) => {
    requireConfig(t, "CONFIG_NF_CONNTRACK");
    using dir = bpffsDir();
    using coll = loadCollection(objectSpec("kfunc"));
    const libbpf = bpftoolLoadall("kfunc", dir.path);
    if (!libbpf.ok) throw new Error(`bpftool prog loadall kfunc.o failed: ${libbpf.stderr}`);
    expect([...libbpf.ids.keys()].sort()).toEqual([...coll.programs.keys()].sort());
    for (const [name, id] of libbpf.ids) {
      expect(xlated(coll.program(name).info().id), name).toBe(xlated(id));
    }
  });

  test("a program with a missing or mismatched kfunc fails alone, naming the function", () => {
    const spec = objectSpec("kfunc_fail");
    using coll = loadCollection(spec, { programErrors: "skip" });
    expect([...coll.programs.keys()]).toEqual(["fail_sibling"]);
    expect(coll.program("fail_sibling").testRun({ data: FRAME }).retval).toBe(3);
    expect([...coll.programErrors.keys()]).toEqual(["fail_mismatch", "fail_missing", "fail_unguarded"]);
    const mismatch = coll.programErrors.get("fail_mismatch");
    expect(mismatch).toBeInstanceOf(KsymError);
    expect(mismatch).toMatchObject({ symbol: "bpf_cast_to_kern_ctx", kind: "function" });
    expect(mismatch?.message).toMatch(
      /^Cannot resolve kernel function "bpf_cast_to_kern_ctx": its prototype in the object \(BTF type \d+\) does not match the kernel's in vmlinux \(BTF type \d+\) \(schedCls program "fail_mismatch" of object "kfunc_fail"\)$/,
    );
    const missing = coll.programErrors.get("fail_missing");
    expect(missing).toBeInstanceOf(KsymError);
    expect(missing).toMatchObject({ symbol: "bpf_dp_missing_kfunc", kind: "function" });
    expect(missing?.message).toMatch(
      /"bpf_dp_missing_kfunc": FUNC "bpf_dp_missing_kfunc" is in neither vmlinux nor module BTF/,
    );

    // A weak kfunc this kernel lacks, called where the verifier goes: it names the function.
    const unguarded = coll.programErrors.get("fail_unguarded");
    expect(unguarded).toBeInstanceOf(VerifierError);
    expect(unguarded?.message).toMatch(
      /^Cannot load schedCls program "fail_unguarded" of object "kfunc_fail" \(instruction \d+ calls kernel function "bpf_dp_weak_kfunc", which this kernel lacks: guard the call with bpf_ksym_exists\(\)\): EACCES/,
    );

    // By default the first failure closes everything and is thrown; a subset without them loads.
    expect(() => loadCollection(spec)).toThrow(KsymError);
    using sibling = loadCollection(spec, { programs: ["fail_sibling"] });
    expect(sibling.program("fail_sibling").testRun({ data: FRAME }).retval).toBe(3);
  });

  test("libbpf refuses kfunc_fail.o as a whole, with the same type ids for the mismatch", () => {
    using dir = bpffsDir();
    const libbpf = bpftoolLoadall("kfunc_fail", dir.path);
    expect(libbpf.ok).toBe(false);
    if (libbpf.ok) return;
    // libbpf checks the externs in symbol order and stops at the first.
    const m =
      /extern \(func ksym\) 'bpf_cast_to_kern_ctx': func_proto \[(\d+)\] incompatible with kernel \[(\d+)\]/.exec(
        libbpf.stderr,
      );
    expect(m, libbpf.stderr).not.toBeNull();
    using coll = loadCollection(objectSpec("kfunc_fail"), { programErrors: "skip" });
    expect(coll.programErrors.get("fail_mismatch")?.message).toContain(
      `(BTF type ${m?.[1]}) does not match the kernel's in vmlinux (BTF type ${m?.[2]})`,
    );
  });
});

describe("__ksym variables", () => {
  test("an untyped ksym is its kallsyms address; weak missing ones are 0", () => {
    using coll = loadCollection(objectSpec("ksym"), { programs: ["ksym_values"] });
    expect(coll.program("ksym_values").testRun({ data: FRAME }).retval).toBe(1);
    const out = coll.variable("ksym_out").get() as Uint8Array;
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const kallsyms = readFileSync("/proc/kallsyms", "utf8");
    const text = /^([0-9a-f]+) \S+ _text$/m.exec(kallsyms)?.[1];
    expect(text).toBeDefined();
    expect(dv.getBigUint64(0, true)).toBe(BigInt(`0x${text}`));
    expect(dv.getBigUint64(0, true)).not.toBe(0n);
    expect(dv.getBigUint64(8, true)).toBe(0n); // dp_no_such_var
    expect(dv.getBigUint64(16, true)).toBe(0n); // dp_no_such_sym
  });

  test("a typed ksym is BPF_PSEUDO_BTF_ID of the kernel's VAR", () => {
    // The kernel resolves the VAR's address by name in kallsyms, which has
    // variables only with CONFIG_KALLSYMS_ALL; without it, its refusal names
    // the variable the BTF id given stands for.
    const spec = objectSpec("ksym");
    const all = readKernelConfig().get("CONFIG_KALLSYMS_ALL") === "y";
    if (all) {
      using coll = loadCollection(spec, { programs: ["ksym_typed"] });
      expect(coll.program("ksym_typed").testRun({ data: FRAME }).retval).toBe(1);
    } else {
      let err: unknown;
      try {
        loadCollection(spec, { programs: ["ksym_typed"] }).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({ code: "ENOENT" });
      expect((err as Error).message).toContain("kernel symbol 'bpf_prog_active'");
    }
  });

  test("a ksym whose type differs from the kernel's fails its program alone, as libbpf reports it", () => {
    using coll = loadCollection(objectSpec("ksym"), { programErrors: "skip" });
    expect(coll.programs.has("ksym_values")).toBe(true);
    const err = coll.programErrors.get("ksym_mismatch");
    expect(err).toBeInstanceOf(KsymError);
    expect(err).toMatchObject({ symbol: "runqueues", kind: "symbol" });
    using dir = bpffsDir();
    const libbpf = bpftoolLoadall("ksym", dir.path);
    expect(libbpf.ok).toBe(false);
    if (libbpf.ok) return;
    const m = /extern \(var ksym\) 'runqueues': incompatible types, expected \[(\d+)\].*but kernel has \[(\d+)\]/.exec(
      libbpf.stderr,
    );
    expect(m, libbpf.stderr).not.toBeNull();
    expect(err?.message).toContain(
      `its type in the object (BTF type ${m?.[1]}) does not match the kernel's in vmlinux (BTF type ${m?.[2]})`,
    );
  });
});
