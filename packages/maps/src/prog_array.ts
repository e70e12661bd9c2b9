import { type BpfMap, BpfProgram, createMap } from "@dp/core";
import { ID, INDEX } from "./_typed.ts";
import { DeletableMap } from "./typed_map.ts";

/** Options for {@link ProgArrayMap.create}. */
export interface ProgArrayMapOptions {
  /**
   * The kernel-visible name.
   *
   * @default ""
   */
  readonly name?: string;
  /** The number of slots. */
  readonly maxEntries: number;
}

function program(value: BpfProgram, path: string): BpfProgram {
  if (!(value instanceof BpfProgram)) throw new TypeError(`Invalid value for ${path}: expected a BpfProgram`);
  return value;
}

/**
 * A program array (`BPF_MAP_TYPE_PROG_ARRAY`): the jump table of
 * `bpf_tail_call()`. `set` stores a program at an index; `get` returns the
 * stored program's id.
 *
 * The kernel empties a program array when the last user-space reference
 * to it is closed (pins count): keep the map open, or pinned, while the
 * tail calls are needed.
 *
 * @example Storing a program
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { ProgArrayMap } from "@dp/maps";
 *
 * const exit0 = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
 * using prog = loadProgram({ type: "xdp", license: "GPL", instructions: exit0 });
 * using jumps = ProgArrayMap.create({ maxEntries: 4 });
 * jumps.set(1, prog);
 * assert.equal(jumps.get(1), prog.info().id);
 * assert.equal(jumps.get(0), undefined);
 * ```
 */
export class ProgArrayMap extends DeletableMap<number, number, number, BpfProgram> {
  /**
   * Wraps an existing program array.
   *
   * @param map The map; `close()` closes it.
   * @throws {TypeError} When the map is not a program array.
   */
  constructor(map: BpfMap) {
    super(map, INDEX, ID, { kind: { className: "ProgArrayMap", types: ["progArray"] }, store: program });
  }

  /**
   * Creates a program array.
   *
   * @param options Name and number of slots.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create(options: ProgArrayMapOptions): ProgArrayMap {
    return new ProgArrayMap(createMap({ ...options, type: "progArray", keySize: 4, valueSize: 4 }));
  }
}
