// Map specs from the BTF-defined maps of a BPF object's `.maps` section, the
// way libbpf reads them (parse_btf_map_def): every map is a global variable
// whose struct type encodes the definition in its members. `__uint(name, N)`
// is `int (*name)[N]`, `__type(name, T)` is `T *name` and
// `__array(values, T)` is `T *values[]`. Initial values of prog arrays and
// maps of maps are R_BPF_64_ABS64 relocations in `.rel.maps`.
import type { Btf, BtfMember, BtfStruct, BtfType } from "../btf/btf.ts";
import { BPF_RELOCATION_TYPE, type ElfFile, type ElfSymbol } from "./elf.ts";
import { type MapSpec, type MapType, mapTypeName } from "../bpf/map_spec.ts";

/**
 * How a map from an object is pinned: `"none"`; `"byName"`
 * (`LIBBPF_PIN_BY_NAME`, value 1 in a BTF map definition): shared through
 * `<pin path>/<map name>`; or `"globalNs"` (iproute2's `PIN_GLOBAL_NS`,
 * value 2 in a legacy `struct bpf_elf_map`): shared through
 * `<tc globals path>/<map name>`, `/sys/fs/bpf/tc/globals` as tc pins them.
 *
 * @useDeclaredType
 */
export type MapPinning = "none" | "byName" | "globalNs";

/** One initial entry of a prog array or a map of maps, from `.values = { [slot] = &symbol }`. */
export interface MapInitialValue {
  /** The index (the key of a hash of maps) the entry goes to. */
  readonly slot: number;
  /** The program (prog arrays) or map (maps of maps) the entry refers to. */
  readonly symbol: string;
}

/** A map defined in an object's `.maps` section (or legacy `maps` section), made by {@link mapSpecsFromObject}. */
export interface ObjectMapSpec {
  /** The variable's full name (the kernel name in {@link ObjectMapSpec.spec} is cut to 15 characters). */
  readonly name: string;
  /** What to create; `btf` is left out (the loader adds it with {@link ObjectMapSpec.keyTypeId}). */
  readonly spec: MapSpec;
  /** `"byName"` for `__uint(pinning, LIBBPF_PIN_BY_NAME)`, `"globalNs"` for a legacy definition's `PIN_GLOBAL_NS`, else `"none"`. */
  readonly pinning: MapPinning;
  /**
   * The object BTF's type id of the key, from `__type(key, T)`; `undefined`
   * when the size came from `key_size`, for prog arrays and maps of maps.
   */
  readonly keyTypeId: number | undefined;
  /**
   * The object BTF's type id of the value, from `__type(value, T)`;
   * `undefined` when the size came from `value_size`, for maps without a
   * value (ring buffers), prog arrays and maps of maps.
   */
  readonly valueTypeId: number | undefined;
  /** Initial entries of prog arrays and maps of maps, in relocation order; empty for other maps. */
  readonly initialValues: readonly MapInitialValue[];
}

/**
 * A map definition in an object's `.maps` section (or its legacy `maps`
 * section) is malformed: a member has the wrong shape, is unknown or does
 * not fit the map type, or an initial value points at the wrong thing. The
 * message names the map, the section and what is wrong.
 *
 * @example What a bad definition reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { MapDefinitionError } from "@dp/core/internal";
 *
 * const err = new MapDefinitionError("jump_table", 'member "values" on a hash map');
 * assert.ok(err instanceof SyntaxError);
 * assert.equal(err.mapName, "jump_table");
 * assert.equal(err.message, 'Invalid map "jump_table" in .maps: member "values" on a hash map');
 * ```
 */
export class MapDefinitionError extends SyntaxError {
  /** Always `"MapDefinitionError"`, the class name. */
  override readonly name: string = "MapDefinitionError";
  /** The map's variable name (`<outer>.inner` for the inner map of a map of maps). */
  readonly mapName: string;
  /** The section of the definition: `".maps"`, or `"maps"` for a legacy one. */
  readonly section: string;

  /**
   * Creates an error whose message is `Invalid map "<mapName>" in <section>: <detail>`.
   *
   * @param mapName The map's variable name.
   * @param detail What is wrong.
   * @param options The underlying error, if any, and the section (`".maps"` when left out).
   */
  constructor(mapName: string, detail: string, options?: ErrorOptions & { readonly section?: string }) {
    const section = options?.section ?? MAPS;
    super(
      `Invalid map ${JSON.stringify(mapName)} in ${section}: ${detail}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.mapName = mapName;
    this.section = section;
  }
}

const MAPS = ".maps";
const POINTER_SIZE = 8;
const KERNEL_NAME_LEN = 15;
const PIN_BY_NAME = 1;
const MAX_MEMBERS = 64;

const WITH_VALUES: ReadonlySet<MapType> = new Set(["progArray", "arrayOfMaps", "hashOfMaps"]);
const MAPS_OF_MAPS: ReadonlySet<MapType> = new Set(["arrayOfMaps", "hashOfMaps"]);
const INT_MEMBERS = new Set(["type", "max_entries", "map_flags", "numa_node", "key_size", "value_size", "pinning"]);
const TYPE_MEMBERS = new Set(["key", "value"]);

/** A parsed definition before initial values are attached. */
interface Definition {
  readonly spec: MapSpec;
  readonly pinning: MapPinning;
  readonly keyTypeId: number | undefined;
  readonly valueTypeId: number | undefined;
  /** The byte offset of the `values` member, when there is one. */
  readonly valuesOffset: number | undefined;
}

/** Calls into the BTF, turning its errors into errors about this map. */
function btfCall<T>(mapName: string, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof MapDefinitionError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new MapDefinitionError(mapName, `${what}: ${detail}`, { cause: err });
  }
}

function describeType(t: BtfType): string {
  return t.name === "" ? `${t.kind} (id ${t.id})` : `${t.kind} ${JSON.stringify(t.name)} (id ${t.id})`;
}

/** The `N` of `__uint(member, N)`: a pointer to an array of N elements. */
function intMember(btf: Btf, mapName: string, m: BtfMember): number {
  const ptr = btfCall(mapName, `member ${JSON.stringify(m.name)}`, () => btf.resolve(m.typeId));
  const arr =
    ptr.kind === "ptr"
      ? btfCall(mapName, `member ${JSON.stringify(m.name)}`, () => btf.resolve(ptr.typeId))
      : undefined;
  if (arr?.kind !== "array") {
    throw new MapDefinitionError(
      mapName,
      `member ${JSON.stringify(m.name)} must be __uint(${m.name}, N), a pointer to an array, got ${describeType(arr ?? ptr)}`,
    );
  }
  return arr.length;
}

/**
 * A 64-bit member (`map_extra`): `__uint(member, N)`, or libbpf's
 * `__ulong(member, N)`, an enum (ENUM64 when N needs 64 bits) whose one
 * value is N.
 */
function longMember(btf: Btf, mapName: string, m: BtfMember): bigint {
  const t = btfCall(mapName, `member ${JSON.stringify(m.name)}`, () => btf.resolve(m.typeId));
  if (t.kind !== "enum" && t.kind !== "enum64") return BigInt(intMember(btf, mapName, m));
  const [only, ...more] = t.values;
  if (only === undefined || more.length > 0) {
    throw new MapDefinitionError(
      mapName,
      `member ${JSON.stringify(m.name)} must be __ulong(${m.name}, N), an enum of one value, got ${t.values.length} values`,
    );
  }
  const value = BigInt(only.value);
  // An unsigned 64-bit value may be stored as a negative signed one.
  return value < 0n ? BigInt.asUintN(64, value) : value;
}

/** The pointee of `__type(member, T)`. */
function typeMember(btf: Btf, mapName: string, m: BtfMember): { typeId: number; size: number } {
  const ptr = btfCall(mapName, `member ${JSON.stringify(m.name)}`, () => btf.resolve(m.typeId));
  if (ptr.kind !== "ptr") {
    throw new MapDefinitionError(
      mapName,
      `member ${JSON.stringify(m.name)} must be __type(${m.name}, T), a pointer, got ${describeType(ptr)}`,
    );
  }
  const size = btfCall(mapName, `member ${JSON.stringify(m.name)}`, () => btf.sizeOf(ptr.typeId));
  return { typeId: ptr.typeId, size };
}

/** The struct a map variable (or an inner map pointer) refers to. */
function mapStruct(btf: Btf, mapName: string, typeId: number): BtfStruct {
  const t = btfCall(mapName, "type", () => btf.resolve(typeId));
  if (t.kind !== "struct") throw new MapDefinitionError(mapName, `expected a struct, got ${describeType(t)}`);
  if (t.members.length > MAX_MEMBERS) {
    throw new MapDefinitionError(mapName, `${t.members.length} members, at most ${MAX_MEMBERS} expected`);
  }
  return t;
}

function parseDefinition(btf: Btf, mapName: string, def: BtfStruct, inner: boolean): Definition {
  const ints = new Map<string, number>();
  const types = new Map<string, { typeId: number; size: number }>();
  let values: BtfMember | undefined;
  let mapExtra: bigint | undefined;
  for (const m of def.members) {
    if (
      ints.has(m.name) ||
      types.has(m.name) ||
      (m.name === "values" && values !== undefined) ||
      (m.name === "map_extra" && mapExtra !== undefined)
    ) {
      throw new MapDefinitionError(mapName, `member ${JSON.stringify(m.name)} is defined twice`);
    }
    if (m.name === "map_extra") mapExtra = longMember(btf, mapName, m);
    else if (INT_MEMBERS.has(m.name)) ints.set(m.name, intMember(btf, mapName, m));
    else if (TYPE_MEMBERS.has(m.name)) types.set(m.name, typeMember(btf, mapName, m));
    else if (m.name === "values") values = m;
    else throw new MapDefinitionError(mapName, `unknown member ${JSON.stringify(m.name)}`);
  }

  const typeNumber = ints.get("type");
  if (typeNumber === undefined) throw new MapDefinitionError(mapName, `member "type" is missing`);
  const type = mapTypeName(typeNumber);
  if (type === undefined) throw new MapDefinitionError(mapName, `unknown map type ${typeNumber}`);

  const pinNumber = ints.get("pinning") ?? 0;
  if (pinNumber !== 0 && pinNumber !== PIN_BY_NAME) {
    throw new MapDefinitionError(
      mapName,
      `pinning ${pinNumber} is not supported: expected 0 (none) or 1 (LIBBPF_PIN_BY_NAME)`,
    );
  }
  if (inner && pinNumber !== 0) throw new MapDefinitionError(mapName, "an inner map cannot be pinned");

  const key = sized(mapName, "key", types.get("key"), ints.get("key_size"));
  let value = sized(mapName, "value", types.get("value"), ints.get("value_size"));
  let innerMap: MapSpec | undefined;
  let valuesOffset: number | undefined;
  if (values !== undefined) {
    if (inner)
      throw new MapDefinitionError(mapName, `member "values" in an inner map: maps of maps of maps are not supported`);
    if (!WITH_VALUES.has(type)) throw new MapDefinitionError(mapName, `member "values" on a ${type} map`);
    if (def.members.at(-1) !== values) throw new MapDefinitionError(mapName, `member "values" must be the last member`);
    if (value.size !== undefined && value.size !== 4) {
      throw new MapDefinitionError(mapName, `value size ${value.size} conflicts with member "values" (4-byte ids)`);
    }
    if (values.bitOffset % 8 !== 0) throw new MapDefinitionError(mapName, `member "values" is not byte-aligned`);
    valuesOffset = values.bitOffset / 8;
    const target = valuesTarget(btf, mapName, values);
    if (MAPS_OF_MAPS.has(type)) {
      if (target.kind !== "struct") {
        throw new MapDefinitionError(
          mapName,
          `member "values" of a ${type} map must point to map definitions, got ${describeType(target)}`,
        );
      }
      innerMap = parseDefinition(btf, `${mapName}.inner`, target, true).spec;
    } else if (target.kind !== "funcProto") {
      throw new MapDefinitionError(
        mapName,
        `member "values" of a progArray map must point to programs, got ${describeType(target)}`,
      );
    }
    value = { size: 4, typeId: undefined };
  }
  if (MAPS_OF_MAPS.has(type) && innerMap === undefined) {
    throw new MapDefinitionError(mapName, `a ${type} map needs member "values" to define its inner map`);
  }
  const fdValues = type === "progArray" || innerMap !== undefined;
  // A ring buffer has no key or value for the kernel; a `__type(value, T)`
  // only names the record layout (libbpf creates the map with sizes 0), so
  // the type id stays for bindings while the sizes are 0.
  const ring = type === "ringbuf" || type === "userRingbuf";

  const flags = ints.get("map_flags");
  const numaNode = ints.get("numa_node");
  const spec: MapSpec = {
    name: mapName.slice(0, KERNEL_NAME_LEN),
    type,
    keySize: ring ? 0 : (key.size ?? 0),
    valueSize: ring ? 0 : (value.size ?? 0),
    maxEntries: ints.get("max_entries") ?? 0,
    ...(flags === undefined ? {} : { flags }),
    ...(innerMap === undefined ? {} : { innerMap }),
    ...(numaNode === undefined ? {} : { numaNode }),
    ...(mapExtra === undefined ? {} : { mapExtra }),
  };
  return {
    spec,
    pinning: pinNumber === PIN_BY_NAME ? "byName" : "none",
    keyTypeId: fdValues ? undefined : key.typeId,
    valueTypeId: fdValues ? undefined : value.typeId,
    valuesOffset,
  };
}

/** Combines `__type(what, T)` and `__uint(what_size, N)`, which must agree. */
function sized(
  mapName: string,
  what: string,
  typed: { typeId: number; size: number } | undefined,
  size: number | undefined,
): { size: number | undefined; typeId: number | undefined } {
  if (typed === undefined) return { size, typeId: undefined };
  if (size !== undefined && size !== typed.size) {
    throw new MapDefinitionError(
      mapName,
      `conflicting ${what} size: ${what}_size is ${size} but ${what} has ${typed.size} bytes`,
    );
  }
  return { size: typed.size, typeId: typed.typeId };
}

/** What `__array(values, T)` points to: `T *values[]`. */
function valuesTarget(btf: Btf, mapName: string, values: BtfMember): BtfType {
  const what = `member "values"`;
  const arr = btfCall(mapName, what, () => btf.resolve(values.typeId));
  if (arr.kind !== "array")
    throw new MapDefinitionError(mapName, `${what} must be __array(values, T), got ${describeType(arr)}`);
  const ptr = btfCall(mapName, what, () => btf.resolve(arr.elementTypeId));
  if (ptr.kind !== "ptr")
    throw new MapDefinitionError(mapName, `${what} must be an array of pointers, got an array of ${describeType(ptr)}`);
  return btfCall(mapName, what, () => btf.resolve(ptr.typeId));
}

/**
 * Reads the BTF-defined maps of a BPF object's `.maps` section into map
 * specs, as libbpf does.
 *
 * Each global variable in `.maps` is one map. Its struct's members say what
 * the map is: `type`, `max_entries`, `map_flags`, `numa_node`, `map_extra`,
 * `key_size`, `value_size` and `pinning` are `__uint(member, N)` (a pointer
 * to an array of N elements), `map_extra` also `__ulong(member, N)` (an
 * enum whose one value is N, 64 bits wide); `key` and `value` are `__type(member, T)` (a
 * pointer to `T`, whose size becomes the key or value size); `values` is
 * `__array(values, T)`, allowed only in prog arrays (T is a function type)
 * and maps of maps (T is the inner map's definition struct, parsed the same
 * way into {@link MapSpec.innerMap}). Prog arrays and maps of maps have
 * 4-byte values and no BTF key or value type ids.
 *
 * Variable offsets come from the ELF symbols (clang leaves them 0 in the
 * DATASEC). Initial values come from the `R_BPF_64_ABS64` relocations of
 * `.maps` that land in a map's `values` array: the slot is the position in
 * the array and the symbol is the relocation's. Nothing here touches the
 * kernel.
 *
 * @param elf The parsed object (see `parseElf`).
 * @param btf The object's `.BTF` (see `parseBtf`).
 * @returns One spec per map, in section order; empty when there is no `.maps` section.
 * @throws {MapDefinitionError} When a map definition is malformed: a
 * missing `type`, an unknown map type or member, a member of the wrong shape,
 * conflicting sizes, `values` on a map type that takes none, a pinning other
 * than none or by-name, a `.maps` variable without a symbol, or an initial
 * value with a wrong relocation type, target, alignment or slot.
 * @throws {SyntaxError} When `.maps` has symbols but the BTF has no `.maps`
 * DATASEC (legacy `bpf_map_def` maps are not supported).
 *
 * @example Reading a per-CPU array
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFileSync } from "node:fs";
 * import { mapSpecsFromObject, parseBtf, parseElf } from "@dp/core/internal";
 *
 * const elf = parseElf(readFileSync("bpf/build/testdata/xdp_count.o"));
 * const btf = parseBtf(elf.sectionByName(".BTF")?.data() ?? new Uint8Array());
 * const [counters] = mapSpecsFromObject(elf, btf);
 * assert.equal(counters?.name, "xdp_counters");
 * assert.deepEqual(counters?.spec, { name: "xdp_counters", type: "percpuArray", keySize: 4, valueSize: 16, maxEntries: 1 });
 * assert.equal(counters?.pinning, "none");
 * ```
 */
export function mapSpecsFromObject(elf: ElfFile, btf: Btf): ObjectMapSpec[] {
  const section = elf.sectionByName(MAPS);
  if (section === undefined) return [];
  const symbols = new Map<string, ElfSymbol>();
  for (const s of elf.symbols) {
    if (s.sectionIndex === section.index && s.name !== "" && s.type !== "section") symbols.set(s.name, s);
  }
  const variables = btf.datasecVariables(MAPS);
  if (variables === undefined) {
    if (symbols.size === 0) return [];
    throw new SyntaxError(`Invalid .maps: the BTF has no .maps DATASEC (legacy bpf_map_def maps are not supported)`);
  }

  const maps: { name: string; symbol: ElfSymbol; def: Definition; initialValues: MapInitialValue[] }[] = [];
  for (const v of variables) {
    const symbol = symbols.get(v.name);
    if (symbol === undefined) throw new MapDefinitionError(v.name, "no ELF symbol in .maps");
    if (v.type.kind !== "var") throw new MapDefinitionError(v.name, `expected a variable, got ${describeType(v.type)}`);
    if (v.type.linkage === "extern") throw new MapDefinitionError(v.name, "extern maps are not supported");
    const def = parseDefinition(btf, v.name, mapStruct(btf, v.name, v.type.typeId), false);
    if (section.type === "progbits") {
      // A definition describes the map in its BTF; bytes would be silently
      // ignored settings (cilium/ebpf refuses them too).
      const bytes = section.data().subarray(symbol.value, symbol.value + symbol.size);
      const at = bytes.findIndex((b) => b !== 0);
      if (at >= 0) {
        throw new MapDefinitionError(
          v.name,
          `its definition holds non-zero bytes (at byte ${at}): a map is defined by its BTF type, not by initialized data`,
        );
      }
    }
    maps.push({ name: v.name, symbol, def, initialValues: [] });
  }
  maps.sort((a, b) => a.symbol.value - b.symbol.value);

  for (const rel of elf.relocations.get(section.index) ?? []) {
    const map = maps.find(
      (m) => rel.offset >= m.symbol.value && rel.offset < m.symbol.value + Math.max(m.symbol.size, 1),
    );
    if (map === undefined)
      throw new SyntaxError(`Invalid .maps: relocation at offset ${rel.offset} is not inside a map`);
    const { def, name } = map;
    const target = elf.symbols[rel.symbolIndex];
    const targetName = target === undefined ? `#${rel.symbolIndex}` : JSON.stringify(target.name);
    if (rel.type !== BPF_RELOCATION_TYPE.abs64) {
      throw new MapDefinitionError(
        name,
        `relocation of type ${rel.type} to ${targetName}, expected R_BPF_64_ABS64 (2)`,
      );
    }
    const at = rel.offset - map.symbol.value - (def.valuesOffset ?? 0);
    if (def.valuesOffset === undefined || at < 0 || at % POINTER_SIZE !== 0) {
      throw new MapDefinitionError(
        name,
        `relocation to ${targetName} at offset ${rel.offset} is not an element of member "values"`,
      );
    }
    const slot = at / POINTER_SIZE;
    if (target === undefined || target.name === "") {
      throw new MapDefinitionError(name, `initial value in slot ${slot} refers to ${targetName}, not a named symbol`);
    }
    if (def.spec.type === "progArray") {
      if (target.type !== "func" || target.sectionIndex === 0) {
        throw new MapDefinitionError(
          name,
          `initial value in slot ${slot} refers to ${targetName}, which is not a program`,
        );
      }
    } else if (target.sectionIndex !== section.index || !maps.some((m) => m.name === target.name)) {
      throw new MapDefinitionError(
        name,
        `initial value in slot ${slot} refers to ${targetName}, which is not a map in .maps`,
      );
    }
    if (def.spec.type !== "hashOfMaps" && slot >= def.spec.maxEntries) {
      throw new MapDefinitionError(name, `initial value in slot ${slot} is past max_entries ${def.spec.maxEntries}`);
    }
    map.initialValues.push({ slot, symbol: target.name });
  }

  return maps.map(({ name, def, initialValues }) => ({
    name,
    spec: def.spec,
    pinning: def.pinning,
    keyTypeId: def.keyTypeId,
    valueTypeId: def.valueTypeId,
    initialValues,
  }));
}
