// Maps defined the legacy way, before BTF: one struct per map in the ELF
// section "maps", all of one size, read as consecutive u32 fields. The first
// five are libbpf's old `struct bpf_map_def` (type, key_size, value_size,
// max_entries, map_flags); iproute2's `struct bpf_elf_map` continues with
// id, pinning, inner_id and inner_idx. tc pins `PIN_GLOBAL_NS` maps at
// /sys/fs/bpf/tc/globals/<name>.
import type { ElfFile } from "./elf.ts";
import { type MapSpec, mapTypeName } from "../bpf/map_spec.ts";
import { MapDefinitionError, type ObjectMapSpec } from "./object_maps.ts";

/** The ELF section of legacy map definitions. */
export const LEGACY_MAPS_SECTION = "maps";

const FIELD = 4;
/** type, key_size, value_size, max_entries: the least a definition holds. */
const MIN_FIELDS = 4;
/** Fields dp reads: bpf_elf_map's nine; bytes past them must be zero. */
const KNOWN_FIELDS = 9;
const KERNEL_NAME_LEN = 15;
const PIN_NONE = 0;
const PIN_OBJECT_NS = 1;
const PIN_GLOBAL_NS = 2;

/** The legacy maps of an object and where each definition starts in the section. */
export interface LegacyMaps {
  /** One spec per map, in section order. */
  readonly maps: readonly ObjectMapSpec[];
  /** The byte offset of each map's definition, by name. */
  readonly offsets: ReadonlyMap<string, number>;
}

/**
 * Reads the legacy map definitions of SEC("maps"): each symbol in the
 * section is one map, and the definitions share one size (the section's
 * size over the number of maps), as libbpf before 1.0 and iproute2 read
 * them. `pinning` `PIN_GLOBAL_NS` (2) becomes pinning `"globalNs"`; pinning
 * per object (`PIN_OBJECT_NS`, 1), custom pinning and maps of maps are
 * refused. Legacy maps carry no BTF key or value type.
 *
 * @param elf The object.
 * @returns The maps and their offsets; none when there is no such section.
 * @throws {MapDefinitionError} When a definition is malformed or uses what is not supported.
 */
export function legacyMapSpecsFromObject(elf: ElfFile): LegacyMaps {
  const section = elf.sectionByName(LEGACY_MAPS_SECTION);
  if (section === undefined || section.size === 0) return { maps: [], offsets: new Map() };
  const where = { section: LEGACY_MAPS_SECTION };
  const symbols = elf.symbols
    .filter((s) => s.sectionIndex === section.index && s.name !== "" && s.type !== "section")
    .sort((a, b) => a.value - b.value);
  if (symbols.length === 0) {
    throw new MapDefinitionError("(none)", `the section has ${section.size} bytes but no map symbols`, where);
  }
  const size = section.size / symbols.length;
  const first = symbols[0]?.name ?? "";
  if (!Number.isInteger(size) || size % FIELD !== 0 || size < MIN_FIELDS * FIELD) {
    throw new MapDefinitionError(
      first,
      `${section.size} bytes for ${symbols.length} maps is not one definition of at least ${MIN_FIELDS * FIELD} bytes in whole u32 fields per map`,
      where,
    );
  }
  const data = section.type === "nobits" ? new Uint8Array(section.size) : section.data();
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const maps: ObjectMapSpec[] = [];
  const offsets = new Map<string, number>();
  for (const sym of symbols) {
    const name = sym.name;
    if (sym.value % size !== 0 || sym.value + size > section.size || offsets.has(name)) {
      throw new MapDefinitionError(
        name,
        `its definition at byte ${sym.value} is not one of the ${size}-byte slots`,
        where,
      );
    }
    if ([...offsets.values()].includes(sym.value)) {
      throw new MapDefinitionError(name, `its definition at byte ${sym.value} is another map's too`, where);
    }
    const field = (i: number): number => (i * FIELD < size ? dv.getUint32(sym.value + i * FIELD, true) : 0);
    for (let at = KNOWN_FIELDS * FIELD; at < size; at++) {
      if (data[sym.value + at] !== 0) {
        throw new MapDefinitionError(
          name,
          `byte ${at} of its ${size}-byte definition is not zero (unknown field)`,
          where,
        );
      }
    }
    const type = mapTypeName(field(0));
    if (type === undefined) throw new MapDefinitionError(name, `unknown map type ${field(0)}`, where);
    if (type === "arrayOfMaps" || type === "hashOfMaps" || field(7) !== 0) {
      throw new MapDefinitionError(name, 'maps of maps in SEC("maps") are not supported', where);
    }
    const pinning = field(6);
    if (pinning !== PIN_NONE && pinning !== PIN_GLOBAL_NS) {
      throw new MapDefinitionError(
        name,
        `pinning ${pinning}${pinning === PIN_OBJECT_NS ? " (PIN_OBJECT_NS)" : ""} is not supported: expected 0 (PIN_NONE) or 2 (PIN_GLOBAL_NS)`,
        where,
      );
    }
    const flags = field(4);
    const spec: MapSpec = {
      name: name.slice(0, KERNEL_NAME_LEN),
      type,
      keySize: field(1),
      valueSize: field(2),
      maxEntries: field(3),
      ...(flags === 0 ? {} : { flags }),
    };
    offsets.set(name, sym.value);
    maps.push({
      name,
      spec,
      pinning: pinning === PIN_GLOBAL_NS ? "globalNs" : "none",
      keyTypeId: undefined,
      valueTypeId: undefined,
      initialValues: [],
    });
  }
  return { maps, offsets };
}
