import { beforeEach, describe, expect, test } from "vitest";
import { NotSupportedError } from "@dp/core";
import { kernelConfig, netns, requireConfig, requireRoot, type TestNetns, vethPair } from "@dp/core/testing";
import { openXfrm } from "./xfrm.ts";
import type { XfrmStateSpec } from "./types.ts";

beforeEach((t) => requireRoot(t));

function bytes(n: number, start: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}
function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}
const GCM_A = bytes(20, 0x01);
const GCM_B = bytes(20, 0x41);
const AES = bytes(16, 0x10);
const SHA256 = bytes(32, 0x80);

/** `ip xfrm state` inside the namespace, one block per state. */
function ipStates(ns: TestNetns, args: readonly string[] = []): string[] {
  return ns
    .exec("ip", [...args, "xfrm", "state", "list"])
    .split(/\n(?=src )/)
    .filter((b) => b.trim() !== "");
}

function hasConfig(name: string): boolean {
  const v = kernelConfig().get(name);
  return v === "y" || v === "m";
}

describe("larval states (allocspi: works without CONFIG_INET_ESP)", () => {
  test("allocSpi, get, list, delete and flush; ip xfrm state shows what dp made", () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    const a = x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2", reqid: 7, mode: "tunnel", min: 0x100, max: 0x1ff });
    expect(a.spi).toBeGreaterThanOrEqual(0x100);
    expect(a.spi).toBeLessThanOrEqual(0x1ff);
    expect(a).toMatchObject({ family: 4, src: "10.0.0.1", dst: "10.0.0.2", proto: "esp", reqid: 7, mode: "tunnel" });
    const b = x.states.allocSpi({
      src: "fd00::1",
      dst: "fd00::2",
      mark: { value: 0xe00, mask: 0xf00 },
      min: 0x300,
      max: 0x300,
    });
    expect(b.spi).toBe(0x300);
    expect(b.mark).toEqual({ value: 0xe00, mask: 0xf00 });

    const shown = ipStates(ns);
    expect(shown).toHaveLength(2);
    const v4 = shown.find((s) => s.startsWith("src 10.0.0.1 dst 10.0.0.2"));
    expect(v4).toMatch(new RegExp(`proto esp spi 0x${a.spi.toString(16).padStart(8, "0")} reqid 7 mode tunnel`));
    const v6 = shown.find((s) => s.startsWith("src fd00::1 dst fd00::2"));
    expect(v6).toMatch(/proto esp spi 0x00000300 reqid 0 mode transport/);
    expect(v6).toMatch(/mark 0xe00\/0xf00/);

    expect(x.states.get({ dst: "10.0.0.2", spi: a.spi })?.reqid).toBe(7);
    expect(x.states.get({ dst: "fd00::2", spi: 0x300, mark: { value: 0xe00, mask: 0xf00 } })?.family).toBe(6);
    expect(x.states.get({ dst: "10.0.0.9", spi: a.spi })).toBeUndefined();
    expect(
      x.states
        .list()
        .map((s) => s.spi)
        .sort(),
    ).toEqual([a.spi, 0x300].sort());
    expect(x.states.list({ dst: "fd00::2" }).map((s) => s.spi)).toEqual([0x300]);
    expect(x.states.list({ reqid: 7 }).map((s) => s.spi)).toEqual([a.spi]);

    expect(x.states.delete({ dst: "10.0.0.2", spi: a.spi })).toBe(true);
    expect(x.states.delete({ dst: "10.0.0.2", spi: a.spi })).toBe(false);
    expect(ipStates(ns)).toHaveLength(1);
    x.states.flush();
    expect(ipStates(ns)).toHaveLength(0);
    expect(x.states.list()).toEqual([]);
  });

  test("dp reads the larval states ip xfrm state allocspi made", () => {
    using ns = netns();
    ns.exec("ip", [
      "xfrm",
      "state",
      "allocspi",
      "src",
      "10.1.0.1",
      "dst",
      "10.1.0.2",
      "proto",
      "esp",
      "reqid",
      "42",
      "mode",
      "tunnel",
      "min",
      "0x4242",
      "max",
      "0x4242",
    ]);
    ns.exec("ip", [
      "xfrm",
      "state",
      "allocspi",
      "src",
      "10.1.0.1",
      "dst",
      "10.1.0.3",
      "proto",
      "ah",
      "mark",
      "0x5",
      "min",
      "0x500",
      "max",
      "0x500",
    ]);
    using x = openXfrm({ netns: ns.ns });
    const esp = x.states.get({ dst: "10.1.0.2", spi: 0x4242 });
    expect(esp).toMatchObject({
      family: 4,
      src: "10.1.0.1",
      dst: "10.1.0.2",
      proto: "esp",
      spi: 0x4242,
      reqid: 42,
      mode: "tunnel",
    });
    expect(esp?.selector).toEqual({ family: 4, src: "10.1.0.1/32", dst: "10.1.0.2/32" });
    const ah = x.states.list({ proto: "ah" });
    expect(ah).toHaveLength(1);
    expect(ah[0]).toMatchObject({ spi: 0x500, mark: { value: 5, mask: 0xffffffff } });
    x.states.flush("ah");
    expect(x.states.list().map((s) => s.proto)).toEqual(["esp"]);
  });
});

describe("adding a state", () => {
  test("on a kernel without CONFIG_INET_ESP is a NotSupportedError naming it; with ESP it succeeds", () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    const spec: XfrmStateSpec = {
      src: "10.0.0.1",
      dst: "10.0.0.2",
      spi: 3,
      aead: { name: "rfc4106(gcm(aes))", key: GCM_A, icvBits: 128 },
    };
    if (hasConfig("CONFIG_INET_ESP")) {
      x.states.add(spec);
      expect(x.states.get({ dst: "10.0.0.2", spi: 3 })?.aead?.key).toEqual(GCM_A);
      return;
    }
    let err: unknown;
    try {
      x.states.add(spec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotSupportedError);
    expect((err as Error).message).toContain("CONFIG_INET_ESP");
    expect((err as Error).message).toContain("xfrm state 10.0.0.2 esp spi 0x3");
    expect((err as Error).message).not.toContain(hex(GCM_A));
    expect(() => x.states.addMany([spec, { ...spec, spi: 4 }])).toThrow(/specs\[0\] of 2.*CONFIG_INET_ESP/);
    expect(x.states.list()).toEqual([]);
  });

  test("with cbc(aes) and hmac(sha256) (EPROTONOSUPPORT without ESP), for IPv4 and IPv6", () => {
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    for (const [src, dst, config] of [
      ["10.0.0.1", "10.0.0.2", "CONFIG_INET_ESP"],
      ["fd00::1", "fd00::2", "CONFIG_INET6_ESP"],
    ] as const) {
      const spec: XfrmStateSpec = {
        src,
        dst,
        spi: 0x44,
        crypt: { name: "cbc(aes)", key: AES },
        auth: { name: "hmac(sha256)", key: SHA256 },
      };
      if (hasConfig(config)) {
        x.states.add(spec);
        expect(x.states.get({ dst, spi: 0x44 })?.crypt?.key).toEqual(AES);
        continue;
      }
      let err: unknown;
      try {
        x.states.add(spec);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NotSupportedError);
      expect((err as Error).message).toContain(config);
      expect((err as Error).message).toContain(`xfrm state ${dst} esp spi 0x44`);
      expect((err as Error).message).not.toContain(hex(AES));
      expect((err as Error).message).not.toContain(hex(SHA256));
    }
  });
});

describe("states (CONFIG_INET_ESP)", () => {
  test("add, get, list, update, delete and flush", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    const spec: XfrmStateSpec = {
      src: "10.0.0.1",
      dst: "10.0.0.2",
      spi: 0x10,
      reqid: 1,
      mode: "tunnel",
      aead: { name: "rfc4106(gcm(aes))", key: GCM_A, icvBits: 128 },
      mark: { value: 0xe00, mask: 0xf00 },
      outputMark: { value: 0xd00, mask: 0xf00 },
      lifetime: { softPackets: 1000n, hardPackets: 2000n },
    };
    x.states.add(spec);
    expect(() => x.states.add(spec)).toThrow(
      /Cannot add xfrm state 10\.0\.0\.2 esp spi 0x10 mark 0xe00\/0xf00: EEXIST/,
    );
    x.states.add({
      src: "10.0.0.2",
      dst: "10.0.0.1",
      spi: 0x11,
      crypt: { name: "cbc(aes)", key: AES },
      auth: { name: "hmac(sha256)", key: SHA256 },
      replayWindow: 32,
    });
    const got = x.states.get({ dst: "10.0.0.2", spi: 0x10, mark: { value: 0xe00, mask: 0xf00 } });
    expect(got).toMatchObject({
      family: 4,
      reqid: 1,
      mode: "tunnel",
      aead: { name: "rfc4106(gcm(aes))", icvBits: 128 },
      mark: { value: 0xe00, mask: 0xf00 },
      outputMark: { value: 0xd00, mask: 0xf00 },
      lifetime: { softPackets: 1000n, hardPackets: 2000n },
    });
    expect(got?.aead?.key).toEqual(GCM_A);
    const cbc = x.states.get({ dst: "10.0.0.1", spi: 0x11 });
    expect(cbc?.auth).toEqual({ name: "hmac(sha256)", key: SHA256, truncBits: 128 });
    expect(cbc?.replayWindow).toBe(32);
    expect(x.states.list()).toHaveLength(2);

    x.states.update({ ...spec, lifetime: { softPackets: 5000n, hardPackets: 6000n } });
    expect(x.states.get({ dst: "10.0.0.2", spi: 0x10, mark: { value: 0xe00, mask: 0xf00 } })?.lifetime).toEqual({
      softPackets: 5000n,
      hardPackets: 6000n,
    });

    expect(x.states.delete({ dst: "10.0.0.1", spi: 0x11 })).toBe(true);
    expect(x.states.delete({ dst: "10.0.0.1", spi: 0x11 })).toBe(false);
    x.states.flush("esp");
    expect(x.states.list()).toEqual([]);
  });

  test("addMany() installs 600 states in three datagrams and names the spec the kernel refuses", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    const specs: XfrmStateSpec[] = Array.from({ length: 600 }, (_, i) => ({
      src: "10.0.0.1",
      dst: `10.1.${i >> 8}.${i & 255}`,
      spi: 0x100 + i,
      reqid: 1,
      aead: { name: "rfc4106(gcm(aes))", key: GCM_A, icvBits: 128 },
    }));
    x.states.addMany(specs);
    expect(x.states.list({ reqid: 1 })).toHaveLength(600);
    expect(() => x.states.addMany([{ ...specs[0]!, dst: "10.2.0.1" }, specs[5]!])).toThrow(
      /Cannot add xfrm state 10\.1\.0\.5 esp spi 0x105 \(specs\[1\] of 2\): EEXIST/,
    );
    expect(x.states.get({ dst: "10.2.0.1", spi: 0x100 })).toBeDefined();
    x.states.addMany([{ ...specs[5]!, lifetime: { hardPackets: 10n } }], { update: true });
    expect(x.states.get({ dst: "10.1.0.5", spi: 0x105 })?.lifetime).toEqual({ hardPackets: 10n });
  });

  test("ESN with a large window, encapsulation and an interface id", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    x.states.add({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      spi: 0x20,
      esn: true,
      replayWindow: 128,
      aead: { name: "rfc4106(gcm(aes))", key: GCM_A, icvBits: 96 },
      encap: { type: "espinudp", sport: 4500, dport: 4500 },
      ifId: 9,
    });
    const s = x.states.get({ dst: "10.0.0.2", spi: 0x20 });
    expect(s).toMatchObject({
      esn: true,
      replayWindow: 128,
      encap: { type: "espinudp", sport: 4500, dport: 4500 },
      ifId: 9,
    });
    expect(s?.flags).toContain("esn");
    expect(s?.replay?.window).toBe(128);
  });

  test("ip xfrm state shows what dp made, and dp reads what ip made", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using ns = netns();
    using x = openXfrm({ netns: ns.ns });
    x.states.add({
      src: "10.0.0.1",
      dst: "10.0.0.2",
      spi: 0x30,
      reqid: 5,
      mode: "tunnel",
      crypt: { name: "cbc(aes)", key: AES },
      auth: { name: "hmac(sha256)", key: SHA256, truncBits: 128 },
      mark: { value: 0xe00, mask: 0xf00 },
    });
    const [shown] = ipStates(ns);
    expect(shown).toMatch(/^src 10\.0\.0\.1 dst 10\.0\.0\.2/);
    expect(shown).toMatch(/proto esp spi 0x00000030 reqid 5 mode tunnel/);
    expect(shown).toMatch(/mark 0xe00\/0xf00/);
    expect(shown).toContain(`auth-trunc hmac(sha256) 0x${hex(SHA256)} 128`);
    expect(shown).toContain(`enc cbc(aes) 0x${hex(AES)}`);

    ns.exec("ip", [
      "xfrm",
      "state",
      "add",
      "src",
      "fd00::1",
      "dst",
      "fd00::2",
      "proto",
      "esp",
      "spi",
      "0x31",
      "reqid",
      "6",
      "mode",
      "transport",
      "replay-window",
      "64",
      "flag",
      "esn",
      "aead",
      "rfc4106(gcm(aes))",
      `0x${hex(GCM_B)}`,
      "128",
      "output-mark",
      "0xd00",
      "mask",
      "0xf00",
      "limit",
      "byte-hard",
      "1000000",
    ]);
    const s = x.states.get({ dst: "fd00::2", spi: 0x31 });
    expect(s).toMatchObject({
      family: 6,
      src: "fd00::1",
      dst: "fd00::2",
      reqid: 6,
      mode: "transport",
      esn: true,
      replayWindow: 64,
      aead: { name: "rfc4106(gcm(aes))", icvBits: 128 },
      outputMark: { value: 0xd00, mask: 0xf00 },
      lifetime: { hardBytes: 1000000n },
    });
    expect(s?.aead?.key).toEqual(GCM_B);
  });

  test("traffic between two namespaces is encrypted both ways and counted", (t) => {
    requireConfig(t, "CONFIG_INET_ESP");
    using a = netns();
    using b = netns();
    vethPair(a, b, { addressA: "10.99.0.1/24", addressB: "10.99.0.2/24" });
    const A = "10.99.0.1";
    const B = "10.99.0.2";
    const ab: XfrmStateSpec = {
      src: A,
      dst: B,
      spi: 0x1001,
      reqid: 1,
      aead: { name: "rfc4106(gcm(aes))", key: GCM_A, icvBits: 128 },
    };
    const ba: XfrmStateSpec = {
      src: B,
      dst: A,
      spi: 0x1002,
      reqid: 2,
      aead: { name: "rfc4106(gcm(aes))", key: GCM_B, icvBits: 128 },
    };
    using xa = openXfrm({ netns: a.ns });
    using xb = openXfrm({ netns: b.ns });
    for (const x of [xa, xb]) {
      x.states.add(ab);
      x.states.add(ba);
    }
    const policy = (src: string, dst: string, dir: "in" | "out", reqid: number) => ({
      selector: { src: `${src}/32`, dst: `${dst}/32` },
      dir,
      templates: [{ src, dst, proto: "esp" as const, mode: "transport" as const, reqid }],
    });
    xa.policies.add(policy(A, B, "out", 1));
    xa.policies.add(policy(B, A, "in", 2));
    xb.policies.add(policy(B, A, "out", 2));
    xb.policies.add(policy(A, B, "in", 1));

    a.exec("ping", ["-c", "3", "-i", "0.2", "-W", "2", B]);

    const sentA = xa.states.get({ dst: B, spi: 0x1001 });
    const recvB = xb.states.get({ dst: B, spi: 0x1001 });
    const sentB = xb.states.get({ dst: A, spi: 0x1002 });
    const recvA = xa.states.get({ dst: A, spi: 0x1002 });
    for (const s of [sentA, recvB, sentB, recvA]) {
      expect(s?.current.packets).toBeGreaterThanOrEqual(3n);
      expect(s?.current.bytes).toBeGreaterThan(0n);
    }
    expect(sentA?.replay?.oseq).toBeGreaterThanOrEqual(3);
    expect(recvB?.stats).toEqual({ replayWindow: 0, replay: 0, integrityFailed: 0 });
  });
});
