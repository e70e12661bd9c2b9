// dp-gen: TypeScript bindings generated from a BPF object's BTF. A codec
// per struct, union and typedef the maps and global variables use (layouts
// copied from the BTF, offsets pinned where they are not the natural C
// ones), and a bind() that wraps a loaded collection's maps in the typed
// classes of this package.
import {
  type Btf,
  type BtfMember,
  type BtfStruct,
  type BtfUnion,
  type CollectionMapSpec,
  type CollectionSpec,
  parseCollectionSpec,
} from "@dp/core";

/** Options for {@link generateBindings}. */
export interface GenerateBindingsOptions {
  /**
   * The object file as the header names it, such as
   * `"bpf/build/xdp_count.o"` (a path relative to the repository keeps the
   * output the same on every machine).
   *
   * @default the spec's name plus `".o"`
   */
  readonly objectPath?: string;
  /**
   * The command the header says regenerates the file.
   *
   * @default `dp-gen <objectPath>`
   */
  readonly command?: string;
  /**
   * The `__be32` fields to generate as IPv4 addresses: the `ipv4` codec
   * (text such as `"10.0.0.1"`, network order in the map) instead of
   * `be32` (a host number). Each entry names a struct member (`"saddr"`),
   * a member of one struct (`"flow_key.saddr"`, the C struct or typedef
   * name), or a map's key or value that is a `__be32` itself
   * (`"src_counts.key"`). Types are never guessed from names: only the
   * fields listed here change.
   *
   * @default none
   */
  readonly ipv4Fields?: readonly string[];
}

/**
 * Generates TypeScript bindings for a BPF object from its BTF: the source
 * text of the module `dp-gen` writes.
 *
 * The module holds, in a stable order (named types sorted by name, each
 * after the types it uses):
 * - a header naming the object and the command that regenerates the file;
 * - for each struct, union and typedef of an anonymous struct or union
 *   that a map key or value or a global variable uses, a type named in
 *   PascalCase (`struct policy_key` → `PolicyKey`) and a codec constant of
 *   the same name. Sizes are explicit; a layout that is not the natural C
 *   one gets `packed: true` or pinned `offsets`. `__be16`, `__be32` and
 *   `__be64` typedefs become `be16`/`be32`/`be64` (the `__be32` fields
 *   `ipv4Fields` names become `ipv4` addresses), `char` arrays
 *   `cstring(n)`, other byte arrays `bytes(n)`, enums and pointers
 *   integers; bitfields and types without a codec (128-bit integers) become
 *   `bytes(n)` spans with a comment;
 * - `bind(coll)`, returning `{ maps, variables, programs }`: each map in
 *   the class for its type (`hash` → {@link HashMap}, `array` →
 *   {@link ArrayMap}, `percpuArray` → {@link PerCpuArrayMap}, `lpmTrie` →
 *   {@link LpmTrieMap}, `ringbuf` → {@link RingBuffer}, ...; types without
 *   a class stay a `BpfMap`), each global variable as a typed `get()`/`set()`
 *   accessor (constants: `get()` only), each program as its `BpfProgram`.
 *
 * The text is formatted like this repository's code: two-space
 * indentation, double quotes, semicolons.
 *
 * @param object A parsed object (`readCollectionSpec()` from `@dp/core`), or the bytes of an object file.
 * @param options How the header names the object and the command that regenerates the file.
 * @returns The module's source text.
 * @throws {SyntaxError} When the bytes are not a BPF object or cannot be parsed (the cause says why).
 * @throws {TypeError} When the object has no BTF (compile it with `clang -g`), or a field `ipv4Fields` names is not a `__be32`.
 * @throws {RangeError} When an entry of `ipv4Fields` names no field of the object's maps and variables.
 * @example The codec generated for a map's key
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCollectionSpec } from "@dp/core";
 * import { generateBindings } from "@dp/maps";
 *
 * const text = generateBindings(readCollectionSpec("bpf/build/testdata/typed_maps.o"));
 * assert.match(text, /export const PolicyKey: StructCodec<PolicyKey> = struct\(/);
 * assert.match(text, /readonly policy: HashMap<PolicyKey, PolicyEntry>;/);
 * ```
 * @example An IPv4 address field generated as address text
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCollectionSpec } from "@dp/core";
 * import { generateBindings } from "@dp/maps";
 *
 * const text = generateBindings(readCollectionSpec("bpf/build/testdata/typed_maps.o"), { ipv4Fields: ["backend.addr"] });
 * assert.match(text, /addr: ipv4,/);
 * ```
 */
export function generateBindings(object: CollectionSpec | Uint8Array, options: GenerateBindingsOptions = {}): string {
  let spec: CollectionSpec;
  if (object instanceof Uint8Array) {
    const what = options.objectPath ?? "object";
    try {
      spec = parseCollectionSpec(object, { name: objectName(what) });
    } catch (err) {
      throw new SyntaxError(`Cannot generate bindings for ${JSON.stringify(what)}: the object cannot be parsed`, {
        cause: err,
      });
    }
  } else {
    spec = object;
  }
  const objectPath = options.objectPath ?? `${spec.name}.o`;
  if (spec.btf === undefined) {
    throw new TypeError(
      `Cannot generate bindings for ${JSON.stringify(objectPath)}: the object has no BTF (compile it with clang -g)`,
    );
  }
  return new Generator(
    spec,
    spec.btf,
    objectPath,
    options.command ?? `dp-gen ${objectPath}`,
    options.ipv4Fields ?? [],
  ).generate();
}

// --- the generated text as data ------------------------------------------------

/** A TypeScript value type. */
type TsType =
  | { readonly kind: "text"; readonly text: string }
  /** An anonymous struct: an object literal type. */
  | { readonly kind: "object"; readonly fields: readonly TsField[] }
  /** A union: one alternative per member, the others `?: undefined` (see `UnionValue`). */
  | { readonly kind: "union"; readonly fields: readonly TsField[] }
  /** An array of a type that is not plain text. */
  | { readonly kind: "array"; readonly element: TsType };

interface TsField {
  readonly name: string;
  readonly doc: string;
  readonly type: TsType;
}

/** An option value of a struct or union codec: code, or an object literal of code. */
type OptionValue = string | readonly (readonly [string, string])[];

/** A codec expression. */
type Expr =
  | { readonly kind: "text"; readonly text: string }
  /** An array of a struct or union written inline. */
  | { readonly kind: "array"; readonly element: Expr; readonly length: number }
  | {
      readonly kind: "composite";
      readonly fn: "struct" | "union";
      readonly fields: readonly ExprField[];
      readonly options: readonly (readonly [string, OptionValue])[];
    };

interface ExprField {
  readonly name: string;
  readonly expr: Expr;
  /** A comment above the field (bitfields, types without a codec). */
  readonly comment: string | undefined;
}

/** A BTF type as the generated module writes it: the codec, its value type, and the layout the codec computes. */
interface Shape {
  readonly expr: Expr;
  readonly type: TsType;
  readonly size: number;
  readonly align: number;
}

/** A struct or union emitted as a named type and codec. */
interface Named {
  readonly name: string;
  readonly kind: "struct" | "union";
  /** The C spelling: `struct policy_key`, or the typedef name of an anonymous one. */
  readonly cName: string;
  readonly size: number;
  /** The alignment the codec computes. */
  readonly align: number;
  readonly fields: readonly TsField[];
  readonly expr: Expr;
  /** The named types its fields use. */
  readonly deps: readonly Named[];
}

/** A member of a struct or union as the codec lays it out. */
interface LaidOut {
  readonly name: string;
  readonly offset: number;
  readonly shape: Shape;
  readonly comment: string | undefined;
  readonly doc: string;
}

/** One map of bind()'s result. */
interface MapBinding {
  readonly name: string;
  readonly doc: string;
  readonly type: string;
  readonly init: string;
  /** Made on first use and closed by the binding's close(): ring buffers, which map memory. */
  readonly lazy: boolean;
}

type Composite = BtfStruct | BtfUnion;

const SCALAR_TYPES: Readonly<Record<string, string>> = {
  u8: "number",
  u16: "number",
  u32: "number",
  u64: "bigint",
  i8: "number",
  i16: "number",
  i32: "number",
  i64: "bigint",
  be16: "number",
  be32: "number",
  be64: "bigint",
  ipv4: "string",
  bool: "boolean",
  f32: "number",
  f64: "number",
};

/** The kernel's network-order typedefs and the codec for each. */
const BIG_ENDIAN: Readonly<Record<string, string>> = { __be16: "be16", __be32: "be32", __be64: "be64" };

/** Names the generated module imports, declares or uses: types named after C never take them. */
const RESERVED: ReadonlySet<string> = new Set([
  "ArrayMap",
  "ArrayOfMaps",
  "BpfMap",
  "BpfProgram",
  "Codec",
  "Collection",
  "DataView",
  "HashMap",
  "HashOfMaps",
  "JSON",
  "LpmTrieMap",
  "LruHashMap",
  "ObjectBinding",
  "ObjectConstant",
  "ObjectMaps",
  "ObjectPrograms",
  "ObjectVariable",
  "ObjectVariables",
  "PerCpuArrayMap",
  "PerCpuHashMap",
  "ProgArrayMap",
  "QueueMap",
  "RangeError",
  "RingBuffer",
  "SockHash",
  "SockMap",
  "StackMap",
  "StructCodec",
  "TypeError",
  "Uint8Array",
  "UnionCodec",
]);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const MAX_LINE = 120;
const MAX_DEPTH = 32;

// --- rendering -------------------------------------------------------------------

function objectName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base.endsWith(".o") ? base.slice(0, -2) : base;
}

/** The PascalCase name of a C identifier: `policy_key` → `PolicyKey`, `__sk_buff` → `SkBuff`. */
function pascalCase(name: string): string {
  const out = name
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p !== "")
    .map((p) => p.charAt(0).toUpperCase() + p.slice(1))
    .join("");
  if (out === "") return "Anonymous";
  return /^[0-9]/.test(out) ? `T${out}` : out;
}

function propertyKey(name: string): string {
  return IDENTIFIER.test(name) && name !== "__proto__" ? name : JSON.stringify(name);
}

function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function text(t: string): { readonly kind: "text"; readonly text: string } {
  return { kind: "text", text: t };
}

/** Quotes C for a comment: in backticks, with nothing that would end the comment. */
function code(s: string): string {
  return `\`${s.replaceAll("*/", "* /")}\``;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A type on one line: object types as `{ a: number; b: bigint }`. */
function inlineType(t: TsType): string {
  switch (t.kind) {
    case "text":
      return t.text;
    case "object":
      return `{ ${t.fields.map((f) => `${propertyKey(f.name)}: ${inlineType(f.type)}`).join("; ")} }`;
    case "union":
      return t.fields
        .map((f) => {
          const others = t.fields.filter((o) => o !== f).map((o) => `${propertyKey(o.name)}?: undefined`);
          return `{ ${[`${propertyKey(f.name)}: ${inlineType(f.type)}`, ...others].join("; ")} }`;
        })
        .join(" | ");
    case "array":
      return t.element.kind === "union" ? `(${inlineType(t.element)})[]` : `${inlineType(t.element)}[]`;
  }
}

/**
 * A type to follow `key:` on a line of `indent` where `prefix` columns are
 * used: one line when it fits, else an object's members or a union's
 * alternatives one a line (a multi-line union starts with a line break).
 */
function renderType(t: TsType, indent: string, prefix: number): string {
  const line = inlineType(t);
  if (t.kind === "text" || t.kind === "array" || prefix + line.length + 2 <= MAX_LINE) return ` ${line}`;
  const inner = `${indent}  `;
  if (t.kind === "object") {
    const lines = t.fields.map(
      (f) => `${inner}${propertyKey(f.name)}:${renderType(f.type, inner, inner.length + f.name.length + 1)};`,
    );
    return ` {\n${lines.join("\n")}\n${indent}}`;
  }
  const alternatives = t.fields.map((f) => {
    const others = t.fields.filter((o) => o !== f).map((o) => `${propertyKey(o.name)}?: undefined`);
    return `{ ${[`${propertyKey(f.name)}: ${inlineType(f.type)}`, ...others].join("; ")} }`;
  });
  return `\n${alternatives.map((a) => `${inner}| ${a}`).join("\n")}`;
}

function renderOption(v: OptionValue, indent: string, key: string): string {
  if (typeof v === "string") return v;
  const line = `{ ${v.map(([k, x]) => `${k}: ${x}`).join(", ")} }`;
  if (indent.length + key.length + line.length + 3 <= MAX_LINE) return line;
  return `{\n${v.map(([k, x]) => `${indent}  ${k}: ${x},\n`).join("")}${indent}}`;
}

/** A codec expression whose first line continues a line and whose other lines start at `indent`. */
function renderExpr(e: Expr, indent: string): string {
  if (e.kind === "text") return e.text;
  if (e.kind === "array")
    return `array(\n${indent}  ${renderExpr(e.element, `${indent}  `)},\n${indent}  ${e.length},\n${indent})`;
  const inner = `${indent}  `;
  const fieldIndent = `${inner}  `;
  const lines: string[] = [`${e.fn}(`, `${inner}{`];
  for (const f of e.fields) {
    if (f.comment !== undefined) lines.push(`${fieldIndent}// ${f.comment}`);
    lines.push(`${fieldIndent}${propertyKey(f.name)}: ${renderExpr(f.expr, fieldIndent)},`);
  }
  lines.push(`${inner}},`);
  const options = `{ ${e.options.map(([k, v]) => `${k}: ${typeof v === "string" ? v : renderOption(v, "", "")}`).join(", ")} }`;
  if (inner.length + options.length + 1 <= MAX_LINE) {
    lines.push(`${inner}${options},`);
  } else {
    lines.push(`${inner}{`);
    for (const [k, v] of e.options) lines.push(`${fieldIndent}${k}: ${renderOption(v, fieldIndent, k)},`);
    lines.push(`${inner}},`);
  }
  lines.push(`${indent})`);
  return lines.join("\n");
}

function importLine(keyword: string, names: readonly string[], from: string): string {
  const line = `${keyword} { ${names.join(", ")} } from ${JSON.stringify(from)};`;
  if (line.length <= MAX_LINE) return line;
  return `${keyword} {\n${names.map((n) => `  ${n},\n`).join("")}} from ${JSON.stringify(from)};`;
}

/** An interface of documented members, or an empty record type when there are none (an empty interface would accept anything). */
function declareObject(name: string, members: readonly (readonly [string, string])[]): string[] {
  if (members.length === 0) return [`export type ${name} = Record<string, never>;`];
  return [`export interface ${name} {`, ...members.flatMap(([doc, decl]) => [`  ${doc}`, `  ${decl}`]), "}"];
}

/** A property of bind()'s result. */
function objectLiteral(name: string, entries: readonly string[]): string[] {
  if (entries.length === 0) return [`    ${name}: {},`];
  return [`    ${name}: {`, ...entries.map((e) => `      ${e}`), "    },"];
}

function unique(names: Set<string>, base: string): string {
  let name = base;
  for (let i = 2; names.has(name); i++) name = `${base}_${i}`;
  names.add(name);
  return name;
}

// --- the generator ---------------------------------------------------------------

class Generator {
  readonly #spec: CollectionSpec;
  readonly #btf: Btf;
  readonly #objectPath: string;
  readonly #command: string;
  /** Named types by BTF type id. */
  readonly #named = new Map<number, Named>();
  /** Type names taken, so two C types never share one. */
  readonly #taken = new Set<string>(RESERVED);
  /** Named types being built: BTF could describe a struct that contains itself. */
  readonly #building = new Set<number>();
  readonly #imports = new Set<string>();
  /** The named types the type being built uses. */
  #deps: Named[] = [];
  /** The `ipv4Fields` entries, and the ones that matched a field. */
  readonly #ipv4Fields: ReadonlySet<string>;
  readonly #ipv4Used = new Set<string>();

  constructor(spec: CollectionSpec, btf: Btf, objectPath: string, command: string, ipv4Fields: readonly string[]) {
    this.#spec = spec;
    this.#btf = btf;
    this.#objectPath = objectPath;
    this.#command = command;
    this.#ipv4Fields = new Set(ipv4Fields);
  }

  generate(): string {
    const text = this.#generate();
    const unused = [...this.#ipv4Fields].filter((f) => !this.#ipv4Used.has(f));
    if (unused.length > 0) {
      throw new RangeError(
        `Cannot generate bindings for ${JSON.stringify(this.#objectPath)}: ipv4Fields names ${unused.map((f) => JSON.stringify(f)).join(", ")}, ` +
          "which no field of its maps and variables has (give a member name, struct.member, map.key or map.value)",
      );
    }
    return text;
  }

  /**
   * The shape of a field of type `id`: `ipv4` when `ipv4Fields` lists one
   * of its names (`names`, most specific first), else what `shape` makes.
   */
  #fieldShape(id: number, names: readonly string[], cDecl: string, shape: () => Shape): Shape {
    const listed = names.filter((n) => this.#ipv4Fields.has(n));
    if (listed.length === 0) return shape();
    for (const n of listed) this.#ipv4Used.add(n);
    if (!this.#isBe32(id)) {
      throw new TypeError(
        `Cannot generate bindings for ${JSON.stringify(this.#objectPath)}: ipv4Fields names ${JSON.stringify(listed[0])}, but ${code(cDecl)} is not a __be32`,
      );
    }
    return this.#scalar("ipv4", 4);
  }

  /** Whether a type is the `__be32` typedef (through qualifiers and other typedefs) of a 4-byte integer. */
  #isBe32(id: number): boolean {
    let t = this.#btf.typeById(id);
    for (let depth = 0; t !== undefined && depth < MAX_DEPTH; depth++) {
      if (t.kind === "typedef" && t.name === "__be32") {
        const target = this.#btf.resolve(t.typeId);
        return target.kind === "int" && target.size === 4;
      }
      if (
        t.kind !== "typedef" &&
        t.kind !== "const" &&
        t.kind !== "volatile" &&
        t.kind !== "restrict" &&
        t.kind !== "typeTag"
      )
        return false;
      t = this.#btf.typeById(t.typeId);
    }
    return false;
  }

  #generate(): string {
    const maps = [...this.#spec.maps.values()]
      .filter((m) => m.kind === "map")
      .sort((a, b) => compare(a.name, b.name))
      .map((m) => this.#bindMap(m));
    const variables = [...this.#spec.variables.values()]
      .sort((a, b) => compare(a.name, b.name))
      .map((v) => ({ v, shape: this.#topShape(v.typeId, pascalCase(v.name), v.size) }));
    const programs = [...this.#spec.programs.values()].sort((a, b) => compare(a.name, b.name));
    const locals = new Set(["close", "coll", "opened", "variable"]);
    const lazyMaps = maps.filter((m) => m.lazy).map((m) => [m, unique(locals, `ring${pascalCase(m.name)}`)] as const);

    const body: string[] = [];
    for (const named of this.#ordered()) body.push("", ...this.#declare(named));

    body.push("", "/** The object's maps, each in the class for its type. */");
    body.push(
      ...declareObject(
        "ObjectMaps",
        maps.map((m) => [`/** ${m.doc} */`, `readonly ${propertyKey(m.name)}: ${m.type};`]),
      ),
    );

    if (variables.length > 0) {
      this.#imports.add("type Codec");
      body.push(
        "",
        "/** A global variable of the object, read and written through its codec. */",
        "export interface ObjectVariable<T> {",
        "  /** Reads the current value from the kernel. */",
        "  get(): T;",
        "  /** Writes a value: the data section is read, changed and written back. */",
        "  set(value: T): void;",
        "}",
        "",
        "/** A constant of the object (`.rodata`): read only once loaded. */",
        "export interface ObjectConstant<T> {",
        "  /** Reads the value from the kernel. */",
        "  get(): T;",
        "}",
      );
    }
    body.push("", "/** The object's global variables. */");
    body.push(
      ...declareObject(
        "ObjectVariables",
        variables.map(({ v, shape }) => {
          const wrapper = v.readOnly ? "ObjectConstant" : "ObjectVariable";
          const decl = `readonly ${propertyKey(v.name)}: ${wrapper}<${inlineType(shape.type)}>;`;
          return [`/** ${code(this.#cDecl(v.typeId, v.name))} in ${code(v.section)}. */`, decl];
        }),
      ),
    );

    body.push("", "/** The object's programs. */");
    body.push(
      ...declareObject(
        "ObjectPrograms",
        programs.map((p) => [
          `/** ${code(p.name)} in ${code(`SEC("${p.sectionName}")`)}. */`,
          `readonly ${propertyKey(p.name)}: BpfProgram;`,
        ]),
      ),
    );

    body.push(
      "",
      "/** What {@link bind} returns. */",
      "export interface ObjectBinding {",
      "  /** The maps. */",
      "  readonly maps: ObjectMaps;",
      "  /** The global variables. */",
      "  readonly variables: ObjectVariables;",
      "  /** The programs. */",
      "  readonly programs: ObjectPrograms;",
      "  /** Closes the ring buffers the binding mapped (their maps are the collection's). Calling it again does nothing. */",
      "  close(): void;",
      "  /** Same as {@link ObjectBinding.close}. */",
      "  [Symbol.dispose](): void;",
      "}",
    );

    if (variables.length > 0) body.push("", ...VARIABLE_HELPER);

    body.push(
      "",
      "/**",
      ` * Wraps a collection loaded from ${code(this.#objectPath)} in typed maps and accessors.`,
      " * The collection keeps owning the maps and programs: close it when done, after",
      " * closing the binding (which unmaps the ring buffers it mapped).",
      " *",
      " * @param coll The loaded collection.",
      " * @returns The typed maps, variables and programs.",
      " * @throws {RangeError} When the collection lacks a map, variable or program of the object.",
      " * @throws {TypeError} When a map's type or sizes differ from the object's.",
      " */",
      "export function bind(coll: Collection): ObjectBinding {",
      "  const opened: { close(): void }[] = [];",
      ...lazyMaps.map(([m, local]) => `  let ${local}: ${m.type} | undefined;`),
      "  function close(): void {",
      "    for (const o of opened.splice(0).reverse()) o.close();",
      "  }",
      "  return {",
      ...objectLiteral(
        "maps",
        maps.flatMap((m) => {
          const local = lazyMaps.find(([l]) => l === m)?.[1];
          if (local === undefined) return [`${propertyKey(m.name)}: ${m.init},`];
          return [
            `get ${propertyKey(m.name)}(): ${m.type} {`,
            `  if (${local} === undefined) {`,
            `    ${local} = ${m.init};`,
            `    opened.push(${local});`,
            "  }",
            `  return ${local};`,
            "},",
          ];
        }),
      ),
      ...objectLiteral(
        "variables",
        variables.map(
          ({ v, shape }) =>
            `${propertyKey(v.name)}: variable(coll, ${JSON.stringify(v.name)}, ${renderExpr(shape.expr, "      ")}),`,
        ),
      ),
      ...objectLiteral(
        "programs",
        programs.map((p) => `${propertyKey(p.name)}: coll.program(${JSON.stringify(p.name)}),`),
      ),
      "    close,",
      "    [Symbol.dispose]: close,",
      "  };",
      "}",
      "",
    );

    const coreTypes = ["Collection"];
    if (programs.length > 0) coreTypes.push("BpfProgram");
    if (maps.some((m) => m.type === "BpfMap")) coreTypes.push("BpfMap");
    const imports = [...this.#imports].sort((a, b) => compare(a.replace(/^type /, ""), b.replace(/^type /, "")));
    return [
      `// Generated by dp-gen from ${this.#objectPath}: do not edit.`,
      `// Regenerate with: ${this.#command}`,
      "",
      importLine("import type", coreTypes.sort(compare), "@dp/core"),
      ...(imports.length > 0 ? [importLine("import", imports, "@dp/maps")] : []),
      ...body,
    ].join("\n");
  }

  /** The named types, each after the ones it uses, otherwise by name. */
  #ordered(): Named[] {
    const out: Named[] = [];
    const seen = new Set<Named>();
    const visit = (n: Named): void => {
      if (seen.has(n)) return;
      seen.add(n);
      for (const d of [...n.deps].sort((a, b) => compare(a.name, b.name))) visit(d);
      out.push(n);
    };
    for (const n of [...this.#named.values()].sort((a, b) => compare(a.name, b.name))) visit(n);
    return out;
  }

  #declare(n: Named): string[] {
    const lines = [`/** ${code(n.cName)}: ${n.size} bytes. */`];
    if (n.kind === "struct") {
      lines.push(`export interface ${n.name} {`);
      for (const f of n.fields)
        lines.push(`  /** ${f.doc} */`, `  ${propertyKey(f.name)}:${renderType(f.type, "  ", f.name.length + 3)};`);
      lines.push("}");
    } else {
      lines.push(`export type ${n.name} =${renderType({ kind: "union", fields: n.fields }, "", n.name.length + 14)};`);
    }
    const codecType = this.#use(n.kind === "struct" ? "type StructCodec" : "type UnionCodec").replace(/^type /, "");
    lines.push(
      "",
      `/** The codec of {@link ${n.name}}. */`,
      `export const ${n.name}: ${codecType}<${n.name}> = ${renderExpr(n.expr, "")};`,
    );
    return lines;
  }

  #use(name: string): string {
    this.#imports.add(name);
    return name;
  }

  #uniqueName(base: string, suffix: string): string {
    let name = base;
    if (this.#taken.has(name)) name = `${base}${suffix}`;
    for (let i = 2; this.#taken.has(name); i++) name = `${base}${suffix}${i}`;
    this.#taken.add(name);
    return name;
  }

  // --- C spellings for comments ---

  /** An array type's element (arrays of arrays followed) and its dimensions as C writes them. */
  #arrayParts(id: number): { base: number; dims: string } {
    let dims = "";
    let base = id;
    for (
      let t = this.#btf.typeById(id), depth = 0;
      t?.kind === "array" && depth < MAX_DEPTH;
      t = this.#btf.typeById(base), depth++
    ) {
      dims += `[${t.length}]`;
      base = t.elementTypeId;
    }
    return { base, dims };
  }

  /** A type as C names it: `__be16`, `struct nested`, `const volatile __u32`. */
  #cName(id: number, depth = 0): string {
    const t = this.#btf.typeById(id);
    if (t === undefined || depth > MAX_DEPTH) return `type ${id}`;
    switch (t.kind) {
      case "struct":
      case "union":
        return t.name === "" ? `${t.kind} (anonymous)` : `${t.kind} ${t.name}`;
      case "enum":
      case "enum64":
        return t.name === "" ? "enum (anonymous)" : `enum ${t.name}`;
      case "fwd":
        return `${t.union ? "union" : "struct"} ${t.name}`;
      case "array": {
        const { base, dims } = this.#arrayParts(id);
        return `${this.#cName(base, depth + 1)}${dims}`;
      }
      case "ptr": {
        const target = this.#cName(t.typeId, depth + 1);
        return `${target}${target.endsWith("*") ? "" : " "}*`;
      }
      case "const":
      case "volatile":
      case "restrict":
        return `${t.kind} ${this.#cName(t.typeId, depth + 1)}`;
      case "typeTag":
        return this.#cName(t.typeId, depth + 1);
      case "void":
        return "void";
      default:
        return t.name;
    }
  }

  /** A declaration as C writes it: `__u8 mac[6]`, `void *ptr`. */
  #cDecl(id: number, name: string): string {
    const { base, dims } = this.#arrayParts(id);
    const type = this.#cName(base);
    return `${type}${type.endsWith("*") ? "" : " "}${name}${dims}`;
  }

  // --- shapes ---

  #bytes(size: number): Shape {
    return { expr: text(`${this.#use("bytes")}(${size})`), type: text("Uint8Array"), size, align: 1 };
  }

  #scalar(name: string, size: number): Shape {
    return { expr: text(this.#use(name)), type: text(SCALAR_TYPES[name] ?? "never"), size, align: size };
  }

  /**
   * The shape of a map's key or value or a variable: an anonymous struct or
   * union there is named `name`. A type whose size differs from what the
   * map or section says (BTF that does not describe it) is written as
   * `bytes(size)`.
   */
  #topShape(id: number, name: string, size: number): Shape {
    const shape = this.#shape(id, name);
    return shape.size === size ? shape : this.#bytes(size);
  }

  /**
   * The shape of a type. Named structs and unions (and anonymous ones a
   * typedef names, or `topName` names) become named types; other
   * anonymous ones are written inline.
   */
  #shape(id: number, topName?: string): Shape {
    let t = this.#btf.typeById(id);
    let typedef: string | undefined;
    for (let depth = 0; t !== undefined && depth < MAX_DEPTH; depth++) {
      if (t.kind === "typedef") {
        const order = BIG_ENDIAN[t.name];
        if (order !== undefined) {
          const target = this.#btf.resolve(t.typeId);
          if (target.kind === "int" && `be${target.size * 8}` === order) return this.#scalar(order, target.size);
        }
        typedef ??= t.name;
        t = this.#btf.typeById(t.typeId);
      } else if (t.kind === "const" || t.kind === "volatile" || t.kind === "restrict" || t.kind === "typeTag") {
        t = this.#btf.typeById(t.typeId);
      } else {
        break;
      }
    }
    if (t === undefined)
      throw new RangeError(
        `Invalid BTF type id ${id}: it does not exist or is a chain of more than ${MAX_DEPTH} typedefs`,
      );
    switch (t.kind) {
      case "int":
        if (t.bool && t.size === 1 && t.bits === 8) return this.#scalar("bool", 1);
        if (t.bitOffset !== 0 || t.bits !== t.size * 8 || ![1, 2, 4, 8].includes(t.size)) return this.#bytes(t.size);
        return this.#scalar(`${t.signed ? "i" : "u"}${t.size * 8}`, t.size);
      case "enum":
      case "enum64":
        if (![1, 2, 4, 8].includes(t.size)) return this.#bytes(t.size);
        return this.#scalar(`${t.signed ? "i" : "u"}${t.size * 8}`, t.size);
      case "float":
        return t.size === 4 || t.size === 8 ? this.#scalar(`f${t.size * 8}`, t.size) : this.#bytes(t.size);
      case "ptr":
        return this.#scalar("u64", 8);
      case "array": {
        const elem = this.#btf.resolve(t.elementTypeId);
        if (elem.kind === "int" && elem.size === 1 && elem.bits === 8 && !elem.bool) {
          // `char` arrays hold text, other byte arrays bytes.
          if (elem.name === "char" || elem.char) {
            return {
              expr: text(`${this.#use("cstring")}(${t.length})`),
              type: text("string"),
              size: t.length,
              align: 1,
            };
          }
          return this.#bytes(t.length);
        }
        const inner = this.#shape(t.elementTypeId);
        this.#use("array");
        const size = inner.size * t.length;
        if (inner.expr.kind !== "text" || inner.type.kind !== "text") {
          return {
            expr: { kind: "array", element: inner.expr, length: t.length },
            type: { kind: "array", element: inner.type },
            size,
            align: inner.align,
          };
        }
        return {
          expr: text(`array(${inner.expr.text}, ${t.length})`),
          type: text(`${inner.type.text}[]`),
          size,
          align: inner.align,
        };
      }
      case "struct":
      case "union": {
        const cName = t.name !== "" ? `${t.kind} ${t.name}` : typedef;
        const name = t.name !== "" ? t.name : (typedef ?? topName);
        if (name === undefined) return this.#composite(t)?.shape ?? this.#bytes(t.size);
        const named = this.#namedType(t, pascalCase(name), cName ?? `${t.kind} (anonymous)`);
        if (named === undefined) return this.#bytes(t.size);
        this.#deps.push(named);
        return { expr: text(named.name), type: text(named.name), size: named.size, align: named.align };
      }
      default:
        // void, functions, forward declarations: nothing to lay out.
        return this.#bytes(sizeOrZero(this.#btf, t.id));
    }
  }

  #namedType(t: Composite, base: string, cName: string): Named | undefined {
    const existing = this.#named.get(t.id);
    if (existing !== undefined) return existing;
    if (this.#building.has(t.id)) return undefined;
    this.#building.add(t.id);
    const outer = this.#deps;
    this.#deps = [];
    try {
      const composite = this.#composite(t, cName);
      if (composite === undefined) return undefined;
      const name = this.#uniqueName(base, t.kind === "struct" ? "Struct" : "Union");
      const { expr, align } = composite.shape;
      const named: Named = {
        name,
        kind: t.kind,
        cName,
        size: t.size,
        align,
        fields: composite.fields,
        expr,
        deps: this.#deps,
      };
      this.#named.set(t.id, named);
      return named;
    } finally {
      this.#deps = outer;
      this.#building.delete(t.id);
    }
  }

  /**
   * A struct or union as a codec expression and its fields. The layout is
   * the one `struct()` computes from the options chosen here: the natural
   * one when it matches the BTF, else `packed` when that matches, else
   * pinned offsets where the BTF differs (a pin on the last field when only
   * the trailing padding differs). `undefined` when a union's size cannot
   * be reproduced (it is then kept as bytes).
   */
  #composite(t: Composite, cName?: string): { shape: Shape; fields: TsField[] } | undefined {
    const members = this.#layoutMembers(t, cName);
    const fields = members.map((m): TsField => ({ name: m.name, doc: m.doc, type: m.shape.type }));
    const exprFields = members.map((m): ExprField => ({ name: m.name, expr: m.shape.expr, comment: m.comment }));
    const options: [string, OptionValue][] = [];
    if (cName !== undefined) options.push(["name", JSON.stringify(cName)]);
    options.push(["size", `${t.size}`]);
    let align = 1;
    for (const m of members) align = Math.max(align, m.shape.align);

    if (t.kind === "union") {
      const max = Math.max(0, ...members.map((m) => m.shape.size));
      if (members.length === 0 || members.some((m) => m.offset !== 0) || alignUp(max, align) !== t.size)
        return undefined;
    } else {
      const pins: (readonly [string, string])[] = [];
      let end = 0;
      for (const m of members) {
        if (alignUp(end, m.shape.align) !== m.offset) pins.push([propertyKey(m.name), `${m.offset}`]);
        end = m.offset + m.shape.size;
      }
      let packedEnd = 0;
      const packedFits = members.every((m) => {
        const fits = m.offset === packedEnd;
        packedEnd += m.shape.size;
        return fits;
      });
      if (pins.length === 0 && alignUp(end, align) === t.size) {
        // The natural layout.
      } else if (packedFits && packedEnd === t.size) {
        options.push(["packed", "true"]);
        align = 1;
      } else {
        const last = members[members.length - 1];
        if (last === undefined) return undefined;
        if (pins.length === 0) pins.push([propertyKey(last.name), `${last.offset}`]);
        options.push(["offsets", pins]);
      }
    }
    this.#use(t.kind);
    return {
      shape: {
        expr: { kind: "composite", fn: t.kind, fields: exprFields, options },
        type: { kind: t.kind === "struct" ? "object" : "union", fields },
        size: t.size,
        align,
      },
      fields,
    };
  }

  /**
   * The members of a struct or union as the codec lays them out: anonymous
   * struct members of a struct flattened into it (C reaches their fields
   * directly), anonymous unions named `anonymous0`, `anonymous1`, ...,
   * each run of bitfields (and members sharing their bytes) one byte span,
   * zero-sized members left out.
   */
  #layoutMembers(t: Composite, cName: string | undefined): LaidOut[] {
    // The struct's name as `ipv4Fields` qualifies members: the C name, or the typedef naming an anonymous one.
    const owner = t.name !== "" ? t.name : cName?.includes(" ") === false ? cName : undefined;
    const out: LaidOut[] = [];
    const names = new Set<string>();
    let anonymous = 0;
    const members = this.#flatten(t, 0);
    for (let i = 0; i < members.length; i++) {
      const m = members[i] as FlatMember;
      if (this.#isBitfield(m.member)) {
        const run = [m];
        let start = Math.floor(m.bitOffset / 8);
        let end = Math.ceil((m.bitOffset + this.#bitsOf(m.member)) / 8);
        for (let next = members[i + 1]; t.kind === "struct" && next !== undefined; next = members[i + 1]) {
          const nextStart = Math.floor(next.bitOffset / 8);
          if (!this.#isBitfield(next.member) && nextStart >= end) break;
          run.push(next);
          start = Math.min(start, nextStart);
          end = Math.max(end, Math.ceil((next.bitOffset + this.#bitsOf(next.member)) / 8));
          i++;
        }
        const first = run.find((r) => r.member.name !== "");
        const name = unique(names, `bits_${first?.member.name ?? `${start}`}`);
        const parts = run.map(
          (r) =>
            `${r.member.name === "" ? "(padding)" : r.member.name} at bit ${r.bitOffset - start * 8} (${this.#bitsOf(r.member)} bits)`,
        );
        const comment = `Bitfields: ${parts.join(", ")}.`;
        out.push({ name, offset: start, shape: this.#bytes(end - start), comment, doc: `${comment} Offset ${start}.` });
        continue;
      }
      const offset = m.bitOffset / 8;
      const member = m.member;
      const listed =
        member.name === "" ? [] : [...(owner === undefined ? [] : [`${owner}.${member.name}`]), member.name];
      const shape = this.#fieldShape(member.typeId, listed, this.#cDecl(member.typeId, member.name), () =>
        this.#shape(member.typeId),
      );
      if (shape.size === 0) continue;
      const name = unique(names, m.member.name === "" ? `anonymous${anonymous++}` : m.member.name);
      const cType = this.#cName(m.member.typeId);
      let doc =
        m.member.name === ""
          ? `An anonymous ${code(cType.replace(/ \(anonymous\)$/, ""))} at offset ${offset}.`
          : `${code(this.#cDecl(m.member.typeId, m.member.name))} at offset ${offset}.`;
      let comment: string | undefined;
      if (shape.expr.kind === "text" && shape.expr.text.startsWith("bytes(") && !this.#isByteArray(m.member.typeId)) {
        comment = `${cType}: no codec for this type, kept as bytes.`;
        doc = `${doc} No codec for this type: the raw bytes.`;
      }
      out.push({ name, offset, shape, comment, doc });
    }
    return out;
  }

  /** The members of a struct or union, with an anonymous struct member of a struct replaced by its members (bit offsets from `t`). */
  #flatten(t: Composite, bitBase: number): FlatMember[] {
    const out: FlatMember[] = [];
    for (const member of t.members) {
      const bitOffset = bitBase + member.bitOffset;
      if (member.name === "" && t.kind === "struct") {
        const inner = this.#btf.resolve(member.typeId);
        if (inner.kind === "struct" && inner.name === "" && !this.#isBitfield(member)) {
          out.push(...this.#flatten(inner, bitOffset));
          continue;
        }
      }
      out.push({ member, bitOffset });
    }
    return out;
  }

  #isBitfield(m: BtfMember): boolean {
    if (m.bitSize !== 0 || m.bitOffset % 8 !== 0) return true;
    const t = this.#btf.resolve(m.typeId);
    return t.kind === "int" && (t.bitOffset !== 0 || t.bits !== t.size * 8);
  }

  #bitsOf(m: BtfMember): number {
    if (m.bitSize !== 0) return m.bitSize;
    const t = this.#btf.resolve(m.typeId);
    return t.kind === "int" ? t.bits : sizeOrZero(this.#btf, m.typeId) * 8;
  }

  #isByteArray(id: number): boolean {
    const t = this.#btf.resolve(id);
    if (t.kind !== "array") return false;
    const e = this.#btf.resolve(t.elementTypeId);
    return e.kind === "int" && e.size === 1;
  }

  // --- maps ---

  #bindMap(m: CollectionMapSpec): MapBinding {
    const type = m.spec.type;
    const key = (): Shape => {
      const id = m.keyTypeId;
      if (id === undefined) return this.#bytes(m.spec.keySize);
      return this.#fieldShape(id, [`${m.name}.key`], this.#cDecl(id, "key"), () =>
        this.#topShape(id, `${pascalCase(m.name)}Key`, m.spec.keySize),
      );
    };
    const value = (): Shape => {
      const id = m.valueTypeId;
      if (id === undefined) return this.#bytes(m.spec.valueSize);
      return this.#fieldShape(id, [`${m.name}.value`], this.#cDecl(id, "value"), () =>
        this.#topShape(id, `${pascalCase(m.name)}Value`, m.spec.valueSize),
      );
    };
    const flags = m.spec.flags ?? 0;
    const unit = type === "ringbuf" || type === "userRingbuf" ? "bytes" : m.spec.maxEntries === 1 ? "entry" : "entries";
    const doc = [
      `${code(m.name)}: ${type}, ${m.spec.maxEntries} ${unit}`,
      ...(flags !== 0 ? [`flags 0x${flags.toString(16)}`] : []),
      ...(m.keyTypeId !== undefined ? [`key ${code(this.#cName(m.keyTypeId))}`] : []),
      ...(m.valueTypeId !== undefined ? [`value ${code(this.#cName(m.valueTypeId))}`] : []),
    ].join(", ");
    const bind = (cls: string, args: readonly Shape[]): MapBinding => {
      this.#use(cls);
      const typeArgs = args.length === 0 ? "" : `<${args.map((a) => inlineType(a.type)).join(", ")}>`;
      const init = `new ${cls}(${[`coll.map(${JSON.stringify(m.name)})`, ...args.map((a) => renderExpr(a.expr, "      "))].join(", ")})`;
      const lazy = cls === "RingBuffer";
      return {
        name: m.name,
        doc: `${doc}.${lazy ? " Mapped on first use; {@link ObjectBinding.close} unmaps it." : ""}`,
        type: `${cls}${typeArgs}`,
        init,
        lazy,
      };
    };
    const raw = (text: string): MapBinding => ({
      name: m.name,
      doc: text,
      type: "BpfMap",
      init: `coll.map(${JSON.stringify(m.name)})`,
      lazy: false,
    });
    switch (type) {
      case "hash":
        return bind("HashMap", [key(), value()]);
      case "lruHash":
        return bind("LruHashMap", [key(), value()]);
      case "percpuHash":
      case "lruPercpuHash":
        return bind("PerCpuHashMap", [key(), value()]);
      case "array":
        return bind("ArrayMap", [value()]);
      case "percpuArray":
        return bind("PerCpuArrayMap", [value()]);
      case "lpmTrie":
        // LpmTrieMap keys are `{ __u32 prefixlen; __u8 addr[4 or 16]; }`.
        if (m.spec.keySize === 8 || m.spec.keySize === 20) return bind("LpmTrieMap", [value()]);
        return raw(`${doc}. Its keys are not \`{ __u32 prefixlen; __u8 addr[4 or 16]; }\`: the raw map.`);
      case "queue":
        return bind("QueueMap", [value()]);
      case "stack":
        return bind("StackMap", [value()]);
      case "ringbuf":
        // Records have the size of the value type the object names, if any; the map's value size is 0.
        return bind(
          "RingBuffer",
          m.valueTypeId === undefined ? [] : [this.#shape(m.valueTypeId, `${pascalCase(m.name)}Record`)],
        );
      case "progArray":
        return bind("ProgArrayMap", []);
      case "arrayOfMaps":
        return bind("ArrayOfMaps", []);
      case "hashOfMaps":
        return bind("HashOfMaps", [key()]);
      case "sockmap":
        return bind("SockMap", []);
      case "sockhash":
        return bind("SockHash", [key()]);
      default:
        return raw(`${doc}. No typed class for this map type: the raw map.`);
    }
  }
}

interface FlatMember {
  readonly member: BtfMember;
  /** The bit offset from the start of the struct being laid out. */
  readonly bitOffset: number;
}

function sizeOrZero(btf: Btf, id: number): number {
  try {
    return btf.sizeOf(id);
  } catch {
    return 0;
  }
}

/** The helper the generated module carries for its variables: a codec over the variable's bytes in its data map. */
const VARIABLE_HELPER: readonly string[] = [
  "function variable<T>(coll: Collection, name: string, codec: Codec<T>): ObjectVariable<T> {",
  "  const { spec } = coll.variable(name);",
  "  if (spec.size !== codec.size) {",
  "    throw new TypeError(`Cannot bind variable ${JSON.stringify(name)}: it has ${spec.size} bytes, ${codec.name} has ${codec.size}`);",
  "  }",
  "  const map = coll.map(spec.section);",
  "  const key = new Uint8Array(4);",
  "  function read(): { bytes: Uint8Array; view: DataView } {",
  "    const bytes = map.get(key);",
  "    if (bytes === undefined) throw new RangeError(`Cannot read variable ${JSON.stringify(name)}: ${spec.section} has no value`);",
  "    return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength) };",
  "  }",
  "  return {",
  "    get(): T {",
  "      return codec.decode(read().view, spec.offset);",
  "    },",
  "    set(value: T): void {",
  "      if (spec.readOnly) throw new TypeError(`Cannot set variable ${JSON.stringify(name)}: it is a constant in ${spec.section}`);",
  "      const { bytes, view } = read();",
  "      codec.encode(value, view, spec.offset, name);",
  "      map.set(key, bytes);",
  "    },",
  "  };",
  "}",
];
