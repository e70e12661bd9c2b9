import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { HAS_CLANG, ROOT } from "../btf/_test_btf.ts";
import { parseCollectionSpec, readCollectionSpec } from "./collection_spec.ts";
import { MapDefinitionError } from "./object_maps.ts";

const DIR = join(ROOT, "bpf/build/testdata");

/** Compiles a C snippet with `struct bpf_elf_map` in scope. */
function compile(body: string): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "dp-legacy-"));
  try {
    writeFileSync(
      join(dir, "x.c"),
      `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct bpf_elf_map { __u32 type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx; };
${body}
char LICENSE[] SEC("license") = "GPL";
`,
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

describe('legacy SEC("maps") definitions', () => {
  test("bpf_elf_map: every map, referenced or not, with tc's PIN_GLOBAL_NS", () => {
    const spec = readCollectionSpec(join(DIR, "legacy_maps.o"));
    const maps = [...spec.maps.values()].map(({ name, spec: s, pinning, kind, keyTypeId, valueTypeId }) => ({
      name,
      spec: s,
      pinning,
      kind,
      keyTypeId,
      valueTypeId,
    }));
    const common = { kind: "map", keyTypeId: undefined, valueTypeId: undefined };
    expect(maps).toEqual([
      {
        ...common,
        name: "legacy_counts",
        pinning: "globalNs",
        spec: { name: "legacy_counts", type: "array", keySize: 4, valueSize: 8, maxEntries: 2 },
      },
      {
        ...common,
        name: "legacy_lens",
        pinning: "none",
        spec: { name: "legacy_lens", type: "hash", keySize: 4, valueSize: 4, maxEntries: 16, flags: 1 },
      },
      {
        ...common,
        name: "legacy_unused",
        pinning: "none",
        spec: { name: "legacy_unused", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 },
      },
      {
        ...common,
        name: "dp_testdata_pinned",
        pinning: "globalNs",
        spec: { name: "dp_testdata_pin", type: "hash", keySize: 4, valueSize: 8, maxEntries: 16 },
      },
    ]);
    const refs = spec.programs.get("legacy_count")?.references.map((r) => (r.kind === "map" ? r.map : r.kind));
    expect(refs).toEqual(["legacy_counts", "legacy_lens", "dp_testdata_pinned"]);
    // The definitions are not global variables.
    expect(spec.variables.size).toBe(0);
  });

  test("bpf_map_def: five fields", () => {
    const spec = readCollectionSpec(join(DIR, "legacy_map_def.o"));
    expect(spec.maps.get("map_def_counts")).toMatchObject({
      pinning: "none",
      spec: { name: "map_def_counts", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 },
    });
  });

  test.skipIf(!HAS_CLANG)("a static map is found through the section symbol and its offset", () => {
    const bytes = compile(`
static struct bpf_elf_map SEC("maps") first = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1 };
static struct bpf_elf_map SEC("maps") second = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 8, .max_elem = 1 };
SEC("tc") int prog(struct __sk_buff *skb) { __u32 k = 0; return bpf_map_lookup_elem(&second, &k) != 0 && bpf_map_lookup_elem(&first, &k) != 0; }
`);
    const spec = parseCollectionSpec(bytes, { name: "static_maps" });
    const refs = spec.programs.get("prog")?.references.map((r) => (r.kind === "map" ? r.map : r.kind));
    expect(refs?.sort()).toEqual(["first", "second"]);
  });

  test.skipIf(!HAS_CLANG)("what is not supported is a MapDefinitionError naming the map and the section", () => {
    const cases: [string, RegExp][] = [
      [
        `struct bpf_elf_map SEC("maps") per_object = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .pinning = 1 };`,
        /^Invalid map "per_object" in maps: pinning 1 \(PIN_OBJECT_NS\) is not supported: expected 0 \(PIN_NONE\) or 2 \(PIN_GLOBAL_NS\) \(object "x"\)$/,
      ],
      [
        `struct bpf_elf_map SEC("maps") outer = { .type = BPF_MAP_TYPE_ARRAY_OF_MAPS, .size_key = 4, .size_value = 4, .max_elem = 1, .inner_idx = 1 };`,
        /^Invalid map "outer" in maps: maps of maps in SEC\("maps"\) are not supported/,
      ],
      [
        `struct longer_def { struct bpf_elf_map m; __u32 extra; };\nstruct longer_def SEC("maps") longer = { .m = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1 }, .extra = 7 };`,
        /^Invalid map "longer" in maps: byte 36 of its 40-byte definition is not zero \(unknown field\)/,
      ],
      [
        `struct bpf_elf_map SEC("maps") odd = { .type = 9999, .size_key = 4, .size_value = 4, .max_elem = 1 };`,
        /^Invalid map "odd" in maps: unknown map type 9999/,
      ],
    ];
    for (const [body, message] of cases) {
      const bytes = compile(body);
      let err: unknown;
      try {
        parseCollectionSpec(bytes, { name: "x" });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(MapDefinitionError);
      expect((err as MapDefinitionError).section).toBe("maps");
      expect((err as Error).message).toMatch(message);
    }
  });
});
