// gcConntrack, listConntrack and flushConntrack on maps with the CT maps'
// own specs (from from_container.o), filled directly and by the datapath
// itself under BPF_PROG_TEST_RUN.
import { beforeEach, describe, expect, test } from "vitest";
import { type BpfMap, createMap, readCollectionSpec } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { eth, ipv4, ipv6, packet, tcp, testRun, udp } from "@dp/hooks";
import { countConntrack, flushConntrack, gcConntrack, listConntrack } from "@dp/datapath";
import { DpCtEntry, DpTuple } from "../_gen/datapath.ts";
import { OBJECTS, TestDatapath } from "../programs/_datapath.ts";
import { deleteKeys } from "./_maps.ts";

beforeEach((t) => requireRoot(t));

const SEC = 1_000_000_000n;

/** The CT maps as the object declares them, with a test size. */
function ctMaps(maxEntries: number): { tcp: BpfMap; any: BpfMap; [Symbol.dispose](): void } {
  const spec = readCollectionSpec(OBJECTS.from_container);
  const make = (name: string): BpfMap => {
    const m = spec.maps.get(name);
    if (m === undefined) throw new Error(`from_container.o has no ${name}`);
    return createMap({ ...m.spec, maxEntries });
  };
  const tcpMap = make("dp_ct_tcp");
  const anyMap = make("dp_ct_any");
  return {
    tcp: tcpMap,
    any: anyMap,
    [Symbol.dispose]() {
      tcpMap.close();
      anyMap.close();
    },
  };
}

/** Entry i: 10.<i>:<port> → 10.0.0.1:80 (or UDP 53), expiring at `expires(i)`. */
function fill(map: BpfMap, n: number, nexthdr: number, expires: (i: number) => bigint): void {
  const keys = new Uint8Array(n * DpTuple.size);
  const values = new Uint8Array(n * DpCtEntry.size);
  const kv = new DataView(keys.buffer);
  const vv = new DataView(values.buffer);
  for (let i = 0; i < n; i++) {
    const saddr = new Uint8Array(16);
    saddr.set([0xff, 0xff, 10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff], 10);
    const daddr = new Uint8Array(16);
    daddr.set([0xff, 0xff, 10, 0, 0, 1], 10);
    DpTuple.encode(
      { saddr, daddr, sport: 1024 + (i % 60000), dport: nexthdr === 6 ? 80 : 53, nexthdr, family: 4, scope: 2, pad: 0 },
      kv,
      i * DpTuple.size,
    );
    DpCtEntry.encode(
      {
        expires: expires(i),
        created: 1n,
        tx_packets: BigInt(i),
        tx_bytes: 0n,
        rx_packets: 0n,
        rx_bytes: 0n,
        src_identity: 256 + i,
        rev_nat_index: 0,
        proxy_port: 0,
        state: 2,
        flags: 1,
        tx_flags_seen: 0,
        rx_flags_seen: 0,
        pad: 0,
      },
      vv,
      i * DpCtEntry.size,
    );
  }
  map.updateBatch(keys, values);
}

describe("gcConntrack()", () => {
  test("gcConntrack() removes exactly the entries expired at `now`, over many batches", () => {
    using maps = ctMaps(40_000);
    const now = 1000n * SEC;
    // Odd entries expired (one exactly at `now`), even ones alive; more than one batch of 16384.
    const tcpExpires = (i: number): bigint => (i % 2 === 1 ? (i === 1 ? now : now - BigInt(i)) : now + BigInt(i) + 1n);
    fill(maps.tcp, 35_000, 6, tcpExpires);
    fill(maps.any, 1000, 17, (i) => (i < 100 ? 0n : now + 1n));
    const result = gcConntrack(maps, { now });
    expect(result).toEqual({
      tcp: { removed: 17_500, kept: 17_500, maxEntries: 40_000 },
      any: { removed: 100, kept: 900, maxEntries: 40_000 },
      deleteRatio: 17_500 / 40_000,
      now,
    });
    expect(countConntrack(maps)).toEqual({
      tcp: { entries: 17_500, maxEntries: 40_000 },
      any: { entries: 900, maxEntries: 40_000 },
    });
    const left = listConntrack(maps);
    expect(left).toHaveLength(18_400);
    expect(left.every((e) => e.expires > now)).toBe(true);
    expect(left.filter((e) => e.map === "tcp").every((e) => e.srcIdentity % 2 === 0)).toBe(true);
    // A second pass at the same time finds nothing; a later one the rest.
    expect(gcConntrack(maps, { now }).tcp).toEqual({ removed: 0, kept: 17_500, maxEntries: 40_000 });
    expect(gcConntrack(maps, { now: now + SEC })).toMatchObject({
      tcp: { removed: 17_500, kept: 0 },
      any: { removed: 900, kept: 0 },
    });
  });

  test("gcConntrack() accepts typed maps and rejects maps of another layout", () => {
    using maps = ctMaps(64);
    expect(gcConntrack({ tcp: { map: maps.tcp }, any: maps.any }).tcp.kept).toBe(0);
    using other = createMap({ type: "hash", keySize: 4, valueSize: 64, maxEntries: 8 });
    expect(() => gcConntrack({ tcp: other, any: maps.any })).toThrow(/Invalid conntrack map "tcp"/);
    expect(() => gcConntrack({ tcp: maps.tcp, any: {} as BpfMap })).toThrow(TypeError);
    expect(() => gcConntrack(maps, { now: 5 as unknown as bigint })).toThrow(TypeError);
  });

  test("deleteKeys() skips keys that are already gone and counts the others", () => {
    using maps = ctMaps(64);
    fill(maps.tcp, 4, 6, () => 0n);
    const keys = [...maps.tcp.keys()];
    expect(keys).toHaveLength(4);
    expect(maps.tcp.delete(keys[1] as Uint8Array)).toBe(true);
    expect(deleteKeys(maps.tcp, keys)).toBe(3);
    expect([...maps.tcp.keys()]).toEqual([]);
  });
});

const FAMILIES = [
  { name: "IPv4", a: "10.0.1.1", b: "10.0.1.2", l3: (src: string, dst: string) => ipv4({ src, dst }) },
  { name: "IPv6", a: "fd00::1:1", b: "fd00::1:2", l3: (src: string, dst: string) => ipv6({ src, dst }) },
] as const;

describe.each(FAMILIES)("conntrack of the datapath ($name)", (f) => {
  test("listConntrack() shows the entries from_container created, and gcConntrack() expires them by their lifetimes", () => {
    using dp = new TestDatapath({ timeouts: { syn: 60, any: 30 } });
    dp.addEndpoint({ ip: f.a, ifindex: 101, id: 1, identity: 1001 });
    dp.addEndpoint({ ip: f.b, ifindex: 102, id: 2, identity: 1002 });
    const before = process.hrtime.bigint();
    const syn = packet(eth(), f.l3(f.a, f.b), tcp({ sport: 40000, dport: 80, flags: ["syn"] }), "x");
    const dns = packet(eth(), f.l3(f.a, f.b), udp({ sport: 5353, dport: 53 }), "q");
    expect(testRun(dp.fromContainer, syn, { ctx: { ingressIfindex: 101 } }).verdict).toBe("TC_ACT_OK");
    expect(testRun(dp.fromContainer, dns, { ctx: { ingressIfindex: 101 } }).verdict).toBe("TC_ACT_OK");
    const after = process.hrtime.bigint();
    const maps = { tcp: dp.ctTcp, any: dp.ctAny };
    const entries = listConntrack(maps);
    const family = f.name === "IPv4" ? 4 : 6;
    expect(entries.map(({ expires: _e, created: _c, ...rest }) => rest)).toEqual([
      {
        map: "tcp",
        family,
        protocol: 6,
        saddr: f.a,
        daddr: f.b,
        sport: 40000,
        dport: 80,
        scope: "egress",
        state: "syn-sent",
        flags: [],
        txFlagsSeen: ["SYN"],
        rxFlagsSeen: [],
        txPackets: 1n,
        txBytes: BigInt(syn.length),
        rxPackets: 0n,
        rxBytes: 0n,
        srcIdentity: 1001,
        revNatIndex: 0,
        proxyPort: 0,
      },
      {
        map: "any",
        family,
        protocol: 17,
        saddr: f.a,
        daddr: f.b,
        sport: 5353,
        dport: 53,
        scope: "egress",
        state: "established",
        flags: [],
        txFlagsSeen: [],
        rxFlagsSeen: [],
        txPackets: 1n,
        txBytes: BigInt(dns.length),
        rxPackets: 0n,
        rxBytes: 0n,
        srcIdentity: 1001,
        revNatIndex: 0,
        proxyPort: 0,
      },
    ]);
    for (const e of entries) {
      // The programs' clock is CLOCK_MONOTONIC as of the last tick (at most 10 ms behind).
      expect(e.created >= before - 10_000_000n && e.created <= after).toBe(true);
      expect(e.expires - e.created).toBe((e.map === "tcp" ? 60n : 30n) * SEC);
    }
    expect(listConntrack(maps, { protocol: "UDP", dport: 53, address: f.a })).toHaveLength(1);
    expect(listConntrack(maps, { scope: "ingress" })).toEqual([]);
    // Now: both alive. In 45 s: the UDP entry (30 s) has expired, the SYN (60 s) not.
    expect(gcConntrack(maps)).toMatchObject({ tcp: { removed: 0, kept: 1 }, any: { removed: 0, kept: 1 } });
    expect(gcConntrack(maps, { now: after + 45n * SEC })).toMatchObject({
      tcp: { removed: 0, kept: 1 },
      any: { removed: 1, kept: 0 },
    });
    expect(listConntrack(maps).map((e) => e.protocol)).toEqual([6]);
    expect(gcConntrack(maps, { now: after + 61n * SEC })).toMatchObject({
      tcp: { removed: 1, kept: 0 },
      any: { removed: 0, kept: 0 },
    });
    // The connection's next packet is new again: it creates a fresh entry.
    expect(testRun(dp.fromContainer, syn, { ctx: { ingressIfindex: 101 } }).verdict).toBe("TC_ACT_OK");
    expect(listConntrack(maps)).toHaveLength(1);
  });

  test("flushConntrack() deletes the entries a filter selects, then all", () => {
    using dp = new TestDatapath();
    dp.addEndpoint({ ip: f.a, ifindex: 101, id: 1, identity: 1001 });
    dp.addEndpoint({ ip: f.b, ifindex: 102, id: 2, identity: 1002 });
    for (const dport of [80, 443, 8080]) {
      testRun(dp.fromContainer, packet(eth(), f.l3(f.a, f.b), tcp({ sport: 40000, dport, flags: ["syn"] })), {
        ctx: { ingressIfindex: 101 },
      });
      testRun(dp.fromContainer, packet(eth(), f.l3(f.b, f.a), udp({ sport: 5000, dport })), {
        ctx: { ingressIfindex: 102 },
      });
    }
    const maps = { tcp: dp.ctTcp, any: dp.ctAny };
    expect(flushConntrack(maps, { dport: 443 })).toEqual({ tcp: 1, any: 1 });
    expect(flushConntrack(maps, { saddr: f.b })).toEqual({ tcp: 0, any: 2 });
    expect(
      listConntrack(maps)
        .map((e) => `${e.protocol}/${e.dport}`)
        .sort(),
    ).toEqual(["6/80", "6/8080"]);
    expect(flushConntrack(maps)).toEqual({ tcp: 2, any: 0 });
    expect(listConntrack(maps)).toEqual([]);
  });
});
