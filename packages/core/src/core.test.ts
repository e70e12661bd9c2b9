import { afterEach, describe, expect, test } from "vitest";
import {
  ClosedError,
  compareKernelVersions,
  createMap,
  isNotSupported,
  loadProgram,
  NotSupportedError,
  parseCpuList,
  parseKernelVersion,
  SyscallError,
  validateMapSpec,
  VerifierError,
  type MapSpec,
} from "@dp/core";
import { errnoName, errnoNumber, forbiddenSys, setSys, type Sys } from "@dp/core/internal";

/** A gateway whose bpf(2) always fails with `errno`. */
function failingSys(errno: number): Sys {
  let next = 0x1000;
  return new Proxy({} as Sys, {
    get(_, name) {
      if (name === "bpf") return () => -errno;
      if (name === "addressOf") return () => (next += 0x1000);
      return () => {
        throw new Error(`unexpected system call ${String(name)}`);
      };
    },
  });
}

afterEach(() => {
  setSys(undefined);
});

describe("map specs", () => {
  const base: MapSpec = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 };
  const bad: [string, MapSpec, RegExp, typeof TypeError | typeof RangeError][] = [
    ["zero key size", { ...base, keySize: 0 }, /spec.keySize must be at least 1 for hash maps/, RangeError],
    ["unknown type", { ...base, type: "hashy" as "hash" }, /spec.type "hashy" is not a known map type/, TypeError],
    [
      "max entries 0",
      { ...base, maxEntries: 0 },
      /spec.maxEntries must be between 1 and 4294967295, got 0/,
      RangeError,
    ],
    ["fractional size", { ...base, valueSize: 1.5 }, /spec.valueSize must be an integer/, TypeError],
    ["long name", { ...base, name: "x".repeat(16) }, /spec.name .* at most 15 characters/, RangeError],
    ["array key size", { ...base, type: "array", keySize: 8 }, /spec.keySize must be 4 for array maps/, RangeError],
    [
      "lpm without noPrealloc",
      { ...base, type: "lpmTrie", keySize: 8 },
      /must include MAP_FLAGS.noPrealloc/,
      RangeError,
    ],
    ["map of maps without inner", { ...base, type: "hashOfMaps" }, /spec.innerMap is required/, TypeError],
    [
      "bad inner map",
      { ...base, type: "arrayOfMaps", innerMap: { ...base, maxEntries: 0 } },
      /spec.innerMap.maxEntries must be/,
      RangeError,
    ],
    [
      "ringbuf size",
      { type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 1000 },
      /power of two of at least 4096/,
      RangeError,
    ],
    [
      "queue key",
      { type: "queue", keySize: 4, valueSize: 4, maxEntries: 1 },
      /keySize must be 0 for queue maps/,
      RangeError,
    ],
  ];
  for (const [name, spec, message, kind] of bad) {
    test(`createMap() rejects ${name} before any system call`, () => {
      setSys(forbiddenSys());
      expect(() => createMap(spec)).toThrow(kind);
      expect(() => createMap(spec)).toThrow(message);
      expect(() => validateMapSpec(spec)).toThrow(message);
    });
  }

  test("validateMapSpec() accepts every shape the kernel takes", () => {
    validateMapSpec(base);
    validateMapSpec({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 1 << 16 });
    validateMapSpec({
      type: "hashOfMaps",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      innerMap: { ...base, type: "array" },
    });
  });
});

describe("errors", () => {
  test("createMap() without privileges is an EPERM SyscallError with a hint", () => {
    setSys(failingSys(1));
    try {
      createMap({ name: "flows", ...{ type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SyscallError);
      expect(err).toMatchObject({
        name: "SyscallError",
        syscall: "bpf",
        op: "BPF_MAP_CREATE",
        code: "EPERM",
        errno: 1,
      });
      expect((err as Error).message).toBe(
        'Cannot create hash map "flows": EPERM (operation not permitted): run as root or grant CAP_BPF (plus CAP_NET_ADMIN for networking programs, CAP_PERFMON for tracing)',
      );
    }
  });

  test("loadProgram() that fails without a log is a SyscallError, not a VerifierError", () => {
    setSys(failingSys(1));
    const err = (() => {
      try {
        loadProgram({ type: "xdp", license: "GPL", instructions: new Uint8Array(8) });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(SyscallError);
    expect(err).not.toBeInstanceOf(VerifierError);
    expect((err as SyscallError).code).toBe("EPERM");
  });

  test("VerifierError summarises the cause and the failing instruction", () => {
    const log = [
      "func#0 @0",
      "0: R1=ctx() R10=fp0",
      "0: (b7) r0 = 1",
      "1: (0f) r0 += r3",
      "R3 !read_ok",
      "processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
    ];
    const err = new VerifierError('Cannot load program "x"', {
      syscall: "bpf",
      op: "BPF_PROG_LOAD",
      errno: 13,
      log,
      truncated: false,
    });
    expect(err.message).toBe(
      'Cannot load program "x": EACCES (permission denied): 1: (0f) r0 += r3: R3 !read_ok (4 lines omitted)',
    );
    expect(err.name).toBe("VerifierError");
    expect(err).toBeInstanceOf(SyscallError);
    expect(err.formatLog({ head: 1 })).toBe("func#0 @0");
    expect(err.formatLog()).toBe(log.join("\n"));
    const cut = new VerifierError("x", {
      syscall: "bpf",
      op: "BPF_PROG_LOAD",
      errno: 28,
      log: ["0: (95) exit"],
      truncated: true,
    });
    expect(cut.message).toMatch(/\(log truncated\)$/);
  });

  test("error classes carry their names and guards", () => {
    const ns = new NotSupportedError("tcx links", { minKernel: "6.6" });
    expect(ns.name).toBe("NotSupportedError");
    expect(isNotSupported(ns)).toBe(true);
    expect(isNotSupported(new Error("x"))).toBe(false);
    expect(new ClosedError('map "m"').name).toBe("ClosedError");
    const wrapped = new SyscallError("Cannot do it", { syscall: "setns", op: "setns", errno: 22, cause: ns });
    expect(wrapped.cause).toBe(ns);
    expect(wrapped.hint).toBeUndefined();
  });

  test("errno names round-trip, including the kernel-internal ENOTSUPP", () => {
    expect(errnoName(2)).toBe("ENOENT");
    expect(errnoName(524)).toBe("ENOTSUPP");
    expect(errnoName(9999)).toBe("E9999");
    expect(errnoNumber("E2BIG")).toBe(7);
  });
});

describe("parsers", () => {
  test("parseCpuList() counts ranges and rejects garbage", () => {
    expect(parseCpuList("0")).toBe(1);
    expect(parseCpuList("0-1\n")).toBe(2);
    expect(parseCpuList("0-3,8-11,15")).toBe(9);
    expect(() => parseCpuList("0-")).toThrow(SyntaxError);
    expect(() => parseCpuList("3-1")).toThrow(/reversed/);
  });

  test("parseKernelVersion() and compareKernelVersions() order releases", () => {
    expect(parseKernelVersion("6.6")).toEqual({ major: 6, minor: 6, patch: 0 });
    expect(compareKernelVersions(parseKernelVersion("6.18.44-x"), parseKernelVersion("6.6"))).toBeGreaterThan(0);
    expect(compareKernelVersions(parseKernelVersion("5.10"), parseKernelVersion("5.10.0"))).toBe(0);
    expect(() => parseKernelVersion("linux")).toThrow(SyntaxError);
  });
});
