import { createHash, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import { sha256, sha512 } from "./_sha2.ts";
import { deriveTunnelKey, type IpsecKey, KeyFileError, parseKeyFile, sameKeyMaterial } from "./keys.ts";

const GCM_HEX = "00112233445566778899aabbccddeeff00112233"; // 16-byte AES key + 4-byte salt
const SHA_HEX = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const AES_HEX = "fedcba9876543210fedcba9876543210";
const BOOT_A = "0a5d1f52-4c4f-4b1a-9a4e-2b9a3f6f1c11";
const BOOT_B = "7e9c0d33-1d2e-4f5a-8b6c-9d0e1f2a3b44";

function hex(b: Uint8Array | undefined): string {
  return Buffer.from(b ?? new Uint8Array()).toString("hex");
}

function keyFileError(fn: () => unknown): KeyFileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyFileError);
    expect(err).toBeInstanceOf(SyntaxError);
    return err as KeyFileError;
  }
  throw new Error("expected a KeyFileError");
}

describe("parseKeyFile", () => {
  test("an AEAD line: key id, per-tunnel flag, key bytes and ICV bits", () => {
    const file = parseKeyFile(`3+ rfc4106(gcm(aes)) 0x${GCM_HEX} 128\n`);
    expect(file.keys).toHaveLength(1);
    expect(file.current).toBe(file.keys[0]);
    expect(file.current.id).toBe(3);
    expect(file.current.perTunnel).toBe(true);
    expect(file.current.aead?.name).toBe("rfc4106(gcm(aes))");
    expect(file.current.aead?.icvBits).toBe(128);
    expect(file.current.aead?.key).toBeInstanceOf(Uint8Array);
    expect(hex(file.current.aead?.key)).toBe(GCM_HEX);
    expect(file.current.auth).toBeUndefined();
    expect(file.current.crypt).toBeUndefined();
  });

  test("an auth+crypt line, without 0x and without +", () => {
    const { current } = parseKeyFile(`1 hmac(sha256) ${SHA_HEX} cbc(aes) 0x${AES_HEX}`);
    expect(current).toMatchObject({ id: 1, perTunnel: false });
    expect(current.auth?.name).toBe("hmac(sha256)");
    expect(hex(current.auth?.key)).toBe(SHA_HEX);
    expect(current.crypt?.name).toBe("cbc(aes)");
    expect(hex(current.crypt?.key)).toBe(AES_HEX);
    expect(current.aead).toBeUndefined();
  });

  test("the last line is current; blank lines, CRLF and tabs are accepted", () => {
    const file = parseKeyFile(
      `\n1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128\r\n\n2+\trfc4106(gcm(aes))  0x${GCM_HEX.toUpperCase()} 96\n\n`,
    );
    expect(file.keys.map((k) => k.id)).toEqual([1, 2]);
    expect(file.current.id).toBe(2);
    expect(file.current.aead?.icvBits).toBe(96);
  });

  test.each([
    ["", 1, "fields"],
    [`3 rfc4106(gcm(aes)) 0x${GCM_HEX}`, 1, "fields"],
    [`3 hmac(sha256) 0x${SHA_HEX} cbc(aes) 0x${AES_HEX} 10.0.0.1`, 1, "fields"],
    [`0 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`, 1, "key id"],
    [`16 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`, 1, "key id"],
    [`x rfc4106(gcm(aes)) 0x${GCM_HEX} 128`, 1, "key id"],
    [`-1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`, 1, "key id"],
    [`3 gcm(aes) 0x${GCM_HEX} 128`, 1, "algorithm"],
    [`3 rfc4106(gcm(aes)) 0x${GCM_HEX}0 128`, 1, "key"],
    [`3 rfc4106(gcm(aes)) 0x${GCM_HEX.slice(0, -2)}zz 128`, 1, "key"],
    [`3 rfc4106(gcm(aes)) 0x 128`, 1, "key"],
    [`3 rfc4106(gcm(aes)) 0x${GCM_HEX} 12x`, 1, "icv bits"],
    [`1 hmac(sha256) 0x${SHA_HEX} cbc(aes) 0x${AES_HEX}g`, 1, "crypt key"],
    [`1 hmac(sha256) 0x${SHA_HEX}1 cbc(aes) 0x${AES_HEX}`, 1, "auth key"],
    [`1 hmac sha256 0x${SHA_HEX} cbc(aes)`, 1, "auth key"],
    [`\n\n1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128\n2 rfc4106(gcm(aes)) 0x${GCM_HEX}`, 4, "fields"],
    [`1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128\n1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`, 2, "key id"],
  ])("rejects %j at line %i, field %s", (text, line, field) => {
    const err = keyFileError(() => parseKeyFile(text));
    expect(err.line).toBe(line);
    expect(err.field).toBe(field);
    expect(err.message).toMatch(new RegExp(`^Invalid IPsec key file line ${line}: ${field} `));
  });

  test("key sizes and ICV lengths are checked against the algorithm, naming the field", () => {
    const cases: [string, string, RegExp][] = [
      [
        `3 rfc4106(gcm(aes)) 0x${"00".repeat(16)} 128`,
        "key",
        /^key is 16 bytes; rfc4106\(gcm\(aes\)\) takes 20, 28 or 36 bytes \(AES key \+ 4-byte salt\)$/,
      ],
      [
        `3 rfc4106(gcm(aes)) 0x${GCM_HEX} 256`,
        "icv bits",
        /^icv bits is 256; rfc4106\(gcm\(aes\)\) takes 64, 96 or 128 bits$/,
      ],
      [`3 rfc9999(foo) 0x${GCM_HEX} 128`, "algorithm", /is not supported/],
      [`1 hmac(md5) 0x${SHA_HEX} cbc(aes) 0x${AES_HEX}`, "auth algorithm", /"hmac\(md5\)" is not supported/],
      [
        `1 hmac(sha256) 0x${SHA_HEX.slice(2)} cbc(aes) 0x${AES_HEX}`,
        "auth key",
        /is 31 bytes; hmac\(sha256\) takes 32 bytes/,
      ],
      [
        `1 hmac(sha256) 0x${SHA_HEX} cbc(aes) 0x${AES_HEX}ab`,
        "crypt key",
        /is 17 bytes; cbc\(aes\) takes 16, 24 or 32 bytes/,
      ],
      [`1 hmac(sha256) 0x${SHA_HEX} rfc4106(gcm(aes)) 0x${GCM_HEX}`, "crypt algorithm", /an AEAD algorithm/],
    ];
    for (const [text, field, detail] of cases) {
      const err = keyFileError(() => parseKeyFile(text));
      expect(err.field, text).toBe(field);
      expect(err.message.slice(`Invalid IPsec key file line 1: `.length), text).toMatch(detail);
    }
  });

  test("a null cipher key is written as two quotes", () => {
    const { current } = parseKeyFile(`1 hmac(sha256) 0x${SHA_HEX} ecb(cipher_null) ""`);
    expect(current.crypt).toEqual({ name: "ecb(cipher_null)", key: new Uint8Array(0) });
  });

  test("errors never contain key bytes", () => {
    const secret = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    for (const text of [
      `3 rfc4106(gcm(aes)) 0x${secret}0 128`,
      `3 rfc4106(gcm(aes)) 0x${secret}zz 128`,
      `3 rfc4106(gcm(aes)) 0x${secret} 12x`,
      `0 rfc4106(gcm(aes)) 0x${secret} 128`,
      `1 hmac(sha256) 0x${secret} cbc(aes) 0x${secret}q`,
      `1 hmac(sha256) 0x${secret} cbc(aes) 0x${secret}`,
      `3 rfc4106(gcm(aes)) 0x${secret}00 128`,
      // Fields in the wrong place: the key where the icv bits, the algorithm or the key id go.
      `3 rfc4106(gcm(aes)) 96 0x${secret}`,
      `3 0x${secret} rfc4106(gcm(aes)) 128`,
      `0x${secret} rfc4106(gcm(aes)) 1 128`,
      `3 ${secret} rfc4106(gcm(aes)) 128`,
      `3 rfc4106(gcm(aes)) 96 ${secret}`,
      `1 0x${secret} hmac(sha256) cbc(aes) 0x${secret}`,
      `1 hmac(sha256) 0x${secret} ${secret} cbc(aes)`,
      `1 hmac(sha256) 0x${secret} ${"ab".repeat(40)} 0x${secret}`,
    ]) {
      const err = keyFileError(() => parseKeyFile(text));
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain(secret.slice(0, 8));
      expect(err.message).not.toContain("abab");
    }
  });

  test("a misplaced field is described by position, length and kind", () => {
    const secret = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    const err = keyFileError(() => parseKeyFile(`3 rfc4106(gcm(aes)) 96 0x${secret}`));
    expect(err.field).toBe("icv bits");
    expect(err.message).toBe(
      'Invalid IPsec key file line 1: icv bits (field 4, 42 characters of hex digits after "0x") is not a number of bits',
    );
    expect(keyFileError(() => parseKeyFile(`0x${secret} rfc4106(gcm(aes)) 1 128`)).message).toMatch(
      /key id \(field 1, 42 characters of hex digits after "0x"\) is not a number/,
    );
    expect(keyFileError(() => parseKeyFile(`3 ${secret} rfc4106(gcm(aes)) 128`)).message).toMatch(
      /algorithm a 40-character name without the family\(inner\) shape/,
    );
  });

  test("rejects a non-string", () => {
    expect(() => parseKeyFile(3 as unknown as string)).toThrow(TypeError);
  });
});

describe("sha2", () => {
  test.each([0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 300])("matches node:crypto for %i bytes", (n) => {
    const data = randomBytes(n);
    expect(hex(sha256(data))).toBe(createHash("sha256").update(data).digest("hex"));
    expect(hex(sha512(data))).toBe(createHash("sha512").update(data).digest("hex"));
  });
});

describe("deriveTunnelKey", () => {
  const { current: gcm } = parseKeyFile(`3+ rfc4106(gcm(aes)) 0x${GCM_HEX} 128`);

  /** The reference: hash(key || src || dst || srcBoot[:36] || dstBoot[:36]) cut to the key's length. */
  function reference(key: string, src: number[], dst: number[], srcBoot: string, dstBoot: string): string {
    const k = Buffer.from(key, "hex");
    const input = Buffer.concat([
      k,
      Buffer.from(src),
      Buffer.from(dst),
      Buffer.from(srcBoot.slice(0, 36)),
      Buffer.from(dstBoot.slice(0, 36)),
    ]);
    return createHash(k.length <= 32 ? "sha256" : "sha512")
      .update(input)
      .digest()
      .subarray(0, k.length)
      .toString("hex");
  }

  test("AEAD: SHA-256 over key, IPv4 addresses and boot ids, cut to the key length", () => {
    const out = deriveTunnelKey(gcm, {
      srcIp: "192.168.1.1",
      dstIp: "192.168.1.2",
      srcBootId: BOOT_A,
      dstBootId: BOOT_B,
    });
    expect(out.id).toBe(3);
    expect(out.perTunnel).toBe(true);
    expect(out.aead?.name).toBe("rfc4106(gcm(aes))");
    expect(out.aead?.icvBits).toBe(128);
    expect(hex(out.aead?.key)).toBe(reference(GCM_HEX, [192, 168, 1, 1], [192, 168, 1, 2], BOOT_A, BOOT_B));
    // The file key is unchanged.
    expect(hex(gcm.aead?.key)).toBe(GCM_HEX);
  });

  test("one direction: A's out key is B's in key; the other direction differs", () => {
    const aOut = deriveTunnelKey(gcm, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    const bIn = deriveTunnelKey(gcm, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    const bOut = deriveTunnelKey(gcm, { srcIp: "10.0.0.2", dstIp: "10.0.0.1", srcBootId: BOOT_B, dstBootId: BOOT_A });
    expect(hex(aOut.aead?.key)).toBe(hex(bIn.aead?.key));
    expect(hex(aOut.aead?.key)).not.toBe(hex(bOut.aead?.key));
  });

  test("a reboot (new boot id) changes the key", () => {
    const before = deriveTunnelKey(gcm, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    const after = deriveTunnelKey(gcm, {
      srcIp: "10.0.0.1",
      dstIp: "10.0.0.2",
      srcBootId: BOOT_A,
      dstBootId: "11111111-2222-3333-4444-555555555555",
    });
    expect(hex(before.aead?.key)).not.toBe(hex(after.aead?.key));
  });

  test("only the first 36 characters of a boot id count (a trailing newline is ignored)", () => {
    const a = deriveTunnelKey(gcm, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    const b = deriveTunnelKey(gcm, {
      srcIp: "10.0.0.1",
      dstIp: "10.0.0.2",
      srcBootId: `${BOOT_A}\n`,
      dstBootId: `${BOOT_B}\n`,
    });
    expect(hex(a.aead?.key)).toBe(hex(b.aead?.key));
  });

  test("IPv6 uses 16 address bytes; an IPv4-mapped address counts as IPv4", () => {
    const v6 = deriveTunnelKey(gcm, { srcIp: "fd00::1", dstIp: "fd00::2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    const src = [0xfd, ...new Array<number>(14).fill(0), 1];
    const dst = [0xfd, ...new Array<number>(14).fill(0), 2];
    expect(hex(v6.aead?.key)).toBe(reference(GCM_HEX, src, dst, BOOT_A, BOOT_B));
    const mapped = deriveTunnelKey(gcm, {
      srcIp: "::ffff:10.0.0.1",
      dstIp: "10.0.0.2",
      srcBootId: BOOT_A,
      dstBootId: BOOT_B,
    });
    const plain = deriveTunnelKey(gcm, { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B });
    expect(hex(mapped.aead?.key)).toBe(hex(plain.aead?.key));
  });

  test("auth and crypt keys are derived separately; keys over 32 bytes use SHA-512", () => {
    const sha512Key = "ab".repeat(64);
    const { current } = parseKeyFile(`5+ hmac(sha512) 0x${sha512Key} cbc(aes) 0x${AES_HEX}`);
    const out = deriveTunnelKey(current, {
      srcIp: "10.0.0.1",
      dstIp: "10.0.0.2",
      srcBootId: BOOT_A,
      dstBootId: BOOT_B,
    });
    expect(out.auth?.name).toBe("hmac(sha512)");
    expect(out.auth?.key).toHaveLength(64);
    expect(hex(out.auth?.key)).toBe(reference(sha512Key, [10, 0, 0, 1], [10, 0, 0, 2], BOOT_A, BOOT_B));
    expect(hex(out.crypt?.key)).toBe(reference(AES_HEX, [10, 0, 0, 1], [10, 0, 0, 2], BOOT_A, BOOT_B));
    expect(out.aead).toBeUndefined();
  });

  test("bad ends are typed errors", () => {
    const ends = { srcIp: "10.0.0.1", dstIp: "10.0.0.2", srcBootId: BOOT_A, dstBootId: BOOT_B };
    expect(() => deriveTunnelKey(gcm, { ...ends, srcIp: "nope" })).toThrow(SyntaxError);
    expect(() => deriveTunnelKey(gcm, { ...ends, dstBootId: "short" })).toThrow(RangeError);
    expect(() => deriveTunnelKey(gcm, { ...ends, srcBootId: 3 as unknown as string })).toThrow(TypeError);
  });
});

describe("sameKeyMaterial", () => {
  test("compares algorithms and bytes, not ids", () => {
    const a = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`).current;
    const b = parseKeyFile(`2 rfc4106(gcm(aes)) 0x${GCM_HEX} 128`).current;
    const c = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${GCM_HEX.slice(0, -1)}4 128`).current;
    const d = parseKeyFile(`1 rfc4106(gcm(aes)) 0x${GCM_HEX} 96`).current;
    expect(sameKeyMaterial(a, b)).toBe(true);
    expect(sameKeyMaterial(a, c)).toBe(false);
    expect(sameKeyMaterial(a, d)).toBe(false);
    const e: IpsecKey = { ...a, perTunnel: true };
    expect(sameKeyMaterial(a, e)).toBe(false);
  });
});
