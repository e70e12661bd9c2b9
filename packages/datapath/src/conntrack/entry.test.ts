import { describe, expect, test } from "vitest";
import { readCollectionSpec } from "@dp/core";
import { conntrackTimeoutConstants, CT_TIMEOUTS, decodeConntrackEntry, matchesConntrackFilter } from "@dp/datapath";
import { DpCtEntry, DpTuple } from "../_gen/datapath.ts";

const OBJECT = new URL("../../../../bpf/build/datapath/from_container.o", import.meta.url).pathname;

function mapped(v4: readonly number[]): Uint8Array {
  const out = new Uint8Array(16);
  out.set([0xff, 0xff, ...v4], 10);
  return out;
}

function encode(t: Partial<DpTuple>, v: Partial<DpCtEntry> = {}): [Uint8Array, Uint8Array] {
  const key = new Uint8Array(DpTuple.size);
  const value = new Uint8Array(DpCtEntry.size);
  DpTuple.encode(
    {
      saddr: new Uint8Array(16),
      daddr: new Uint8Array(16),
      sport: 0,
      dport: 0,
      nexthdr: 6,
      family: 4,
      scope: 2,
      pad: 0,
      ...t,
    },
    new DataView(key.buffer),
    0,
  );
  DpCtEntry.encode(
    {
      expires: 0n,
      created: 0n,
      tx_packets: 0n,
      tx_bytes: 0n,
      rx_packets: 0n,
      rx_bytes: 0n,
      src_identity: 0,
      rev_nat_index: 0,
      proxy_port: 0,
      state: 0,
      flags: 0,
      tx_flags_seen: 0,
      rx_flags_seen: 0,
      pad: 0,
      ...v,
    },
    new DataView(value.buffer),
    0,
  );
  return [key, value];
}

describe("decodeConntrackEntry()", () => {
  test("decodeConntrackEntry() decodes every field of a TCP entry", () => {
    const [key, value] = encode(
      { saddr: mapped([10, 0, 1, 1]), daddr: mapped([10, 0, 1, 2]), sport: 40000, dport: 80, scope: 1 },
      {
        expires: 123n,
        created: 45n,
        tx_packets: 3n,
        tx_bytes: 300n,
        rx_packets: 2n,
        rx_bytes: 200n,
        src_identity: 1001,
        state: 3,
        flags: 1 | 2,
        tx_flags_seen: 0x02 | 0x10 | 0x01,
        rx_flags_seen: 0x12,
      },
    );
    expect(decodeConntrackEntry(key, value)).toEqual({
      map: "tcp",
      family: 4,
      protocol: 6,
      saddr: "10.0.1.1",
      daddr: "10.0.1.2",
      sport: 40000,
      dport: 80,
      scope: "ingress",
      state: "closing",
      flags: ["seen-non-syn", "tx-closing"],
      txFlagsSeen: ["FIN", "SYN", "ACK"],
      rxFlagsSeen: ["SYN", "ACK"],
      expires: 123n,
      created: 45n,
      txPackets: 3n,
      txBytes: 300n,
      rxPackets: 2n,
      rxBytes: 200n,
      srcIdentity: 1001,
      revNatIndex: 0,
      proxyPort: 0,
    });
  });

  test("decodeConntrackEntry() decodes an IPv6 ICMPv6 echo entry into the any map", () => {
    const saddr = new Uint8Array(16);
    saddr.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
    const [key, value] = encode(
      { saddr, daddr: saddr, sport: 0, dport: 77, nexthdr: 58, family: 6, scope: 2 },
      { state: 2 },
    );
    expect(decodeConntrackEntry(key, value)).toMatchObject({
      map: "any",
      family: 6,
      protocol: 58,
      saddr: "fd00::1:1",
      dport: 77,
      scope: "egress",
      state: "established",
    });
  });

  test("decodeConntrackEntry() rejects buffers of the wrong size", () => {
    expect(() => decodeConntrackEntry(new Uint8Array(39), new Uint8Array(64))).toThrow(RangeError);
    expect(() => decodeConntrackEntry(new Uint8Array(40), [] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe("matchesConntrackFilter()", () => {
  const [key, value] = encode({
    saddr: mapped([10, 0, 1, 1]),
    daddr: mapped([192, 0, 2, 7]),
    sport: 40000,
    dport: 443,
    scope: 2,
  });
  const entry = decodeConntrackEntry(key, value);

  test.each([
    [{}, true],
    [{ address: "10.0.1.1" }, true],
    [{ address: "192.0.2.0/24" }, true],
    [{ address: "10.0.2.0/24" }, false],
    [{ saddr: "10.0.0.0/16" }, true],
    [{ saddr: "192.0.2.7" }, false],
    [{ daddr: "192.0.2.6/31" }, true],
    [{ daddr: "192.0.2.4/31" }, false],
    [{ address: "::ffff:10.0.1.1" }, false], // written as IPv6: another family
    [{ address: "fd00::/8" }, false],
    [{ port: 443 }, true],
    [{ port: 40000 }, true],
    [{ sport: 443 }, false],
    [{ dport: 443, protocol: "TCP" }, true],
    [{ protocol: 17 }, false],
    [{ protocol: "UDP" }, false],
    [{ scope: "egress" }, true],
    [{ scope: "ingress" }, false],
    [{ family: 4 }, true],
    [{ family: 6 }, false],
    [
      { saddr: "10.0.1.1", daddr: "192.0.2.7", sport: 40000, dport: 443, protocol: 6, scope: "egress", family: 4 },
      true,
    ],
  ] as const)("matchesConntrackFilter() with %j is %s", (filter, expected) => {
    expect(matchesConntrackFilter(entry, filter)).toBe(expected);
  });

  test("matchesConntrackFilter() rejects bad filters with errors naming the field", () => {
    expect(() => matchesConntrackFilter(entry, { port: 70000 })).toThrow(/"port"/);
    expect(() => matchesConntrackFilter(entry, { dport: 70000 })).toThrow(RangeError);
    expect(() => matchesConntrackFilter(entry, { protocol: "GRE" as "TCP" })).toThrow(TypeError);
    expect(() => matchesConntrackFilter(entry, { address: "10.0.0.300" })).toThrow(SyntaxError);
    expect(() => matchesConntrackFilter(entry, { scope: "out" as "egress" })).toThrow(/"scope"/);
  });
});

describe("CT_TIMEOUTS", () => {
  test("CT_TIMEOUTS are the datapath objects' defaults (bpf/include/dp/config.h)", () => {
    const spec = readCollectionSpec(OBJECT);
    expect(conntrackTimeoutConstants()).toEqual({
      dp_ct_timeout_tcp: spec.constants.get("dp_ct_timeout_tcp"),
      dp_ct_timeout_syn: spec.constants.get("dp_ct_timeout_syn"),
      dp_ct_timeout_close: spec.constants.get("dp_ct_timeout_close"),
      dp_ct_timeout_any: spec.constants.get("dp_ct_timeout_any"),
    });
    expect(CT_TIMEOUTS).toMatchObject({ tcp: 21600, tcpSyn: 60, tcpFin: 10, any: 60 });
  });

  test("conntrackTimeoutConstants() rejects lifetimes that are not whole seconds", () => {
    expect(() => conntrackTimeoutConstants({ any: 1.5 })).toThrow(/"any"/);
    expect(() => conntrackTimeoutConstants({ tcp: 2 ** 32 })).toThrow(RangeError);
    expect(() => conntrackTimeoutConstants({ tcpSyn: "60" as unknown as number })).toThrow(TypeError);
  });
});
