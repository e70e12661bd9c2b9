import { beforeEach, describe, expect, test } from "vitest";
import { createMap, type Fd } from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import { SockHash, SockMap, u32 } from "@dp/maps";
import { bpftoolDump } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

function udpSocket(): Fd {
  const sock = openSocket(2, 2, 0, "udp socket");
  const addr = new Uint8Array(16);
  new DataView(addr.buffer).setUint16(0, 2, true); // AF_INET, port 0
  addr.set([127, 0, 0, 1], 4);
  if (sys().bind(rawFd(sock), addr, 16) !== 0) throw new Error("bind failed");
  return sock;
}

describe("socket maps", () => {
  test("SockMap stores sockets by index and returns distinct cookies; kind brands it", () => {
    using socks = SockMap.create({ name: "t_sockmap", maxEntries: 4 });
    expect(socks.kind).toBe("sockmap");
    using a = udpSocket();
    using b = udpSocket();
    socks.set(0, a).set(2, { fd: b });
    const ca = socks.get(0);
    const cb = socks.get(2);
    expect(typeof ca).toBe("bigint");
    expect(ca).not.toBe(cb);
    expect(new Map(socks)).toEqual(
      new Map([
        [0, ca],
        [2, cb],
      ]),
    );
    expect(
      bpftoolDump(socks.map)
        .filter((e) => e.value !== undefined)
        .map((e) => e.key),
    ).toEqual(["00000000", "02000000"]);
    expect(socks.delete(0)).toBe(true);
    expect(socks.get(0)).toBeUndefined();
    expect(() => socks.set(1, 3 as never)).toThrow(TypeError);
  });

  test("SockHash stores sockets under typed keys; kind brands it", () => {
    using socks = SockHash.create(u32, { name: "t_sockhash", maxEntries: 4 });
    expect(socks.kind).toBe("sockhash");
    using a = udpSocket();
    socks.set(8080, a);
    expect(socks.has(8080)).toBe(true);
    expect([...socks.keys()]).toEqual([8080]);
    expect(socks.deleteMany([8080, 1])).toBe(1);
    expect([...socks]).toEqual([]);
  });

  test("the constructors check the map type", () => {
    using raw = createMap({ type: "sockhash", keySize: 4, valueSize: 8, maxEntries: 1 });
    expect(() => new SockMap(raw)).toThrow(/its type is sockhash, expected sockmap/);
    expect(new SockHash(raw, u32).kind).toBe("sockhash");
  });
});
