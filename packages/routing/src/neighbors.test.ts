import { afterEach, describe, expect, test } from "vitest";
import { NetlinkWriter, NLM_F } from "@dp/core";
import { forbiddenSys, NDA, RTM, setSys } from "@dp/core/internal";
import { decodeNeighbor, encodeNeighborRequest, type NeighborRequest, Neighbors } from "@dp/routing";
import { CAPTURE_D0, fixtureRequest, forbiddenSocket, normalize, recordingSocket } from "./_test_fixtures.ts";

const ADD = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL;
const REPLACE = NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE;
const DEL = NLM_F.REQUEST | NLM_F.ACK;
const D0 = CAPTURE_D0;

afterEach(() => {
  setSys(undefined);
});

describe("encodeNeighborRequest()", () => {
  const cases: [string, number, number, NeighborRequest][] = [
    ["neigh_add_v4", RTM.NEWNEIGH, ADD, { ip: "10.1.0.1", mac: "02:00:00:00:00:01", index: D0, state: "permanent" }],
    ["neigh_replace_v4", RTM.NEWNEIGH, REPLACE, { ip: "10.1.0.1", mac: "02:00:00:00:00:02", index: D0 }],
    ["neigh_add_v6", RTM.NEWNEIGH, ADD, { ip: "fd00::1", mac: "02:00:00:00:00:03", index: D0 }],
    ["neigh_add_stale", RTM.NEWNEIGH, ADD, { ip: "10.1.0.3", mac: "02:00:00:00:00:04", index: D0, state: "stale" }],
    ["neigh_del_v4", RTM.DELNEIGH, DEL, { ip: "10.1.0.1", index: D0 }],
  ];
  for (const [fixture, type, flags, request] of cases) {
    test(`encodeNeighborRequest() matches iproute2's bytes for ${fixture}`, () => {
      const w = new NetlinkWriter();
      encodeNeighborRequest(w, type, flags, 0, request);
      expect(normalize(w.bytes())).toBe(fixtureRequest(fixture, type));
    });
  }

  test("encodeNeighborRequest() rejects a bad index", () => {
    expect(() =>
      encodeNeighborRequest(new NetlinkWriter(), RTM.NEWNEIGH, ADD, 0, { ip: "10.0.0.1", index: -1 }),
    ).toThrow(RangeError);
  });
});

/** An ndmsg with attributes, as the kernel sends it. */
function kernelNeighbor(
  family: number,
  index: number,
  state: number,
  flags: number,
  fill: (w: NetlinkWriter) => void,
): Uint8Array {
  const w = new NetlinkWriter();
  w.u8(family).u8(0).u16(0).s32(index).u16(state).u8(flags).u8(1);
  fill(w);
  return w.bytes();
}

describe("decodeNeighbor()", () => {
  test("decodeNeighbor() reads an IPv6 router entry and ignores cache info and unknown attributes", () => {
    const payload = kernelNeighbor(10, 4, 0x04, 0x80, (w) => {
      w.attr(NDA.DST, new Uint8Array([0xfd, 0, ...new Array<number>(13).fill(0), 1]));
      w.attr(NDA.LLADDR, new Uint8Array([2, 0, 0, 0, 0, 0xab]));
      w.attr(NDA.CACHEINFO, new Uint8Array(16));
      w.attrU32(NDA.PROBES, 3);
      w.attr(99, new Uint8Array([1]));
    });
    expect(decodeNeighbor(payload)).toEqual({
      index: 4,
      family: 6,
      ip: "fd00::1",
      mac: "02:00:00:00:00:ab",
      state: "stale",
      flags: ["router"],
    });
  });

  test("decodeNeighbor() leaves the MAC out of an unresolved entry", () => {
    const payload = kernelNeighbor(2, 3, 0x20, 0, (w) => w.attr(NDA.DST, new Uint8Array([10, 0, 0, 9])));
    expect(decodeNeighbor(payload)).toEqual({ index: 3, family: 4, ip: "10.0.0.9", state: "failed", flags: [] });
  });

  test("decodeNeighbor() reads a bridge FDB entry with its VLAN, master and extended flags", () => {
    const payload = kernelNeighbor(7, 5, 0x80, 0x06, (w) => {
      w.attr(NDA.LLADDR, new Uint8Array([2, 0, 0, 0, 0, 1]));
      w.attrU16(NDA.VLAN, 10);
      w.attrU32(NDA.MASTER, 2);
      w.attrU32(NDA.FLAGS_EXT, 0x02);
    });
    expect(decodeNeighbor(payload)).toEqual({
      index: 5,
      family: "bridge",
      mac: "02:00:00:00:00:01",
      state: "permanent",
      flags: ["self", "master", "locked"],
      vlan: 10,
      master: 2,
    });
  });

  test("decodeNeighbor() names state 0 none and other families other", () => {
    const n = decodeNeighbor(kernelNeighbor(45, 1, 0, 0, () => {}));
    expect(n.state).toBe("none");
    expect(n.family).toBe("other");
  });

  test("decodeNeighbor() rejects a truncated message", () => {
    expect(() => decodeNeighbor(new Uint8Array(8))).toThrow(SyntaxError);
  });
});

describe("Neighbors", () => {
  test("replace() resolves the link and sends the bytes ip neigh replace sends", () => {
    const { nl, sent } = recordingSocket();
    new Neighbors({ nl, netns: undefined }).replace({ ip: "10.1.0.1", mac: "02:00:00:00:00:02", dev: "d0" });
    expect(sent.map(normalize)).toEqual([fixtureRequest("neigh_replace_v4", RTM.NEWNEIGH)]);
  });

  test("delete() returns false when the kernel answers ENOENT", () => {
    const { nl, sent } = recordingSocket({ fail: { errno: 2 } });
    expect(new Neighbors({ nl, netns: undefined }).delete({ ip: "10.1.0.1", dev: "d0" })).toBe(false);
    expect(sent.map(normalize)).toEqual([fixtureRequest("neigh_del_v4", RTM.DELNEIGH)]);
  });

  test("get() returns undefined when the kernel answers ENOENT", () => {
    const { nl } = recordingSocket({ fail: { errno: 2 } });
    expect(new Neighbors({ nl, netns: undefined }).get({ ip: "10.1.0.1", dev: "d0" })).toBeUndefined();
  });

  test("get() sends state 0 without an ACK request and decodes the reply", () => {
    const reply = kernelNeighbor(2, D0, 0x02, 0, (w) => {
      w.attr(NDA.DST, new Uint8Array([10, 1, 0, 1]));
      w.attr(NDA.LLADDR, new Uint8Array([2, 0, 0, 0, 0, 1]));
    });
    const { nl, sent } = recordingSocket({ reply: { type: RTM.NEWNEIGH, flags: 0, seq: 1, pid: 0, payload: reply } });
    expect(new Neighbors({ nl, netns: undefined }).get({ ip: "10.1.0.1", dev: "d0" })?.state).toBe("reachable");
    const dv = new DataView(sent[0]!.buffer);
    expect(dv.getUint16(6, true)).toBe(NLM_F.REQUEST);
    expect(dv.getUint16(16 + 8, true)).toBe(0);
  });

  test("add() names the entry when the kernel refuses", () => {
    const { nl } = recordingSocket({ fail: { errno: 17 } });
    expect(() =>
      new Neighbors({ nl, netns: undefined }).add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0" }),
    ).toThrow('Cannot add neighbour "10.1.0.1" on "d0": EEXIST (file exists)');
  });

  const bad: [string, () => void, typeof Error, RegExp][] = [
    [
      "a malformed MAC",
      () => neighbors().add({ ip: "10.1.0.1", mac: "02:00:00:00:01", dev: "d0" }),
      SyntaxError,
      /Invalid mac "02:00:00:00:01"/,
    ],
    ["a missing MAC", () => neighbors().add({ ip: "10.1.0.1", dev: "d0" } as never), TypeError, /Invalid mac/],
    [
      "a malformed IP",
      () => neighbors().replace({ ip: "10.1.0", mac: "02:00:00:00:00:01", dev: "d0" }),
      SyntaxError,
      /Invalid ip "10.1.0"/,
    ],
    [
      "an unknown state",
      () => neighbors().add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0", state: "fresh" as "stale" }),
      TypeError,
      /Invalid neighbour state "fresh"/,
    ],
    [
      "a missing dev",
      () => neighbors().add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01" } as never),
      TypeError,
      /Invalid add\(\) dev: expected an interface name or index/,
    ],
    [
      "a malformed IP to delete",
      () => neighbors().delete({ ip: "fd00:::1", dev: "d0" }),
      SyntaxError,
      /Invalid ip "fd00:::1"/,
    ],
    ["a malformed IP to get", () => neighbors().get({ ip: "x", dev: "d0" }), SyntaxError, /Invalid ip "x"/],
    ["a bad family to list", () => neighbors().list({ family: 0 as 4 }), TypeError, /Invalid family 0/],
  ];
  for (const [what, call, kind, message] of bad) {
    test(`Neighbors rejects ${what} before any system call`, () => {
      setSys(forbiddenSys());
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
    });
  }
});

function neighbors(): Neighbors {
  return new Neighbors({ nl: forbiddenSocket(), netns: undefined });
}
