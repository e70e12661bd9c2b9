import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { ROOT } from "../btf/_test_btf.ts";
import { readCollectionSpec } from "./collection_spec.ts";

describe("struct_ops maps in a spec", () => {
  const spec = readCollectionSpec(join(ROOT, "bpf/build/testdata/struct_ops.o"));

  test("each variable of .struct_ops and .struct_ops.link is a map with its programs by member", () => {
    for (const [name, flags] of [
      ["dp_cc_update", undefined],
      ["dp_cc_link", 8192],
    ] as const) {
      const m = spec.maps.get(name);
      expect(m).toMatchObject({
        kind: "structOps",
        pinning: "none",
        spec: { name, type: "structOps", keySize: 4, maxEntries: 1 },
      });
      expect(m?.spec.flags).toBe(flags);
      const t = spec.btf?.resolve(m?.valueTypeId ?? 0);
      expect(t).toMatchObject({ kind: "struct", name: "tcp_congestion_ops" });
      const members = t?.kind === "struct" ? t.members : [];
      expect(m?.initialValues.map((v) => [members[v.slot]?.name, v.symbol])).toEqual([
        ["ssthresh", "dp_cc_ssthresh"],
        ["cong_avoid", "dp_cc_cong_avoid"],
        ["undo_cwnd", "dp_cc_undo_cwnd"],
      ]);
      // The struct's bytes, as the object laid it out: the name member holds the name.
      const nameMember = members.find((x) => x.name === "name");
      const at = (nameMember?.bitOffset ?? 0) / 8;
      const bytes = m?.contents?.subarray(at, at + 16) ?? new Uint8Array();
      expect(new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)))).toBe(name);
    }
  });

  test("its programs are struct_ops programs; the struct is no global variable", () => {
    for (const p of ["dp_cc_ssthresh", "dp_cc_cong_avoid", "dp_cc_undo_cwnd"]) {
      expect(spec.programs.get(p)?.type).toBe("structOps");
    }
    expect([...spec.variables.keys()]).toEqual(["calls"]);
  });
});
