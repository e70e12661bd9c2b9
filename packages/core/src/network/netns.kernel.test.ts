import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { createNetns, currentNetns, deleteNetns, interfaceIndex, openNetns, SyscallError, withNetns } from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import { netns, requireRoot, vethPair } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const made: string[] = [];
afterEach(() => {
  for (const name of made.splice(0)) deleteNetns(name);
});

function uniqueName(): string {
  const name = `dpt-ns-${process.pid}-${randomBytes(4).toString("hex")}`;
  made.push(name);
  return name;
}

function ipNetnsList(): string[] {
  const out = execFileSync("ip", ["-json", "netns", "list"], { encoding: "utf8" }).trim();
  return out === "" ? [] : (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

function inode(path: string): string {
  return execFileSync("stat", ["-L", "-c", "%i", path], { encoding: "utf8" }).trim();
}

describe("network namespaces", () => {
  test("createNetns() makes a namespace that ip netns lists and deleteNetns() removes it", () => {
    const name = uniqueName();
    using ns = createNetns(name);
    expect(ns.name).toBe(name);
    expect(ipNetnsList()).toContain(name);
    // ip netns exec enters the same namespace dp created.
    const viaIp = execFileSync("ip", ["netns", "exec", name, "stat", "-L", "-c", "%i", "/proc/self/ns/net"], {
      encoding: "utf8",
    }).trim();
    expect(viaIp).toBe(inode(`/run/netns/${name}`));
    expect(deleteNetns(name)).toBe(true);
    expect(ipNetnsList()).not.toContain(name);
    expect(deleteNetns(name)).toBe(false);
  });

  test("createNetns() leaves the calling thread where it was", () => {
    const before = inode("/proc/thread-self/ns/net");
    using ns = createNetns(uniqueName());
    expect(inode("/proc/thread-self/ns/net")).toBe(before);
    expect(inode(`/run/netns/${ns.name}`)).not.toBe(before);
  });

  test("a namespace made by ip netns add is opened by name", () => {
    const name = uniqueName();
    execFileSync("ip", ["netns", "add", name]);
    execFileSync("ip", ["-n", name, "link", "add", "dpdummy0", "type", "veth", "peer", "name", "dpdummy1"]);
    using ns = openNetns(name);
    expect(withNetns(ns, () => interfaceIndex("dpdummy0"))).toBeGreaterThan(1);
    expect(interfaceIndex("dpdummy0")).toBeUndefined();
  });

  test("withNetns() switches the thread and switches back, also when the callback throws", () => {
    using ns = createNetns(uniqueName());
    using home = currentNetns();
    const homeIno = inode("/proc/thread-self/ns/net");
    const inside = withNetns(ns, () =>
      execFileSync("stat", ["-L", "-c", "%i", `/proc/${process.pid}/task/${sys().gettid()}/ns/net`], {
        encoding: "utf8",
      }).trim(),
    );
    expect(inside).toBe(inode(`/run/netns/${ns.name}`));
    expect(() =>
      withNetns(ns, () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(inode("/proc/thread-self/ns/net")).toBe(homeIno);
    expect(home.closed).toBe(false);
  });

  test("withNetns() refuses async callbacks after switching back", () => {
    using ns = createNetns(uniqueName());
    const homeIno = inode("/proc/thread-self/ns/net");
    expect(() => withNetns(ns, async () => 1)).toThrow(/synchronous callbacks only/);
    expect(inode("/proc/thread-self/ns/net")).toBe(homeIno);
  });

  test("a netlink socket opened inside a namespace lists only that namespace's links", () => {
    using t = netns();
    const { a, b } = vethPair(t, t);
    const sock = t.run(() =>
      openSocket(16 /* AF_NETLINK */, 3 /* SOCK_RAW */, 0 /* NETLINK_ROUTE */, "netlink socket"),
    );
    using _ = sock;
    const s = sys();
    // nlmsghdr (16) + ifinfomsg (16): RTM_GETLINK dump
    const req = new Uint8Array(32);
    const dv = new DataView(req.buffer);
    dv.setUint32(0, 32, true);
    dv.setUint16(4, 18, true); // RTM_GETLINK
    dv.setUint16(6, 0x301, true); // NLM_F_REQUEST | NLM_F_DUMP
    dv.setUint32(8, 1, true);
    expect(s.sendto(rawFd(sock), req, req.length, 0, null, 0)).toBe(32);
    const names: string[] = [];
    const buf = new Uint8Array(65536);
    const view = new DataView(buf.buffer);
    let done = false;
    while (!done) {
      const n = s.recvfrom(rawFd(sock), buf, buf.length, 0, null, null);
      expect(n).toBeGreaterThan(0);
      for (let off = 0; off < n;) {
        const len = view.getUint32(off, true);
        const type = view.getUint16(off + 4, true);
        if (type === 3 /* NLMSG_DONE */) done = true;
        if (type === 16 /* RTM_NEWLINK */) {
          for (let a = off + 32; a < off + len;) {
            const alen = view.getUint16(a, true);
            if (view.getUint16(a + 2, true) === 3 /* IFLA_IFNAME */) {
              names.push(new TextDecoder().decode(buf.subarray(a + 4, a + alen - 1)));
            }
            a += (alen + 3) & ~3;
          }
        }
        off += (len + 3) & ~3;
      }
    }
    expect(names.sort()).toEqual(["lo", a.name, b.name].sort());
  });

  test("bad names are RangeErrors and a taken name is EEXIST", () => {
    expect(() => createNetns("bad/name")).toThrow(RangeError);
    expect(() => createNetns("")).toThrow(RangeError);
    const name = uniqueName();
    using ns = createNetns(name);
    try {
      createNetns(name);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect((err as SyscallError).code).toBe("EEXIST");
    }
    expect(ns.closed).toBe(false);
  });
});
