// Objects written for libbpf 1.x (bpf/testdata/libbpf_*.c): each one is
// loaded by dp and by `bpftool prog loadall` (libbpf, the reference) in
// the same test, and the programs they load are compared.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type CollectionSpec,
  kernelBtf,
  loadCollection,
  possibleCpus,
  readCollectionSpec,
  SyscallError,
  VerifierError,
} from "@dp/core";
import { bpffsDir, requireRoot } from "@dp/core/testing";
import { replaceBtfTypes } from "../btf/btf.ts";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const TESTDATA = join(ROOT, "bpf/build/testdata");

function objectSpec(name: string): CollectionSpec {
  return readCollectionSpec(join(TESTDATA, `${name}.o`));
}

/** What `bpftool -j prog show` prints for a program. */
interface BpftoolProg {
  readonly id: number;
  readonly type: string;
  readonly name: string;
}

function progShow(...args: string[]): BpftoolProg {
  return JSON.parse(execFileSync("bpftool", ["-j", "prog", "show", ...args], { encoding: "utf8" })) as BpftoolProg;
}

/** bpftool's program type names for dp's. */
const BPFTOOL_TYPE: Readonly<Record<string, string>> = {
  tracing: "tracing",
  lsm: "lsm",
  kprobe: "kprobe",
  schedCls: "sched_cls",
  xdp: "xdp",
};

type Loaded = { ok: true; programs: { name: string; type: string }[] } | { ok: false; code: string; message: string };

/** `bpftool prog loadall` into a fresh directory of `dir`: the programs it pinned, or the errno it failed with. */
function loadWithBpftool(object: string, dir: string): Loaded {
  const pins = join(dir, `bpftool-${object}`);
  const r = spawnSync("bpftool", ["prog", "loadall", join(TESTDATA, `${object}.o`), pins], { encoding: "utf8" });
  if (r.status !== 0) {
    const m = /failed to load: -(\d+)|(Operation not permitted|Invalid argument|No such file or directory)/.exec(
      r.stderr,
    );
    const code =
      m?.[1] === "1" || m?.[2] === "Operation not permitted"
        ? "EPERM"
        : m?.[1] === "22" || m?.[2] === "Invalid argument"
          ? "EINVAL"
          : "other";
    return { ok: false, code, message: r.stderr };
  }
  const programs = readdirSync(pins).map((pin) => {
    const shown = progShow("pinned", join(pins, pin));
    return { name: pin, type: shown.type };
  });
  return { ok: true, programs: programs.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** The same with dp: the programs of the collection (bpftool names their types), or the error's code. */
function loadWithDp(object: string): Loaded {
  try {
    using coll = loadCollection(objectSpec(object));
    const programs = [...coll.programs].map(([name, p]) => ({ name, type: progShow("id", String(p.info().id)).type }));
    return { ok: true, programs: programs.sort((a, b) => a.name.localeCompare(b.name)) };
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    expect(err.message).toContain(`of object ${JSON.stringify(object)}`);
    return { ok: false, code: err.code, message: err.message };
  }
}

describe("objects written for libbpf 1.x load with dp as with bpftool prog loadall", () => {
  /** Object, and the programs both must load (name, type) when the kernel allows them. */
  const objects: [string, [string, string][]][] = [
    [
      "libbpf_tracing",
      [
        ["ksys_unlinkat", "kprobe"],
        ["tp_sched_switch", "tracing"],
      ],
    ],
    ["libbpf_usdt", [["usdt_probe", "kprobe"]]],
    [
      "libbpf_iter",
      [
        ["dump_task", "tracing"],
        ["dump_tcp", "tracing"],
      ],
    ],
    ["libbpf_perf", [["perf_events", "sched_cls"]]],
    ["libbpf_nolicense", [["xdp_pass", "xdp"]]],
    [
      "libbpf_fentry",
      [
        ["fentry_unlinkat", "tracing"],
        ["fexit_unlinkat", "tracing"],
      ],
    ],
    ["libbpf_lsm", [["lsm_file_open", "lsm"]]],
  ];

  test.each(objects)("%s", (object, expected) => {
    using dir = bpffsDir();
    const tool = loadWithBpftool(object, dir.path);
    const dp = loadWithDp(object);
    if (!tool.ok) {
      // fentry/fexit/lsm need BPF trampolines; where this kernel refuses
      // them to libbpf too (EPERM after verification on the CI kernel),
      // dp must fail the same way, not for want of an attach_btf_id.
      expect(dp, tool.message).toMatchObject({ ok: false, code: tool.code });
      expect(dp.ok ? "" : dp.message).not.toMatch(/btf_id/);
      return;
    }
    expect(tool.programs).toEqual(expected.map(([name, type]) => ({ name, type })));
    expect(dp).toEqual(tool);
    expect(Object.values(BPFTOOL_TYPE)).toEqual(expect.arrayContaining(expected.map(([, type]) => type)));
  });
});

describe("what libbpf 1.x does for these objects, dp does too", () => {
  test("a perf event array without max_entries gets one slot per possible CPU", () => {
    using coll = loadCollection(objectSpec("libbpf_perf"));
    expect(coll.map("events").maxEntries).toBe(possibleCpus());
    expect(coll.map("events").type).toBe("perfEventArray");
  });

  test("hidden global functions are verified as static ones: with global linkage the verifier rejects first_byte", () => {
    const spec = objectSpec("libbpf_perf");
    const btf = spec.btf;
    if (btf === undefined) throw new Error("no BTF");
    // The object as a loader that ignores visibility would load it.
    const global = btf.types.map((t) =>
      t.kind === "func" && (t.name === "first_byte" || t.name === "add_len") ? { ...t, linkage: "global" as const } : t,
    );
    const unhidden: CollectionSpec = { ...spec, btf: replaceBtfTypes(btf, global) };
    expect(() => loadCollection(unhidden)).toThrow(VerifierError);
    using coll = loadCollection(spec);
    expect(coll.program("perf_events").testRun({ data: new Uint8Array(64) }).retval).toBe(0);
  });

  test("LINUX_HAS_SYSCALL_WRAPPER and LINUX_HAS_BPF_COOKIE come from probes; kernelConfig overrides them", () => {
    const btf = kernelBtf();
    const wrapper =
      btf.typesByName("__x64_sys_bpf", "func").length + btf.typesByName("__arm64_sys_bpf", "func").length > 0;
    expect(wrapper).toBe(true);
    using coll = loadCollection(objectSpec("libbpf_usdt"));
    const kconfig = coll.map(".kconfig").get(new Uint8Array(4));
    expect(kconfig?.[0]).toBe(1); // bpf_get_attach_cookie exists since Linux 5.15
    using tracing = loadCollection(objectSpec("libbpf_tracing"), {
      kernelConfig: new Map([["LINUX_HAS_SYSCALL_WRAPPER", "n"]]),
    });
    expect(tracing.map(".kconfig").get(new Uint8Array(4))?.[0]).toBe(0);
    using probed = loadCollection(objectSpec("libbpf_tracing"));
    expect(probed.map(".kconfig").get(new Uint8Array(4))?.[0]).toBe(1);
  });

  test("attach targets come from the section name unless options.attachTargets says otherwise", () => {
    const spec = objectSpec("libbpf_tracing");
    const id = kernelBtf().typesByName("btf_trace_sched_switch", "typedef")[0]?.id;
    if (id === undefined) throw new Error("no btf_trace_sched_switch in the kernel's BTF");
    using byId = loadCollection(spec, {
      programs: ["tp_sched_switch"],
      attachTargets: { tp_sched_switch: { btfId: id } },
    });
    expect(byId.programs.size).toBe(1);
    using byName = loadCollection(spec, {
      programs: ["tp_sched_switch"],
      attachTargets: { tp_sched_switch: { name: "sched_switch" } },
    });
    expect(byName.programs.size).toBe(1);
    expect(() =>
      loadCollection(spec, {
        programs: ["tp_sched_switch"],
        attachTargets: { tp_sched_switch: { name: "no_such_tracepoint" } },
      }),
    ).toThrow(
      new RangeError(
        'Cannot load tracing program "tp_sched_switch" of object "libbpf_tracing": attach target typedef "btf_trace_no_such_tracepoint" is in neither vmlinux nor module BTF',
      ),
    );
    expect(() => loadCollection(spec, { attachTargets: { tp_switch: { name: "sched_switch" } } })).toThrow(
      /^Invalid options.attachTargets: no program "tp_switch" in object "libbpf_tracing"/,
    );
    // Another tracepoint's id: the kernel checks the program against that one.
    const other = kernelBtf().typesByName("btf_trace_sched_wakeup", "typedef")[0]?.id ?? 0;
    expect(() =>
      loadCollection(spec, { programs: ["tp_sched_switch"], attachTargets: { tp_sched_switch: { btfId: other } } }),
    ).toThrow(VerifierError);
  });

  test("an object without a license loads, and the kernel still refuses a GPL-only helper to it", () => {
    using coll = loadCollection(objectSpec("libbpf_nolicense"));
    expect(coll.program("xdp_pass").testRun({ data: new Uint8Array(64) }).retval).toBe(2);
    const spec = objectSpec("libbpf_perf");
    // perf_events calls bpf_perf_event_output, which is GPL-only.
    const noLicense: CollectionSpec = {
      ...spec,
      programs: new Map([...spec.programs].map(([n, p]) => [n, { ...p, license: "" }])),
    };
    expect(() => loadCollection(noLicense)).toThrow(/cannot call GPL-restricted function/);
  });

  test("errors name the object and the map", () => {
    const spec = objectSpec("libbpf_nolicense");
    const packets = spec.maps.get("packets");
    if (packets === undefined) throw new Error("no map packets");
    const bad: CollectionSpec = {
      ...spec,
      maps: new Map([["packets", { ...packets, spec: { ...packets.spec, maxEntries: -1 } }]]),
    };
    expect(() => loadCollection(bad)).toThrow(/^Cannot create map "packets" of object "libbpf_nolicense": /);
  });

  test("a failed load leaves no directory it created behind", () => {
    using dir = bpffsDir();
    const pinPath = join(dir.path, "new", "sub");
    const spec = objectSpec("pinned_a");
    const [name, program] = [...spec.programs][0] ?? [];
    if (name === undefined || program === undefined) throw new Error("no program");
    // `exit` with r0 unset: the verifier rejects it after the maps exist.
    const exitOnly = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0]);
    const broken: CollectionSpec = {
      ...spec,
      programs: new Map([[name, { ...program, instructions: exitOnly, references: [], funcInfo: [], lineInfo: [] }]]),
    };
    expect(() => loadCollection(broken, { pinPath })).toThrow(VerifierError);
    expect(existsSync(join(dir.path, "new"))).toBe(false);
    using coll = loadCollection(spec, { pinPath });
    expect(coll.maps.size).toBe(1);
    expect(readdirSync(pinPath)).toEqual(["dp_testdata_pinned"]);
  });
});
