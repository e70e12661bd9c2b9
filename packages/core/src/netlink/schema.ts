import {
  attrBe16,
  attrBe32,
  attrS32,
  attrString,
  attrU16,
  attrU32,
  attrU64,
  attrU8,
  type NetlinkAttribute,
  type NetlinkWriter,
  parseNetlinkAttributes,
} from "./codec.ts";
import { formatIp, formatMac, parseIp, parseMac } from "../network/net_addr.ts";

/** How an attribute's payload is encoded. */
export type AttributeKind =
  "u8" | "u16" | "u32" | "s32" | "u64" | "be16" | "be32" | "string" | "bytes" | "flag" | "ip" | "mac";

/** One field of an {@link AttributeSchema}: a scalar, or nested attributes with their own schema. */
export type AttributeField =
  readonly [type: number, kind: AttributeKind] | readonly [type: number, kind: "nested", schema: AttributeSchema];

/** Names for attribute types and how their payloads are encoded. */
export interface AttributeSchema {
  readonly [name: string]: AttributeField;
}

/** The TypeScript value of one kind. */
export type AttributeValue<K> = K extends "u64"
  ? bigint
  : K extends "string" | "ip" | "mac"
    ? string
    : K extends "flag"
      ? boolean
      : K extends "bytes"
        ? Uint8Array
        : number;

/** The values a schema decodes to: every field optional. */
export type AttributeValues<S extends AttributeSchema> = {
  -readonly [K in keyof S]?: S[K] extends readonly [number, "nested", infer N extends AttributeSchema]
    ? AttributeValues<N>
    : AttributeValue<S[K][1]>;
};

/** What {@link decodeAttributes} returns. */
export interface DecodedAttributes<S extends AttributeSchema> {
  /** The attributes the schema names. */
  readonly values: AttributeValues<S>;
  /** Attributes the schema does not name, kept as they came (copied). */
  readonly unknown: readonly NetlinkAttribute[];
}

function decodeValue(kind: AttributeKind, data: Uint8Array): unknown {
  switch (kind) {
    case "u8":
      return attrU8(data);
    case "u16":
      return attrU16(data);
    case "u32":
      return attrU32(data);
    case "s32":
      return attrS32(data);
    case "u64":
      return attrU64(data);
    case "be16":
      return attrBe16(data);
    case "be32":
      return attrBe32(data);
    case "string":
      return attrString(data);
    case "bytes":
      return data.slice();
    case "flag":
      return true;
    case "ip":
      return formatIp(data);
    case "mac":
      return formatMac(data);
  }
}

/**
 * Decodes attributes with a schema; attributes it does not name are kept.
 *
 * @typeParam S The schema.
 * @param schema Names, types and kinds.
 * @param data Attribute bytes.
 * @returns The named values and the unknown attributes.
 * @throws {SyntaxError} When the attributes are malformed or a payload is too short for its kind.
 * @example Decoding with a schema
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAttributes, NetlinkWriter } from "@dp/core";
 *
 * const schema = { name: [3, "string"], mtu: [4, "u32"] } as const;
 * const w = new NetlinkWriter();
 * w.attrString(3, "eth0").attrU32(4, 1500).attrU8(99, 1);
 * const { values, unknown } = decodeAttributes(schema, w.bytes());
 * assert.deepEqual(values, { name: "eth0", mtu: 1500 });
 * assert.equal(unknown[0]?.type, 99);
 * ```
 */
export function decodeAttributes<S extends AttributeSchema>(schema: S, data: Uint8Array): DecodedAttributes<S> {
  const byType = new Map<number, [string, AttributeField]>();
  for (const [name, field] of Object.entries(schema)) byType.set(field[0], [name, field]);
  const values: Record<string, unknown> = {};
  const unknown: NetlinkAttribute[] = [];
  for (const a of parseNetlinkAttributes(data)) {
    const hit = byType.get(a.type);
    if (hit === undefined) {
      unknown.push({ type: a.type, nested: a.nested, data: a.data.slice() });
      continue;
    }
    const [name, field] = hit;
    if (field[1] === "nested") {
      values[name] = decodeAttributes(field[2], a.data).values;
      continue;
    }
    const need = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8, be16: 2, be32: 4 }[field[1] as string] ?? 0;
    if (a.data.length < need) {
      throw new SyntaxError(
        `Invalid netlink attribute "${name}" (type ${a.type}): ${a.data.length} bytes, need ${need}`,
      );
    }
    try {
      values[name] = decodeValue(field[1], a.data);
    } catch (err) {
      throw new SyntaxError(`Invalid netlink attribute "${name}" (type ${a.type})`, { cause: err });
    }
  }
  return { values: values as AttributeValues<S>, unknown };
}

/**
 * Encodes values with a schema, in the schema's field order; undefined
 * values (and `false` flags) are left out.
 *
 * @typeParam S The schema.
 * @param w Where to write the attributes.
 * @param schema Names, types and kinds.
 * @param values What to write.
 * @throws {SyntaxError} When an "ip" or "mac" value is malformed.
 * @throws {TypeError} When a value has the wrong type for its kind.
 * @example Encoding with a schema
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeAttributes, encodeAttributes, NetlinkWriter } from "@dp/core";
 *
 * const schema = { dst: [1, "ip"], oif: [4, "u32"] } as const;
 * const w = new NetlinkWriter();
 * encodeAttributes(w, schema, { dst: "10.0.0.0", oif: 2 });
 * assert.deepEqual(decodeAttributes(schema, w.bytes()).values, { dst: "10.0.0.0", oif: 2 });
 * ```
 */
export function encodeAttributes<S extends AttributeSchema>(
  w: NetlinkWriter,
  schema: S,
  values: AttributeValues<S>,
): void {
  const record = values as Record<string, unknown>;
  for (const [name, field] of Object.entries(schema)) {
    const v = record[name];
    if (v === undefined) continue;
    const [type, kind] = field;
    const bad = (want: string): never => {
      throw new TypeError(`Invalid value for netlink attribute "${name}": expected ${want}, got ${typeof v}`);
    };
    if (kind === "nested") {
      if (typeof v !== "object" || v === null) bad("an object");
      w.nest(type, () => encodeAttributes(w, field[2], v as AttributeValues<AttributeSchema>));
      continue;
    }
    switch (kind) {
      case "u8":
      case "u16":
      case "u32":
      case "s32":
      case "be16":
      case "be32": {
        if (typeof v !== "number" || !Number.isInteger(v)) bad("an integer");
        const n = v as number;
        if (kind === "u8") w.attrU8(type, n);
        else if (kind === "u16") w.attrU16(type, n);
        else if (kind === "u32") w.attrU32(type, n);
        else if (kind === "s32") w.attrS32(type, n);
        else if (kind === "be16") w.attrBe16(type, n);
        else w.attrBe32(type, n);
        break;
      }
      case "u64":
        if (typeof v !== "bigint") bad("a bigint");
        w.attrU64(type, v as bigint);
        break;
      case "string":
        if (typeof v !== "string") bad("a string");
        w.attrString(type, v as string);
        break;
      case "bytes":
        if (!(v instanceof Uint8Array)) bad("a Uint8Array");
        w.attr(type, v as Uint8Array);
        break;
      case "flag":
        if (typeof v !== "boolean") bad("a boolean");
        if (v) w.attrFlag(type);
        break;
      case "ip":
        if (typeof v !== "string") bad("an IP address string");
        w.attr(type, parseIp(v as string).bytes);
        break;
      case "mac":
        if (typeof v !== "string") bad("a MAC address string");
        w.attr(type, parseMac(v as string));
        break;
    }
  }
}
