// `__ksym` externs: kernel functions (kfuncs) a program calls and kernel
// symbols it reads, declared in the object's `.ksyms` DATASEC and resolved
// when a program is loaded, the way libbpf does: kfuncs and typed variables
// by name in the kernel's BTF (vmlinux, then modules) with their types
// checked against the object's, `void` variables by address in
// /proc/kallsyms, and `__weak` ones that the kernel lacks as zero.
import type { Btf, BtfType } from "../btf/btf.ts";
import { essentialName } from "../btf/btf.ts";
import { type BtfHandle, findKernelBtfType } from "../btf/btf_load.ts";
import { rawFd } from "../bpf/fd.ts";
import type { ElfFile } from "./elf.ts";
import { typesAreCompatible } from "./core_relo.ts";
import { readText } from "../_sys/fs.ts";

/** One `extern ... __ksym` of an object: a kernel function or a kernel variable. */
export interface KsymExtern {
  /** The name in the object, such as `"bpf_obj_new_impl"` or `"init_net"`. */
  readonly name: string;
  /** `"func"` for a kernel function (kfunc), `"var"` for a kernel variable. */
  readonly kind: "func" | "var";
  /**
   * In the object's BTF: the `BTF_KIND_FUNC` of a function, the type of a
   * variable (such as `struct net`), or 0 for a `void` variable, which is
   * resolved by address in /proc/kallsyms rather than by BTF.
   */
  readonly typeId: number;
  /** Whether it is declared `__weak`: a symbol the kernel lacks then reads as 0 instead of failing. */
  readonly weak: boolean;
}

/**
 * A `__ksym` extern cannot be resolved against the running kernel: the
 * kernel has no such function or symbol (and the extern is not `__weak`),
 * or its type in the object differs from the kernel's. Only the programs
 * that use the extern fail. The message names the symbol and the cause.
 *
 * @example A kfunc the kernel lacks
 * ```ts
 * import assert from "node:assert/strict";
 * import { KsymError } from "@dp/core";
 *
 * const err = new KsymError("bpf_dp_missing", "function", "it is in neither vmlinux nor module BTF");
 * assert.equal(err.symbol, "bpf_dp_missing");
 * assert.equal(err.kind, "function");
 * assert.equal(err.message, 'Cannot resolve kernel function "bpf_dp_missing": it is in neither vmlinux nor module BTF');
 * ```
 */
export class KsymError extends Error {
  /** Always `"KsymError"`, the class name. */
  override readonly name: string = "KsymError";
  /** The extern's name in the object. */
  readonly symbol: string;
  /** `"function"` for a kfunc, `"symbol"` for a kernel variable. */
  readonly kind: "function" | "symbol";

  /**
   * Creates an error whose message is `Cannot resolve kernel WHAT "SYMBOL": detail`.
   *
   * @param symbol The extern's name.
   * @param what `"function"` or `"symbol"`.
   * @param detail What is wrong.
   * @param options The error that caused this one.
   */
  constructor(symbol: string, what: "function" | "symbol", detail: string, options?: ErrorOptions) {
    super(`Cannot resolve kernel ${what} ${JSON.stringify(symbol)}: ${detail}`, options);
    this.symbol = symbol;
    this.kind = what;
  }
}

/**
 * The `__ksym` externs of an object: undefined symbols whose BTF FUNC or
 * VAR sits in the `.ksyms` DATASEC.
 *
 * @param elf The object.
 * @param btf Its BTF.
 * @returns The externs in symbol order.
 */
export function ksymExterns(elf: ElfFile, btf: Btf): KsymExtern[] {
  const entries = btf.datasecVariables(".ksyms");
  if (entries === undefined) return [];
  const byName = new Map(entries.map((v) => [v.name, v.type]));
  const externs: KsymExtern[] = [];
  for (const sym of elf.symbols) {
    if (sym.index === 0 || sym.sectionIndex !== 0 || sym.type !== "notype") continue;
    if (sym.bind !== "global" && sym.bind !== "weak") continue;
    const t = byName.get(sym.name);
    if (t === undefined) continue;
    const weak = sym.bind === "weak";
    if (t.kind === "func") externs.push({ name: sym.name, kind: "func", typeId: t.id, weak });
    else if (t.kind === "var") {
      const resolved = btf.resolve(t.typeId);
      externs.push({ name: sym.name, kind: "var", typeId: resolved.kind === "void" ? 0 : t.typeId, weak });
    }
  }
  return externs;
}

/** Where an extern is in the running kernel; `undefined` for a `__weak` one it lacks. */
export type KsymTarget =
  | {
      /** A function or typed variable: its BTF id in vmlinux or a module. */
      readonly kind: "btf";
      /** The BTF type id (`FUNC` or `VAR`). */
      readonly id: number;
      /** The module's BTF object, `undefined` for vmlinux. */
      readonly module: BtfHandle | undefined;
    }
  | {
      /** A `void` variable: its address from /proc/kallsyms. */
      readonly kind: "address";
      /** The address. */
      readonly address: bigint;
    }
  | undefined;

const KALLSYMS = "/proc/kallsyms";

/**
 * Resolves the externs of one load: each at most once, module BTF objects
 * kept open until {@link KsymResolver.close}, errors cached per extern so
 * every program that uses a bad one reports it.
 */
export class KsymResolver {
  #btf: Btf;
  #externs: ReadonlyMap<string, KsymExtern>;
  #resolved = new Map<string, KsymTarget | KsymError>();
  #handles: BtfHandle[] = [];
  #kallsyms: Map<string, bigint[]> | undefined;

  /**
   * Prepares to resolve an object's externs.
   *
   * @param btf The object's BTF.
   * @param externs Its `__ksym` externs.
   */
  constructor(btf: Btf, externs: readonly KsymExtern[]) {
    this.#btf = btf;
    this.#externs = new Map(externs.map((e) => [e.name, e]));
  }

  /**
   * Where an extern is in the kernel.
   *
   * @param name The extern's name.
   * @returns Its target, or `undefined` for a `__weak` extern the kernel lacks.
   * @throws {KsymError} When the kernel lacks a non-weak extern or has it with another type.
   * @throws {RangeError} When the object has no such extern.
   */
  resolve(name: string): KsymTarget {
    let r = this.#resolved.get(name);
    if (r === undefined && !this.#resolved.has(name)) {
      const e = this.#externs.get(name);
      if (e === undefined) throw new RangeError(`no __ksym extern ${JSON.stringify(name)} in the object`);
      try {
        r = this.#lookup(e);
      } catch (err) {
        if (!(err instanceof KsymError)) throw err;
        r = err;
      }
      this.#resolved.set(name, r);
    }
    if (r instanceof KsymError) throw r;
    return r;
  }

  /** Closes the module BTF objects opened for the externs. */
  close(): void {
    for (const h of this.#handles.splice(0)) h.close();
  }

  #lookup(e: KsymExtern): KsymTarget {
    const what = e.kind === "func" ? "function" : "symbol";
    if (e.kind === "var" && e.typeId === 0) return this.#address(e);
    // libbpf looks kfuncs up by their essential name: `bpf_foo___v2` is `bpf_foo`.
    const kernelName = essentialName(e.name);
    const found = findKernelBtfType(kernelName, e.kind);
    if (found === undefined) {
      if (e.weak) return undefined;
      throw new KsymError(
        e.name,
        what,
        `${e.kind === "func" ? "FUNC" : "VAR"} ${JSON.stringify(kernelName)} is in neither vmlinux nor module BTF`,
      );
    }
    if (found.handle !== undefined) this.#handles.push(found.handle);
    const kernelType = found.btf.typeById(found.id) as BtfType & { readonly typeId: number };
    const localId =
      e.kind === "func" ? (this.#btf.typeById(e.typeId) as BtfType & { readonly typeId: number }).typeId : e.typeId;
    if (!typesAreCompatible(this.#btf, localId, found.btf, kernelType.typeId)) {
      // Ids after typedefs and qualifiers, as libbpf reports them.
      const local = this.#btf.resolve(localId).id;
      const kernel = found.btf.resolve(kernelType.typeId).id;
      const where = found.module === undefined ? "vmlinux" : `module ${JSON.stringify(found.module)}`;
      throw new KsymError(
        e.name,
        what,
        `its ${e.kind === "func" ? "prototype" : "type"} in the object (BTF type ${local}) does not match the kernel's in ${where} (BTF type ${kernel})`,
      );
    }
    return { kind: "btf", id: found.id, module: found.handle };
  }

  #address(e: KsymExtern): KsymTarget {
    if (this.#kallsyms === undefined) {
      const text = readText(KALLSYMS);
      if (text === undefined) throw new KsymError(e.name, "symbol", `${KALLSYMS} cannot be read`);
      this.#kallsyms = parseKallsyms(text);
    }
    const addresses = this.#kallsyms.get(e.name);
    if (addresses === undefined) {
      if (e.weak) return undefined;
      throw new KsymError(e.name, "symbol", `it is not in ${KALLSYMS}`);
    }
    const distinct = [...new Set(addresses)];
    if (distinct.length > 1) {
      throw new KsymError(
        e.name,
        "symbol",
        `it is ambiguous in ${KALLSYMS}: ${distinct.map((a) => `0x${a.toString(16)}`).join(" or ")}`,
      );
    }
    const address = distinct[0] as bigint;
    if (address === 0n)
      throw new KsymError(e.name, "symbol", `${KALLSYMS} shows it at address 0: reading addresses needs CAP_SYSLOG`);
    return { kind: "address", address };
  }
}

/**
 * Parses /proc/kallsyms: `address type name [module]` lines to the
 * addresses of each name.
 *
 * @param text The file's text.
 * @returns Every address of each symbol name.
 */
export function parseKallsyms(text: string): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  for (const line of text.split("\n")) {
    const first = line.indexOf(" ");
    const second = line.indexOf(" ", first + 1);
    if (first < 0 || second < 0) continue;
    const end = line.indexOf("\t", second + 1);
    const name = line.slice(second + 1, end < 0 ? undefined : end);
    const address = BigInt(`0x${line.slice(0, first)}`);
    const list = out.get(name);
    if (list === undefined) out.set(name, [address]);
    else list.push(address);
  }
  return out;
}

const INSN = 8;
const PSEUDO_BTF_ID = 3;
const PSEUDO_KFUNC_CALL = 2;
const MAX_FD_ARRAY_INDEX = 0x7fff;

/**
 * Points a kfunc call or a `__ksym` address at the kernel, as libbpf does:
 * a call becomes `BPF_PSEUDO_KFUNC_CALL` of the function's BTF id, `off`
 * the index of its module's BTF object in `fd_array` (0 for vmlinux); an
 * `ld_imm64` becomes `BPF_PSEUDO_BTF_ID` of the function or variable (the
 * module's BTF object in the second immediate) or, for a `void` variable,
 * its kallsyms address. A `__weak` extern the kernel lacks becomes a call
 * of BTF id 0, which the verifier accepts only in code it prunes, and an
 * address of 0.
 *
 * @param insns The program's instructions, patched in place.
 * @param r The reference.
 * @param ksyms Where the externs are in the kernel.
 * @param fdArray The program's `fd_array` (index 0 unused), extended with the modules' BTF objects it needs.
 * @returns Where the extern is; `undefined` for a `__weak` one the kernel lacks.
 * @throws {KsymError} When the extern cannot be resolved.
 * @throws {RangeError} When a program calls functions of more modules than `off` can index.
 */
export function patchKsym(
  insns: Uint8Array,
  r: { readonly instruction: number; readonly kind: "kfunc" | "ksym"; readonly extern: string },
  ksyms: { resolve(name: string): KsymTarget },
  fdArray: (BtfHandle | undefined)[],
): KsymTarget {
  const dv = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const target = ksyms.resolve(r.extern);
  const at = r.instruction * INSN;
  const regs = insns[at + 1] as number;
  if (r.kind === "kfunc") {
    let index = 0;
    if (target?.kind === "btf" && target.module !== undefined) {
      index = fdArray.indexOf(target.module);
      if (index < 0) index = fdArray.push(target.module) - 1;
      if (index > MAX_FD_ARRAY_INDEX)
        throw new RangeError(`calls kernel functions of more than ${MAX_FD_ARRAY_INDEX} modules`);
    }
    insns[at + 1] = (regs & 0x0f) | (PSEUDO_KFUNC_CALL << 4);
    dv.setInt16(at + 2, index, true);
    dv.setInt32(at + 4, target?.kind === "btf" ? target.id : 0, true);
    return target;
  }
  if (target?.kind === "btf") {
    insns[at + 1] = (regs & 0x0f) | (PSEUDO_BTF_ID << 4);
    dv.setInt32(at + 4, target.id, true);
    dv.setInt32(at + INSN + 4, target.module === undefined ? 0 : rawFd(target.module.fd), true);
    return target;
  }
  const address = target?.address ?? 0n;
  insns[at + 1] = regs & 0x0f;
  dv.setUint32(at + 4, Number(address & 0xffff_ffffn), true);
  dv.setUint32(at + INSN + 4, Number(address >> 32n), true);
  return target;
}
