// Cilium's IPsec key file (the `keys` entry of the `cilium-ipsec-keys`
// secret) and its per-tunnel key derivation. One key per line:
//
//   KEYID AEAD-ALGO AEAD-KEY ICV-BITS              3+ rfc4106(gcm(aes)) 0x<40 hex> 128
//   KEYID AUTH-ALGO AUTH-KEY CRYPT-ALGO CRYPT-KEY  1 hmac(sha256) 0x<64 hex> cbc(aes) 0x<32 hex>
//
// KEYID is 1-15 and becomes the SPI; a `+` after it asks for per-tunnel
// keys. Every later line replaces the earlier ones (the last line is the
// key in use), as Cilium's loader does.
import { parseIp } from "@dp/core";
import { sha256, sha512 } from "./_sha2.ts";
import { checkKeyAlgorithms } from "./_key_algorithms.ts";
import { nameText } from "./_algorithms.ts";
import type { XfrmAeadAlgorithm, XfrmAuthAlgorithm, XfrmCryptAlgorithm } from "./types.ts";

/** The largest key id: the id is carried in 4 bits of the encrypt mark (bits 12-15). */
export const MAX_KEY_ID = 15;

/** The length Cilium takes from each boot id (a UUID as `/proc/sys/kernel/random/boot_id` prints it). */
const BOOT_ID_LENGTH = 36;

/**
 * One key of a key file: its id (the SPI of every state made with it) and
 * its algorithms. Either `aead`, or `auth` with `crypt`.
 */
export interface IpsecKey {
  /**
   * The key id, 1 to {@link MAX_KEY_ID}: the SPI of the states made with
   * the key and the 4 SPI bits of the encrypt mark.
   */
  readonly id: number;
  /**
   * Whether the id carried Cilium's `+` suffix: the states use keys
   * derived per node pair and boot ({@link deriveTunnelKey}) and extended
   * sequence numbers. Without it every node pair shares the file's key,
   * which Cilium deprecated (GHSA-pwqm-x5x6-5586).
   */
  readonly perTunnel: boolean;
  /** The AEAD algorithm, such as `rfc4106(gcm(aes))` with its key and ICV length. */
  readonly aead?: XfrmAeadAlgorithm;
  /** The authentication algorithm, such as `hmac(sha256)` (with `crypt`). */
  readonly auth?: XfrmAuthAlgorithm;
  /** The encryption algorithm, such as `cbc(aes)` (with `auth`). */
  readonly crypt?: XfrmCryptAlgorithm;
}

/** A parsed key file. */
export interface IpsecKeyFile {
  /** Every key, in file order. */
  readonly keys: readonly IpsecKey[];
  /** The key in use: the last line's. */
  readonly current: IpsecKey;
}

/**
 * A key file line that cannot be used. The message names the line and the
 * field, never key bytes.
 *
 * @example Catching a bad line
 * ```ts
 * import assert from "node:assert/strict";
 * import { KeyFileError, parseKeyFile } from "@dp/ipsec";
 *
 * try {
 *   parseKeyFile("0 rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128\n");
 *   assert.fail("expected an error");
 * } catch (err) {
 *   assert.ok(err instanceof KeyFileError);
 *   assert.equal(err.line, 1);
 *   assert.equal(err.field, "key id");
 * }
 * ```
 */
export class KeyFileError extends SyntaxError {
  /** Always `"KeyFileError"`, the class name. */
  override readonly name: string = "KeyFileError";
  /** The line, counted from 1. */
  readonly line: number;
  /** The field that is wrong: `"key id"`, `"algorithm"`, `"key"`, `"icv bits"`, `"fields"`, ... */
  readonly field: string;

  /**
   * Creates the error.
   *
   * @param line The line, counted from 1.
   * @param field The field.
   * @param detail What is wrong with it (never key bytes).
   * @param options The cause.
   */
  constructor(line: number, field: string, detail: string, options?: ErrorOptions) {
    super(`Invalid IPsec key file line ${line}: ${field} ${detail}`, options);
    this.line = line;
    this.field = field;
  }
}

/** Decodes a hex key field (`0x` optional; `""` is the empty key of a null cipher) without ever echoing it. */
function decodeKey(text: string, line: number, field: string): Uint8Array {
  if (text === '""') return new Uint8Array(0);
  const hex = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new KeyFileError(
      line,
      field,
      `is not an even number of hex digits (${hex.length} characters, optionally after "0x")`,
    );
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Describes a field of a key file line without repeating it (a key in the
 * wrong place must never reach a message): its position, length and kind.
 */
function tokenText(text: string, position: number): string {
  const kind = /^[0-9]+$/.test(text)
    ? "digits"
    : /^0x[0-9a-f]*$/i.test(text)
      ? 'hex digits after "0x"'
      : /^[0-9a-f]+$/i.test(text)
        ? "hex digits"
        : "characters that are neither digits nor hex";
  return `(field ${position}, ${text.length} characters of ${kind})`;
}

function parseKeyId(text: string, line: number): { id: number; perTunnel: boolean } {
  const perTunnel = text.endsWith("+");
  const digits = perTunnel ? text.slice(0, -1) : text;
  if (!/^[0-9]{1,3}$/.test(digits)) {
    throw new KeyFileError(
      line,
      "key id",
      `${tokenText(text, 1)} is not a number (1-${MAX_KEY_ID}, optionally with "+")`,
    );
  }
  const id = Number(digits);
  if (id < 1 || id > MAX_KEY_ID) {
    throw new KeyFileError(
      line,
      "key id",
      `${id} is out of range: must be 1-${MAX_KEY_ID} (it is the SPI and 4 bits of the mark)`,
    );
  }
  return { id, perTunnel };
}

function checkAlgorithmName(text: string, line: number, field: string, position: number): string {
  if (!/^[a-z0-9()_,-]{1,63}$/i.test(text)) {
    throw new KeyFileError(
      line,
      field,
      `${tokenText(text, position)} is not a kernel crypto algorithm name (such as rfc4106(gcm(aes)) or hmac(sha256))`,
    );
  }
  return text;
}

/**
 * Parses one line of a key file.
 *
 * @param text The line, without its newline.
 * @param line The line number for errors.
 * @returns The key.
 * @throws {KeyFileError} When a field is missing, unparsable or not accepted by the algorithm.
 */
function parseKeyLine(text: string, line: number): IpsecKey {
  const f = text.trim().split(/[ \t]+/);
  if (f.length !== 4 && f.length !== 5) {
    throw new KeyFileError(
      line,
      "fields",
      `are ${f.length}: expected "KEYID AEAD-ALGO KEY ICV-BITS" (4) or "KEYID AUTH-ALGO AUTH-KEY CRYPT-ALGO CRYPT-KEY" (5)`,
    );
  }
  const { id, perTunnel } = parseKeyId(f[0]!, line);
  let key: IpsecKey;
  if (f.length === 4) {
    const name = checkAlgorithmName(f[1]!, line, "algorithm", 2);
    if (!name.startsWith("rfc")) {
      throw new KeyFileError(line, "algorithm", `${nameText(name)} is not an AEAD (such as rfc4106(gcm(aes)))`);
    }
    const aeadKey = decodeKey(f[2]!, line, "key");
    if (!/^[0-9]{1,4}$/.test(f[3]!)) {
      throw new KeyFileError(line, "icv bits", `${tokenText(f[3]!, 4)} is not a number of bits`);
    }
    key = { id, perTunnel, aead: { name, key: aeadKey, icvBits: Number(f[3]) } };
  } else {
    const authName = checkAlgorithmName(f[1]!, line, "auth algorithm", 2);
    const authKey = decodeKey(f[2]!, line, "auth key");
    const cryptName = checkAlgorithmName(f[3]!, line, "crypt algorithm", 4);
    const cryptKey = decodeKey(f[4]!, line, "crypt key");
    key = { id, perTunnel, auth: { name: authName, key: authKey }, crypt: { name: cryptName, key: cryptKey } };
  }
  const problem = checkKeyAlgorithms(key);
  if (problem !== undefined) throw new KeyFileError(line, problem.field, problem.detail);
  return key;
}

/**
 * Parses Cilium's IPsec key file: one key per line, `KEYID AEAD-ALGO KEY
 * ICV-BITS` or `KEYID AUTH-ALGO AUTH-KEY CRYPT-ALGO CRYPT-KEY`, keys in
 * hex with an optional `0x`. The key id (1-15, optionally followed by `+`
 * for per-tunnel keys) becomes the SPI. Blank lines are skipped; the last
 * line is the key in use. Key ids must differ between lines: changing a
 * key means a new id.
 *
 * @param text The file's text.
 * @returns The keys, and the current one.
 * @throws {KeyFileError} When a line is malformed, a key id is repeated, a
 *   key's size does not fit its algorithm, or there is no key at all. The
 *   message names the line and field and never contains key bytes.
 * @example A per-tunnel GCM key
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyFile } from "@dp/ipsec";
 *
 * const file = parseKeyFile("3+ rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128\n");
 * assert.equal(file.current.id, 3);
 * assert.equal(file.current.perTunnel, true);
 * assert.equal(file.current.aead?.key.length, 20);
 * ```
 */
export function parseKeyFile(text: string): IpsecKeyFile {
  if (typeof text !== "string") throw new TypeError(`Invalid IPsec key file: expected a string, got ${typeof text}`);
  const keys: IpsecKey[] = [];
  const seen = new Map<number, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() === "") continue;
    const key = parseKeyLine(lines[i]!, i + 1);
    const first = seen.get(key.id);
    if (first !== undefined) {
      throw new KeyFileError(i + 1, "key id", `${key.id} repeats line ${first}: a changed key needs a new id`);
    }
    seen.set(key.id, i + 1);
    keys.push(key);
  }
  const current = keys.at(-1);
  if (current === undefined) throw new KeyFileError(1, "fields", "are missing: the file has no key");
  return { keys, current };
}

/** The two ends of a tunnel, for {@link deriveTunnelKey}. */
export interface TunnelEnds {
  /** The tunnel source (the sending node's IP). */
  readonly srcIp: string;
  /** The tunnel destination (the receiving node's IP). */
  readonly dstIp: string;
  /** The sending node's boot id (`/proc/sys/kernel/random/boot_id`, at least 36 characters). */
  readonly srcBootId: string;
  /** The receiving node's boot id. */
  readonly dstBootId: string;
}

function ipBytes(text: string, what: string): Uint8Array {
  let ip;
  try {
    ip = parseIp(text);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${JSON.stringify(text)}: not an IP address`, { cause: err });
  }
  const b = ip.bytes;
  // An IPv4-mapped IPv6 address counts as its 4 IPv4 bytes, as Cilium's canonicalIP.
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return b.slice(12);
  }
  return b;
}

function bootIdBytes(text: unknown, what: string): Uint8Array {
  if (typeof text !== "string") throw new TypeError(`Invalid ${what}: expected a string, got ${typeof text}`);
  if (text.length < BOOT_ID_LENGTH) {
    throw new RangeError(`Invalid ${what}: ${text.length} characters; a boot id has ${BOOT_ID_LENGTH}`);
  }
  return new TextEncoder().encode(text.slice(0, BOOT_ID_LENGTH));
}

function deriveBytes(key: Uint8Array, tail: Uint8Array): Uint8Array {
  const input = new Uint8Array(key.length + tail.length);
  input.set(key);
  input.set(tail, key.length);
  const digest = key.length <= 32 ? sha256(input) : sha512(input);
  return digest.slice(0, key.length);
}

/**
 * Derives the key of one tunnel direction from a file key, as Cilium does
 * for per-tunnel keys: each key becomes the first `length` bytes of
 * SHA-256 (SHA-512 for keys longer than 32 bytes) over the file key, the
 * source IP, the destination IP (4 bytes for IPv4, 16 for IPv6), and the
 * first 36 characters of the source and destination boot ids. Node A's
 * out state (A→B) and node B's in state (A→B) get the same key; the two
 * directions differ, and a reboot changes both.
 *
 * @param key The file key.
 * @param ends The tunnel's source and destination IPs and boot ids.
 * @returns A key with the same id and algorithms and derived key bytes.
 * @throws {SyntaxError} When an IP is unparsable.
 * @throws {TypeError} When a boot id is not a string.
 * @throws {RangeError} When a boot id is shorter than 36 characters.
 * @example Both ends derive the same key for one direction
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveTunnelKey, parseKeyFile } from "@dp/ipsec";
 *
 * const { current } = parseKeyFile("3+ rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128");
 * const a = "11111111-1111-1111-1111-111111111111";
 * const b = "22222222-2222-2222-2222-222222222222";
 * const out = deriveTunnelKey(current, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: a, dstBootId: b });
 * const back = deriveTunnelKey(current, { srcIp: "10.0.0.2", dstIp: "10.0.0.1", srcBootId: b, dstBootId: a });
 * assert.equal(out.aead?.key.length, 20);
 * assert.notDeepEqual(out.aead?.key, back.aead?.key);
 * ```
 */
export function deriveTunnelKey(key: IpsecKey, ends: TunnelEnds): IpsecKey {
  const src = ipBytes(ends.srcIp, "tunnel source");
  const dst = ipBytes(ends.dstIp, "tunnel destination");
  const srcBoot = bootIdBytes(ends.srcBootId, "source boot id");
  const dstBoot = bootIdBytes(ends.dstBootId, "destination boot id");
  const tail = new Uint8Array(src.length + dst.length + srcBoot.length + dstBoot.length);
  tail.set(src, 0);
  tail.set(dst, src.length);
  tail.set(srcBoot, src.length + dst.length);
  tail.set(dstBoot, src.length + dst.length + srcBoot.length);
  if (key.aead !== undefined) {
    return { id: key.id, perTunnel: key.perTunnel, aead: { ...key.aead, key: deriveBytes(key.aead.key, tail) } };
  }
  const out: { -readonly [K in keyof IpsecKey]: IpsecKey[K] } = { id: key.id, perTunnel: key.perTunnel };
  if (key.auth !== undefined) out.auth = { ...key.auth, key: deriveBytes(key.auth.key, tail) };
  if (key.crypt !== undefined) out.crypt = { ...key.crypt, key: deriveBytes(key.crypt.key, tail) };
  return out;
}

/**
 * Whether two keys have the same algorithms and key bytes (their ids
 * aside), compared in constant time per key.
 *
 * @param a One key.
 * @param b The other.
 * @returns True when they would install the same states.
 * @example The same line twice
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseKeyFile, sameKeyMaterial } from "@dp/ipsec";
 *
 * const line = "3 rfc4106(gcm(aes)) 0x00112233445566778899aabbccddeeff00112233 128";
 * assert.ok(sameKeyMaterial(parseKeyFile(line).current, parseKeyFile(line).current));
 * ```
 */
export function sameKeyMaterial(a: IpsecKey, b: IpsecKey): boolean {
  const eq = (x: Uint8Array | undefined, y: Uint8Array | undefined): boolean => {
    if (x === undefined || y === undefined) return x === y;
    if (x.length !== y.length) return false;
    let d = 0;
    for (let i = 0; i < x.length; i++) d |= x[i]! ^ y[i]!;
    return d === 0;
  };
  return (
    a.perTunnel === b.perTunnel &&
    a.aead?.name === b.aead?.name &&
    a.aead?.icvBits === b.aead?.icvBits &&
    a.auth?.name === b.auth?.name &&
    a.auth?.truncBits === b.auth?.truncBits &&
    a.crypt?.name === b.crypt?.name &&
    eq(a.aead?.key, b.aead?.key) &&
    eq(a.auth?.key, b.auth?.key) &&
    eq(a.crypt?.key, b.crypt?.key)
  );
}
