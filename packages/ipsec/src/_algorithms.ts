// The algorithms dp installs in xfrm states, with the key sizes and ICV
// lengths the kernel's crypto templates take (net/xfrm/xfrm_algo.c), and the
// checks that name the field. Messages never contain key bytes: a key is
// described by its length only.
import type { NetlinkWriter } from "@dp/core";
import { XFRMA } from "./_uapi.ts";
import type { XfrmAeadAlgorithm, XfrmAuthAlgorithm, XfrmCryptAlgorithm } from "./types.ts";

/** What an AEAD algorithm takes. */
interface AeadInfo {
  /** Allowed key lengths in bytes (the salt included). */
  readonly keyBytes: readonly number[];
  /** What the key is, for messages. */
  readonly keyNote: string;
  /** Allowed ICV lengths in bits. */
  readonly icvBits: readonly number[];
}

/** What an encryption algorithm takes. */
interface CryptInfo {
  /** Allowed key lengths in bytes. */
  readonly keyBytes: readonly number[];
  /** What the key is, for messages. */
  readonly keyNote: string;
}

/** What an authentication algorithm takes. */
interface AuthInfo {
  /** The key length in bytes (RFC 2104 keys as long as the digest, as RFC 4868 requires). */
  readonly keyBytes: readonly number[];
  /** The standard truncation in bits. */
  readonly truncBits: number;
  /** The smallest truncation in bits dp accepts. */
  readonly minTruncBits: number;
  /** The digest length in bits: the largest truncation. */
  readonly fullBits: number;
}

/** AEAD algorithms (`XFRMA_ALG_AEAD`). */
export const AEAD_ALGORITHMS: ReadonlyMap<string, AeadInfo> = new Map([
  ["rfc4106(gcm(aes))", { keyBytes: [20, 28, 36], keyNote: "AES key + 4-byte salt", icvBits: [64, 96, 128] }],
  ["rfc4309(ccm(aes))", { keyBytes: [19, 27, 35], keyNote: "AES key + 3-byte salt", icvBits: [64, 96, 128] }],
  ["rfc4543(gcm(aes))", { keyBytes: [20, 28, 36], keyNote: "AES key + 4-byte salt", icvBits: [128] }],
  ["rfc7539esp(chacha20,poly1305)", { keyBytes: [36], keyNote: "ChaCha20 key + 4-byte salt", icvBits: [128] }],
]);

/** Encryption algorithms (`XFRMA_ALG_CRYPT`). */
export const CRYPT_ALGORITHMS: ReadonlyMap<string, CryptInfo> = new Map([
  ["cbc(aes)", { keyBytes: [16, 24, 32], keyNote: "AES-128, -192 or -256" }],
  ["rfc3686(ctr(aes))", { keyBytes: [20, 28, 36], keyNote: "AES key + 4-byte nonce" }],
  ["cbc(des3_ede)", { keyBytes: [24], keyNote: "3DES" }],
  ["ecb(cipher_null)", { keyBytes: [0], keyNote: "no encryption" }],
]);

/** Authentication algorithms (`XFRMA_ALG_AUTH_TRUNC`). */
export const AUTH_ALGORITHMS: ReadonlyMap<string, AuthInfo> = new Map([
  ["hmac(sha1)", { keyBytes: [20], truncBits: 96, minTruncBits: 96, fullBits: 160 }],
  ["hmac(sha256)", { keyBytes: [32], truncBits: 128, minTruncBits: 96, fullBits: 256 }],
  ["hmac(sha384)", { keyBytes: [48], truncBits: 192, minTruncBits: 192, fullBits: 384 }],
  ["hmac(sha512)", { keyBytes: [64], truncBits: 256, minTruncBits: 256, fullBits: 512 }],
]);

/** The kind of an algorithm field of a state. */
export type AlgorithmKind = "aead" | "crypt" | "auth";

/** What is wrong with an algorithm: the field (`"aead.key"`) and why, never the key bytes. */
export interface AlgorithmProblem {
  /** The field, such as `"aead.name"`, `"crypt.key"`, `"auth.truncBits"`. */
  readonly field: string;
  /** What is wrong, such as `is 17 bytes; rfc4106(gcm(aes)) takes 20, 28 or 36 bytes (AES key + 4-byte salt)`. */
  readonly detail: string;
  /** TypeError for a wrong type or an unknown name, RangeError for a wrong size. */
  readonly kind: "type" | "range";
}

/** A checked algorithm, ready to encode. */
export interface ParsedAlgorithm {
  /** The attribute (`XFRMA_ALG_AEAD`, `_CRYPT`, `_AUTH_TRUNC`). */
  readonly type: number;
  /** The kernel name. */
  readonly name: string;
  /** The key (a copy: a later change by the caller does not change what is sent). */
  readonly key: Uint8Array;
  /** The ICV or truncation length in bits; undefined for encryption. */
  readonly bits: number | undefined;
}

const MAX_NAME = 63; // alg_name[64], NUL-terminated
const utf8 = new TextEncoder();
const latin = new TextDecoder();

function list(ns: readonly number[], unit: string): string {
  if (ns.length === 1) return `${ns[0]} ${unit}`;
  return `${ns.slice(0, -1).join(", ")} or ${ns[ns.length - 1]} ${unit}`;
}

function known(m: ReadonlyMap<string, unknown>): string {
  return [...m.keys()].map((k) => `"${k}"`).join(", ");
}

/**
 * A name for messages: quoted when it is shaped like a kernel crypto name
 * (`family(inner)`), which a hex key never is; otherwise described by its
 * length only, since a key given in the wrong place must not be repeated.
 *
 * @param name The name as given.
 * @returns The text for a message.
 */
export function nameText(name: string): string {
  return /^[a-z0-9_,-]*\([a-z0-9()_,-]*\)$/i.test(name) && name.length <= MAX_NAME
    ? JSON.stringify(name)
    : `a ${name.length}-character name without the family(inner) shape of a crypto algorithm`;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

/**
 * Finds what is wrong with an algorithm of a state, or undefined. Names
 * and lengths are checked against the tables above; a key is only ever
 * described by its length.
 *
 * @param kind Which field of the state it is.
 * @param v The algorithm.
 * @returns The problem, or undefined when it is valid.
 */
export function algorithmProblem(kind: AlgorithmKind, v: unknown): AlgorithmProblem | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array)
    return { field: kind, detail: `expected an object, got ${describe(v)}`, kind: "type" };
  const a = v as { name?: unknown; key?: unknown; icvBits?: unknown; truncBits?: unknown };
  for (const k of Object.keys(a)) {
    const allowed =
      kind === "aead" ? ["name", "key", "icvBits"] : kind === "auth" ? ["name", "key", "truncBits"] : ["name", "key"];
    if (!allowed.includes(k))
      return {
        field: `${kind}.${k}`,
        detail: `is not a field of ${kind} (known: ${allowed.join(", ")})`,
        kind: "type",
      };
  }
  const table = kind === "aead" ? AEAD_ALGORITHMS : kind === "crypt" ? CRYPT_ALGORITHMS : AUTH_ALGORITHMS;
  if (typeof a.name !== "string")
    return { field: `${kind}.name`, detail: `expected a string, got ${describe(a.name)}`, kind: "type" };
  const info = table.get(a.name);
  if (info === undefined) {
    const other =
      kind !== "aead" && AEAD_ALGORITHMS.has(a.name)
        ? " (an AEAD algorithm: give it as aead)"
        : kind === "aead" && (CRYPT_ALGORITHMS.has(a.name) || AUTH_ALGORITHMS.has(a.name))
          ? ` (not an AEAD algorithm: give it as ${CRYPT_ALGORITHMS.has(a.name) ? "crypt" : "auth"})`
          : "";
    return {
      field: `${kind}.name`,
      detail: `${nameText(a.name)} is not supported${other}; use ${known(table)}`,
      kind: "type",
    };
  }
  if (!(a.key instanceof Uint8Array))
    return { field: `${kind}.key`, detail: `expected a Uint8Array, got ${describe(a.key)}`, kind: "type" };
  const keyBytes = info.keyBytes;
  if (!keyBytes.includes(a.key.length)) {
    const note = "keyNote" in info ? ` (${info.keyNote})` : "";
    return {
      field: `${kind}.key`,
      detail: `is ${a.key.length} bytes; ${a.name} takes ${list(keyBytes, "bytes")}${note}`,
      kind: "range",
    };
  }
  if (kind === "aead") {
    const icv = (info as AeadInfo).icvBits;
    if (typeof a.icvBits !== "number")
      return { field: "aead.icvBits", detail: `expected a number, got ${describe(a.icvBits)}`, kind: "type" };
    if (!icv.includes(a.icvBits))
      return { field: "aead.icvBits", detail: `is ${a.icvBits}; ${a.name} takes ${list(icv, "bits")}`, kind: "range" };
  }
  if (kind === "auth" && a.truncBits !== undefined) {
    const au = info as AuthInfo;
    if (typeof a.truncBits !== "number")
      return { field: "auth.truncBits", detail: `expected a number, got ${describe(a.truncBits)}`, kind: "type" };
    if (
      !Number.isInteger(a.truncBits) ||
      a.truncBits % 8 !== 0 ||
      a.truncBits < au.minTruncBits ||
      a.truncBits > au.fullBits
    ) {
      return {
        field: "auth.truncBits",
        detail: `is ${a.truncBits}; ${a.name} takes a multiple of 8 from ${au.minTruncBits} to ${au.fullBits} bits (standard: ${au.truncBits})`,
        kind: "range",
      };
    }
  }
  return undefined;
}

/**
 * Checks an algorithm of a state and returns what to encode.
 *
 * @param kind Which field of the state it is.
 * @param v The algorithm.
 * @param what The object, for errors (`"xfrm state"`).
 * @returns The parsed algorithm.
 * @throws {TypeError} When a field has the wrong type or the name is not supported.
 * @throws {RangeError} When the key or ICV length does not fit the algorithm.
 */
export function parseAlgorithm(kind: AlgorithmKind, v: unknown, what: string): ParsedAlgorithm {
  const p = algorithmProblem(kind, v);
  if (p !== undefined) {
    const msg = `Invalid ${what}: ${p.field} ${p.detail}`;
    throw p.kind === "type" ? new TypeError(msg) : new RangeError(msg);
  }
  if (kind === "aead") {
    const a = v as XfrmAeadAlgorithm;
    return { type: XFRMA.ALG_AEAD, name: a.name, key: new Uint8Array(a.key), bits: a.icvBits };
  }
  if (kind === "auth") {
    const a = v as XfrmAuthAlgorithm;
    const info = AUTH_ALGORITHMS.get(a.name) as AuthInfo;
    return {
      type: XFRMA.ALG_AUTH_TRUNC,
      name: a.name,
      key: new Uint8Array(a.key),
      bits: a.truncBits ?? info.truncBits,
    };
  }
  const a = v as XfrmCryptAlgorithm;
  return { type: XFRMA.ALG_CRYPT, name: a.name, key: new Uint8Array(a.key), bits: undefined };
}

/**
 * Appends an algorithm attribute as iproute2 lays it out: `alg_name[64]`,
 * `alg_key_len` in bits, then `alg_icv_len` (AEAD) or `alg_trunc_len`
 * (auth), then the key.
 *
 * @param w The writer, inside a message.
 * @param a The algorithm.
 */
export function writeAlgorithm(w: NetlinkWriter, a: ParsedAlgorithm): void {
  const name = utf8.encode(a.name);
  const len = 4 + 64 + 4 + (a.bits === undefined ? 0 : 4) + a.key.length;
  w.u16(len).u16(a.type);
  w.raw(name).zeros(64 - name.length);
  w.u32(a.key.length * 8);
  if (a.bits !== undefined) w.u32(a.bits);
  w.raw(a.key);
  w.zeros(((len + 3) & ~3) - len);
}

/** A decoded algorithm attribute. */
export interface DecodedAlgorithm {
  /** The kernel name. */
  readonly name: string;
  /** The key (a copy). */
  readonly key: Uint8Array;
  /** `alg_icv_len` or `alg_trunc_len`, when the struct has one. */
  readonly bits: number | undefined;
}

/**
 * Reads an `XFRMA_ALG_*` payload.
 *
 * @param data The payload.
 * @param withBits Whether the struct has a length after `alg_key_len` (AEAD, AUTH_TRUNC).
 * @param attr The attribute's name, for errors (`"XFRMA_ALG_AEAD"`).
 * @returns The algorithm.
 * @throws {SyntaxError} When the payload is shorter than the struct or than
 *   the key it announces (the message gives lengths, never key bytes).
 */
export function decodeAlgorithm(data: Uint8Array, withBits: boolean, attr: string): DecodedAlgorithm {
  const head = 64 + 4 + (withBits ? 4 : 0);
  if (data.length < head) {
    throw new SyntaxError(`Invalid ${attr} attribute: ${data.length} bytes, expected at least ${head}`);
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nul = data.subarray(0, 64).indexOf(0);
  const name = latin.decode(data.subarray(0, nul < 0 ? 64 : nul));
  const keyBits = dv.getUint32(64, true);
  const keyLen = Math.ceil(keyBits / 8);
  if (data.length - head < keyLen) {
    throw new SyntaxError(
      `Invalid ${attr} attribute: a ${keyBits}-bit key needs ${keyLen} bytes after the ${head}-byte header, ${data.length - head} follow`,
    );
  }
  return {
    name,
    key: new Uint8Array(data.subarray(head, head + keyLen)),
    bits: withBits ? dv.getUint32(68, true) : undefined,
  };
}
