import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { BpfProgram, type ProgramType } from "@dp/core";
import { forbiddenSys, setSys } from "@dp/core/internal";
import { HashMap, SockHash, SockMap } from "@dp/maps";
import { attachSockmap, type SockmapAttachType, type SocketMap } from "./sockmap.ts";

beforeEach(() => {
  setSys(forbiddenSys());
});
afterEach(() => {
  setSys(undefined);
});

/** A program handle that never reaches the kernel: only its name and type are read. */
function fakeProgram(type: ProgramType): BpfProgram {
  return Object.assign(Object.create(BpfProgram.prototype) as BpfProgram, {
    name: "p",
    type,
    expectedAttachType: undefined,
  });
}

/** A map object of a class that never reaches the kernel: only its name and kind are read. */
function fake<T extends object>(cls: { prototype: T }, kind?: string): T {
  return Object.assign(Object.create(cls.prototype) as T, { map: { name: "socks", type: kind }, kind });
}

describe("attachSockmap() refuses bad input before any system call", () => {
  test("attachSockmap() throws a TypeError for a map that is not a sockmap or sockhash", () => {
    const hash = fake(HashMap, "hash");
    expect(() => attachSockmap(hash as unknown as SocketMap, fakeProgram("skMsg"), "skMsgVerdict")).toThrow(TypeError);
    expect(() => attachSockmap(hash as unknown as SocketMap, fakeProgram("skMsg"), "skMsgVerdict")).toThrow(
      /attach only to a SockMap or SockHash, got object \(a hash map\)/,
    );
    expect(() => attachSockmap({} as SocketMap, fakeProgram("skMsg"), "skMsgVerdict")).toThrow(TypeError);
  });

  test("attachSockmap() accepts only socket maps in its type", () => {
    // Compile-time check only: never called.
    function typeCheck(
      hash: HashMap<number, number>,
      socks: SockMap,
      byPort: SockHash<number>,
      prog: BpfProgram,
    ): void {
      // @ts-expect-error a hash map is not a socket map
      attachSockmap(hash, prog, "skMsgVerdict");
      // @ts-expect-error not a sockmap hook
      attachSockmap(socks, prog, "cgroupSockOps");
      attachSockmap(socks, prog, "skMsgVerdict");
      attachSockmap(byPort, prog, "skSkbStreamVerdict");
    }
    expect(typeof typeCheck).toBe("function");
  });

  test.each([
    [
      "an sk_skb program as sk_msg verdict",
      "skMsg",
      "skMsgVerdict",
      "skSkb",
      /"skMsgVerdict" runs skMsg programs, not skSkb/,
    ],
    [
      "an sk_msg program as stream parser",
      "skSkb",
      "skSkbStreamParser",
      "skMsg",
      /"skSkbStreamParser" runs skSkb programs, not skMsg/,
    ],
    ["an XDP program", "skSkb", "skSkbVerdict", "xdp", /runs skSkb programs, not xdp/],
    ["a cgroup hook", "skMsg", "cgroupSockOps", "sockOps", /"cgroupSockOps" is not a sockmap hook/],
  ] as const)("attachSockmap() throws a TypeError for %s", (_, __, attachType, type, message) => {
    const socks = fake(SockMap, "sockmap");
    const attach = (): unknown => attachSockmap(socks, fakeProgram(type), attachType as SockmapAttachType);
    expect(attach).toThrow(TypeError);
    expect(attach).toThrow(message);
  });

  test("attachSockmap() checks its options", () => {
    const socks = fake(SockHash, "sockhash");
    expect(() =>
      attachSockmap(socks, fakeProgram("skMsg"), "skMsgVerdict", { replace: "yes" as unknown as boolean }),
    ).toThrow(/replace must be a boolean/);
  });
});
