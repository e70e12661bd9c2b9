// The map part of a collection spec, apart from collection_spec.ts so that
// variables.ts (constants written into data maps) and the collection spec
// can both import it.
import type { MapSpec } from "../bpf/map_spec.ts";
import type { MapInitialValue, MapPinning } from "./object_maps.ts";

/** A map of a {@link CollectionSpec}: from `.maps`, a global data section, or `.kconfig`. */
export interface CollectionMapSpec {
  /**
   * The name in {@link CollectionSpec.maps}: the variable name for `.maps`
   * maps, the section name for data maps (`".rodata"`, `".data.custom"`,
   * `".bss"`, `".kconfig"`).
   */
  readonly name: string;
  /** What to create (the kernel name is `spec.name`, at most 15 characters); `btf` is added by the loader. */
  readonly spec: MapSpec;
  /** Where the map comes from. */
  readonly kind: "map" | "data" | "kconfig";
  /** `"byName"` maps are shared through `<pinPath>/<name>`. */
  readonly pinning: MapPinning;
  /** The BTF type id of the key, when the object names one. */
  readonly keyTypeId: number | undefined;
  /** The BTF type id of the value (the DATASEC for data maps), when the object names one. */
  readonly valueTypeId: number | undefined;
  /** Initial entries of prog arrays and maps of maps. */
  readonly initialValues: readonly MapInitialValue[];
  /**
   * The initial value of a data map's single entry (the section's bytes,
   * zeros for `.bss`): {@link ConstantSet.set} writes into it, so it belongs
   * to the spec. `undefined` for other maps and for `.kconfig`, which the
   * loader fills from the running kernel.
   */
  readonly contents: Uint8Array | undefined;
  /** Whether the loader freezes the map after writing {@link CollectionMapSpec.contents} (`.rodata*`, `.kconfig`). */
  readonly freeze: boolean;
}
