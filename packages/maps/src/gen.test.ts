import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Btf, type BtfMember, type BtfType, type CollectionSpec, ElfError, readCollectionSpec } from "@dp/core";
import type { Codec, StructCodec, UnionCodec } from "./codec.ts";
import { generateBindings } from "./gen.ts";
import { type GenCliIo, runGenCli } from "./gen_cli.ts";
import * as typedMaps from "./_test_typed_maps.gen.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const TYPED_MAPS = "bpf/build/testdata/typed_maps.o";
const CHECKED_IN = "packages/maps/src/_test_typed_maps.gen.ts";
const REGENERATE = `npm run gen:maps -- ${TYPED_MAPS} -o ${CHECKED_IN}`;
const CLANG = ["clang-19", "clang"].find((c) => spawnSync(c, ["--version"]).status === 0);

/** C layouts the generator has to get right, beyond typed_maps.c: bitfields, attributes, anonymous members, every scalar kind. */
const LAYOUTS_C = `
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u64 __be64;
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum color { RED, GREEN = 7 };

struct bits {
	__u32 a : 3;
	__u32 b : 5;
	__u16 c;
	__u8 d : 4;
	__u64 e;
};

struct only_bits {
	__u32 x : 9;
	__u32 : 3;
	__u32 y : 20;
};

struct aligned_tail {
	__u32 x;
	__u8 y;
} __attribute__((aligned(16)));

struct packed_aligned {
	__u8 a;
	__u32 b;
} __attribute__((packed, aligned(2)));

struct pair {
	__u8 p;
	__u8 q;
};

struct hash_map {
	__u32 x;
};

union addr {
	__be32 v4;
	__u8 v6[16];
};

struct mixed {
	__u32 kind;
	union {
		__u32 n;
		__u8 raw[4];
	};
	struct {
		__u16 lo;
		__u16 hi;
	};
	enum color color;
	_Bool ok;
	__be64 big;
	__int128 wide;
	void *ptr;
	char names[2][4];
	struct pair pairs[2];
	__u32 grid[2][3];
	float f;
	double d;
	struct hash_map hm;
	struct aligned_tail tail;
	struct packed_aligned pa;
	union addr addr;
	struct {
		__u32 x;
	} inner[2];
	union {
		struct {
			__u8 p;
			__u8 q;
		} pq;
		__u16 whole;
	} either;
	union weird {
		__u32 low : 3;
		__u32 all;
	} weird;
	signed char sc;
	short s16;
	long long s64;
	__be16 port;
};

typedef struct {
	__u32 id;
	__u32 gen;
} handle_t;

struct {
	__uint(type, 1);
	__uint(max_entries, 8);
	__type(key, handle_t);
	__type(value, struct bits);
} by_handle SEC(".maps");

struct {
	__uint(type, 1);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct { __u32 a; __u64 b; });
} anon_value SEC(".maps");

struct {
	__uint(type, 2);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct mixed);
} mixed SEC(".maps");

struct {
	__uint(type, 2);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct only_bits);
} only_bits SEC(".maps");

struct {
	__uint(type, 30);
	__uint(max_entries, 16);
	__type(value, __u32);
} bloom SEC(".maps");

struct {
	__uint(type, 11);
	__uint(max_entries, 16);
	__uint(map_flags, 1);
	__type(key, struct pair);
	__type(value, __u32);
} odd_lpm SEC(".maps");

struct event {
	__u32 seed;
	__u32 len;
};

struct {
	__uint(type, 27);
	__uint(max_entries, 4096);
	__type(value, struct event);
} events SEC(".maps");

handle_t g_handle;
struct mixed g_mixed;
volatile const struct aligned_tail g_tail = { .x = 1 };
`;

/** `__be32` fields that are addresses and one that is not, a map keyed by a bare `__be32`, a `__u32` named like an address. */
const IPV4_C = `
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef __u32 __be32;
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

struct flow {
	__be32 saddr;
	__be32 daddr;
	__be32 spi;
};

typedef struct {
	__be32 addr;
	__u32 host_addr;
} nat_t;

struct {
	__uint(type, 1);
	__uint(max_entries, 8);
	__type(key, struct flow);
	__type(value, nat_t);
} flows SEC(".maps");

struct {
	__uint(type, 9);
	__uint(max_entries, 8);
	__type(key, __be32);
	__type(value, __u64);
} src_counts SEC(".maps");
`;

function typedMapsSpec(): CollectionSpec {
  return readCollectionSpec(join(ROOT, TYPED_MAPS));
}

function generateTypedMaps(): string {
  return generateBindings(typedMapsSpec(), { objectPath: TYPED_MAPS, command: REGENERATE });
}

function isCodec(value: unknown): value is Codec<unknown> & { readonly fields?: StructCodec<unknown>["fields"] } {
  return typeof value === "object" && value !== null && "encode" in value && "decode" in value && "size" in value;
}

/** The BTF struct, union or typedef'd anonymous one a generated codec is named after (`"struct bits"`, `"handle_t"`). */
function btfTypeOf(btf: Btf, codecName: string): BtfType & { kind: "struct" | "union" } {
  const [kind, name] = codecName.includes(" ") ? codecName.split(" ") : ["typedef", codecName];
  const found = btf.typesByName(name ?? "", kind as "struct" | "union" | "typedef")[0];
  if (found === undefined) throw new Error(`No BTF type for ${codecName}`);
  const t = found.kind === "typedef" ? btf.resolve(found.id) : found;
  if (t.kind !== "struct" && t.kind !== "union") throw new Error(`${codecName} is a ${t.kind}`);
  return t;
}

interface BtfLeaf {
  readonly name: string;
  readonly bitOffset: number;
  readonly bitfield: boolean;
}

/** A struct's members with anonymous struct members flattened and anonymous unions named as the generator names them. */
function btfMembers(btf: Btf, t: BtfType & { kind: "struct" | "union" }, base = 0, counter = { n: 0 }): BtfLeaf[] {
  const out: BtfLeaf[] = [];
  for (const m of t.members) {
    const inner = btf.resolve(m.typeId);
    if (m.name === "" && t.kind === "struct" && inner.kind === "struct" && m.bitSize === 0) {
      out.push(...btfMembers(btf, inner, base + m.bitOffset, counter));
      continue;
    }
    if (m.name === "" && m.bitSize !== 0) continue; // unnamed padding bitfield
    const name = m.name === "" ? `anonymous${counter.n++}` : m.name;
    out.push({ name, bitOffset: base + m.bitOffset, bitfield: isBitfield(btf, m) });
  }
  return out;
}

function isBitfield(btf: Btf, m: BtfMember): boolean {
  const t = btf.resolve(m.typeId);
  return m.bitSize !== 0 || m.bitOffset % 8 !== 0 || (t.kind === "int" && t.bits !== t.size * 8);
}

/**
 * Checks a generated struct or union codec against the BTF: the size, each
 * member at its BTF offset, each bitfield inside a `bits_` span, and every
 * BTF member covered by a field.
 */
function expectLayoutMatchesBtf(
  btf: Btf,
  exportName: string,
  codec: Codec<unknown> & { readonly fields?: StructCodec<unknown>["fields"] },
): number {
  const t = btfTypeOf(btf, codec.name);
  expect(codec.size, `${exportName} (${codec.name}) size`).toBe(t.size);
  const fields = codec.fields ?? [];
  const members = btfMembers(btf, t);
  for (const m of members) {
    if (m.bitfield) {
      const span = fields.find(
        (f) => f.name.startsWith("bits_") && f.offset * 8 <= m.bitOffset && m.bitOffset < (f.offset + f.codec.size) * 8,
      );
      expect(span, `${exportName}.${m.name}: bitfield at bit ${m.bitOffset} in a bits_ span`).toBeDefined();
    } else {
      const field = fields.find((f) => f.name === m.name);
      expect(field, `${exportName}.${m.name}: a field`).toBeDefined();
      expect(field?.offset, `${exportName}.${m.name}: offset`).toBe(m.bitOffset / 8);
    }
  }
  for (const f of fields) {
    if (f.name.startsWith("bits_")) continue;
    expect(
      members.some((m) => m.name === f.name),
      `${exportName}.${f.name}: a BTF member`,
    ).toBe(true);
  }
  return members.length;
}

function exportedCodecs(
  mod: Record<string, unknown>,
): [string, Codec<unknown> & { readonly fields?: StructCodec<unknown>["fields"] }][] {
  return Object.entries(mod).filter((e): e is [string, Codec<unknown>] => isCodec(e[1]));
}

/** Collects what the CLI prints. */
function captureIo(cwd: string): GenCliIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    cwd,
    stdout: (t: string): void => {
      io.out += t;
    },
    stderr: (t: string): void => {
      io.err += t;
    },
  };
  return io;
}

describe("generateBindings()", () => {
  test(`generateBindings() output for ${TYPED_MAPS} is the checked-in ${CHECKED_IN}`, () => {
    const fresh = generateTypedMaps();
    const current = readFileSync(join(ROOT, CHECKED_IN), "utf8");
    if (current !== fresh) {
      expect.fail(
        `${CHECKED_IN} is stale: it differs from what dp-gen generates for ${TYPED_MAPS}. Regenerate it with: ${REGENERATE}`,
      );
    }
  });

  test("generateBindings() gives the same text for the same object, parsed or as bytes", () => {
    const bytes = new Uint8Array(readFileSync(join(ROOT, TYPED_MAPS)));
    const options = { objectPath: TYPED_MAPS, command: REGENERATE };
    expect(generateBindings(bytes, options)).toBe(generateTypedMaps());
    expect(generateBindings(bytes, options)).toBe(generateBindings(bytes, options));
  });

  test("generateBindings() names the object and the command in a do-not-edit header", () => {
    const text = generateBindings(typedMapsSpec());
    expect(text.split("\n").slice(0, 2)).toEqual([
      "// Generated by dp-gen from typed_maps.o: do not edit.",
      "// Regenerate with: dp-gen typed_maps.o",
    ]);
  });

  test("the checked-in codecs have the sizes and offsets of the object's BTF", () => {
    const btf = typedMapsSpec().btf as Btf;
    const codecs = exportedCodecs(typedMaps);
    expect(codecs.map(([name]) => name).sort()).toEqual([
      "Backend",
      "Counters",
      "Nested",
      "OddLayout",
      "PackedPair",
      "PolicyEntry",
      "PolicyKey",
    ]);
    for (const [name, codec] of codecs) expectLayoutMatchesBtf(btf, name, codec);
    const backendUnion = typedMaps.Backend.fields.find((f) => f.name === "u")?.codec as UnionCodec<unknown>;
    expect(backendUnion.fields.map((f) => [f.name, f.offset, f.codec.size])).toEqual([
      ["weight", 0, 4],
      ["raw", 0, 4],
    ]);
  });

  test("the checked-in codecs use be16/be32 for __be16/__be32, cstring for char arrays and packed for packed structs", () => {
    const field = (codec: StructCodec<unknown>, name: string): string | undefined =>
      codec.fields.find((f) => f.name === name)?.codec.name;
    expect(field(typedMaps.PolicyKey, "dport")).toBe("be16");
    expect(field(typedMaps.Backend, "addr")).toBe("be32");
    expect(field(typedMaps.Backend, "mac")).toBe("u8[6]");
    expect(field(typedMaps.OddLayout, "name")).toBe("char[5]");
    expect(field(typedMaps.OddLayout, "d")).toBe("u32[3]");
    expect(typedMaps.PackedPair.fields.map((f) => f.offset)).toEqual([0, 1]);
    expect(typedMaps.PackedPair.align).toBe(1);
  });

  test("the checked-in bind() maps each map type to its class", () => {
    const text = readFileSync(join(ROOT, CHECKED_IN), "utf8");
    const declared = Object.fromEntries([...text.matchAll(/^ {2}readonly (\w+): (.+);$/gm)].map((m) => [m[1], m[2]]));
    expect(declared).toMatchObject({
      policy: "HashMap<PolicyKey, PolicyEntry>",
      backends: "ArrayMap<Backend>",
      stats: "PerCpuArrayMap<Counters>",
      odd: "ArrayMap<OddLayout>",
      packed: "ArrayMap<PackedPair>",
      lru: "LruHashMap<number, bigint>",
      percpu_hash: "PerCpuHashMap<number, bigint>",
      routes: "LpmTrieMap<number>",
      queue: "QueueMap<number>",
      stack: "StackMap<number>",
      events: "RingBuffer",
      mmap_counters: "ArrayMap<bigint>",
      jumps: "ProgArrayMap",
      per_slot: "ArrayOfMaps",
      socks: "SockMap",
      sock_hash: "SockHash<PolicyKey>",
      verdict: "ObjectConstant<number>",
      default_nested: "ObjectConstant<Nested>",
      run_count: "ObjectVariable<bigint>",
      last_route: "ObjectVariable<number>",
      totals: "ObjectVariable<Counters>",
      fill_maps: "BpfProgram",
    });
  });

  test("generateBindings() throws SyntaxError naming the object when the bytes are not an ELF file", () => {
    const err = (() => {
      try {
        generateBindings(new TextEncoder().encode("not an object file, just text".repeat(4)), {
          objectPath: "notes.txt",
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(SyntaxError);
    expect((err as Error).message).toBe('Cannot generate bindings for "notes.txt": the object cannot be parsed');
    expect((err as Error).cause).toBeInstanceOf(ElfError);
  });

  test("generateBindings() throws TypeError when the object has no BTF", () => {
    const spec: CollectionSpec = { ...typedMapsSpec(), btf: undefined };
    expect(() => generateBindings(spec, { objectPath: "plain.o" })).toThrow(
      new TypeError('Cannot generate bindings for "plain.o": the object has no BTF (compile it with clang -g)'),
    );
  });
});

describe.skipIf(CLANG === undefined)("generateBindings() with ipv4Fields", () => {
  let dir: string;
  let spec: CollectionSpec;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dp-gen-ipv4-"));
    writeFileSync(join(dir, "ipv4.c"), IPV4_C);
    execFileSync(CLANG as string, [
      "-g",
      "-O2",
      "-target",
      "bpf",
      "-c",
      join(dir, "ipv4.c"),
      "-o",
      join(dir, "ipv4.o"),
    ]);
    spec = readCollectionSpec(join(dir, "ipv4.o"));
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("without ipv4Fields every __be32 is a be32 number", () => {
    const text = generateBindings(spec, { objectPath: "ipv4.o" });
    expect(text).toContain("    saddr: be32,\n    daddr: be32,\n    spi: be32,");
    expect(text).toContain("readonly src_counts: LruHashMap<number, bigint>;");
    expect(text).not.toMatch(/\bipv4\b(?!\.o)/);
  });

  test("ipv4Fields turns the __be32 fields it names into ipv4 addresses: by member name, struct.member, typedef.member and map.key", async () => {
    const text = generateBindings(spec, {
      objectPath: "ipv4.o",
      ipv4Fields: ["saddr", "flow.daddr", "nat_t.addr", "src_counts.key"],
    });
    expect(text).toContain("  /** `__be32 saddr` at offset 0. */\n  saddr: string;");
    expect(text).toContain("    saddr: ipv4,\n    daddr: ipv4,\n    spi: be32,");
    expect(text).toContain("    addr: ipv4,\n    host_addr: u32,");
    expect(text).toContain("readonly src_counts: LruHashMap<string, bigint>;");
    expect(text).toContain('new LruHashMap(coll.map("src_counts"), ipv4, u64)');

    // The codecs encode text addresses in network order.
    const local = text
      .replace('from "@dp/maps";', `from ${JSON.stringify(join(ROOT, "packages/maps/src/mod.ts"))};`)
      .replace('from "@dp/core";', `from ${JSON.stringify(join(ROOT, "packages/core/src/mod.ts"))};`);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(dir, "ipv4.gen.ts"), local);
    const mod = (await import(pathToFileURL(join(dir, "ipv4.gen.ts")).href)) as Record<
      string,
      StructCodec<Record<string, unknown>>
    >;
    const flow = mod.Flow as StructCodec<Record<string, unknown>>;
    const bytes = new Uint8Array(flow.size);
    flow.encode({ saddr: "10.0.0.1", daddr: "192.168.1.2", spi: 0x01020304 }, new DataView(bytes.buffer), 0);
    expect([...bytes]).toEqual([10, 0, 0, 1, 192, 168, 1, 2, 1, 2, 3, 4]);
    expect(flow.decode(new DataView(bytes.buffer), 0)).toEqual({
      saddr: "10.0.0.1",
      daddr: "192.168.1.2",
      spi: 0x01020304,
    });
  });

  test("only the struct a qualified name names changes, and be32 is imported only when still used", () => {
    const text = generateBindings(spec, {
      objectPath: "ipv4.o",
      ipv4Fields: ["flow.saddr", "flow.daddr", "flow.spi", "nat_t.addr"],
    });
    expect(text).toContain("    saddr: ipv4,\n    daddr: ipv4,\n    spi: ipv4,");
    expect(text).toContain("readonly src_counts: LruHashMap<number, bigint>;");
    const only = generateBindings(spec, {
      objectPath: "ipv4.o",
      ipv4Fields: ["saddr", "daddr", "spi", "addr", "src_counts.key"],
    });
    expect(only).toMatch(/^import \{ [^}]*\bipv4\b[^}]*\} from "@dp\/maps";$/m);
    expect(only).not.toMatch(/\bbe32\b/);
  });

  test("ipv4Fields naming no field is a RangeError, naming a field that is not a __be32 a TypeError", () => {
    expect(() => generateBindings(spec, { objectPath: "ipv4.o", ipv4Fields: ["saddr", "dadr", "nat.addr"] })).toThrow(
      new RangeError(
        'Cannot generate bindings for "ipv4.o": ipv4Fields names "dadr", "nat.addr", which no field of its maps and variables has (give a member name, struct.member, map.key or map.value)',
      ),
    );
    expect(() => generateBindings(spec, { objectPath: "ipv4.o", ipv4Fields: ["host_addr"] })).toThrow(
      new TypeError(
        'Cannot generate bindings for "ipv4.o": ipv4Fields names "host_addr", but `__u32 host_addr` is not a __be32',
      ),
    );
    expect(() => generateBindings(spec, { objectPath: "ipv4.o", ipv4Fields: ["src_counts.value"] })).toThrow(
      new TypeError(
        'Cannot generate bindings for "ipv4.o": ipv4Fields names "src_counts.value", but `__u64 value` is not a __be32',
      ),
    );
  });

  test("dp-gen --ipv4-fields takes a comma-separated list, may repeat, and the header's command keeps it", () => {
    const io = captureIo(dir);
    expect(runGenCli(["ipv4.o", "--ipv4-fields", "saddr,flow.daddr", "--ipv4-fields", "src_counts.key"], io)).toBe(0);
    expect(io.err).toBe("");
    expect(io.out).toBe(
      generateBindings(spec, {
        objectPath: "ipv4.o",
        command: "dp-gen ipv4.o --ipv4-fields saddr,flow.daddr,src_counts.key",
        ipv4Fields: ["saddr", "flow.daddr", "src_counts.key"],
      }),
    );
    const bad = captureIo(dir);
    expect(runGenCli(["ipv4.o", "--ipv4-fields", "nope"], bad)).toBe(1);
    expect(bad.err).toMatch(/^dp-gen: Cannot generate bindings for "ipv4\.o": ipv4Fields names "nope"/);
  });
});

describe.skipIf(CLANG === undefined)("generateBindings() on C layouts compiled by clang", () => {
  let dir: string;
  let text: string;
  let btf: Btf;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dp-gen-"));
    writeFileSync(join(dir, "layouts.c"), LAYOUTS_C);
    execFileSync(CLANG as string, [
      "-g",
      "-O2",
      "-target",
      "bpf",
      "-c",
      join(dir, "layouts.c"),
      "-o",
      join(dir, "layouts.o"),
    ]);
    const spec = readCollectionSpec(join(dir, "layouts.o"));
    btf = spec.btf as Btf;
    text = generateBindings(spec, { objectPath: "layouts.o" });
    // Outside the repository "@dp/*" do not resolve: point the copy at the sources.
    const local = text
      .replace('from "@dp/maps";', `from ${JSON.stringify(join(ROOT, "packages/maps/src/mod.ts"))};`)
      .replace('from "@dp/core";', `from ${JSON.stringify(join(ROOT, "packages/core/src/mod.ts"))};`);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(dir, "layouts.gen.ts"), local);
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("generated codecs load and match the BTF for bitfields, attributes, anonymous members and every scalar kind", async () => {
    const mod = (await import(pathToFileURL(join(dir, "layouts.gen.ts")).href)) as Record<string, unknown>;
    const codecs = exportedCodecs(mod);
    expect(codecs.map(([name]) => name).sort()).toEqual([
      "Addr",
      "AlignedTail",
      "AnonValueValue",
      "Bits",
      "Event",
      "HandleT",
      "HashMapStruct",
      "Mixed",
      "OnlyBits",
      "PackedAligned",
      "Pair",
      "Weird",
    ]);
    for (const [name, codec] of codecs) {
      if (name === "AnonValueValue") continue; // anonymous: checked below
      expectLayoutMatchesBtf(btf, name, codec);
    }
    const anon = mod.AnonValueValue as StructCodec<unknown>;
    expect(anon.fields.map((f) => [f.name, f.offset])).toEqual([
      ["a", 0],
      ["b", 8],
    ]);
  });

  test("generated codecs pick the codec of each C type", async () => {
    const mod = (await import(pathToFileURL(join(dir, "layouts.gen.ts")).href)) as Record<string, StructCodec<unknown>>;
    const mixed = mod.Mixed as StructCodec<unknown>;
    const names = Object.fromEntries(mixed.fields.map((f) => [f.name, f.codec.name]));
    expect(names).toMatchObject({
      kind: "u32",
      color: "u32",
      ok: "bool",
      big: "be64",
      wide: "u8[16]",
      ptr: "u64",
      names: "char[4][2]",
      grid: "u32[3][2]",
      f: "f32",
      d: "f64",
      hm: "struct hash_map",
      addr: "union addr",
      sc: "i8",
      s16: "i16",
      s64: "i64",
      port: "be16",
      lo: "u16",
      hi: "u16",
    });
    expect(Object.keys(names)).toContain("anonymous0");
  });

  test("generated text explains what it keeps as bytes and pins only the offsets that differ", () => {
    expect(text).toContain("// Bitfields: a at bit 0 (3 bits), b at bit 3 (5 bits).");
    expect(text).toContain("// Bitfields: x at bit 0 (9 bits), y at bit 12 (20 bits).");
    expect(text).toContain("// __int128: no codec for this type, kept as bytes.");
    expect(text).toContain("// Bitfields: low at bit 0 (3 bits).");
    expect(text).toContain("  inner: { x: number }[];");
    expect(text).toContain(
      "  either: { pq: { p: number; q: number }; whole?: undefined } | { whole: number; pq?: undefined };",
    );
    expect(text).toContain('{ name: "struct packed_aligned", size: 6, offsets: { b: 1 } }');
    expect(text).toContain('{ name: "struct aligned_tail", size: 16, offsets: { y: 4 } }');
    expect(text).toMatch(/readonly bloom: BpfMap;/);
    expect(text).toMatch(/readonly events: RingBuffer<Event>;/);
    expect(text).toContain('ringEvents = new RingBuffer(coll.map("events"), Event);');
    expect(text).toMatch(/`odd_lpm`: lpmTrie, .*: the raw map\./);
    expect(text).toMatch(/readonly g_tail: ObjectConstant<AlignedTail>;/);
    expect(text).toContain("export type ObjectPrograms = Record<string, never>;");
  });

  test("generated text type-checks under the repository's compiler options", () => {
    const config = ts.readConfigFile(join(ROOT, "tsconfig.base.json"), (p) => ts.sys.readFile(p));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT);
    const file = join(dir, "layouts.gen.ts");
    const program = ts.createProgram([file], {
      ...options,
      composite: false,
      noEmit: true,
      emitDeclarationOnly: false,
      types: ["node"],
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).toEqual([]);
  }, 60_000);
});

describe("dp-gen", () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dp-gen-cli-"));
    mkdirSync(join(dir, "obj"));
    writeFileSync(join(dir, "obj/typed_maps.o"), readFileSync(join(ROOT, TYPED_MAPS)));
    writeFileSync(join(dir, "notes.o"), "not an object");
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test("dp-gen writes the bindings with a header naming the command", () => {
    const io = captureIo(dir);
    expect(runGenCli(["obj/typed_maps.o", "-o", "out.gen.ts"], io)).toBe(0);
    expect(io.err).toBe("");
    const written = readFileSync(join(dir, "out.gen.ts"), "utf8");
    expect(written).toBe(
      generateBindings(typedMapsSpec(), {
        objectPath: "obj/typed_maps.o",
        command: "dp-gen obj/typed_maps.o -o out.gen.ts",
      }),
    );
  });

  test("dp-gen names paths relative to the working directory, however they are given", () => {
    const io = captureIo(dir);
    expect(runGenCli([join(dir, "obj/typed_maps.o"), "--command", "npm run gen:maps --"], io)).toBe(0);
    expect(io.out.split("\n")[1]).toBe("// Regenerate with: npm run gen:maps -- obj/typed_maps.o");
  });

  test("dp-gen --check exits 0 when the file is up to date and 1 naming the command when it is stale", () => {
    const out = join(dir, "check.gen.ts");
    expect(runGenCli(["obj/typed_maps.o", "-o", "check.gen.ts"], captureIo(dir))).toBe(0);
    const fresh = captureIo(dir);
    expect(runGenCli(["obj/typed_maps.o", "-o", "check.gen.ts", "--check"], fresh)).toBe(0);
    expect(fresh.err).toBe("");

    writeFileSync(out, readFileSync(out, "utf8").replace("identity: number;", "identity: bigint;"));
    const stale = captureIo(dir);
    expect(runGenCli(["obj/typed_maps.o", "-o", "check.gen.ts", "--check"], stale)).toBe(1);
    expect(stale.err).toMatch(
      /^dp-gen: check\.gen\.ts is stale \(generated from obj\/typed_maps\.o\): it differs from the generated text at line \d+\. Regenerate it with: dp-gen obj\/typed_maps\.o -o check\.gen\.ts\n$/,
    );
    expect(readFileSync(out, "utf8")).toContain("identity: bigint;");

    const missing = captureIo(dir);
    expect(runGenCli(["obj/typed_maps.o", "-o", "missing.gen.ts", "--check"], missing)).toBe(1);
    expect(missing.err).toContain("missing.gen.ts is stale (generated from obj/typed_maps.o): it does not exist.");
    expect(existsSync(join(dir, "missing.gen.ts"))).toBe(false);
  });

  test.each([
    [
      ["notes.o", "-o", "x.ts"],
      1,
      'dp-gen: Cannot generate bindings for "notes.o": the object cannot be parsed: Invalid ELF at offset 0x0',
    ],
    [["absent.o"], 1, 'dp-gen: Cannot read "absent.o": ENOENT'],
    [[], 2, "dp-gen: expected one object file, got 0"],
    [["a.o", "b.o"], 2, "dp-gen: expected one object file, got 2"],
    [["obj/typed_maps.o", "--check"], 2, "dp-gen: --check needs -o OUT.ts"],
    [["obj/typed_maps.o", "--frobnicate"], 2, "dp-gen: Unknown option '--frobnicate'"],
  ])("dp-gen %j exits %i with a message", (args, status, message) => {
    const io = captureIo(dir);
    expect(runGenCli(args, io)).toBe(status);
    expect(io.err.startsWith(message), io.err).toBe(true);
    expect(existsSync(join(dir, "x.ts"))).toBe(false);
  });

  test("npx dp-gen runs the command from the source in a checkout, from any folder of it", () => {
    const run = spawnSync("npx", ["--no-install", "dp-gen", "../../" + TYPED_MAPS, "--ipv4-fields", "backend.addr"], {
      cwd: join(ROOT, "packages/hooks"),
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`// Regenerate with: dp-gen ../../${TYPED_MAPS} --ipv4-fields backend.addr\n`);
    expect(run.stdout).toContain("    addr: ipv4,");
    const usage = spawnSync("npx", ["--no-install", "dp-gen"], { cwd: ROOT, encoding: "utf8" });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain("dp-gen: expected one object file, got 0");
  }, 60_000);

  test("the dp-gen launcher of an installed package (no src/) runs dist/gen_cli.js", () => {
    const pkg = join(dir, "installed");
    mkdirSync(join(pkg, "bin"), { recursive: true });
    mkdirSync(join(pkg, "dist"));
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(join(pkg, "bin/dp-gen.js"), readFileSync(join(ROOT, "packages/maps/bin/dp-gen.js")));
    writeFileSync(
      join(pkg, "dist/gen_cli.js"),
      "export function runGenCli(args) { process.stdout.write(JSON.stringify(args)); return 3; }\n",
    );
    const run = spawnSync(process.execPath, [join(pkg, "bin/dp-gen.js"), "x.o", "-o", "y.ts"], { encoding: "utf8" });
    expect(run.stdout).toBe('["x.o","-o","y.ts"]');
    expect(run.status).toBe(3);
  });

  test("dp-gen run as a command sets its exit status", () => {
    const cli = join(ROOT, "packages/maps/src/gen_cli.ts");
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ["--conditions=@dp/source", "--import", "tsx", cli, ...args], {
        cwd: ROOT,
        encoding: "utf8",
      });
    const fresh = run(TYPED_MAPS, "-o", CHECKED_IN, "--check", "--command", "npm run gen:maps --");
    expect(fresh.stderr).toBe("");
    expect(fresh.status).toBe(0);
    const stale = run(TYPED_MAPS, "-o", CHECKED_IN, "--check");
    expect(stale.status).toBe(1);
    expect(stale.stderr).toContain(`Regenerate it with: dp-gen ${TYPED_MAPS} -o ${CHECKED_IN}`);
  }, 60_000);
});
