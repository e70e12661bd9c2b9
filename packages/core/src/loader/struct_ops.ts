// struct_ops maps: a kernel struct of operations (`struct
// tcp_congestion_ops`, sched_ext's `struct sched_ext_ops`) whose function
// members are BPF programs, defined as a global variable in SEC(".struct_ops")
// or SEC(".struct_ops.link"), as libbpf reads them. The variable's bytes are
// the object's layout of the struct; R_BPF_64_ABS64 relocations put programs
// in its function pointers. When loading, the kernel's layout of the same
// struct decides where each member goes in the map's value (`struct
// bpf_struct_ops_<name>`, whose `data` member holds the struct).
import type { Btf, BtfStruct } from "../btf/btf.ts";
import { essentialName } from "../btf/btf.ts";
import { kernelBtf } from "../btf/btf_load.ts";
import { BPF_RELOCATION_TYPE, type ElfFile } from "./elf.ts";
import { MAP_FLAGS, type MapSpec } from "../bpf/map_spec.ts";
import { MapDefinitionError, type MapInitialValue } from "./object_maps.ts";

/** The sections of struct_ops maps: registered by a map update, or through a bpf_link. */
export const STRUCT_OPS_SECTIONS: readonly string[] = [".struct_ops", ".struct_ops.link"];

const KERNEL_NAME_LEN = 15;

/** A struct_ops map as the object defines it. */
export interface ObjectStructOps {
  /** The variable's name. */
  readonly name: string;
  /** What to create; the value size and vmlinux value type come from the kernel when loading. */
  readonly spec: MapSpec;
  /** The struct's type id in the object's BTF. */
  readonly valueTypeId: number;
  /** The variable's bytes, in the object's layout of the struct. */
  readonly contents: Uint8Array;
  /** The programs in its function pointers: `slot` is the member's index in the object's struct. */
  readonly initialValues: readonly MapInitialValue[];
}

/**
 * Reads the struct_ops variables of an object.
 *
 * @param elf The object.
 * @param btf Its BTF.
 * @returns One map per variable, `.struct_ops` ones first.
 * @throws {MapDefinitionError} When a variable is not a struct or a relocation does not put a function in a function pointer.
 */
export function structOpsFromObject(elf: ElfFile, btf: Btf | undefined): ObjectStructOps[] {
  const out: ObjectStructOps[] = [];
  for (const sectionName of STRUCT_OPS_SECTIONS) {
    const section = elf.sectionByName(sectionName);
    if (section === undefined) continue;
    const where = { section: sectionName };
    const vars = btf?.datasecVariables(sectionName);
    if (btf === undefined || vars === undefined) {
      throw new MapDefinitionError("(none)", "struct_ops maps need BTF (build with -g)", where);
    }
    const data = section.data();
    const found: { name: string; offset: number; struct: BtfStruct; typeId: number; values: MapInitialValue[] }[] = [];
    for (const v of vars) {
      const sym = elf.symbols.find((s) => s.sectionIndex === section.index && s.name === v.name);
      if (sym === undefined) throw new MapDefinitionError(v.name, "no ELF symbol", where);
      if (v.type.kind !== "var")
        throw new MapDefinitionError(v.name, `expected a variable, got a ${v.type.kind}`, where);
      const t = btf.resolve(v.type.typeId);
      if (t.kind !== "struct") throw new MapDefinitionError(v.name, `expected a struct, got a ${t.kind}`, where);
      if (sym.value + t.size > data.length) throw new MapDefinitionError(v.name, "lies outside its section", where);
      found.push({ name: v.name, offset: sym.value, struct: t, typeId: t.id, values: [] });
    }
    for (const rel of elf.relocations.get(section.index) ?? []) {
      const map = found.find((m) => rel.offset >= m.offset && rel.offset < m.offset + m.struct.size);
      const target = elf.symbols[rel.symbolIndex];
      const targetName = JSON.stringify(target?.name ?? `#${rel.symbolIndex}`);
      if (map === undefined) {
        throw new MapDefinitionError(
          "(none)",
          `relocation to ${targetName} at offset ${rel.offset} is in no map`,
          where,
        );
      }
      if (rel.type !== BPF_RELOCATION_TYPE.abs64) {
        throw new MapDefinitionError(
          map.name,
          `relocation of type ${rel.type} to ${targetName}, expected R_BPF_64_ABS64 (2)`,
          where,
        );
      }
      const at = (rel.offset - map.offset) * 8;
      const index = map.struct.members.findIndex((m) => m.bitOffset === at);
      const member = map.struct.members[index];
      const pointee = member === undefined ? undefined : btf.resolve(member.typeId);
      const fn = pointee?.kind === "ptr" ? btf.resolve(pointee.typeId).kind === "funcProto" : false;
      if (member === undefined || !fn) {
        throw new MapDefinitionError(
          map.name,
          `relocation to ${targetName} at byte ${rel.offset - map.offset} is not a function pointer member`,
          where,
        );
      }
      if (target === undefined || target.type !== "func" || target.name === "") {
        throw new MapDefinitionError(
          map.name,
          `member ${JSON.stringify(member?.name)} refers to ${targetName}, which is not a program`,
          where,
        );
      }
      map.values.push({ slot: index, symbol: target.name });
    }
    for (const m of found) {
      out.push({
        name: m.name,
        spec: {
          name: m.name.slice(0, KERNEL_NAME_LEN),
          type: "structOps",
          keySize: 4,
          valueSize: m.struct.size,
          maxEntries: 1,
          ...(sectionName === ".struct_ops.link" ? { flags: MAP_FLAGS.link } : {}),
        },
        valueTypeId: m.typeId,
        contents: data.slice(m.offset, m.offset + m.struct.size),
        initialValues: m.values,
      });
    }
  }
  return out;
}

/** Where a struct_ops struct is in the kernel. */
export interface KernelStructOps {
  /** The struct's id in vmlinux BTF (`attach_btf_id` of its programs). */
  readonly structId: number;
  /** The kernel's struct. */
  readonly struct: BtfStruct;
  /** The id of `struct bpf_struct_ops_<name>`, the map's value type. */
  readonly valueTypeId: number;
  /** Its size: the map's value size. */
  readonly valueSize: number;
  /** Where the struct (the value's `data` member) starts in the value. */
  readonly dataOffset: number;
}

/**
 * Finds the kernel's struct of a struct_ops map and its value type.
 *
 * @param btf The object's BTF.
 * @param typeId The struct in the object.
 * @returns The kernel's side.
 * @throws {RangeError} When vmlinux BTF has no such struct_ops type.
 */
export function kernelStructOps(btf: Btf, typeId: number): KernelStructOps {
  const name = essentialName(btf.resolve(typeId).name);
  const vmlinux = kernelBtf();
  const struct = vmlinux.typesByName(name, "struct")[0];
  const value = vmlinux.typesByName(`bpf_struct_ops_${name}`, "struct")[0];
  if (struct?.kind !== "struct" || value?.kind !== "struct") {
    throw new RangeError(
      `struct_ops type "struct ${name}" is not in vmlinux BTF (no struct bpf_struct_ops_${name}; struct_ops of modules are not supported)`,
    );
  }
  const data = value.members.find((m) => m.name === "data");
  if (data === undefined) throw new RangeError(`struct bpf_struct_ops_${name} has no member "data"`);
  return { structId: struct.id, struct, valueTypeId: value.id, valueSize: value.size, dataOffset: data.bitOffset / 8 };
}

/**
 * Lays the object's struct out as the kernel's map value: members by name
 * at the kernel's offsets, program descriptors in the function pointers
 * the object filled, as libbpf does.
 *
 * @param btf The object's BTF.
 * @param map The struct_ops map from the object.
 * @param kernel The kernel's side.
 * @param programFd The descriptor of a program by name.
 * @returns The value to write at key 0.
 * @throws {RangeError} When a member the object sets is not in the kernel's struct, or has another size there.
 */
export function structOpsValue(
  btf: Btf,
  map: {
    readonly name: string;
    readonly valueTypeId: number | undefined;
    readonly contents: Uint8Array | undefined;
    readonly initialValues: readonly MapInitialValue[];
  },
  kernel: KernelStructOps,
  programFd: (name: string) => number,
): Uint8Array {
  const local = btf.resolve(map.valueTypeId ?? 0);
  if (local.kind !== "struct" || map.contents === undefined)
    throw new RangeError(`map ${JSON.stringify(map.name)} is not a struct_ops definition`);
  const value = new Uint8Array(kernel.valueSize);
  const dv = new DataView(value.buffer);
  const vmlinux = kernelBtf();
  local.members.forEach((m, i) => {
    const program = map.initialValues.find((v) => v.slot === i)?.symbol;
    const start = m.bitOffset / 8;
    const size = btf.sizeOf(m.typeId);
    const bytes = map.contents?.subarray(start, start + size) ?? new Uint8Array();
    const set = program !== undefined || bytes.some((b) => b !== 0);
    const km = kernel.struct.members.find((k) => k.name === m.name);
    if (km === undefined) {
      if (set) throw new RangeError(`member ${JSON.stringify(m.name)} of struct ${local.name} is not in the kernel's`);
      return;
    }
    const at = kernel.dataOffset + km.bitOffset / 8;
    if (program !== undefined) {
      dv.setBigUint64(at, BigInt(programFd(program)), true);
      return;
    }
    if (!set) return;
    const t = btf.resolve(m.typeId);
    if (t.kind === "ptr") throw new RangeError(`member ${JSON.stringify(m.name)} is a pointer that is not a program`);
    const kernelSize = vmlinux.sizeOf(km.typeId);
    if (kernelSize !== size) {
      throw new RangeError(
        `member ${JSON.stringify(m.name)} has ${size} bytes in the object but ${kernelSize} in the kernel`,
      );
    }
    value.set(bytes, at);
  });
  return value;
}
