import { afterEach, describe, expect, test } from "vitest";
import { SyscallError } from "@dp/core";
import { forbiddenSys, setSys, type Sys } from "@dp/core/internal";
import { Sysctl } from "@dp/routing";
import { forbiddenSocket } from "./_test_fixtures.ts";

interface FakeProc {
  readonly files: Map<string, string>;
  readonly writes: [string, string][];
  readonly calls: string[];
  open: number;
}

/**
 * A gateway with an in-memory /proc/sys: open, read, write and close only.
 * Writing "bad" fails with EINVAL, as the kernel does for unparsable values.
 */
function fakeProcSys(files: Record<string, string>): FakeProc {
  const state: FakeProc = { files: new Map(Object.entries(files)), writes: [], calls: [], open: 0 };
  const fds = new Map<number, { path: string; pos: number }>();
  let next = 100;
  const impl: Partial<Sys> = {
    open(path, flags) {
      state.calls.push("open");
      if (!state.files.has(path)) return -2;
      fds.set(next, { path, pos: flags & 1 ? -1 : 0 });
      state.open++;
      return next++;
    },
    read(fd, buf, len) {
      state.calls.push("read");
      const f = fds.get(fd);
      if (f === undefined || f.pos < 0) return -9;
      const bytes = new TextEncoder().encode(state.files.get(f.path));
      const n = Math.min(len, bytes.length - f.pos);
      buf.set(bytes.subarray(f.pos, f.pos + n));
      f.pos += n;
      return n;
    },
    write(fd, buf, len) {
      state.calls.push("write");
      const f = fds.get(fd);
      if (f === undefined || f.pos >= 0) return -9;
      const text = new TextDecoder().decode(buf.subarray(0, len));
      if (text.startsWith("bad")) return -22;
      state.writes.push([f.path, text]);
      state.files.set(f.path, text);
      return len;
    },
    close(fd) {
      state.calls.push("close");
      if (!fds.delete(fd)) return -9;
      state.open--;
      return 0;
    },
  };
  setSys(
    new Proxy(impl as Sys, {
      get(target, name) {
        const fn = (target as unknown as Record<string | symbol, unknown>)[name];
        if (fn !== undefined) return fn;
        return () => {
          throw new Error(`unexpected system call ${String(name)}`);
        };
      },
    }),
  );
  return state;
}

function sysctl(): Sysctl {
  return new Sysctl({ nl: forbiddenSocket(), netns: undefined });
}

afterEach(() => {
  setSys(undefined);
});

describe("Sysctl", () => {
  test("get() reads /proc/sys/net and trims the value", () => {
    const proc = fakeProcSys({ "/proc/sys/net/ipv4/ip_local_port_range": "32768\t60999\n" });
    expect(sysctl().get("net.ipv4.ip_local_port_range")).toBe("32768\t60999");
    expect(proc.calls).toEqual(["open", "read", "read", "close"]);
    expect(proc.open).toBe(0);
  });

  test("set() writes the value with a newline and closes the file", () => {
    const proc = fakeProcSys({ "/proc/sys/net/ipv4/conf/all/arp_ignore": "0\n" });
    sysctl().set("net.ipv4.conf.all.arp_ignore", 1);
    expect(proc.writes).toEqual([["/proc/sys/net/ipv4/conf/all/arp_ignore", "1\n"]]);
    expect(proc.open).toBe(0);
  });

  test("get() of a missing sysctl is a SyscallError ENOENT naming it", () => {
    fakeProcSys({});
    const err = (() => {
      try {
        sysctl().get("net.ipv4.conf.eth9.rp_filter");
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe("ENOENT");
    expect((err as SyscallError).message).toBe(
      'Cannot read sysctl "net.ipv4.conf.eth9.rp_filter": ENOENT (no such file or directory)',
    );
  });

  test("set() reports the kernel's EINVAL with the name and value, and still closes the file", () => {
    const proc = fakeProcSys({ "/proc/sys/net/ipv4/ip_forward": "0\n" });
    expect(() => sysctl().set("net.ipv4.ip_forward", "bad")).toThrow(
      'Cannot set sysctl "net.ipv4.ip_forward" to "bad": EINVAL (invalid argument)',
    );
    expect(proc.open).toBe(0);
  });

  test("setIpForward() sets IPv4 by default and both families on request", () => {
    const files = { "/proc/sys/net/ipv4/ip_forward": "0\n", "/proc/sys/net/ipv6/conf/all/forwarding": "0\n" };
    const proc = fakeProcSys(files);
    sysctl().setIpForward(true);
    expect(proc.writes).toEqual([["/proc/sys/net/ipv4/ip_forward", "1\n"]]);
    sysctl().setIpForward(false, { family: "both" });
    expect(proc.writes.slice(1)).toEqual([
      ["/proc/sys/net/ipv4/ip_forward", "0\n"],
      ["/proc/sys/net/ipv6/conf/all/forwarding", "0\n"],
    ]);
    expect(sysctl().ipForward()).toBe(false);
    expect(sysctl().ipForward({ family: 6 })).toBe(false);
  });

  test("rpFilter() and proxyArp() read per-link values; the setters write them", () => {
    const proc = fakeProcSys({
      "/proc/sys/net/ipv4/conf/d0.10/rp_filter": "1\n",
      "/proc/sys/net/ipv4/conf/default/proxy_arp": "0\n",
    });
    expect(sysctl().rpFilter("d0.10")).toBe(1);
    sysctl().setRpFilter("d0.10", 2);
    expect(sysctl().rpFilter("d0.10")).toBe(2);
    expect(sysctl().proxyArp("default")).toBe(false);
    sysctl().setProxyArp("default", true);
    expect(sysctl().proxyArp("default")).toBe(true);
    expect(proc.writes).toEqual([
      ["/proc/sys/net/ipv4/conf/d0.10/rp_filter", "2\n"],
      ["/proc/sys/net/ipv4/conf/default/proxy_arp", "1\n"],
    ]);
  });

  const bad: [string, () => void, typeof Error, RegExp][] = [
    ["a name outside net.", () => sysctl().get("kernel.hostname"), RangeError, /only names under "net\."/],
    ["a bare net", () => sysctl().get("net"), RangeError, /only names under "net\."/],
    ["a name with ..", () => sysctl().get("net.ipv4..ip_forward"), RangeError, /empty parts/],
    ["a name with a trailing dot", () => sysctl().set("net.ipv4.", 1), RangeError, /empty parts/],
    ["a name with /", () => sysctl().get("net.ipv4/../../kernel/hostname"), RangeError, /"\/"/],
    ["a name that is not a string", () => sysctl().get(4 as unknown as string), TypeError, /expected a string/],
    ["a fractional value", () => sysctl().set("net.ipv4.ip_forward", 0.5), RangeError, /use an integer/],
    [
      "a boolean value",
      () => sysctl().set("net.ipv4.ip_forward", true as unknown as number),
      TypeError,
      /string or number/,
    ],
    ["an rp_filter mode of 3", () => sysctl().setRpFilter("all", 3 as 2), RangeError, /Invalid rp_filter mode 3/],
    ["a link name of ..", () => sysctl().setProxyArp("..", true), RangeError, /Invalid link ".."/],
    ["a link name with /", () => sysctl().rpFilter("a/b"), RangeError, /Invalid link "a\/b"/],
    ["an empty link name", () => sysctl().proxyArp(""), RangeError, /Invalid link "": an interface name is 1-15 bytes/],
    ["a link name with NUL", () => sysctl().proxyArp("lo\u0000x"), RangeError, /cannot contain NUL/],
    ["a link index of 2³²+1", () => sysctl().proxyArp(2 ** 32 + 1), RangeError, /Invalid link 4294967297/],
    [
      "a non-boolean proxy_arp",
      () => sysctl().setProxyArp("lo", 1 as unknown as boolean),
      TypeError,
      /use true or false/,
    ],
    [
      "a non-boolean forwarding",
      () => sysctl().setIpForward("yes" as unknown as boolean),
      TypeError,
      /use true or false/,
    ],
    ["an unknown family", () => sysctl().setIpForward(true, { family: 5 as 4 }), TypeError, /Invalid family 5/],
  ];
  for (const [what, call, kind, message] of bad) {
    test(`Sysctl rejects ${what} before any system call`, () => {
      setSys(forbiddenSys());
      expect(call).toThrow(kind);
      expect(call).toThrow(message);
    });
  }
});
