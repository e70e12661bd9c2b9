import { describe, expect, test } from "vitest";
import { deriveTunnelKey, parseKeyFile } from "./keys.ts";
import {
  buildDefaultDropPolicies,
  buildMeshXfrm,
  buildPeerXfrm,
  decryptMark,
  encryptMark,
  IPSEC_FWD_PRIORITY,
  IPSEC_MARK,
  type IpsecNode,
  parseIpsecMark,
} from "./scheme.ts";

const GCM = "00112233445566778899aabbccddeeff00112233";
const BOOT_A = "0a5d1f52-4c4f-4b1a-9a4e-2b9a3f6f1c11";
const BOOT_B = "7e9c0d33-1d2e-4f5a-8b6c-9d0e1f2a3b44";
const key3 = parseKeyFile(`3 rfc4106(gcm(aes)) 0x${GCM} 128`).current;
const key3plus = parseKeyFile(`3+ rfc4106(gcm(aes)) 0x${GCM} 128`).current;

const local: IpsecNode = {
  id: 1,
  ips: ["192.168.0.1", "fd00::1"],
  podCidrs: ["10.1.0.0/24", "fd01::/64"],
  bootId: BOOT_A,
};
const remote: IpsecNode = {
  id: 0xbeef,
  ips: ["192.168.0.2", "fd00::2"],
  podCidrs: ["10.2.0.0/24", "fd02::/64"],
  bootId: BOOT_B,
};

describe("marks", () => {
  // Cilium, pkg/datapath/linux/linux_defaults: RouteMarkEncrypt = 0x0E00, RouteMarkDecrypt = 0x0D00,
  // IPsecXFRMMarkSPIShift = 12, IPsecMarkMaskNodeID = 0xFFFF0000, IPsecMarkMaskOut = 0xFF00 | 0xFFFF0000,
  // IPsecMarkMaskIn = 0x0F00 | 0xFFFF0000, OutputMarkMask = 0xFFFFFF00, IPsecFwdPriority = 0x0B9F.
  test("the constants", () => {
    expect(IPSEC_MARK.encrypt).toBe(0x0e00);
    expect(IPSEC_MARK.decrypt).toBe(0x0d00);
    expect(IPSEC_MARK.encryptMask).toBe(0xffffff00);
    expect(IPSEC_MARK.decryptMask).toBe(0xffff0f00);
    expect(IPSEC_MARK.outputMarkMask).toBe(0xffffff00);
    expect(IPSEC_MARK.keyShift).toBe(12);
    expect(IPSEC_FWD_PRIORITY).toBe(2975);
  });

  test("encrypt mark: node id << 16 | spi << 12 | 0x0E00 (generateEncryptMark)", () => {
    expect(encryptMark(1, 0xbeef)).toEqual({ value: 0xbeef1e00, mask: 0xffffff00 });
    expect(encryptMark(15, 0xffff)).toEqual({ value: 0xfffffe00, mask: 0xffffff00 });
    expect(encryptMark(3, 0)).toEqual({ value: 0x3e00, mask: 0xffffff00 });
  });

  test("decrypt mark: node id << 16 | 0x0D00 (generateDecryptMark)", () => {
    expect(decryptMark(0xbeef)).toEqual({ value: 0xbeef0d00, mask: 0xffff0f00 });
  });

  test("out-of-range ids are RangeErrors naming the id", () => {
    expect(() => encryptMark(0, 1)).toThrow(/key id 0/);
    expect(() => encryptMark(16, 1)).toThrow(RangeError);
    expect(() => encryptMark(1, 0x10000)).toThrow(/node id 65536/);
    expect(() => decryptMark(-1)).toThrow(RangeError);
    expect(() => decryptMark("1" as unknown as number)).toThrow(TypeError);
  });

  test("parseIpsecMark reads kind, key id and node id back", () => {
    expect(parseIpsecMark(encryptMark(7, 0x1234))).toEqual({ kind: "encrypt", keyId: 7, nodeId: 0x1234 });
    expect(parseIpsecMark(decryptMark(0x1234))).toEqual({ kind: "decrypt", keyId: 0, nodeId: 0x1234 });
    expect(parseIpsecMark({ value: 0x0e00, mask: 0x0f00 })).toEqual({ kind: "encrypt", keyId: 0, nodeId: 0 });
    expect(parseIpsecMark({ value: 0x0200, mask: 0x0f00 })).toEqual({ kind: "toProxy", keyId: 0, nodeId: 0 });
    expect(parseIpsecMark({ value: 0x0e00, mask: 0x0e00 })).toBeUndefined();
    expect(parseIpsecMark({ value: 0x0a00 })).toBeUndefined();
    expect(parseIpsecMark(undefined)).toBeUndefined();
  });
});

describe("buildPeerXfrm", () => {
  test("a global key: the states and policies of one IPv4 peer", () => {
    const l: IpsecNode = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
    const r: IpsecNode = { id: 0xbeef, ips: ["192.168.0.2"], podCidrs: ["10.2.0.0/24", "10.3.0.0/24"] };
    const { states, policies } = buildPeerXfrm(l, r, key3);
    expect(states).toEqual([
      {
        src: "192.168.0.1",
        dst: "192.168.0.2",
        proto: "esp",
        spi: 3,
        reqid: 1,
        mode: "tunnel",
        aead: key3.aead,
        mark: { value: 0xbeef3e00, mask: 0xffffff00 },
        outputMark: { value: 0x0e00, mask: 0xffffff00 },
      },
      {
        src: "192.168.0.2",
        dst: "192.168.0.1",
        proto: "esp",
        spi: 3,
        reqid: 1,
        mode: "tunnel",
        aead: key3.aead,
        mark: { value: 0xbeef0d00, mask: 0xffff0f00 },
        outputMark: { value: 0x0d00, mask: 0xffffff00 },
      },
    ]);
    const tmplOut = {
      src: "192.168.0.1",
      dst: "192.168.0.2",
      family: 4,
      proto: "esp",
      spi: 3,
      reqid: 1,
      mode: "tunnel",
      level: "required",
    };
    expect(policies).toEqual([
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "10.2.0.0/24" },
        dir: "out",
        mark: { value: 0xbeef3e00, mask: 0xffffff00 },
        templates: [tmplOut],
      },
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "10.3.0.0/24" },
        dir: "out",
        mark: { value: 0xbeef3e00, mask: 0xffffff00 },
        templates: [tmplOut],
      },
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "10.1.0.0/24" },
        dir: "in",
        mark: { value: 0x0200, mask: 0x0f00 },
        templates: [
          { src: "0.0.0.0", dst: "192.168.0.1", family: 4, proto: "esp", mode: "tunnel", reqid: 1, level: "use" },
        ],
      },
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "10.1.0.0/24" },
        dir: "in",
        mark: { value: 0x0d00, mask: 0x0f00 },
        templates: [
          {
            src: "0.0.0.0",
            dst: "192.168.0.1",
            family: 4,
            proto: "esp",
            mode: "tunnel",
            reqid: 1,
            level: "required",
          },
        ],
      },
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "0.0.0.0/0" },
        dir: "fwd",
        priority: 0x0b9f,
        templates: [{ dst: "192.168.0.1", family: 4, proto: "esp", mode: "tunnel", reqid: 1, level: "use" }],
      },
    ]);
  });

  test("per-tunnel keys: derived per direction, ESN and a 1024-packet replay window", () => {
    const { states } = buildPeerXfrm(local, remote, key3plus);
    expect(states).toHaveLength(4);
    const [out4, in4, out6, in6] = states;
    expect(out4?.esn).toBe(true);
    expect(out4?.replayWindow).toBe(1024);
    expect(in4?.esn).toBe(true);
    const outKey = deriveTunnelKey(key3plus, {
      srcIp: "192.168.0.1",
      dstIp: "192.168.0.2",
      srcBootId: BOOT_A,
      dstBootId: BOOT_B,
    });
    const inKey = deriveTunnelKey(key3plus, {
      srcIp: "192.168.0.2",
      dstIp: "192.168.0.1",
      srcBootId: BOOT_B,
      dstBootId: BOOT_A,
    });
    expect(out4?.aead?.key).toEqual(outKey.aead?.key);
    expect(in4?.aead?.key).toEqual(inKey.aead?.key);
    expect(out6?.dst).toBe("fd00::2");
    expect(in6?.src).toBe("fd00::2");
    expect(out6?.aead?.key).not.toEqual(out4?.aead?.key);
  });

  test("the peer's in state has the key the local out state uses, seen from the other side", () => {
    const ab = buildPeerXfrm(local, remote, key3plus).states;
    const ba = buildPeerXfrm({ ...remote }, { ...local }, key3plus).states;
    // A's out (A->B) is B's in (A->B).
    expect(ab[0]?.aead?.key).toEqual(ba[1]?.aead?.key);
    expect(ab[1]?.aead?.key).toEqual(ba[0]?.aead?.key);
  });

  test("only families both nodes have; pod CIDRs of that family", () => {
    const l: IpsecNode = { id: 1, ips: ["fd00::1"], podCidrs: ["10.1.0.0/24", "fd01::/64"] };
    const { states, policies } = buildPeerXfrm(l, remote, key3);
    expect(states.map((s) => s.dst)).toEqual(["fd00::2", "fd00::1"]);
    expect(policies.filter((p) => p.dir === "out").map((p) => p.selector.dst)).toEqual(["fd02::/64"]);
    expect(policies.filter((p) => p.dir === "in").map((p) => p.selector.dst)).toEqual(["fd01::/64", "fd01::/64"]);
    expect(policies.find((p) => p.dir === "fwd")?.selector).toEqual({ family: 6, src: "::/0", dst: "::/0" });
  });

  test("options: reqid, zero output mark, no proxy policy", () => {
    const { states, policies } = buildPeerXfrm(local, remote, key3, {
      reqid: 7,
      zeroOutputMark: true,
      proxyInPolicy: false,
    });
    expect(states.every((s) => s.reqid === 7)).toBe(true);
    expect(states[1]?.outputMark).toEqual({ value: 0, mask: 0xffffff00 });
    expect(policies.flatMap((p) => p.templates ?? []).every((t) => t.reqid === 7)).toBe(true);
    expect(policies.some((p) => p.mark?.value === 0x0200)).toBe(false);
  });

  test("bad input is a typed error before anything is built", () => {
    expect(() => buildPeerXfrm(local, { ...remote, bootId: undefined as unknown as string }, key3plus)).toThrow(
      /bootId/,
    );
    expect(() => buildPeerXfrm({ ...local, id: 0 }, remote, key3)).toThrow(RangeError);
    expect(() => buildPeerXfrm(local, { ...remote, ips: ["1.2.3.4", "1.2.3.5"] }, key3)).toThrow(/one per family/);
    expect(() => buildPeerXfrm(local, { ...remote, ips: ["x"] }, key3)).toThrow(SyntaxError);
    expect(() => buildPeerXfrm(local, { ...remote, podCidrs: ["10.0.0.0/33"] }, key3)).toThrow(SyntaxError);
    expect(() => buildPeerXfrm(local, remote, { ...key3, id: 16 })).toThrow(RangeError);
  });
});

describe("buildDefaultDropPolicies", () => {
  test("out, any to any, encrypt magic, block, priority 100", () => {
    expect(buildDefaultDropPolicies([4, 6])).toEqual([
      {
        selector: { family: 4, src: "0.0.0.0/0", dst: "0.0.0.0/0" },
        dir: "out",
        priority: 100,
        action: "block",
        mark: { value: 0x0e00, mask: 0x0f00 },
      },
      {
        selector: { family: 6, src: "::/0", dst: "::/0" },
        dir: "out",
        priority: 100,
        action: "block",
        mark: { value: 0x0e00, mask: 0x0f00 },
      },
    ]);
  });
});

describe("buildMeshXfrm", () => {
  const key4 = parseKeyFile(`4 rfc4106(gcm(aes)) 0x${GCM} 128`).current;
  const l: IpsecNode = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
  const peer = (id: number): IpsecNode => ({ id, ips: [`192.168.0.${id}`], podCidrs: [`10.${id}.0.0/24`] });

  test("shared in and fwd policies once; one drop policy per family", () => {
    const { states, policies } = buildMeshXfrm(l, [
      { node: peer(2), keys: [key3] },
      { node: peer(3), keys: [key3] },
    ]);
    expect(states).toHaveLength(4);
    expect(policies.filter((p) => p.dir === "out" && p.action !== "block")).toHaveLength(2);
    expect(policies.filter((p) => p.dir === "in")).toHaveLength(2);
    expect(policies.filter((p) => p.dir === "fwd")).toHaveLength(1);
    expect(policies.filter((p) => p.action === "block")).toHaveLength(1);
  });

  test("egress keys: in states for every key, out states and policies only for the peer's", () => {
    const { states, policies } = buildMeshXfrm(l, [{ node: peer(2), keys: [key3, key4], egressKeys: [3] }]);
    const kinds = states.map((s) => `${parseIpsecMark(s.mark)?.kind} ${s.spi}`);
    expect(kinds.sort()).toEqual(["decrypt 3", "decrypt 4", "encrypt 3"]);
    expect(
      policies.filter((p) => p.dir === "out" && p.action !== "block").map((p) => parseIpsecMark(p.mark)?.keyId),
    ).toEqual([3]);
  });

  test("the shared in policy accepts every peer: its template names no source", () => {
    const { policies } = buildMeshXfrm(l, [
      { node: peer(2), keys: [key3] },
      { node: peer(3), keys: [key3] },
    ]);
    const decrypt = policies.filter((p) => p.dir === "in" && parseIpsecMark(p.mark)?.kind === "decrypt");
    expect(decrypt).toHaveLength(1);
    expect(decrypt[0]?.templates).toEqual([
      { src: "0.0.0.0", dst: "192.168.0.1", family: 4, proto: "esp", mode: "tunnel", reqid: 1, level: "required" },
    ]);
    const v6 = buildMeshXfrm({ id: 1, ips: ["fd00::1"], podCidrs: ["fd01::/64"] }, [
      { node: { id: 2, ips: ["fd00::2"], podCidrs: ["fd02::/64"] }, keys: [key3] },
      { node: { id: 3, ips: ["fd00::3"], podCidrs: ["fd03::/64"] }, keys: [key3] },
    ]).policies.filter((p) => p.dir === "in");
    expect(v6.map((p) => p.templates?.[0]?.src)).toEqual(["::", "::"]);
  });

  test("two peers with one node id are refused", () => {
    expect(() =>
      buildMeshXfrm(l, [
        { node: peer(2), keys: [key3] },
        { node: { ...peer(3), id: 2 }, keys: [key3] },
      ]),
    ).toThrow(/used twice/);
  });
});
