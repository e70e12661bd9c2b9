import { execFileSync } from "node:child_process";
import { beforeEach, describe, expect, test } from "vitest";
import { createMap, loadProgram, openPinnedProgram, SyscallError, VerifierError } from "@dp/core";
import { asm, rawFd, setSys, sys } from "@dp/core/internal";
import { bpffsDir, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const { atomicAddDw, call, exit, jeqImm, ldMapFd, movImm, movReg, addImm, program, stW } = asm;
const XDP_DROP = 1;
const XDP_PASS = 2;

describe("loadProgram()", () => {
  test("rejects a broken program with a VerifierError that names the failing instruction", () => {
    // r0 = 1; r0 += r3 (r3 was never written); exit
    const instructions = program(movImm(0, 1), new Uint8Array([0x0f, 0x30, 0, 0, 0, 0, 0, 0]), exit());
    try {
      loadProgram({ name: "broken", type: "xdp", license: "GPL", instructions });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VerifierError);
      const v = err as VerifierError;
      expect(v).toMatchObject({
        name: "VerifierError",
        syscall: "bpf",
        op: "BPF_PROG_LOAD",
        code: "EACCES",
        truncated: false,
      });
      expect(v.message).toMatch(
        /^Cannot load xdp program "broken": EACCES \(permission denied\): 1: \(0f\) r0 \+= r3: R3 !read_ok/,
      );
      expect(v.message).toMatch(/\(\d+ lines omitted\)$/);
      expect(v.log.length).toBeGreaterThan(2);
      expect(v.formatLog({ tail: 1 })).toBe(v.log.at(-1));
    }
  });

  test("grows the log buffer on ENOSPC so the whole log is returned", () => {
    const instructions = program(exit());
    try {
      loadProgram({ type: "socketFilter", license: "GPL", instructions }, { logSize: 16, logLevel: 2 });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VerifierError);
      expect((err as VerifierError).truncated).toBe(false);
      expect((err as VerifierError).message).toMatch(/R0 !read_ok/);
    }
  });

  test("test-runs a tiny program and returns verdict, packet and duration", () => {
    using prog = loadProgram({
      name: "pass",
      type: "xdp",
      license: "GPL",
      instructions: program(movImm(0, XDP_PASS), exit()),
    });
    const data = new Uint8Array(64).map((_, i) => i);
    const r = prog.testRun({ data, repeat: 100 });
    expect(r.retval).toBe(XDP_PASS);
    expect(r.data).toEqual(data);
    expect(r.duration).toBeGreaterThanOrEqual(0);
  });

  test("a program updating a map through a helper: test run results are visible in the map", () => {
    using counts = createMap({ name: "t_counts", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
    // key = 0 on the stack; r0 = map_lookup_elem(map, &key); if r0 == 0 goto out; *(u64 *)r0 += 1; out: return XDP_DROP
    const instructions = program(
      stW(10, -4, 0),
      movReg(2, 10),
      addImm(2, -4),
      ldMapFd(1, rawFd(counts.fd)),
      call(1),
      jeqImm(0, 0, 2),
      movImm(1, 1),
      atomicAddDw(0, 1, 0),
      movImm(0, XDP_DROP),
      exit(),
    );
    using prog = loadProgram({ name: "count", type: "xdp", license: "GPL", instructions });
    expect(prog.testRun({ data: new Uint8Array(64), repeat: 7 }).retval).toBe(XDP_DROP);
    const value = counts.get(new Uint8Array(4)) as Uint8Array;
    expect(new DataView(value.buffer).getBigUint64(0, true)).toBe(7n);
    expect(prog.info().mapIds).toEqual([counts.info().id]);
  });

  test("info(), pin and openPinnedProgram() agree with bpftool", () => {
    using dir = bpffsDir();
    using prog = loadProgram({
      name: "dp_info",
      type: "schedCls",
      license: "GPL",
      instructions: program(movImm(0, 0), exit()),
    });
    const info = prog.info();
    expect(info).toMatchObject({ type: "schedCls", name: "dp_info", xlatedSize: 16 });
    prog.pin(dir.join("prog"));
    const shown = JSON.parse(
      execFileSync("bpftool", ["-j", "prog", "show", "pinned", dir.join("prog")], { encoding: "utf8" }),
    );
    expect(shown).toMatchObject({ id: info.id, type: "sched_cls", name: "dp_info", tag: info.tag });
    using again = openPinnedProgram(dir.join("prog"));
    expect(again.info().id).toBe(info.id);
    expect(again.type).toBe("schedCls");
  });

  test("bad specs are rejected before any system call", () => {
    const instructions = program(movImm(0, 0), exit());
    expect(() => loadProgram({ type: "nope" as "xdp", license: "GPL", instructions })).toThrow(TypeError);
    expect(() => loadProgram({ type: "xdp", license: "GPL", instructions: new Uint8Array(12) })).toThrow(
      /spec.instructions must be a non-empty multiple of 8 bytes, got 12/,
    );
    expect(() => loadProgram({ type: "xdp", license: "", instructions })).toThrow(/spec.license/);
    expect(() =>
      loadProgram({ name: "a name that is far too long", type: "xdp", license: "GPL", instructions }),
    ).toThrow(RangeError);
  });

  test("test-run with input the program type rejects is a SyscallError", () => {
    using prog = loadProgram({ type: "xdp", license: "GPL", instructions: program(movImm(0, XDP_PASS), exit()) });
    // XDP needs at least an Ethernet header.
    expect(() => prog.testRun({ data: new Uint8Array(4) })).toThrow(SyscallError);
  });
});

/**
 * The real gateway, except that the first `n` bpf(2) calls of command `cmd`
 * fail with `errno`, as a pending signal makes them (EINTR from a test run,
 * EAGAIN from the verifier).
 */
function failFirst(cmd: number, errno: number, n: number): { restore(): void; failed(): number } {
  const real = sys();
  let left = n;
  let count = 0;
  const previous = setSys(
    new Proxy(real, {
      get(target, key) {
        if (key === "bpf") {
          return (c: number, attr: number, size: number): number => {
            if (c === cmd && left > 0) {
              left -= 1;
              count += 1;
              return -errno;
            }
            return target.bpf(c, attr, size);
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }),
  );
  return { restore: () => void setSys(previous), failed: () => count };
}

describe("BpfProgram.testRun() interrupted by a signal", () => {
  const PROG_TEST_RUN = 10;
  const EINTR = 4;
  const interruptFirst = (n: number): ReturnType<typeof failFirst> => failFirst(PROG_TEST_RUN, EINTR, n);

  test("testRun() starts the run again after EINTR and returns its result", () => {
    using prog = loadProgram({
      name: "pass",
      type: "xdp",
      license: "GPL",
      instructions: program(movImm(0, XDP_PASS), exit()),
    });
    const gate = interruptFirst(3);
    try {
      const run = prog.testRun({ data: new Uint8Array(64), repeat: 100 });
      expect(run.retval).toBe(XDP_PASS);
      expect(run.data.length).toBe(64);
      expect(gate.failed()).toBe(3);
    } finally {
      gate.restore();
    }
  });

  test("testRun() calls reset before each run it starts again", () => {
    using prog = loadProgram({
      name: "pass",
      type: "xdp",
      license: "GPL",
      instructions: program(movImm(0, XDP_PASS), exit()),
    });
    const gate = interruptFirst(2);
    let resets = 0;
    try {
      expect(prog.testRun({ data: new Uint8Array(64), reset: () => void resets++ }).retval).toBe(XDP_PASS);
      expect(resets).toBe(2);
    } finally {
      gate.restore();
    }
  });

  test("testRun() gives up with EINTR when every attempt is interrupted", () => {
    using prog = loadProgram({
      name: "pass",
      type: "xdp",
      license: "GPL",
      instructions: program(movImm(0, XDP_PASS), exit()),
    });
    const gate = interruptFirst(1000);
    try {
      expect(() => prog.testRun({ data: new Uint8Array(64) })).toThrow(
        expect.objectContaining({ code: "EINTR" }) as Error,
      );
    } finally {
      gate.restore();
    }
  });
});

describe("loadProgram() when the verifier is interrupted", () => {
  test("loadProgram() loads again after EAGAIN (a pending signal), as libbpf does", () => {
    const PROG_LOAD = 5;
    const EAGAIN = 11;
    const gate = failFirst(PROG_LOAD, EAGAIN, 2);
    try {
      using prog = loadProgram({
        name: "again",
        type: "xdp",
        license: "GPL",
        instructions: program(movImm(0, XDP_PASS), exit()),
      });
      expect(prog.testRun({ data: new Uint8Array(64) }).retval).toBe(XDP_PASS);
      expect(gate.failed()).toBe(2);
    } finally {
      gate.restore();
    }
  });
});
