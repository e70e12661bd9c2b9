import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type AttachType, BpfProgram, type ProgramType } from "@dp/core";
import { forbiddenSys, setSys } from "@dp/core/internal";
import { attachCgroup, type CgroupAttachType, mountCgroup2, parseCgroup2Mounts } from "./cgroup.ts";

beforeEach(() => {
  setSys(forbiddenSys());
});
afterEach(() => {
  setSys(undefined);
});

/** A program handle that never reaches the kernel: only its name and types are read. */
function fakeProgram(type: ProgramType, expectedAttachType?: AttachType): BpfProgram {
  return Object.assign(Object.create(BpfProgram.prototype) as BpfProgram, { name: "p", type, expectedAttachType });
}

describe("attachCgroup() refuses bad input before any system call", () => {
  test.each([
    [
      "a sock_ops program on an skb hook",
      fakeProgram("sockOps"),
      "cgroupInetEgress",
      /"cgroupInetEgress" runs cgroupSkb programs, not sockOps/,
    ],
    ["an XDP program", fakeProgram("xdp"), "cgroupSockOps", /runs sockOps programs, not xdp/],
    [
      "a connect4 program on bind4",
      fakeProgram("cgroupSockAddr", "cgroupInet4Connect"),
      "cgroupInet4Bind",
      /loaded for "cgroupInet4Connect"/,
    ],
    ["a sock_addr program loaded for no hook", fakeProgram("cgroupSockAddr"), "cgroupInet4Bind", null],
    [
      "a sock program (sock_create by default) on post_bind",
      fakeProgram("cgroupSock"),
      "cgroupInet4PostBind",
      /loaded for "cgroupInetSockCreate"/,
    ],
    [
      "a cgroup_skb program loaded for ingress on egress",
      fakeProgram("cgroupSkb", "cgroupInetIngress"),
      "cgroupInetEgress",
      /loaded for "cgroupInetIngress"/,
    ],
    [
      "a getsockopt program on setsockopt",
      fakeProgram("cgroupSockopt", "cgroupGetsockopt"),
      "cgroupSetsockopt",
      /loaded for "cgroupGetsockopt"/,
    ],
    ["a hook that is not a cgroup one", fakeProgram("xdp"), "xdp", /"xdp" is not a cgroup hook/],
    ["something that is not a program", {} as BpfProgram, "cgroupSockOps", /expected a BpfProgram/],
  ] as const)("attachCgroup() throws a TypeError for %s", (_, program, attachType, message) => {
    const attach = (): unknown => attachCgroup("/sys/fs/cgroup/x", program, attachType as CgroupAttachType);
    if (message === null) {
      // Valid pairing: the sock_addr program passes the checks and reaches the (forbidden) kernel.
      expect(attach).toThrow(/unexpected system call|private member/);
      return;
    }
    expect(attach).toThrow(TypeError);
    expect(attach).toThrow(message);
  });

  test("attachCgroup() needs an absolute path", () => {
    expect(() => attachCgroup("app", fakeProgram("sockOps"), "cgroupSockOps")).toThrow(RangeError);
    expect(() => attachCgroup(7 as unknown as string, fakeProgram("sockOps"), "cgroupSockOps")).toThrow(TypeError);
  });

  test("mountCgroup2() needs an absolute path", () => {
    expect(() => mountCgroup2("cgroup")).toThrow(/Cannot mount cgroup2: the path must be absolute/);
  });
});

describe("parseCgroup2Mounts()", () => {
  const MOUNTINFO = [
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu",
    "40 31 0:37 /app /mnt/app\\040dir rw,relatime - cgroup2 cgroup2 rw",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate",
    "",
  ].join("\n");

  test("parseCgroup2Mounts() lists cgroup2 mounts, whole-hierarchy ones first, unescaping paths", () => {
    expect(parseCgroup2Mounts(MOUNTINFO)).toEqual(["/sys/fs/cgroup/unified", "/mnt/app dir"]);
  });

  test("parseCgroup2Mounts() finds none on a cgroup v1 host", () => {
    expect(parseCgroup2Mounts(MOUNTINFO.split("\n").slice(0, 2).join("\n"))).toEqual([]);
  });
});
