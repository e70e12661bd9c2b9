// Loading a CollectionSpec: maps first (created, reused or opened from
// their pins), data maps filled and frozen, then each program with its
// references pointed at the maps, CO-RE applied against the kernel's BTF,
// func/line info attached; prog arrays and maps of maps filled last.
import { type Btf, type BtfType, replaceBtfTypes } from "../btf/btf.ts";
import { encodeFuncInfo, encodeLineInfo } from "../btf/btf_ext.ts";
import {
  type BtfHandle,
  type DatasecLayout,
  findKernelBtfType,
  fixupDatasecs,
  kernelBtf,
  loadBtf,
} from "../btf/btf_load.ts";
import type {
  CollectionMapSpec,
  CollectionProgramSpec,
  CollectionSpec,
  InstructionReference,
} from "./collection_spec.ts";
import { applyCoreRelocations, CORE_POISON, CoreRelocationError, type CoreRelocationResult } from "./core_relo.ts";
import { NotSupportedError, SyscallError, VerifierError } from "../errors.ts";
import { kconfigData, KconfigError, type KconfigLayout } from "./kconfig.ts";
import { BpfMap, createMap, type FdOwner, openPinnedMap } from "../bpf/map.ts";
import { possibleCpus } from "../features/cpus.ts";
import { MAP_FLAGS, type MapSpec, type MapType } from "../bpf/map_spec.ts";
import { rawFd } from "../bpf/fd.ts";
import { DEFAULT_BPFFS, unpin } from "../bpf/pin.ts";
import { type AttachType, type BpfProgram, loadProgram } from "../bpf/program.ts";
import { decodeVariable, encodeVariable, type VariableSpec, type VariableValue } from "./variables.ts";
import { withSource } from "./verifier_source.ts";
import { KsymError, KsymResolver, patchKsym } from "./ksym.ts";
import { type KernelStructOps, kernelStructOps, structOpsValue } from "./struct_ops.ts";
import { linkStructOps } from "../bpf/link.ts";
import { isPathComponent } from "../_path_name.ts";
import { kernelVersion } from "../features/features.ts";

/** Options for {@link loadCollection}. */
export interface LoadCollectionOptions {
  /**
   * Existing maps to use instead of creating the object's maps of the same
   * name. Each must be compatible (type, key and value size, max entries,
   * flags); the collection does not close them.
   *
   * @default none
   */
  readonly maps?: Readonly<Record<string, BpfMap>>;
  /**
   * The bpffs directory of `LIBBPF_PIN_BY_NAME` maps: a map pinned there
   * under its name is reused after a compatibility check, else the new map
   * is pinned there.
   *
   * @default "/sys/fs/bpf"
   */
  readonly pinPath?: string;
  /**
   * The bpffs directory of maps a legacy `struct bpf_elf_map` definition
   * pins with `PIN_GLOBAL_NS`: tc's, so that a map an object shares with
   * objects tc loaded is the same map. Reused or pinned there as
   * {@link LoadCollectionOptions.pinPath} does for maps pinned by name.
   *
   * @default "/sys/fs/bpf/tc/globals"
   */
  readonly tcGlobalsPath?: string;
  /**
   * Load only these programs (and the maps and programs they need). By
   * default every program except `SEC("?...")` ones, and every map.
   *
   * @default all programs
   */
  readonly programs?: readonly string[];
  /**
   * Attach targets by program name, replacing what the section name says,
   * for programs that are verified against a kernel function or type:
   * `fentry/`, `fexit/`, `fmod_ret/`, `tp_btf/`, `lsm/`, `iter/` and
   * `freplace/`. By default the section's target (`fentry/do_unlinkat`) is
   * looked up in the kernel's BTF as libbpf does: `tp_btf/x` as the typedef
   * `btf_trace_x`, `lsm/x` as the function `bpf_lsm_x`, `iter/x` as
   * `bpf_iter_x`, other names as the function itself; in vmlinux first,
   * then in kernel module BTF. `name` looks up another target the same
   * way; `btfId` (with `target`, a module's BTF object or, for
   * `freplace`, the program to extend) is used as it is.
   *
   * @default the section names' targets
   */
  readonly attachTargets?: Readonly<
    Record<
      string,
      {
        /** The target to look up instead of the section's, such as `"tcp_connect"` or, for `tp_btf`, `"sched_switch"`. */
        readonly name?: string;
        /** The BTF type id to use (`attach_btf_id`), without a lookup. */
        readonly btfId?: number;
        /** What `btfId` refers to: a module's BTF object or the program `freplace` extends (`attach_btf_obj_fd` / `attach_prog_fd`); vmlinux when left out. */
        readonly target?: FdOwner;
      }
    >
  >;
  /**
   * The BTF CO-RE relocations are resolved against.
   *
   * @default the running kernel's /sys/kernel/btf/vmlinux
   */
  readonly targetBtf?: Btf;
  /**
   * The kernel configuration `.kconfig` externs read (`CONFIG_X` → `y`, `m`, a number or a quoted string).
   * A `LINUX_` name here (`LINUX_HAS_BPF_COOKIE` → `"n"`) overrides the
   * value the loader computes for that virtual extern.
   *
   * @default /proc/config.gz, and feature probes for `LINUX_` externs
   */
  readonly kernelConfig?: ReadonlyMap<string, string>;
  /**
   * What a program that fails to load does to the others: `"throw"`
   * closes everything created and throws its error; `"skip"` leaves it out
   * of {@link Collection.programs}, records its error in
   * {@link Collection.programErrors} and loads the rest (a prog array slot
   * meant for it stays empty). Useful for objects whose programs need
   * different kernels, such as one calling a kernel function (kfunc) only
   * newer kernels have.
   *
   * @default "throw"
   */
  readonly programErrors?: "throw" | "skip";
  /**
   * Verifier log level used when a program fails to load.
   *
   * @default 1
   */
  readonly logLevel?: 1 | 2;
  /**
   * Initial verifier log size in bytes; grown on ENOSPC.
   *
   * @default 65536
   */
  readonly logSize?: number;
}

/**
 * A map from the object cannot be used: a given or pinned map differs
 * from the object's definition. The message names the map, where it came
 * from and the first field that differs.
 *
 * @example What a mismatch reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { MapCompatibilityError } from "@dp/core";
 *
 * const err = new MapCompatibilityError("counts", 'pinned at "/sys/fs/bpf/counts"', "valueSize", 4, 8);
 * assert.equal(err.message, 'Cannot use map "counts" pinned at "/sys/fs/bpf/counts": valueSize is 4, the object needs 8');
 * ```
 */
export class MapCompatibilityError extends TypeError {
  /** Always `"MapCompatibilityError"`, the class name. */
  override readonly name: string = "MapCompatibilityError";
  /** The map's name in the object. */
  readonly map: string;
  /** The field that differs: `"type"`, `"keySize"`, `"valueSize"`, `"maxEntries"` or `"flags"`. */
  readonly field: string;

  /**
   * Creates the error.
   *
   * @param map The map's name in the object.
   * @param source Where the existing map came from, such as `pinned at "/sys/fs/bpf/x"`.
   * @param field The differing field.
   * @param actual The existing map's value.
   * @param expected The object's value.
   */
  constructor(map: string, source: string, field: string, actual: unknown, expected: unknown) {
    super(
      `Cannot use map ${JSON.stringify(map)} ${source}: ${field} is ${String(actual)}, the object needs ${String(expected)}`,
    );
    this.map = map;
    this.field = field;
  }
}

/**
 * A global variable of a loaded {@link Collection}: typed reads and writes
 * of its bytes in the data map (`.data`, `.bss`; `.rodata` reads only).
 *
 * @example A constant set before load, variables read after a run
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadCollection, readCollectionSpec } from "@dp/core";
 *
 * const spec = readCollectionSpec("bpf/build/testdata/globals.o");
 * spec.constants.set("magic", 42);
 * using coll = loadCollection(spec);
 * coll.program("globals_tc").testRun({ data: new Uint8Array(64) });
 * assert.equal(coll.variable("bss_magic_plus_one").get(), 43);
 * coll.variable("bss_magic_plus_one").set(0);
 * assert.equal(coll.variable("bss_magic_plus_one").get(), 0);
 * ```
 */
export class Variable {
  /** The variable's description from the object. */
  readonly spec: VariableSpec;
  #map: BpfMap;
  #btf: Btf;
  #key = new Uint8Array(4);

  /**
   * Wraps a variable of a loaded data map.
   *
   * @param spec The variable.
   * @param map Its data map.
   * @param btf The object's BTF.
   */
  constructor(spec: VariableSpec, map: BpfMap, btf: Btf) {
    this.spec = spec;
    this.#map = map;
    this.#btf = btf;
  }

  /** The variable's name. */
  get name(): string {
    return this.spec.name;
  }

  /**
   * Reads the variable's current value from the kernel.
   *
   * @returns The value, typed by the variable's BTF (see {@link VariableValue}).
   * @throws {SyscallError} When the map cannot be read.
   */
  get(): VariableValue {
    const value = this.#map.get(this.#key) as Uint8Array;
    return decodeVariable(this.#btf, this.spec, value.subarray(this.spec.offset, this.spec.offset + this.spec.size));
  }

  /**
   * Writes the variable: reads the section's value, changes this
   * variable's bytes and writes the value back (programs running at the
   * same time may see the old value until then).
   *
   * @param value The new value.
   * @throws {TypeError} When the value does not fit the variable's BTF type, or the variable is a constant.
   * @throws {RangeError} When the value is out of range.
   */
  set(value: VariableValue): void {
    if (this.spec.readOnly) {
      throw new TypeError(
        `Cannot set variable ${JSON.stringify(this.spec.name)}: it is a constant in ${this.spec.section}`,
      );
    }
    const section = this.#map.get(this.#key) as Uint8Array;
    encodeVariable(
      this.#btf,
      this.spec,
      value,
      section.subarray(this.spec.offset, this.spec.offset + this.spec.size),
      `variable ${JSON.stringify(this.spec.name)}`,
    );
    this.#map.set(this.#key, section);
  }
}

/**
 * The maps and programs {@link loadCollection} created, closed together.
 *
 * `close()` unregisters the struct_ops maps it registered, then closes
 * every program and map of the collection (maps pinned by name stay in
 * bpffs; attachments made with its programs hold them).
 *
 * @example Programs and maps by name
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadCollection, readCollectionSpec } from "@dp/core";
 *
 * using coll = loadCollection(readCollectionSpec("bpf/build/testdata/xdp_count.o"));
 * assert.deepEqual([...coll.programs.keys()], ["count_packets"]);
 * assert.equal(coll.map("xdp_counters").type, "percpuArray");
 * assert.equal(coll.program("count_packets").testRun({ data: new Uint8Array(64) }).retval, 2); // XDP_PASS
 * ```
 */
export class Collection {
  /** Maps by their name in the object. */
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** Programs by function name. */
  readonly programs: ReadonlyMap<string, BpfProgram>;
  /** Global variables of the data sections by name. */
  readonly variables: ReadonlyMap<string, Variable>;
  /** CO-RE relocations applied per program, for diagnostics. */
  readonly coreRelocations: ReadonlyMap<string, readonly CoreRelocationResult[]>;
  /**
   * Why each program left out of {@link Collection.programs} failed to
   * load, by name: empty unless {@link LoadCollectionOptions.programErrors}
   * is `"skip"`.
   */
  readonly programErrors: ReadonlyMap<string, Error>;
  #owned: readonly { close(): void }[];

  /**
   * Wraps what the loader created.
   *
   * @param maps Maps by name.
   * @param programs Programs by name.
   * @param variables Variables by name.
   * @param coreRelocations CO-RE results by program name.
   * @param owned Objects this collection closes (given maps are left out).
   * @param programErrors Why the programs that were skipped failed, by name.
   */
  constructor(
    maps: ReadonlyMap<string, BpfMap>,
    programs: ReadonlyMap<string, BpfProgram>,
    variables: ReadonlyMap<string, Variable>,
    coreRelocations: ReadonlyMap<string, readonly CoreRelocationResult[]>,
    owned: readonly { close(): void }[],
    programErrors: ReadonlyMap<string, Error> = new Map(),
  ) {
    this.maps = maps;
    this.programs = programs;
    this.variables = variables;
    this.coreRelocations = coreRelocations;
    this.programErrors = programErrors;
    this.#owned = owned;
  }

  /**
   * A map by name.
   *
   * @param name The map's name in the object.
   * @returns The map.
   * @throws {RangeError} When the collection has no such map.
   */
  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (m === undefined)
      throw new RangeError(
        `No map ${JSON.stringify(name)} in the collection (maps: ${[...this.maps.keys()].join(", ")})`,
      );
    return m;
  }

  /**
   * A program by name.
   *
   * @param name The program's function name.
   * @returns The program.
   * @throws {RangeError} When the collection has no such program.
   */
  program(name: string): BpfProgram {
    const p = this.programs.get(name);
    if (p === undefined) {
      throw new RangeError(
        `No program ${JSON.stringify(name)} in the collection (programs: ${[...this.programs.keys()].join(", ")})`,
      );
    }
    return p;
  }

  /**
   * A global variable by name.
   *
   * @param name The variable's name.
   * @returns The variable.
   * @throws {RangeError} When the collection has no such variable.
   */
  variable(name: string): Variable {
    const v = this.variables.get(name);
    if (v === undefined) {
      throw new RangeError(
        `No variable ${JSON.stringify(name)} in the collection (variables: ${[...this.variables.keys()].join(", ")})`,
      );
    }
    return v;
  }

  /** Unregisters its struct_ops maps and closes every program and map this collection created (pins stay). Idempotent. */
  close(): void {
    for (const o of [...this.#owned].reverse()) o.close();
  }

  /** Same as {@link Collection.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Map types created without BTF key/value types: the kernel refuses them (EINVAL/ENOTSUPP). */
const NO_BTF: ReadonlySet<MapType> = new Set<MapType>([
  "progArray",
  "perfEventArray",
  "stackTrace",
  "cgroupArray",
  "arrayOfMaps",
  "hashOfMaps",
  "devmap",
  "devmapHash",
  "sockmap",
  "sockhash",
  "cpumap",
  "xskmap",
  "reuseportSockarray",
  "queue",
  "stack",
  "ringbuf",
  "userRingbuf",
]);
const INSN = 8;
const PSEUDO_MAP_FD = 1;
const PSEUDO_MAP_VALUE = 2;
const KERNEL_NAME = 15;
/** Where tc pins `PIN_GLOBAL_NS` maps. */
const TC_GLOBALS = `${DEFAULT_BPFFS}/tc/globals`;

/**
 * Creates an object's maps and loads its programs.
 *
 * Maps come first: given ones ({@link LoadCollectionOptions.maps}) and
 * `LIBBPF_PIN_BY_NAME` (or legacy `PIN_GLOBAL_NS`, see
 * {@link LoadCollectionOptions.tcGlobalsPath}) ones already pinned are
 * checked and reused, others
 * are created with the object's BTF; data sections are written and
 * `.rodata*`/`.kconfig` frozen (a perf event array without `max_entries`
 * gets one slot per possible CPU, as in libbpf). Each program then gets its
 * map references, CO-RE relocations, func/line info and, for tracing, LSM
 * and iterator programs, its `attach_btf_id` (see
 * {@link LoadCollectionOptions.attachTargets}) and is loaded. Kernel
 * functions it calls (kfuncs) and kernel symbols it reads (`__ksym`
 * externs, see {@link CollectionSpec.ksyms}) are resolved as libbpf does:
 * by name in vmlinux and module BTF (a module's BTF object goes in the
 * program's `fd_array`) with the object's prototype or type checked
 * against the kernel's, `void` symbols by address in /proc/kallsyms; a
 * `__weak` one the kernel lacks reads as 0 and its calls are left for the
 * verifier to prune (guard them with `bpf_ksym_exists()`). Only programs
 * that use an extern that cannot be resolved fail. Prog arrays
 * and maps of maps receive their initial values; struct_ops maps (such as
 * a `tcp_congestion_ops`) get the struct in the kernel's layout with their
 * programs (loaded with the struct's `attach_btf_id` and member index) and
 * are registered, through a bpf_link for `.struct_ops.link` ones;
 * `close()` unregisters them first. Registration is host-wide: give the
 * struct a name of its own (its bytes are in
 * {@link CollectionMapSpec.contents}). Maps pinned by name are pinned
 * last. On any error everything created so far is closed before
 * the error is thrown, which names the object and the map or program.
 *
 * @param spec The parsed object (see {@link readCollectionSpec}).
 * @param options Replacement maps, pin paths, a program subset, attach targets, CO-RE target, what a failing program does.
 * @returns The loaded collection; close it (or `using`) when done.
 * @throws {RangeError} When a named program (in `programs` or `attachTargets`) does not exist, an attach target is in no kernel BTF, or a map pinned by name has a name that is not a file name (`.`, `..`, a `/`), before any system call.
 * @throws {TypeError} When a tracing, LSM or extension program has no attach target.
 * @throws {NotSupportedError} When an attach target is needed and the kernel has no BTF, or the object has an arena map and the kernel is older than 6.9.
 * @throws {MapCompatibilityError} When a given or pinned map differs from the object's.
 * @throws {KsymError} When a program uses a kernel function or symbol the kernel lacks (and that is not `__weak`) or declares it with another type (unless `programErrors` is `"skip"`).
 * @throws {VerifierError} When a program is rejected; the summary names the source line.
 * @throws {SyscallError} When the kernel refuses a map or program.
 * @example Loading an object and running a program
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadCollection, readCollectionSpec } from "@dp/core";
 *
 * const spec = readCollectionSpec("bpf/build/testdata/xdp_count.o");
 * using coll = loadCollection(spec);
 * const result = coll.program("count_packets").testRun({ data: new Uint8Array(64) });
 * assert.equal(result.retval, 2); // XDP_PASS
 * ```
 * @example Loading the programs this kernel can, and learning why the others failed
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { KsymError, loadCollection, readCollectionSpec } from "@dp/core";
 *
 * // fail_missing calls a kernel function no kernel has; fail_sibling calls none.
 * const spec = readCollectionSpec("bpf/build/testdata/kfunc_fail.o");
 * using coll = loadCollection(spec, { programErrors: "skip" });
 * assert.ok(coll.programs.has("fail_sibling"));
 * const err = coll.programErrors.get("fail_missing");
 * assert.ok(err instanceof KsymError);
 * assert.equal(err.symbol, "bpf_dp_missing_kfunc");
 * ```
 */
export function loadCollection(spec: CollectionSpec, options: LoadCollectionOptions = {}): Collection {
  const { programNames, mapNames } = selection(spec, options.programs);
  for (const name of Object.keys(options.attachTargets ?? {})) {
    if (!spec.programs.has(name)) {
      throw new RangeError(
        `Invalid options.attachTargets: no program ${JSON.stringify(name)} in object ${JSON.stringify(spec.name)} (programs: ${[...spec.programs.keys()].join(", ")})`,
      );
    }
  }
  // A map pinned by name becomes a path under pinPath: its name, taken from
  // the object, must be one entry of that directory.
  for (const name of mapNames) {
    const m = spec.maps.get(name);
    if (m !== undefined && m.pinning !== "none" && options.maps?.[name] === undefined && !isPathComponent(name)) {
      throw new RangeError(
        `Cannot pin map ${JSON.stringify(name)} of object ${JSON.stringify(spec.name)} by name: the name is not a file name (it is ".", "..", or holds "/" or a NUL)`,
      );
    }
  }
  const owned: { close(): void }[] = [];
  const toPin: { name: string; map: BpfMap; path: string }[] = [];
  const pinned: string[] = [];
  const maps = new Map<string, BpfMap>();
  const programs = new Map<string, BpfProgram>();
  const coreResults = new Map<string, readonly CoreRelocationResult[]>();
  const programErrors = new Map<string, Error>();
  let btfHandle: BtfHandle | undefined;
  let ksyms: KsymResolver | undefined;
  try {
    let kconfig: KconfigLayout | undefined;
    if (spec.kconfig.length > 0 && spec.btf !== undefined && mapNames.has(".kconfig")) {
      try {
        kconfig = kconfigData(
          spec.btf,
          spec.kconfig,
          options.kernelConfig === undefined ? {} : { config: options.kernelConfig },
        );
      } catch (err) {
        throw named(err, "Cannot lay out .kconfig", spec.name);
      }
    }
    if (spec.btf !== undefined) {
      try {
        btfHandle = loadBtf(kernelReadyBtf(spec, kconfig));
      } catch (err) {
        throw named(err, "Cannot load the BTF", spec.name);
      }
    }

    // struct_ops maps: the kernel's struct and value type, also for their programs.
    const structOps = new Map<string, KernelStructOps>();
    const structOpsPrograms = new Map<string, { readonly id: number; readonly member: number }>();
    const loading = new Set(programNames);
    for (const m of spec.maps.values()) {
      if (m.kind !== "structOps" || spec.btf === undefined) continue;
      if (!mapNames.has(m.name) && !m.initialValues.some((v) => loading.has(v.symbol))) continue;
      let kernel: KernelStructOps;
      try {
        kernel = kernelStructOps(spec.btf, m.valueTypeId ?? 0);
      } catch (err) {
        throw named(err, `Cannot create map ${JSON.stringify(m.name)}`, spec.name);
      }
      structOps.set(m.name, kernel);
      const local = spec.btf.resolve(m.valueTypeId ?? 0);
      for (const v of m.initialValues) {
        const memberName = local.kind === "struct" ? local.members[v.slot]?.name : undefined;
        const member = kernel.struct.members.findIndex((k) => k.name === memberName);
        const seen = structOpsPrograms.get(v.symbol);
        if (member < 0 || (seen !== undefined && (seen.id !== kernel.structId || seen.member !== member))) {
          throw new RangeError(
            `Cannot load program ${JSON.stringify(v.symbol)} of object ${JSON.stringify(spec.name)}: ${member < 0 ? `member ${JSON.stringify(memberName)} of struct_ops map ${JSON.stringify(m.name)} is not in the kernel's struct` : "it implements different struct_ops members"}`,
          );
        }
        structOpsPrograms.set(v.symbol, { id: kernel.structId, member });
      }
    }

    // Maps, inner maps before the maps of maps that need them.
    for (const name of mapNames) {
      const m = spec.maps.get(name) as CollectionMapSpec;
      try {
        const given = options.maps?.[name];
        let want: MapSpec = m.spec;
        // libbpf: a perf event array without max_entries gets one slot per possible CPU.
        if (want.type === "perfEventArray" && want.maxEntries === 0) want = { ...want, maxEntries: possibleCpus() };
        if (given !== undefined) {
          checkCompatible(name, `of object ${JSON.stringify(spec.name)} given in options.maps`, given, want);
          maps.set(name, given);
          continue;
        }
        let create: MapSpec = want;
        if (m.kind === "kconfig" && kconfig !== undefined) create = { ...create, valueSize: Math.max(kconfig.size, 1) };
        const ops = structOps.get(name);
        if (ops !== undefined) {
          // The kernel takes the value type from vmlinux, and wants the object's BTF alongside.
          const map = createMap({
            ...create,
            valueSize: ops.valueSize,
            vmlinuxValueTypeId: ops.valueTypeId,
            ...(btfHandle === undefined ? {} : { btf: { fd: btfHandle.fd, keyTypeId: 0, valueTypeId: 0 } }),
          });
          owned.push(map);
          maps.set(name, map);
          continue;
        }
        // The kernel takes a value type without a key type only for arrays
        // (data sections), and refuses BTF for maps that hold descriptors or
        // have no key; those are created without it (libbpf retries so).
        const typed =
          m.valueTypeId !== undefined && (m.keyTypeId !== undefined || m.kind !== "map") && !NO_BTF.has(m.spec.type);
        if (btfHandle !== undefined && typed && m.valueTypeId !== undefined) {
          create = { ...create, btf: { fd: btfHandle.fd, keyTypeId: m.keyTypeId ?? 0, valueTypeId: m.valueTypeId } };
        }
        if (m.pinning !== "none") {
          const dir =
            m.pinning === "globalNs" ? (options.tcGlobalsPath ?? TC_GLOBALS) : (options.pinPath ?? DEFAULT_BPFFS);
          const path = `${dir}/${name}`;
          const existing = openPinnedOrUndefined(path);
          if (existing !== undefined) {
            owned.push(existing);
            checkCompatible(
              name,
              `of object ${JSON.stringify(spec.name)} pinned at ${JSON.stringify(path)}`,
              existing,
              want,
            );
            maps.set(name, existing);
            continue;
          }
          const map = createMap(create);
          owned.push(map);
          maps.set(name, map);
          fill(map, m, kconfig);
          // Pinned once everything loaded: a failed load leaves no pin nor directory behind.
          toPin.push({ name, map, path });
          continue;
        }
        const map = createMap(create);
        owned.push(map);
        maps.set(name, map);
        fill(map, m, kconfig);
      } catch (err) {
        throw named(arenaNotSupported(m.spec, err), `Cannot create map ${JSON.stringify(name)}`, spec.name);
      }
    }

    if (spec.ksyms.length > 0 && spec.btf !== undefined) ksyms = new KsymResolver(spec.btf, spec.ksyms);
    for (const name of programNames) {
      const p = spec.programs.get(name) as CollectionProgramSpec;
      let loaded;
      try {
        loaded = loadOne(spec, p, maps, kconfig, ksyms, btfHandle, options, structOpsPrograms.get(name));
      } catch (err) {
        if (options.programErrors !== "skip" || !(err instanceof Error)) throw err;
        programErrors.set(name, err);
        continue;
      }
      owned.push(loaded.program);
      programs.set(name, loaded.program);
      if (loaded.core.length > 0) coreResults.set(name, loaded.core);
    }

    // Initial values of prog arrays and maps of maps.
    for (const name of mapNames) {
      const m = spec.maps.get(name) as CollectionMapSpec;
      if (m.initialValues.length === 0 || options.maps?.[name] !== undefined || m.kind === "structOps") continue;
      const map = maps.get(name) as BpfMap;
      try {
        for (const v of m.initialValues) {
          const key = new Uint8Array(m.spec.keySize);
          new DataView(key.buffer).setUint32(0, v.slot, true);
          const target = m.spec.type === "progArray" ? programs.get(v.symbol) : maps.get(v.symbol);
          if (target !== undefined) map.set(key, target);
        }
      } catch (err) {
        throw named(err, `Cannot fill map ${JSON.stringify(name)}`, spec.name);
      }
    }

    // struct_ops maps: the value in the kernel's layout with the programs'
    // descriptors, registered by the update or through a bpf_link; closing
    // the collection unregisters them first.
    for (const [name, ops] of structOps) {
      const map = maps.get(name);
      const m = spec.maps.get(name) as CollectionMapSpec;
      if (map === undefined || spec.btf === undefined) continue;
      const what = `Cannot register struct_ops map ${JSON.stringify(name)}`;
      try {
        const value = structOpsValue(spec.btf, m, ops, (program) => {
          const loaded = programs.get(program);
          if (loaded === undefined) throw new RangeError(`its program ${JSON.stringify(program)} was not loaded`);
          return rawFd(loaded.fd);
        });
        const key = new Uint8Array(4);
        map.set(key, value);
        if (((m.spec.flags ?? 0) & MAP_FLAGS.link) !== 0) {
          owned.push(linkStructOps(map));
        } else {
          owned.push({
            close: () => {
              try {
                map.delete(key);
              } catch {
                // Already unregistered.
              }
            },
          });
        }
      } catch (err) {
        throw named(err, what, spec.name);
      }
    }

    for (const { name, map, path } of toPin) {
      try {
        map.pin(path);
      } catch (err) {
        throw named(err, `Cannot pin map ${JSON.stringify(name)}`, spec.name);
      }
      pinned.push(path);
    }
  } catch (err) {
    for (const o of owned.reverse()) o.close();
    for (const path of pinned) unpinQuietly(path);
    throw err;
  } finally {
    ksyms?.close();
    btfHandle?.close();
  }

  const variables = new Map<string, Variable>();
  if (spec.btf !== undefined) {
    for (const v of spec.variables.values()) {
      const map = maps.get(v.section);
      if (map !== undefined) variables.set(v.name, new Variable(v, map, spec.btf));
    }
  }
  return new Collection(maps, programs, variables, coreResults, owned, programErrors);
}

/**
 * The object's BTF as the kernel takes it: extern variables (`.kconfig`)
 * become allocated globals at their place in the `.kconfig` map, as libbpf
 * does; the kernel refuses extern linkage and empty data sections. In
 * `.ksyms`, as in libbpf, every entry becomes a 4-byte `int` variable
 * (a function's entry the added `dummy_ksym`), extern functions get global
 * linkage and their unnamed parameters a name.
 */
function kernelReadyBtf(spec: CollectionSpec, kconfig: KconfigLayout | undefined): Btf {
  const btf = spec.btf as Btf;
  if (!btf.types.some((t) => (t.kind === "var" || t.kind === "func") && t.linkage === "extern")) return btf;
  const layouts = new Map<string, DatasecLayout>();
  const kconfigVars = btf.datasecVariables(".kconfig");
  if (kconfigVars !== undefined) {
    layouts.set(
      ".kconfig",
      kconfig !== undefined
        ? { size: Math.max(kconfig.size, 1), offsets: kconfig.offsets }
        : // Not loaded: any layout the kernel accepts.
          { size: Math.max(kconfigVars.length * 8, 1), offsets: new Map(kconfigVars.map((v, i) => [v.name, i * 8])) },
    );
  }
  const fixed = fixupDatasecs(btf, layouts);
  const types: BtfType[] = fixed.types.map((t) =>
    (t.kind === "var" || t.kind === "func") && t.linkage === "extern" ? { ...t, linkage: "global" } : t,
  );
  const ksyms = types.find((t) => t.kind === "datasec" && t.name === ".ksyms");
  if (ksyms !== undefined && ksyms.kind === "datasec") {
    const next = fixed.firstTypeId + types.length;
    const int: BtfType = {
      kind: "int",
      id: next,
      name: "int",
      size: 4,
      signed: true,
      char: false,
      bool: false,
      bitOffset: 0,
      bits: 32,
    };
    const dummy: BtfType = { kind: "var", id: next + 1, name: "dummy_ksym", typeId: next, linkage: "global" };
    const at = (id: number): number => id - fixed.firstTypeId;
    const vars = ksyms.vars.map((v, i) => {
      const t = types[at(v.typeId)];
      if (t?.kind === "func") {
        const proto = types[at(t.typeId)];
        if (proto?.kind === "funcProto") {
          types[at(proto.id)] = {
            ...proto,
            params: proto.params.map((p) => (p.typeId !== 0 && p.name === "" ? { ...p, name: dummy.name } : p)),
          };
        }
        return { typeId: dummy.id, offset: i * 4, size: 4 };
      }
      if (t?.kind === "var") types[at(t.id)] = { ...t, typeId: int.id, linkage: "global" };
      return { typeId: v.typeId, offset: i * 4, size: 4 };
    });
    types[at(ksyms.id)] = { ...ksyms, size: Math.max(vars.length * 4, 1), vars };
    types.push(int, dummy);
  }
  return replaceBtfTypes(fixed, types);
}

/** Which programs and maps to load: the subset's closure over references and initial values. */
function selection(
  spec: CollectionSpec,
  subset: readonly string[] | undefined,
): { programNames: string[]; mapNames: Set<string> } {
  if (subset === undefined) {
    const programNames = [...spec.programs.values()].filter((p) => p.autoload).map((p) => p.name);
    return { programNames, mapNames: orderMaps(spec, new Set(spec.maps.keys())) };
  }
  for (const name of subset) {
    if (!spec.programs.has(name)) {
      throw new RangeError(
        `Cannot load program ${JSON.stringify(name)}: not in object ${JSON.stringify(spec.name)} (programs: ${[...spec.programs.keys()].join(", ")})`,
      );
    }
  }
  const programs = new Set<string>();
  const maps = new Set<string>();
  const queue: { kind: "program" | "map"; name: string }[] = subset.map((name) => ({ kind: "program", name }));
  while (queue.length > 0) {
    const item = queue.pop() as { kind: "program" | "map"; name: string };
    if (item.kind === "program") {
      if (programs.has(item.name)) continue;
      programs.add(item.name);
      for (const r of (spec.programs.get(item.name) as CollectionProgramSpec).references) {
        if (r.kind === "kconfig") queue.push({ kind: "map", name: ".kconfig" });
        else if (r.kind === "map" || r.kind === "mapValue") queue.push({ kind: "map", name: r.map });
      }
    } else {
      if (maps.has(item.name)) continue;
      maps.add(item.name);
      const m = spec.maps.get(item.name);
      for (const v of m?.initialValues ?? []) {
        queue.push({ kind: m?.spec.type === "progArray" ? "program" : "map", name: v.symbol });
      }
    }
  }
  const programNames = [...spec.programs.keys()].filter((n) => programs.has(n));
  return { programNames, mapNames: orderMaps(spec, maps) };
}

/** Spec order, except that maps named in a map of maps' initial values come before it. */
function orderMaps(spec: CollectionSpec, names: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  const visit = (name: string): void => {
    if (out.has(name) || !names.has(name)) return;
    const m = spec.maps.get(name);
    if (m?.spec.type !== "progArray") for (const v of m?.initialValues ?? []) visit(v.symbol);
    out.add(name);
  };
  for (const name of spec.maps.keys()) visit(name);
  return out;
}

function fill(map: BpfMap, m: CollectionMapSpec, kconfig: KconfigLayout | undefined): void {
  const contents = m.kind === "kconfig" ? kconfig?.data : m.contents;
  if (contents !== undefined && contents.length > 0) {
    const value = new Uint8Array(map.valueSize);
    value.set(contents.subarray(0, value.length));
    map.set(new Uint8Array(4), value);
  }
  if (m.freeze) map.freeze();
}

function checkCompatible(name: string, source: string, map: BpfMap, want: MapSpec): void {
  const fields: [string, unknown, unknown][] = [
    ["type", map.type, want.type],
    ["keySize", map.keySize, want.keySize],
    ["valueSize", map.valueSize, want.valueSize],
    ["maxEntries", map.maxEntries, want.maxEntries],
    ["flags", map.flags, want.flags ?? 0],
  ];
  for (const [field, actual, expected] of fields) {
    if (actual !== expected) throw new MapCompatibilityError(name, source, field, actual, expected);
  }
}

function openPinnedOrUndefined(path: string): BpfMap | undefined {
  try {
    return openPinnedMap(path);
  } catch (err) {
    if (err instanceof SyscallError && err.code === "ENOENT") return undefined;
    throw err;
  }
}

function unpinQuietly(path: string): void {
  try {
    unpin(path);
  } catch {
    // Already gone.
  }
}

function loadOne(
  spec: CollectionSpec,
  p: CollectionProgramSpec,
  maps: ReadonlyMap<string, BpfMap>,
  kconfig: KconfigLayout | undefined,
  ksyms: KsymResolver | undefined,
  btfHandle: BtfHandle | undefined,
  options: LoadCollectionOptions,
  structOps: { readonly id: number; readonly member: number } | undefined,
): { program: BpfProgram; core: readonly CoreRelocationResult[] } {
  const what = `Cannot load ${p.type} program ${JSON.stringify(p.name)}`;
  let attach: AttachBtf | undefined;
  let core: CoreRelocationResult[] = [];
  const insns = p.instructions.slice();
  // fd_array: module BTF objects of kfunc calls, from index 1 (`off` 0 is vmlinux).
  const fdArray: (BtfHandle | undefined)[] = [undefined];
  // Calls of __weak kfuncs this kernel lacks: the verifier must prune them.
  const missingCalls: { readonly instruction: number; readonly extern: string }[] = [];
  try {
    const dv = new DataView(insns.buffer);
    for (const r of p.references) {
      if (r.kind === "kfunc" || r.kind === "ksym") {
        if (ksyms === undefined) throw new RangeError(`no BTF to resolve __ksym extern ${JSON.stringify(r.extern)}`);
        const target = patchKsym(insns, r, ksyms, fdArray);
        if (target === undefined && r.kind === "kfunc") missingCalls.push(r);
      } else patchReference(spec, p, insns, dv, r, maps, kconfig);
    }
    if (p.coreRelos.length > 0) {
      if (spec.btf === undefined) throw new TypeError("CO-RE relocations without BTF");
      core = applyCoreRelocations(insns, p.coreRelos, spec.btf, options.targetBtf ?? kernelBtf());
    }
    attach =
      p.type === "structOps" && structOps !== undefined && options.attachTargets?.[p.name] === undefined
        ? { id: structOps.id, target: undefined, close: undefined }
        : attachBtf(p, options.attachTargets?.[p.name]);
  } catch (err) {
    throw named(err, what, spec.name);
  }

  const btf =
    btfHandle === undefined || p.funcInfo.length === 0
      ? undefined
      : {
          fd: btfHandle.fd,
          funcInfo: encodeFuncInfo(p.funcInfo.map((f) => ({ instruction: f.instruction, typeId: f.typeId }))),
          lineInfo: encodeLineInfo(
            p.lineInfo.map((l) => ({
              instruction: l.instruction,
              fileNameOffset: l.fileNameOffset,
              sourceLineOffset: l.sourceLineOffset,
              line: l.line,
              column: l.column,
            })),
          ),
        };
  try {
    const program = loadProgram(
      {
        name: p.name.slice(0, KERNEL_NAME),
        type: p.type,
        instructions: insns,
        // libbpf loads an object without a license section with an empty
        // license (the kernel then refuses only GPL-only helpers); the
        // kernel reads the string up to its NUL, and loadProgram takes
        // no empty string, so the empty license is passed as a lone NUL.
        license: p.license === "" ? "\0" : p.license,
        ...(p.expectedAttachType === undefined ? {} : { expectedAttachType: p.expectedAttachType }),
        ...(attach === undefined ? {} : { attachBtfId: attach.id }),
        ...(attach?.target === undefined ? {} : { attachTarget: attach.target }),
        kernelVersion: p.kernelVersion,
        flags: p.flags,
        ...(btf === undefined ? {} : { btf }),
        ...(fdArray.length > 1 ? { fdArray } : {}),
        ...(p.type === "structOps" && structOps !== undefined ? { structOpsMember: structOps.member } : {}),
      },
      {
        ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
        ...(options.logSize === undefined ? {} : { logSize: options.logSize }),
      },
    );
    return { program, core };
  } catch (err) {
    if (err instanceof VerifierError) {
      const where = `${what} of object ${JSON.stringify(spec.name)}`;
      throw explainMissingCall(where, explainPoison(where, withSource(err, p.lineInfo), core), missingCalls);
    }
    throw named(err, what, spec.name);
  } finally {
    attach?.close?.();
  }
}

/** The `attach_btf_id` of a program and what it refers to. */
interface AttachBtf {
  readonly id: number;
  readonly target: FdOwner | undefined;
  /** Closes the module BTF object opened for `target`, if any. */
  readonly close: (() => void) | undefined;
}

/** libbpf's btf_prefix_kind: how a section's target is named in the kernel's BTF. */
const ATTACH_BTF_NAMES: Partial<Record<AttachType, { readonly prefix: string; readonly kind: "func" | "typedef" }>> = {
  traceRawTp: { prefix: "btf_trace_", kind: "typedef" },
  lsmMac: { prefix: "bpf_lsm_", kind: "func" },
  lsmCgroup: { prefix: "bpf_lsm_", kind: "func" },
  traceIter: { prefix: "bpf_iter_", kind: "func" },
  traceFentry: { prefix: "", kind: "func" },
  traceFexit: { prefix: "", kind: "func" },
  modifyReturn: { prefix: "", kind: "func" },
};

/** Resolves `attach_btf_id` for tracing, LSM and extension programs (libbpf's libbpf_find_attach_btf_id). */
function attachBtf(
  p: CollectionProgramSpec,
  override: NonNullable<LoadCollectionOptions["attachTargets"]>[string] | undefined,
): AttachBtf | undefined {
  if (override?.btfId !== undefined) return { id: override.btfId, target: override.target, close: undefined };
  if (p.type !== "tracing" && p.type !== "lsm" && p.type !== "ext") return undefined;
  const naming = p.expectedAttachType === undefined ? undefined : ATTACH_BTF_NAMES[p.expectedAttachType];
  const target = override?.name ?? p.attachTo;
  if (naming === undefined || target === undefined || target === "") {
    throw new TypeError(
      `section ${JSON.stringify(p.sectionName)} names no attach target: give one in options.attachTargets[${JSON.stringify(p.name)}]`,
    );
  }
  const name = naming.prefix + target;
  let found;
  try {
    found = findKernelBtfType(name, naming.kind);
  } catch (err) {
    if (err instanceof NotSupportedError)
      throw new NotSupportedError(`attach target ${JSON.stringify(name)} (${err.feature})`, { cause: err });
    throw err;
  }
  if (found === undefined) {
    throw new RangeError(`attach target ${naming.kind} ${JSON.stringify(name)} is in neither vmlinux nor module BTF`);
  }
  const handle = found.handle;
  return { id: found.id, target: handle, close: handle === undefined ? undefined : () => handle.close() };
}

/**
 * Says which object and which map or program an error is about, keeping
 * its class and fields: syscall and built-in errors get `what` and the
 * object as their subject; `.kconfig` and CO-RE errors, which name the
 * extern or relocation, get the object (and the program) after their
 * detail. Other typed errors already name their subject (a verifier error
 * its program, a compatibility error its map).
 */
function named(err: unknown, what: string, object: string): unknown {
  if (!(err instanceof Error)) return err;
  const where = `${what} of object ${JSON.stringify(object)}`;
  switch (err.constructor) {
    case SyscallError: {
      const e = err as SyscallError;
      return new SyscallError(where, {
        syscall: e.syscall,
        op: e.op,
        errno: e.errno,
        ...(e.hint === undefined ? {} : { hint: e.hint }),
        cause: err,
      });
    }
    case Error:
    case TypeError:
    case RangeError:
    case SyntaxError:
      return new (err.constructor as ErrorConstructor)(`${where}: ${err.message}`, { cause: err });
    case KconfigError: {
      const e = err as KconfigError;
      const detail = e.message.slice(`Cannot set .kconfig extern ${JSON.stringify(e.externName)}: `.length);
      return new KconfigError(e.externName, `${detail} (object ${JSON.stringify(object)})`, { cause: err });
    }
    case KsymError: {
      const e = err as KsymError;
      const detail = e.message.slice(`Cannot resolve kernel ${e.kind} ${JSON.stringify(e.symbol)}: `.length);
      const program = what.replace(/^Cannot load /, "");
      return new KsymError(e.symbol, e.kind, `${detail} (${program} of object ${JSON.stringify(object)})`, {
        cause: err,
      });
    }
    case CoreRelocationError: {
      const e = err as CoreRelocationError;
      const detail = e.message.slice(
        `Cannot apply CO-RE relocation at instruction ${e.instruction} (${e.description}): `.length,
      );
      const program = what.replace(/^Cannot load /, "");
      return new CoreRelocationError(
        e.instruction,
        e.relo,
        e.description,
        `${detail} (${program} of object ${JSON.stringify(object)})`,
        { cause: err },
      );
    }
    default:
      return err;
  }
}

/** Names the CO-RE relocation behind a poisoned instruction the verifier reached. */
function explainPoison(what: string, err: VerifierError, core: readonly CoreRelocationResult[]): VerifierError {
  const poisoned = core.filter((r) => r.targetValue === "poisoned");
  if (poisoned.length === 0 || !err.log.some((l) => l.includes(String(CORE_POISON)))) return err;
  const hit = poisoned.find((r) => err.log.some((l) => l.startsWith(`${r.instruction}: `))) ?? poisoned[0];
  if (hit === undefined) return err;
  return new VerifierError(
    `${what} (CO-RE relocation of instruction ${hit.instruction}, ${hit.description}, found no match in the kernel's BTF)`,
    {
      syscall: err.syscall,
      op: err.op,
      errno: err.errno,
      log: err.log,
      truncated: err.truncated,
      ...(err.source === undefined ? {} : { source: err.source }),
      cause: err,
    },
  );
}

/**
 * Names the weak kernel function behind a call the verifier reached: the
 * kernel reports such a call (BTF id 0) only as `call #0` and what follows.
 */
function explainMissingCall(
  what: string,
  err: VerifierError,
  missing: readonly { readonly instruction: number; readonly extern: string }[],
): VerifierError {
  const hit = missing.find((m) => err.log.some((l) => l.startsWith(`${m.instruction}: (85) call #0`)));
  if (hit === undefined) return err;
  return new VerifierError(
    `${what} (instruction ${hit.instruction} calls kernel function ${JSON.stringify(hit.extern)}, which this kernel lacks: guard the call with bpf_ksym_exists())`,
    {
      syscall: err.syscall,
      op: err.op,
      errno: err.errno,
      log: err.log,
      truncated: err.truncated,
      ...(err.source === undefined ? {} : { source: err.source }),
      cause: err,
    },
  );
}

function patchReference(
  spec: CollectionSpec,
  p: CollectionProgramSpec,
  insns: Uint8Array,
  dv: DataView,
  r: InstructionReference & { readonly kind: "map" | "mapValue" | "kconfig" },
  maps: ReadonlyMap<string, BpfMap>,
  kconfig: KconfigLayout | undefined,
): void {
  const at = r.instruction * INSN;
  let mapName: string;
  let offset: number | undefined;
  if (r.kind === "kconfig") {
    const base = kconfig?.offsets.get(r.extern);
    if (base === undefined) throw new RangeError(`no value for .kconfig extern ${JSON.stringify(r.extern)}`);
    mapName = ".kconfig";
    offset = base + r.offset;
  } else {
    mapName = r.map;
    offset = r.kind === "mapValue" ? r.offset : undefined;
  }
  const map = maps.get(mapName);
  if (map === undefined) {
    throw new RangeError(`map ${JSON.stringify(mapName)} was not created`);
  }
  const regs = insns[at + 1] as number;
  insns[at + 1] = (regs & 0x0f) | ((offset === undefined ? PSEUDO_MAP_FD : PSEUDO_MAP_VALUE) << 4);
  dv.setInt32(at + 4, rawFd(map.fd), true);
  dv.setInt32(at + INSN + 4, offset ?? 0, true);
}

/** Arena maps came in Linux 6.9; older kernels refuse the unknown map type with EINVAL. */
function arenaNotSupported(want: MapSpec, err: unknown): unknown {
  if (want.type !== "arena" || !(err instanceof SyscallError) || err.code !== "EINVAL") return err;
  const v = kernelVersion();
  if (v.major > 6 || (v.major === 6 && v.minor >= 9)) return err;
  return new NotSupportedError("BPF arena maps", { minKernel: "6.9", cause: err });
}
