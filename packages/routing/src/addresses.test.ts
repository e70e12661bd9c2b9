import { afterEach, describe, expect, test } from "vitest";
import { NetlinkWriter, NLM_F } from "@dp/core";
import { forbiddenSys, IFA, RTM, setSys } from "@dp/core/internal";
import { Addresses, type AddressRequest, decodeAddress, encodeAddressRequest } from "@dp/routing";
import { CAPTURE_D0, fixtureRequest, forbiddenSocket, normalize, recordingSocket } from "./_test_fixtures.ts";

const ADD = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL;
const DEL = NLM_F.REQUEST | NLM_F.ACK;
const D0 = CAPTURE_D0;

afterEach(() => {
  setSys(undefined);
});

describe("encodeAddressRequest()", () => {
  const cases: [string, number, number, AddressRequest][] = [
    ["addr_add_v4", RTM.NEWADDR, ADD, { cidr: "10.1.0.2/24", index: D0 }],
    ["addr_add_peer", RTM.NEWADDR, ADD, { cidr: "10.1.0.2/32", peer: "10.1.0.1", index: D0 }],
    ["addr_add_v6_nodad", RTM.NEWADDR, ADD, { cidr: "fd00::2/64", flags: ["nodad"], index: D0 }],
    ["addr_add_scope_link", RTM.NEWADDR, ADD, { cidr: "169.254.1.2/16", scope: "link", index: D0 }],
    [
      "addr_add_full",
      RTM.NEWADDR,
      ADD,
      { cidr: "10.1.0.2/24", broadcast: "10.1.0.255", label: "d0:1", flags: ["noprefixroute"], index: D0 },
    ],
    ["addr_del_v4", RTM.DELADDR, DEL, { cidr: "10.1.0.2/24", index: D0 }],
    ["addr_del_v6", RTM.DELADDR, DEL, { cidr: "fd00::2/64", index: D0 }],
  ];
  for (const [fixture, type, flags, request] of cases) {
    test(`encodeAddressRequest() matches iproute2's bytes for ${fixture}`, () => {
      const w = new NetlinkWriter();
      encodeAddressRequest(w, type, flags, 0, request);
      expect(normalize(w.bytes())).toBe(fixtureRequest(fixture, type));
    });
  }

  test("encodeAddressRequest() gives 127.0.0.0/8 host scope by default, as ip does", () => {
    const w = new NetlinkWriter();
    encodeAddressRequest(w, RTM.NEWADDR, ADD, 0, { cidr: "127.0.0.2/8", index: 1 });
    expect(w.bytes()[16 + 3]).toBe(254);
  });

  test("encodeAddressRequest() leaves IFA_ADDRESS out of an IPv4 delete without a prefix length", () => {
    const w = new NetlinkWriter();
    encodeAddressRequest(w, RTM.DELADDR, DEL, 0, { cidr: "10.1.0.2", index: D0 });
    const payload = w.bytes().subarray(16);
    expect(payload[1]).toBe(32);
    const attrs = decodeAddressAttrTypes(payload);
    expect(attrs).toEqual([IFA.LOCAL]);
  });

  test("encodeAddressRequest() puts flags above 0xff in IFA_FLAGS with nodad", () => {
    const w = new NetlinkWriter();
    encodeAddressRequest(w, RTM.NEWADDR, ADD, 0, { cidr: "fd00::2/64", flags: ["nodad", "noprefixroute"], index: D0 });
    const a = decodeAddress(w.bytes().subarray(16));
    expect(a.flags).toEqual(["nodad", "noprefixroute"]);
  });

  test("encodeAddressRequest() rejects a bad index", () => {
    expect(() =>
      encodeAddressRequest(new NetlinkWriter(), RTM.NEWADDR, ADD, 0, { cidr: "10.0.0.1/24", index: 0 }),
    ).toThrow(RangeError);
  });
});

function decodeAddressAttrTypes(payload: Uint8Array): number[] {
  const out: number[] = [];
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (let off = 8; off + 4 <= payload.length; off += (dv.getUint16(off, true) + 3) & ~3)
    out.push(dv.getUint16(off + 2, true));
  return out;
}

/** An ifaddrmsg with attributes, as the kernel sends it. */
function kernelAddress(
  family: number,
  prefixlen: number,
  flags: number,
  scope: number,
  index: number,
  fill: (w: NetlinkWriter) => void,
): Uint8Array {
  const w = new NetlinkWriter();
  w.u8(family).u8(prefixlen).u8(flags).u8(scope).u32(index);
  fill(w);
  return w.bytes();
}

describe("decodeAddress()", () => {
  test("decodeAddress() reads IFA_LOCAL as the address and IFA_ADDRESS as the peer of a point-to-point address", () => {
    const payload = kernelAddress(2, 32, 0x80, 0, 3, (w) => {
      w.attr(IFA.ADDRESS, new Uint8Array([10, 1, 0, 1]));
      w.attr(IFA.LOCAL, new Uint8Array([10, 1, 0, 2]));
      w.attrString(IFA.LABEL, "d0");
      w.attrU32(IFA.FLAGS, 0x80);
      w.attr(IFA.CACHEINFO, new Uint8Array(16).fill(0xff));
    });
    expect(decodeAddress(payload)).toEqual({
      index: 3,
      family: 4,
      address: "10.1.0.2/32",
      prefixLength: 32,
      peer: "10.1.0.1",
      label: "d0",
      scope: 0,
      scopeName: "global",
      flags: ["permanent"],
      validLifetime: Infinity,
      preferredLifetime: Infinity,
    });
  });

  test("decodeAddress() leaves the peer out when IFA_LOCAL equals IFA_ADDRESS", () => {
    const payload = kernelAddress(2, 24, 0x81, 253, 3, (w) => {
      w.attr(IFA.ADDRESS, new Uint8Array([10, 1, 0, 3]));
      w.attr(IFA.LOCAL, new Uint8Array([10, 1, 0, 3]));
      w.attr(IFA.BROADCAST, new Uint8Array([10, 1, 0, 255]));
    });
    const a = decodeAddress(payload);
    expect(a.peer).toBeUndefined();
    expect(a.broadcast).toBe("10.1.0.255");
    expect(a.flags).toEqual(["secondary", "permanent"]);
    expect(a.scopeName).toBe("link");
  });

  test("decodeAddress() reads an IPv6 address from IFA_ADDRESS, IFA_FLAGS over ifa_flags and finite lifetimes", () => {
    const payload = kernelAddress(10, 64, 0x42, 0, 4, (w) => {
      w.attr(IFA.ADDRESS, new Uint8Array([0xfd, 0, ...new Array<number>(13).fill(0), 2]));
      const ci = new Uint8Array(16);
      const dv = new DataView(ci.buffer);
      dv.setUint32(0, 100, true);
      dv.setUint32(4, 200, true);
      w.attr(IFA.CACHEINFO, ci);
      w.attrU32(IFA.FLAGS, 0x201);
    });
    const a = decodeAddress(payload);
    expect(a.address).toBe("fd00::2/64");
    expect(a.flags).toEqual(["temporary", "noprefixroute"]);
    expect(a.preferredLifetime).toBe(100);
    expect(a.validLifetime).toBe(200);
  });

  test("decodeAddress() ignores unknown attributes and names no scope for unusual numbers", () => {
    const payload = kernelAddress(2, 8, 0, 100, 1, (w) => {
      w.attr(IFA.LOCAL, new Uint8Array([127, 0, 0, 1]));
      w.attr(200, new Uint8Array([1, 2, 3]));
      w.attrU8(IFA.PROTO, 1);
    });
    const a = decodeAddress(payload);
    expect(a.address).toBe("127.0.0.1/8");
    expect(a.scope).toBe(100);
    expect(a.scopeName).toBeUndefined();
  });

  test("decodeAddress() rejects truncated and non-IP messages", () => {
    expect(() => decodeAddress(new Uint8Array(4))).toThrow(SyntaxError);
    expect(() => decodeAddress(kernelAddress(45, 8, 0, 0, 1, (w) => w.attr(IFA.LOCAL, new Uint8Array([8]))))).toThrow(
      /address family 45/,
    );
    expect(() => decodeAddress(kernelAddress(2, 8, 0, 0, 1, () => {}))).toThrow(/no IFA_LOCAL/);
  });
});

describe("Addresses", () => {
  test("add() resolves the link and sends the bytes ip addr add sends", () => {
    const { nl, sent } = recordingSocket();
    new Addresses({ nl, netns: undefined }).add("10.1.0.2/32", { dev: "d0", peer: "10.1.0.1" });
    expect(sent.map(normalize)).toEqual([fixtureRequest("addr_add_peer", RTM.NEWADDR)]);
  });

  test("delete() sends the bytes ip addr del sends and returns true", () => {
    const { nl, sent } = recordingSocket();
    expect(new Addresses({ nl, netns: undefined }).delete("fd00::2/64", { dev: "d0" })).toBe(true);
    expect(sent.map(normalize)).toEqual([fixtureRequest("addr_del_v6", RTM.DELADDR)]);
  });

  test("delete() returns false when the kernel answers EADDRNOTAVAIL", () => {
    const { nl } = recordingSocket({ fail: { errno: 99, extAck: "ipv4: Address not found" } });
    expect(new Addresses({ nl, netns: undefined }).delete("10.1.0.2/24", { dev: "d0" })).toBe(false);
  });

  test("add() names the address and link when the kernel refuses", () => {
    const { nl } = recordingSocket({ fail: { errno: 17, extAck: "ipv4: Address already assigned" } });
    expect(() => new Addresses({ nl, netns: undefined }).add("10.1.0.2/24", { dev: "d0" })).toThrow(
      'Cannot add address "10.1.0.2/24" to "d0": EEXIST (file exists): ipv4: Address already assigned',
    );
  });

  const bad: [string, () => void, typeof Error, RegExp][] = [
    [
      "a malformed CIDR",
      () => addresses().add("10.1.0.300/24", { dev: "d0" }),
      SyntaxError,
      /Invalid address "10.1.0.300\/24"/,
    ],
    [
      "a prefix length too long",
      () => addresses().add("10.1.0.1/33", { dev: "d0" }),
      SyntaxError,
      /Invalid address "10.1.0.1\/33"/,
    ],
    [
      "a malformed peer",
      () => addresses().add("10.1.0.2/32", { dev: "d0", peer: "10.1.0" }),
      SyntaxError,
      /Invalid peer "10.1.0"/,
    ],
    [
      "a peer of the other family",
      () => addresses().add("10.1.0.2/32", { dev: "d0", peer: "fd00::1" }),
      SyntaxError,
      /Invalid peer "fd00::1"/,
    ],
    [
      "a malformed broadcast",
      () => addresses().add("10.1.0.2/24", { dev: "d0", broadcast: "x" }),
      SyntaxError,
      /Invalid broadcast "x"/,
    ],
    ["a label on IPv6", () => addresses().add("fd00::2/64", { dev: "d0", label: "d0:1" }), TypeError, /only IPv4/],
    [
      "a long label",
      () => addresses().add("10.1.0.2/24", { dev: "d0", label: "d0:0123456789abc" }),
      RangeError,
      /Invalid label/,
    ],
    [
      "a scope out of range",
      () => addresses().add("10.1.0.2/24", { dev: "d0", scope: 256 }),
      RangeError,
      /Invalid scope 256/,
    ],
    [
      "an unknown scope",
      () => addresses().add("10.1.0.2/24", { dev: "d0", scope: "planet" as "link" }),
      TypeError,
      /Invalid scope "planet"/,
    ],
    [
      "an unknown flag",
      () => addresses().add("fd00::2/64", { dev: "d0", flags: ["fast" as "nodad"] }),
      TypeError,
      /Invalid address flag "fast"/,
    ],
    [
      "missing options",
      () => addresses().add("10.1.0.2/24", undefined as unknown as { dev: string }),
      TypeError,
      /"dev"/,
    ],
    [
      "a CIDR that is not a string",
      () => addresses().add(10 as unknown as string, { dev: "d0" }),
      TypeError,
      /expected a CIDR string/,
    ],
    [
      "a malformed CIDR to delete",
      () => addresses().delete("fd00::g/64", { dev: "d0" }),
      SyntaxError,
      /Invalid address "fd00::g\/64"/,
    ],
    ["a bad family to list", () => addresses().list({ family: 5 as 4 }), TypeError, /Invalid family 5/],
  ];
  for (const [what, call, kind, message] of bad) {
    test(`Addresses rejects ${what} before any system call`, () => {
      setSys(forbiddenSys());
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
    });
  }
});

function addresses(): Addresses {
  return new Addresses({ nl: forbiddenSocket(), netns: undefined });
}
