// The map part of a collection spec, apart from collection_spec.ts so that
// variables.ts (constants written into data maps) and the collection spec
// can both import it.
import type { MapSpec } from "../bpf/map_spec.ts";
import type { MapInitialValue, MapPinning } from "./object_maps.ts";

/** A map of a {@link CollectionSpec}: from `.maps` (or legacy `maps`), a global data section, `.kconfig`, or a struct_ops section. */
export interface CollectionMapSpec {
  /**
   * The name in {@link CollectionSpec.maps}: the variable name for `.maps`
   * maps, the section name for data maps (`".rodata"`, `".data.custom"`,
   * `".bss"`, `".kconfig"`).
   */
  readonly name: string;
  /** What to create (the kernel name is `spec.name`, at most 15 characters); `btf` is added by the loader. */
  readonly spec: MapSpec;
  /**
   * Where the map comes from; `"structOps"` for a variable of
   * `SEC(".struct_ops")` or `SEC(".struct_ops.link")` (`spec.flags` has
   * `MAP_FLAGS.link`), whose value size and vmlinux value type the loader
   * takes from the kernel.
   */
  readonly kind: "map" | "data" | "kconfig" | "structOps";
  /** `"byName"` maps are shared through `<pinPath>/<name>`. */
  readonly pinning: MapPinning;
  /** The BTF type id of the key, when the object names one. */
  readonly keyTypeId: number | undefined;
  /** The BTF type id of the value (the DATASEC for data maps), when the object names one. */
  readonly valueTypeId: number | undefined;
  /**
   * Initial entries of prog arrays and maps of maps; for struct_ops maps,
   * the programs of the struct's function pointers (`slot` is the member's
   * index in the object's struct).
   */
  readonly initialValues: readonly MapInitialValue[];
  /**
   * The initial value of a data map's single entry (the section's bytes,
   * zeros for `.bss`): {@link ConstantSet.set} writes into it, so it belongs
   * to the spec. For struct_ops maps, the struct in the object's layout
   * (such as a `tcp_congestion_ops`' `name`), which the loader lays out as
   * the kernel's. `undefined` for other maps and for `.kconfig`, which the
   * loader fills from the running kernel.
   */
  readonly contents: Uint8Array | undefined;
  /** Whether the loader freezes the map after writing {@link CollectionMapSpec.contents} (`.rodata*`, `.kconfig`). */
  readonly freeze: boolean;
}
