import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import {
  BpfProgram,
  NetlinkWriter,
  NLM_F,
  parseNetlinkAttributes,
  parseNetlinkMessages,
  type ProgramType,
} from "@dp/core";
import { forbiddenSys, RTM, setSys, TCA, TCA_BPF } from "@dp/core/internal";
import {
  choosePlace,
  decodeFilter,
  encodeClsactAdd,
  encodeClsactDelete,
  encodeFilterAdd,
  encodeFilterDelete,
  encodeFilterDump,
  type TcFilter,
} from "./_tc_netlink.ts";
import { attachTc, type TcOptions } from "./tc.ts";

/** A `tc` command captured by `scripts/capture_iproute2.mjs OUT.json --veth --replies --obj bpf/build/testdata/hooks_tc.o -- tc ...`. */
interface TcFixture {
  readonly command: string;
  readonly sendmsg: readonly string[];
  readonly recvmsg: readonly string[];
}

function fixture(name: string): TcFixture {
  return JSON.parse(readFileSync(new URL(`../testdata/tc/${name}.json`, import.meta.url), "utf8")) as TcFixture;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** Zeroes nlmsg_seq and nlmsg_pid, which differ from run to run. */
function normalize(bytes: Uint8Array): string {
  const copy = bytes.slice();
  const dv = new DataView(copy.buffer);
  for (let off = 0; off + 16 <= copy.length;) {
    const len = dv.getUint32(off, true);
    dv.setUint32(off + 8, 0, true);
    dv.setUint32(off + 12, 0, true);
    if (len < 16) break;
    off += (len + 3) & ~3;
  }
  return hex(copy);
}

/** The fixture's request of one message type (tc first resolves the device with RTM_GETLINK). */
function request(name: string, type: number): Uint8Array {
  for (const h of fixture(name).sendmsg) {
    const bytes = Uint8Array.from(Buffer.from(h, "hex"));
    if (new DataView(bytes.buffer).getUint16(4, true) === type) return bytes;
  }
  throw new Error(`Fixture "${name}" has no message of type ${type}`);
}

/** The TCA_BPF_FD tc sent (its descriptor number is whatever libbpf got). */
function sentFd(bytes: Uint8Array): number {
  const [msg] = parseNetlinkMessages(bytes);
  const options = parseNetlinkAttributes(msg!.payload.subarray(20)).find((a) => a.type === TCA.OPTIONS)!;
  const fd = parseNetlinkAttributes(options.data).find((a) => a.type === TCA_BPF.FD)!;
  return new DataView(fd.data.buffer, fd.data.byteOffset).getUint32(0, true);
}

function written(fn: (w: NetlinkWriter) => void): string {
  const w = new NetlinkWriter();
  fn(w);
  return normalize(w.bytes());
}

// In the capture namespace, `ip link add d0 type veth peer name d1` makes d1 index 2 and d0 index 3.
const D0 = 3;

describe("tc netlink requests match iproute2 byte for byte", () => {
  test("encodeClsactAdd() is `tc qdisc add dev d0 clsact`", () => {
    expect(written((w) => encodeClsactAdd(w, 0, D0))).toBe(normalize(request("qdisc_add_clsact", RTM.NEWQDISC)));
  });

  test("encodeClsactDelete() is `tc qdisc del dev d0 clsact`", () => {
    expect(written((w) => encodeClsactDelete(w, 0, D0))).toBe(normalize(request("qdisc_del_clsact", RTM.DELQDISC)));
  });

  test.each([
    ["filter_add_ingress", { ifindex: D0, direction: "ingress", priority: 1, handle: 1, name: "hooks_tc.o:[tc]" }],
    [
      "filter_add_egress",
      { ifindex: D0, direction: "egress", priority: 3, handle: 7, name: "hooks_tc.o:[classifier]" },
    ],
  ] as const)("encodeFilterAdd() in create mode is %s (`tc filter add ... bpf da obj ... sec ...`)", (name, place) => {
    const want = request(name, RTM.NEWTFILTER);
    expect(written((w) => encodeFilterAdd(w, 0, { ...place, fd: sentFd(want) }, "create"))).toBe(normalize(want));
  });

  test("encodeFilterAdd() in replace mode differs from `tc filter replace` only in its flags: no CREATE, so a vanished filter is not made anew", () => {
    const want = request("filter_replace", RTM.NEWTFILTER);
    const place = {
      ifindex: D0,
      direction: "egress",
      priority: 3,
      handle: 7,
      name: "hooks_tc.o:[classifier]",
    } as const;
    const w = new NetlinkWriter();
    encodeFilterAdd(w, 0, { ...place, fd: sentFd(want) }, "replace");
    const ours = w.bytes();
    const [msg] = parseNetlinkMessages(ours);
    const [theirs] = parseNetlinkMessages(want);
    expect(theirs!.flags).toBe(NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE);
    expect(msg!.flags).toBe(NLM_F.REQUEST | NLM_F.ACK | NLM_F.REPLACE);
    expect(hex(msg!.payload)).toBe(hex(theirs!.payload));
  });

  test("encodeFilterDelete() is `tc filter del dev d0 ingress prio 1 handle 1 protocol all bpf`", () => {
    const place = { ifindex: D0, direction: "ingress", priority: 1, handle: 1 } as const;
    expect(written((w) => encodeFilterDelete(w, 0, place))).toBe(normalize(request("filter_del", RTM.DELTFILTER)));
  });

  test("encodeFilterDump() is `tc filter show dev d0 egress`", () => {
    expect(written((w) => encodeFilterDump(w, 0, D0, "egress"))).toBe(
      normalize(request("filter_show_egress", RTM.GETTFILTER)),
    );
  });
});

describe("decodeFilter()", () => {
  function dumped(): TcFilter[] {
    const out: TcFilter[] = [];
    for (const h of fixture("filter_show_egress").recvmsg) {
      for (const m of parseNetlinkMessages(Uint8Array.from(Buffer.from(h, "hex")))) {
        const f = decodeFilter(m);
        if (f !== undefined) out.push(f);
      }
    }
    return out;
  }

  test("decodeFilter() reads the filters of a `tc filter show` dump and skips the per-priority header entries", () => {
    const filters = dumped();
    expect(filters).toEqual([
      {
        ifindex: D0,
        direction: "egress",
        priority: 3,
        handle: 7,
        kind: "bpf",
        protocol: 0x0003,
        chain: 0,
        name: "hooks_tc.o:[classifier]",
        programId: expect.any(Number),
        programTag: expect.stringMatching(/^[0-9a-f]{16}$/),
        directAction: true,
      },
      {
        ifindex: D0,
        direction: "egress",
        priority: 5,
        handle: 2,
        kind: "bpf",
        protocol: 0x0003,
        chain: 0,
        name: "hooks_tc.o:[tc]",
        programId: expect.any(Number),
        programTag: expect.stringMatching(/^[0-9a-f]{16}$/),
        directAction: true,
      },
    ]);
    expect(filters[0]!.programId).toBeGreaterThan(0);
    expect(filters[0]!.programId).not.toBe(filters[1]!.programId);
  });

  test("decodeFilter() ignores other message types", () => {
    const w = new NetlinkWriter();
    w.begin(RTM.NEWQDISC, 0, 1).zeros(20);
    w.end();
    const [msg] = parseNetlinkMessages(w.bytes());
    expect(decodeFilter(msg!)).toBeUndefined();
  });

  test("decodeFilter() throws a SyntaxError for a truncated tcmsg", () => {
    const w = new NetlinkWriter();
    w.begin(RTM.NEWTFILTER, 0, 1).zeros(8);
    w.end();
    const [msg] = parseNetlinkMessages(w.bytes());
    expect(() => decodeFilter(msg!)).toThrow(SyntaxError);
  });
});

describe("choosePlace()", () => {
  function at(priority: number, handle = 1): TcFilter {
    return {
      ifindex: 2,
      direction: "ingress",
      priority,
      handle,
      kind: "bpf",
      protocol: 3,
      chain: 0,
      name: "",
      programId: 1,
      programTag: "",
      directAction: true,
    };
  }

  test.each([
    ["FIRST_PRIORITY on an empty hook", [], {}, { priority: 0x8000, handle: 1 }],
    ["PRIORITY_STEP after the last filter by default", [at(1), at(5)], {}, { priority: 5 + 0x100, handle: 1 }],
    ["the next priority when a step does not fit", [at(0xfff0)], {}, { priority: 0xfff1, handle: 1 }],
    ["an explicit place", [at(1)], { priority: 9, handle: 4 }, { priority: 9, handle: 4 }],
    [
      "the lowest free handle at an explicit, shared priority",
      [at(2, 1), at(2, 2)],
      { priority: 2 },
      { priority: 2, handle: 3 },
    ],
    ["halfway to the previous filter for before", [at(1), at(5)], { before: 5 }, { priority: 3, handle: 1 }],
    ["halfway to 0 before the first filter", [at(0x8000)], { before: 0x8000 }, { priority: 0x4000, handle: 1 }],
    ["halfway to the next filter for after", [at(1), at(5)], { after: 1 }, { priority: 3, handle: 1 }],
    ["halfway to 65536 after the last filter", [at(0x8000)], { after: 0x8000 }, { priority: 0xc000, handle: 1 }],
    ["a chosen handle next to a filter", [at(5)], { before: 5, handle: 8 }, { priority: 2, handle: 8 }],
  ] as const)("choosePlace() picks %s", (_, filters, request, want) => {
    expect(choosePlace(filters, request)).toEqual(want);
  });

  test("choosePlace() leaves room to keep inserting before the same filter", () => {
    const filters = [at(0x8000)];
    for (let i = 0; i < 10; i++) {
      const { priority } = choosePlace(filters, { before: 0x8000 });
      expect(priority).toBeLessThan(0x8000);
      expect(priority).toBeGreaterThan(
        Math.max(0, ...filters.filter((f) => f.priority < 0x8000).map((f) => f.priority)),
      );
      filters.push(at(priority));
    }
  });

  test.each([
    ["a taken place", [at(3, 1)], { priority: 3, handle: 1 }, /priority 3 handle 1 is taken/],
    ["before priority 1", [at(1)], { before: 1 }, /no priority is free right before priority 1:/],
    ["before a neighbour", [at(4), at(5)], { before: 5 }, /right before priority 5 \(4 is next to it\)/],
    ["after a neighbour", [at(4), at(5)], { after: 4 }, /right after priority 4 \(5 is next to it\)/],
    ["after 65535", [at(65535)], { after: 65535 }, /right after priority 65535:/],
    ["appending past 65535", [at(65535)], {}, /no priority is free after priority 65535/],
  ] as const)("choosePlace() throws a RangeError for %s", (_, filters, request, message) => {
    expect(() => choosePlace(filters, request)).toThrow(RangeError);
    expect(() => choosePlace(filters, request)).toThrow(message);
  });
});

describe("attachTc() refuses bad input before any system call", () => {
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

  const tc = fakeProgram("schedCls");

  test.each([
    ["an XDP program", fakeProgram("xdp"), /a xdp program cannot attach to tc/],
    ["a schedAct program", fakeProgram("schedAct"), /schedAct program is a tc action, not a classifier/],
    ["a socket filter", fakeProgram("socketFilter"), /needs a schedCls program/],
    ["something else", {} as BpfProgram, /program must be a BpfProgram/],
  ])("attachTc() throws a TypeError for %s", (_, program, message) => {
    expect(() => attachTc("eth0", program, { direction: "ingress" })).toThrow(TypeError);
    expect(() => attachTc("eth0", program, { direction: "ingress" })).toThrow(message);
  });

  test.each([
    ["no options", undefined, TypeError, /options with a direction are required/],
    ["a bad direction", { direction: "sideways" }, TypeError, /direction must be "ingress" or "egress"/],
    ["a bad mode", { direction: "ingress", mode: "bpf" }, TypeError, /mode must be/],
    ["before and after", { direction: "ingress", before: tc, after: tc }, TypeError, /exclude each other/],
    ["a non-link replace", { direction: "ingress", replace: {} }, TypeError, /replace must be a TcLink/],
    ["a non-program before", { direction: "ingress", before: 3 }, TypeError, /before must be a BpfProgram or a TcLink/],
    ["priority 0", { direction: "ingress", priority: 0 }, RangeError, /priority must be an integer from 1 to 65535/],
    ["priority 65536", { direction: "ingress", priority: 65536 }, RangeError, /priority must be an integer/],
    ["handle 0", { direction: "ingress", handle: 0 }, RangeError, /handle must be an integer from 1 to 4294967295/],
    ["a name with NUL", { direction: "ingress", name: "a\0b" }, RangeError, /Invalid tc filter name/],
    [
      "a priority with before",
      { direction: "ingress", priority: 3, before: tc },
      TypeError,
      /priority excludes before/,
    ],
    [
      "a priority for tcx",
      { direction: "ingress", mode: "tcx", priority: 3 },
      TypeError,
      /are for netlink filters, not tcx links/,
    ],
    ["a ledger that is not one", { direction: "ingress", ledger: {} }, TypeError, /ledger must be a Ledger/],
    ["a namespace that is not one", { direction: "ingress", netns: "blue" }, TypeError, /netns must be a Netns/],
  ])("attachTc() throws for %s", (_, options, type, message) => {
    expect(() => attachTc("eth0", tc, options as unknown as TcOptions)).toThrow(type);
    expect(() => attachTc("eth0", tc, options as unknown as TcOptions)).toThrow(message);
  });

  test.each([
    ["", RangeError],
    ["a/b", RangeError],
    ["has space", RangeError],
    ["x".repeat(16), RangeError],
    [0, RangeError],
    [1.5, RangeError],
    [null, TypeError],
  ])("attachTc() refuses the interface %j", (iface, type) => {
    expect(() => attachTc(iface as string, tc, { direction: "egress" })).toThrow(type);
  });
});
