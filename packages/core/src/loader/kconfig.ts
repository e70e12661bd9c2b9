// `.kconfig` externs: the running kernel's build configuration and the
// values libbpf gives `extern ... __kconfig` variables, laid out in the data
// of the read-only array map that stands in for the `.kconfig` section.
import type { Btf, BtfType } from "../btf/btf.ts";
import type { ElfFile } from "./elf.ts";
import { NotSupportedError } from "../errors.ts";
import { hasHelper, hasSyscallWrapper, type KernelVersion, kernelVersion } from "../features/features.ts";
import { kernelRelease, readGzipText, readText } from "../_sys/fs.ts";

/** One `extern` variable of the `.kconfig` section of an object. */
export interface KconfigExtern {
  /** The variable name, such as `"CONFIG_HZ"` or `"LINUX_KERNEL_VERSION"`. */
  readonly name: string;
  /**
   * The id of its BTF type, such as `int` or `_Bool` (the type of its
   * `VAR` in the `.kconfig` DATASEC; the id of the `VAR` itself is
   * followed to its type too).
   */
  readonly typeId: number;
  /** Whether it is declared `__weak`: a missing option then reads as zero instead of failing. */
  readonly weak: boolean;
}

/** The data of the `.kconfig` map, as {@link kconfigData} lays it out. */
export interface KconfigLayout {
  /** The size of the data in bytes (0 when there are no externs). */
  readonly size: number;
  /** The byte offset of every extern in the data, by name. */
  readonly offsets: ReadonlyMap<string, number>;
  /** The values, `size` bytes in host (little-endian) byte order. */
  readonly data: Uint8Array;
}

/** Options for {@link kconfigData}. */
export interface KconfigDataOptions {
  /**
   * The kernel configuration, `CONFIG_X` to raw value, as
   * {@link readKernelConfig} returns it. A `LINUX_` name in it overrides
   * the value libbpf would compute for that virtual extern (`"y"`, `"n"`
   * or a number).
   *
   * @default readKernelConfig(), read only when a `CONFIG_` extern exists
   */
  readonly config?: ReadonlyMap<string, string>;
  /**
   * The version `LINUX_KERNEL_VERSION` encodes.
   *
   * @default kernelVersion()
   */
  readonly kernelVersion?: KernelVersion;
}

/**
 * A `.kconfig` extern cannot be given a value: its type is not one libbpf
 * supports, the option is missing (and the extern is not `__weak`), or the
 * configured value does not fit the type. The message names the extern
 * and the cause.
 *
 * @example A value that does not fit
 * ```ts
 * import assert from "node:assert/strict";
 * import { KconfigError } from "@dp/core";
 *
 * const err = new KconfigError("CONFIG_HZ", 'value "y" needs a bool, tristate or char type, not int');
 * assert.equal(err.externName, "CONFIG_HZ");
 * assert.equal(err.message, 'Cannot set .kconfig extern "CONFIG_HZ": value "y" needs a bool, tristate or char type, not int');
 * ```
 */
export class KconfigError extends Error {
  /** Always `"KconfigError"`, the class name. */
  override readonly name: string = "KconfigError";
  /** The extern, such as `"CONFIG_HZ"`. */
  readonly externName: string;

  /**
   * Creates an error whose message is `Cannot set .kconfig extern "NAME": detail`.
   *
   * @param externName The extern, such as `"CONFIG_HZ"`.
   * @param detail What is wrong.
   * @param options The error that caused this one.
   */
  constructor(externName: string, detail: string, options: { readonly cause?: unknown } = {}) {
    super(
      `Cannot set .kconfig extern ${JSON.stringify(externName)}: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.externName = externName;
  }
}

const PROC_CONFIG = "/proc/config.gz";
const CONFIG_LINE = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;

/**
 * Parses the text of a kernel `.config`: `CONFIG_X=value` lines, keeping
 * the raw value (`y`, `m`, `"text"` with its quotes, `250`, `0x1f`).
 * Comments, including `# CONFIG_X is not set`, and blank lines are
 * skipped, so an option that is not set is missing (as in libbpf); the
 * first line for a name wins.
 *
 * @param text The file's text.
 * @returns The options by name, in file order.
 * @throws {SyntaxError} When a `CONFIG_` line has no `=` or no value.
 * @example Two options and an unset one
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKernelConfig } from "@dp/core/internal";
 *
 * const config = parseKernelConfig('CONFIG_HZ=250\n# CONFIG_NUMA is not set\nCONFIG_LOCALVERSION="-dp"\n');
 * assert.deepEqual([...config], [["CONFIG_HZ", "250"], ["CONFIG_LOCALVERSION", '"-dp"']]);
 * ```
 */
export function parseKernelConfig(text: string): Map<string, string> {
  const config = new Map<string, string>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith("CONFIG_")) continue;
    const m = CONFIG_LINE.exec(line);
    if (m === null || m[2] === "") {
      throw new SyntaxError(
        `Invalid kernel configuration at line ${i + 1}: expected CONFIG_NAME=value, found ${JSON.stringify(line)}`,
      );
    }
    const name = m[1] as string;
    if (!config.has(name)) config.set(name, m[2] as string);
  }
  return config;
}

let kernelConfigCache: ReadonlyMap<string, string> | undefined;

/**
 * The running kernel's build configuration: `CONFIG_X` to its raw value
 * (`y`, `m`, `"text"` with its quotes, `250`, `0x1f`), from
 * `/proc/config.gz` (`CONFIG_IKCONFIG_PROC`), else from
 * `/boot/config-<release>`. Read once and cached.
 *
 * @returns The options by name; options that are not set are missing.
 * @throws {NotSupportedError} When neither file exists.
 * @throws {Error} "Cannot read the kernel configuration …" when a file exists but cannot be read or parsed.
 * @example Reading one option
 * ```ts ignore
 * import { readKernelConfig } from "@dp/core/internal";
 *
 * const hz = Number(readKernelConfig().get("CONFIG_HZ"));
 * ```
 */
export function readKernelConfig(): ReadonlyMap<string, string> {
  if (kernelConfigCache !== undefined) return kernelConfigCache;
  const boot = `/boot/config-${kernelRelease()}`;
  for (const [path, read] of [
    [PROC_CONFIG, readGzipText],
    [boot, readText],
  ] as const) {
    let config: Map<string, string> | undefined;
    try {
      const text = read(path);
      if (text === undefined) continue;
      config = parseKernelConfig(text);
    } catch (err) {
      throw new Error(`Cannot read the kernel configuration from ${JSON.stringify(path)}`, { cause: err });
    }
    kernelConfigCache = config;
    return config;
  }
  throw new NotSupportedError(`kernel configuration file (no ${PROC_CONFIG} or ${boot})`);
}

/**
 * Finds the `.kconfig` externs of an object the way libbpf does: undefined
 * global or weak symbols without a type whose BTF `VAR` is in the DATASEC
 * named `.kconfig` (the object has no `.kconfig` ELF section). Other
 * externs (`.ksyms`) are left out.
 *
 * @param elf The parsed object.
 * @param btf Its parsed `.BTF`.
 * @returns The externs in symbol table order; empty when there are none.
 * @throws {KconfigError} When the BTF variable of an extern symbol does not have extern linkage.
 * @example The externs of kconfig.o
 * ```ts
 * import assert from "node:assert/strict";
 * import { readFileSync } from "node:fs";
 * import { kconfigExterns, parseBtf, parseElf } from "@dp/core/internal";
 *
 * const elf = parseElf(readFileSync("bpf/build/testdata/kconfig.o"));
 * const btf = parseBtf(elf.sectionByName(".BTF")?.data() ?? new Uint8Array());
 * const externs = kconfigExterns(elf, btf);
 * assert.deepEqual(externs.map((e) => [e.name, e.weak]), [
 *   ["LINUX_KERNEL_VERSION", false],
 *   ["CONFIG_BPF_SYSCALL", false],
 *   ["CONFIG_HZ", false],
 *   ["CONFIG_DP_NO_SUCH_OPTION", true],
 * ]);
 * ```
 */
export function kconfigExterns(elf: ElfFile, btf: Btf): KconfigExtern[] {
  const vars = btf.datasecVariables(".kconfig");
  if (vars === undefined) return [];
  const byName = new Map(vars.map((v) => [v.name, v.type]));
  const externs: KconfigExtern[] = [];
  for (const sym of elf.symbols) {
    if (sym.index === 0 || sym.sectionIndex !== 0 || sym.type !== "notype") continue;
    if (sym.bind !== "global" && sym.bind !== "weak") continue;
    const v = byName.get(sym.name);
    if (v === undefined) continue;
    if (v.linkage !== "extern") {
      throw new KconfigError(sym.name, `its BTF ${v.kind} (id ${v.id}) has ${v.linkage} linkage, expected extern`);
    }
    externs.push({ name: sym.name, typeId: v.typeId, weak: sym.bind === "weak" });
  }
  return externs;
}

/** How a value is stored, libbpf's `enum kcfg_type`. */
type KconfigKind = "bool" | "tristate" | "char" | "int" | "charArray";

interface Slot {
  readonly extern: KconfigExtern;
  readonly kind: KconfigKind;
  readonly size: number;
  readonly align: number;
  readonly signed: boolean;
  offset: number;
}

const KIND_TEXT: Readonly<Record<KconfigKind, string>> = {
  bool: "bool",
  tristate: "enum libbpf_tristate",
  char: "char",
  int: "int",
  charArray: "char array",
};

/**
 * Lays out and fills the data of the `.kconfig` map from the externs'
 * BTF types, following libbpf:
 *
 * - layout: externs sorted by alignment (largest first), then size
 *   (smallest first), then name, each at the next multiple of its
 *   alignment; `size` ends after the last one;
 * - `LINUX_` externs (libbpf's virtual ones): a value for the name in
 *   `options.config` wins (taken like a `CONFIG_` value); else
 *   `LINUX_KERNEL_VERSION` is `KERNEL_VERSION(major, minor, min(patch, 255))`,
 *   `LINUX_HAS_BPF_COOKIE` tells whether tracepoint programs may call
 *   `bpf_get_attach_cookie` and `LINUX_HAS_SYSCALL_WRAPPER` whether the
 *   kernel has a `__<arch>_sys_bpf` syscall wrapper (both from feature
 *   probes, as libbpf computes them); other `LINUX_` names are an error
 *   unless `__weak` (then zero);
 * - `CONFIG_` options by type (typedefs and qualifiers are skipped):
 *   `bool` takes `y`/`n`; `enum libbpf_tristate` takes `y` (1), `n` (0)
 *   and `m` (2); a 1-byte integer (`char`) takes `y`/`n`/`m` as characters
 *   or a number; integers of 2, 4 or 8 bytes take numbers (decimal, `0x`
 *   hex, `0` octal, a leading `-`) that must fit their size and
 *   signedness; `char[N]` takes a quoted string, copied without its quotes
 *   and cut to `N - 1` bytes plus a NUL;
 * - a missing option is zero for a `__weak` extern and an error otherwise.
 *
 * @param btf The object's BTF.
 * @param externs The externs, as {@link kconfigExterns} finds them.
 * @param options The configuration and kernel version to use instead of the running kernel's.
 * @returns The layout and data.
 * @throws {KconfigError} When an extern has an unsupported type or name, a
 *   strong one is missing from the configuration, a value does not fit its
 *   type, two externs share a name, or the configuration cannot be read.
 * @example An int and a bool
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf, kconfigData } from "@dp/core/internal";
 *
 * const btf = buildBtf([
 *   { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
 *   { kind: "int", id: 2, name: "_Bool", size: 1, signed: false, char: false, bool: true, bitOffset: 0, bits: 8 },
 * ]);
 * const config = new Map([["CONFIG_HZ", "250"], ["CONFIG_BPF", "y"]]);
 * const layout = kconfigData(btf, [
 *   { name: "CONFIG_BPF", typeId: 2, weak: false },
 *   { name: "CONFIG_HZ", typeId: 1, weak: false },
 * ], { config });
 * assert.deepEqual([...layout.offsets], [["CONFIG_HZ", 0], ["CONFIG_BPF", 4]]);
 * assert.deepEqual([...layout.data], [250, 0, 0, 0, 1]);
 * ```
 */
export function kconfigData(
  btf: Btf,
  externs: readonly KconfigExtern[],
  options: KconfigDataOptions = {},
): KconfigLayout {
  const seen = new Set<string>();
  const slots = externs.map((extern) => {
    if (seen.has(extern.name)) throw new KconfigError(extern.name, "declared twice");
    seen.add(extern.name);
    return slotOf(btf, extern);
  });
  slots.sort((a, b) => b.align - a.align || a.size - b.size || compareNames(a.extern.name, b.extern.name));
  let size = 0;
  const offsets = new Map<string, number>();
  for (const slot of slots) {
    slot.offset = Math.ceil(size / slot.align) * slot.align;
    offsets.set(slot.extern.name, slot.offset);
    size = slot.offset + slot.size;
  }
  const data = new Uint8Array(size);
  let config = options.config;
  for (const slot of slots) {
    const { name, weak } = slot.extern;
    if (name.startsWith("LINUX_")) {
      const given = options.config?.get(name);
      if (given !== undefined) {
        setValue(slot, data, given);
        continue;
      }
      const value = linuxExtern(name, options);
      if (value !== undefined) setNumber(slot, data, value, true);
      else if (!weak) throw new KconfigError(name, `unknown LINUX_ extern (known: ${LINUX_EXTERNS.join(", ")})`);
      continue;
    }
    if (config === undefined) {
      try {
        config = readKernelConfig();
      } catch (err) {
        throw new KconfigError(name, "the kernel configuration is not available", { cause: err });
      }
    }
    const raw = config.get(name);
    if (raw === undefined) {
      if (weak) continue;
      throw new KconfigError(
        name,
        "the option is not set in the kernel configuration (declare the extern __weak to read it as 0)",
      );
    }
    setValue(slot, data, raw);
  }
  return { size, offsets, data };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const LINUX_EXTERNS = ["LINUX_KERNEL_VERSION", "LINUX_HAS_BPF_COOKIE", "LINUX_HAS_SYSCALL_WRAPPER"] as const;

/** The value libbpf gives a virtual `LINUX_` extern, or undefined for a name it does not know. */
function linuxExtern(name: string, options: KconfigDataOptions): bigint | undefined {
  try {
    switch (name) {
      case "LINUX_KERNEL_VERSION":
        return kernelVersionCode(options.kernelVersion ?? kernelVersion());
      case "LINUX_HAS_BPF_COOKIE":
        return hasHelper("tracepoint", "getAttachCookie") ? 1n : 0n;
      case "LINUX_HAS_SYSCALL_WRAPPER":
        return hasSyscallWrapper() ? 1n : 0n;
      default:
        return undefined;
    }
  } catch (err) {
    throw new KconfigError(name, "the kernel feature probe failed (give a value in kernelConfig)", { cause: err });
  }
}

/** `KERNEL_VERSION(major, minor, patch)` with the patch level capped at 255, as libbpf encodes it. */
function kernelVersionCode(v: KernelVersion): bigint {
  return (BigInt(v.major) << 16n) + (BigInt(v.minor) << 8n) + BigInt(Math.min(v.patch, 255));
}

function slotOf(btf: Btf, extern: KconfigExtern): Slot {
  const { name } = extern;
  if (!name.startsWith("CONFIG_") && !name.startsWith("LINUX_")) {
    throw new KconfigError(name, "unknown extern (expected a CONFIG_ or LINUX_ name)");
  }
  const declared = btf.typeById(extern.typeId);
  if (declared === undefined) throw new KconfigError(name, `its BTF type ${extern.typeId} does not exist`);
  const typeId = declared.kind === "var" ? declared.typeId : extern.typeId;
  let resolved: { kind: KconfigKind | undefined; signed: boolean; size: number };
  try {
    const t = btf.resolve(typeId);
    const kind = kindOf(btf, t);
    resolved = { kind, signed: t.kind === "int" && t.signed, size: kind === undefined ? 0 : btf.sizeOf(typeId) };
  } catch (err) {
    throw new KconfigError(name, `its BTF type ${typeId} is invalid`, { cause: err });
  }
  const { kind, signed, size } = resolved;
  if (kind === undefined) throw new KconfigError(name, `unsupported type ${describeType(btf, typeId)}`);
  const align = kind === "charArray" ? 1 : Math.min(size, 8);
  return { extern, kind, size, align, signed, offset: 0 };
}

/** libbpf's `find_kcfg_type`: how a resolved type stores a value, or undefined when it cannot. */
function kindOf(btf: Btf, t: BtfType): KconfigKind | undefined {
  switch (t.kind) {
    case "int":
      if (t.bool) return t.size === 1 ? "bool" : undefined;
      if (t.size === 1) return "char";
      return t.size === 2 || t.size === 4 || t.size === 8 ? "int" : undefined;
    case "enum":
      return t.size === 4 && t.name === "libbpf_tristate" ? "tristate" : undefined;
    case "enum64":
      return t.name === "libbpf_tristate" ? "tristate" : undefined;
    case "array":
      return t.length > 0 && kindOf(btf, btf.resolve(t.elementTypeId)) === "char" ? "charArray" : undefined;
    default:
      return undefined;
  }
}

function describeType(btf: Btf, id: number): string {
  const t = btf.resolve(id);
  return `${t.kind}${t.name === "" ? "" : ` ${JSON.stringify(t.name)}`} (id ${t.id})`;
}

/** Stores a configured value, like libbpf's `bpf_object__process_kconfig_line`. */
function setValue(slot: Slot, data: Uint8Array, raw: string): void {
  const name = slot.extern.name;
  const first = raw[0];
  if (first === "y" || first === "n" || first === "m") {
    switch (slot.kind) {
      case "bool":
        if (first === "m") throw new KconfigError(name, `value "m" needs a tristate or char type, not bool`);
        data[slot.offset] = first === "y" ? 1 : 0;
        return;
      case "tristate":
        writeUint(data, slot.offset, slot.size, first === "y" ? 1n : first === "m" ? 2n : 0n);
        return;
      case "char":
        data[slot.offset] = first.charCodeAt(0);
        return;
      default:
        throw new KconfigError(
          name,
          `value ${JSON.stringify(raw)} needs a bool, tristate or char type, not ${KIND_TEXT[slot.kind]}`,
        );
    }
  }
  if (first === '"') {
    if (slot.kind !== "charArray") {
      throw new KconfigError(name, `value ${raw} needs a char array type, not ${KIND_TEXT[slot.kind]}`);
    }
    if (raw.length < 2 || !raw.endsWith('"')) throw new KconfigError(name, `invalid string value ${raw}`);
    const bytes = new TextEncoder().encode(raw.slice(1, -1));
    data.set(bytes.subarray(0, slot.size - 1), slot.offset);
    return;
  }
  const value = parseConfigInteger(raw);
  if (value === undefined) throw new KconfigError(name, `value ${JSON.stringify(raw)} is not a valid integer`);
  if (slot.kind !== "int" && slot.kind !== "char") {
    throw new KconfigError(name, `value ${JSON.stringify(raw)} needs an integer type, not ${KIND_TEXT[slot.kind]}`);
  }
  setNumber(slot, data, value, false);
}

const U64_MASK = (1n << 64n) - 1n;

/**
 * Parses an integer like C's `strtoull(text, &end, 0)` with nothing left
 * over: optional leading spaces and sign, `0x` hex, `0` octal or decimal; a
 * negative number wraps to its 64-bit two's complement.
 */
function parseConfigInteger(text: string): bigint | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (m === null) return undefined;
  const digits = m[2] as string;
  const magnitude = /^0[0-7]+$/.test(digits) ? BigInt(`0o${digits.slice(1)}`) : BigInt(digits);
  if (magnitude > U64_MASK) return undefined;
  return m[1] === "-" ? -magnitude & U64_MASK : magnitude;
}

/** libbpf's `set_kcfg_value_num`: a number into an integer, char or (for virtual externs) bool. */
function setNumber(slot: Slot, data: Uint8Array, value: bigint, allowBool: boolean): void {
  const name = slot.extern.name;
  if (slot.kind !== "int" && slot.kind !== "char" && !(allowBool && slot.kind === "bool")) {
    throw new KconfigError(name, `value ${value} needs an integer or char type, not ${KIND_TEXT[slot.kind]}`);
  }
  if (slot.kind === "bool" && value > 1n) throw new KconfigError(name, `value ${value} is not a bool (0 or 1)`);
  if (slot.size < 8) {
    const bits = BigInt(slot.size * 8);
    const fits = slot.signed ? ((value + (1n << (bits - 1n))) & U64_MASK) < 1n << bits : value >> bits === 0n;
    if (!fits) {
      const shown = slot.signed && value >> 63n === 1n ? value - (1n << 64n) : value;
      throw new KconfigError(
        name,
        `value ${shown} is out of range for a ${slot.size}-byte ${slot.signed ? "signed" : "unsigned"} integer`,
      );
    }
  }
  writeUint(data, slot.offset, slot.size, value);
}

function writeUint(data: Uint8Array, offset: number, size: number, value: bigint): void {
  let v = value;
  for (let i = 0; i < size; i++) {
    data[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}
