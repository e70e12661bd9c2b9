import { existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { createMap, loadProgram } from "@dp/core";
import { rawFd } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import { parseBtf } from "../btf/btf.ts";
import { parseBtfExt } from "../btf/btf_ext.ts";
import { applyCoreRelocations } from "./core_relo.ts";
import { parseElf } from "./elf.ts";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const VMLINUX = "/sys/kernel/btf/vmlinux";
const CORE_O = join(ROOT, "bpf/build/testdata/core.o");
/** PROC_PID_INIT_INO: the inode of the initial pid namespace. */
const INIT_PID_NS = "pid:[4026531836]";
const BPF_PSEUDO_MAP_FD = 1;

describe.skipIf(!existsSync(VMLINUX) || !existsSync(CORE_O))("applyCoreRelocations() in the kernel", () => {
  test("applyCoreRelocations() makes core.o's tc program pass the verifier and read what vmlinux BTF says", () => {
    const elf = parseElf(readFileSync(CORE_O));
    const section = (name: string): Uint8Array => {
      const s = elf.sectionByName(name);
      if (s === undefined) throw new Error(`core.o has no ${name}`);
      return s.data();
    };
    const local = parseBtf(section(".BTF"));
    const kernel = parseBtf(new Uint8Array(readFileSync(VMLINUX)));
    const ext = parseBtfExt(section(".BTF.ext"), local);
    const instructions = new Uint8Array(section("tc"));
    const relos = (ext.coreRelos.get("tc") ?? []).map((relo) => ({ instruction: relo.insnOffset / 8, relo }));
    applyCoreRelocations(instructions, relos, local, kernel);

    using out = createMap({ name: "core_out", type: "array", keySize: 4, valueSize: 72, maxEntries: 1 });
    // The one map reference (R_BPF_64_64 against core_out) becomes a map fd load.
    const tc = elf.sectionByName("tc");
    const mapRelos = elf.relocations.get(tc?.index ?? -1) ?? [];
    expect(mapRelos.map((r) => elf.symbols[r.symbolIndex]?.name)).toEqual(["core_out"]);
    for (const r of mapRelos) {
      instructions[r.offset + 1] = ((instructions[r.offset + 1] as number) & 0x0f) | (BPF_PSEUDO_MAP_FD << 4);
      new DataView(instructions.buffer).setInt32(r.offset + 4, rawFd(out.fd), true);
    }

    using prog = loadProgram({ name: "core_values", type: "schedCls", license: "GPL", instructions });
    const run = prog.testRun({ data: new Uint8Array(77) });
    expect(run.retval).toBe(77);

    const value = out.get(new Uint8Array(4));
    expect(value).toBeDefined();
    const dv = new DataView((value ?? new Uint8Array(72)).buffer);
    const u32 = (off: number): number => dv.getUint32(off, true);
    const struct = (
      name: string,
    ): { id: number; size: number; members: readonly { name: string; bitOffset: number }[] } => {
      const t = kernel.typesByName(name, "struct")[0];
      if (t?.kind !== "struct") throw new Error(`vmlinux has no struct ${name}`);
      return t;
    };
    const skb = struct("sk_buff");
    expect({
      skbLenExists: u32(0),
      missingFieldExists: u32(4),
      skbLenSize: u32(8),
      skbLenOffset: u32(12),
      skBuffExists: u32(16),
      missingTypeExists: u32(20),
      skBuffSize: u32(24),
      skBuffKernelId: u32(28),
      skBuffLocalId: u32(32),
      ringbufExists: u32(36),
      missingEnumExists: u32(40),
      ringbufValue: dv.getBigUint64(48, true),
      netNsInum: u32(60),
      skbLen: u32(64),
    }).toEqual({
      skbLenExists: 1,
      missingFieldExists: 0,
      skbLenSize: 4,
      skbLenOffset: (skb.members.find((m) => m.name === "len")?.bitOffset ?? 0) / 8,
      skBuffExists: 1,
      missingTypeExists: 0,
      skBuffSize: skb.size,
      skBuffKernelId: skb.id,
      skBuffLocalId: local.typesByName("sk_buff", "struct")[0]?.id,
      ringbufExists: 1,
      missingEnumExists: 0,
      ringbufValue: 27n,
      netNsInum: statSync("/proc/self/ns/net").ino,
      skbLen: 77,
    });
    const tgid = u32(44);
    expect(u32(56)).toBe(tgid);
    if (readlinkSync("/proc/self/ns/pid") === INIT_PID_NS) expect(tgid).toBe(process.pid);
    else expect(tgid).toBeGreaterThan(0);
  });
});
