import { beforeEach, describe, expect, test } from "vitest";
import { createMap, MAP_FLAGS } from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;

describe("system call gateway", () => {
  test("mmap() of a BPF_F_MMAPABLE array shares memory with the map in both directions", () => {
    using map = createMap({
      name: "t_mmap",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 512,
      flags: MAP_FLAGS.mmapable,
    });
    const s = sys();
    const len = 4096;
    const addr = s.mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED, rawFd(map.fd), 0);
    expect(addr).toBeGreaterThan(0);
    try {
      const view = new DataView(s.view(addr, len));
      const key = new Uint8Array([3, 0, 0, 0]);
      map.set(key, new Uint8Array([0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0]));
      expect(view.getUint32(3 * 8, true)).toBe(0xdeadbeef);
      view.setUint32(5 * 8, 0x1234, true);
      expect(map.get(new Uint8Array([5, 0, 0, 0]))?.[0]).toBe(0x34);
    } finally {
      expect(s.munmap(addr, len)).toBe(0);
    }
  });

  test("mmap() failures return -errno", () => {
    expect(sys().mmap(4096, PROT_READ, MAP_SHARED, 1_000_000, 0)).toBe(-9); // EBADF
  });

  test("setsockopt() and getsockopt() round-trip a netlink socket option", () => {
    using sock = openSocket(16, 3, 0, "netlink socket");
    const s = sys();
    const one = new Uint8Array(4);
    new DataView(one.buffer).setUint32(0, 1, true);
    // SOL_NETLINK (270), NETLINK_EXT_ACK (11)
    expect(s.setsockopt(rawFd(sock), 270, 11, one, 4)).toBe(0);
    const out = new Uint8Array(4);
    const len = new Uint32Array([4]);
    expect(s.getsockopt(rawFd(sock), 270, 11, out, len)).toBe(0);
    expect(new DataView(out.buffer).getUint32(0, true)).toBe(1);
    // bind to the kernel-assigned port id and read it back
    const sa = new Uint8Array(12);
    new DataView(sa.buffer).setUint16(0, 16, true);
    expect(s.bind(rawFd(sock), sa, 12)).toBe(0);
    const got = new Uint8Array(12);
    const glen = new Uint32Array([12]);
    expect(s.getsockname(rawFd(sock), got, glen)).toBe(0);
    expect(new DataView(got.buffer).getUint32(4, true)).toBeGreaterThan(0);
    expect(s.setsockopt(rawFd(sock), 270, 9999, one, 4)).toBe(-92); // ENOPROTOOPT
  });
});
