// Legacy SEC("maps") definitions (bpf/testdata/legacy_maps.c with iproute2's
// struct bpf_elf_map, legacy_map_def.c with libbpf's old struct
// bpf_map_def): created, used by their programs, PIN_GLOBAL_NS maps pinned
// under tc's globals directory (a fresh bpffs directory per test, given to
// tc as TC_BPF_MNT), and shared with what tc itself pins there.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, expect, test } from "vitest";
import { type CollectionSpec, loadCollection, readCollectionSpec } from "@dp/core";
import { bpffsDir, netns, requireRoot } from "@dp/core/testing";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const TESTDATA = join(ROOT, "bpf/build/testdata");
const ETH_P_IP = 0x0800;

function objectSpec(name: string): CollectionSpec {
  return readCollectionSpec(join(TESTDATA, `${name}.o`));
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function u64(b: Uint8Array | undefined): bigint | undefined {
  return b === undefined ? undefined : new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(0, true);
}

/** A 64-byte Ethernet frame of the given EtherType. */
function frame(etherType: number): Uint8Array {
  const f = new Uint8Array(64);
  new DataView(f.buffer).setUint16(12, etherType);
  return f;
}

function pinnedMapId(path: string): number {
  return (
    JSON.parse(execFileSync("bpftool", ["-j", "map", "show", "pinned", path], { encoding: "utf8" })) as { id: number }
  ).id;
}

/** tc in a namespace, keeping this mount namespace (bpffs) and pointing tc's bpffs root at `mnt`. */
function tcIn(ns: string, mnt: string, args: readonly string[]): { status: number | null; stderr: string } {
  const r = spawnSync("nsenter", [`--net=/run/netns/${ns}`, "tc", ...args], {
    encoding: "utf8",
    env: { ...process.env, TC_BPF_MNT: mnt },
  });
  return { status: r.status, stderr: r.stderr };
}

describe('legacy SEC("maps") maps', () => {
  test("bpf_elf_map maps are created, used and PIN_GLOBAL_NS ones pinned under the tc globals path", () => {
    using dir = bpffsDir();
    const globals = join(dir.path, "tc/globals");
    using coll = loadCollection(objectSpec("legacy_maps"), { tcGlobalsPath: globals });
    expect([...coll.maps.keys()]).toEqual(["legacy_counts", "legacy_lens", "legacy_unused", "dp_testdata_pinned"]);
    const run = coll.program("legacy_count");
    expect(run.testRun({ data: frame(ETH_P_IP) }).retval).toBe(0);
    expect(run.testRun({ data: frame(ETH_P_IP) }).retval).toBe(0);
    expect(run.testRun({ data: frame(0x86dd) }).retval).toBe(0);
    expect(u64(coll.map("legacy_counts").get(u32(0)))).toBe(2n);
    expect(u64(coll.map("legacy_counts").get(u32(1)))).toBe(1n);
    expect(coll.map("legacy_lens").flags).toBe(1); // BPF_F_NO_PREALLOC
    expect(coll.map("legacy_unused").maxEntries).toBe(1);
    // Pinned where tc pins them; the others not at all.
    expect(pinnedMapId(join(globals, "legacy_counts"))).toBe(coll.map("legacy_counts").info().id);
    expect(pinnedMapId(join(globals, "dp_testdata_pinned"))).toBe(coll.map("dp_testdata_pinned").info().id);
    expect(existsSync(join(globals, "legacy_lens"))).toBe(false);
    expect(existsSync(join(globals, "legacy_unused"))).toBe(false);

    // A second load finds the pinned maps and shares them.
    using again = loadCollection(objectSpec("legacy_maps"), { tcGlobalsPath: globals });
    expect(again.map("legacy_counts").info().id).toBe(coll.map("legacy_counts").info().id);
    expect(again.map("legacy_lens").info().id).not.toBe(coll.map("legacy_lens").info().id);
  });

  test("a map tc pins in its globals directory is the one a legacy PIN_GLOBAL_NS map uses", () => {
    using dir = bpffsDir();
    using ns = netns({ label: "legacy" });
    using peer = netns({ label: "legacypeer" });
    ns.exec("ip", ["link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", peer.name]);
    ns.exec("ip", ["addr", "add", "10.77.0.1/24", "dev", "v0"]);
    peer.exec("ip", ["addr", "add", "10.77.0.2/24", "dev", "v1"]);
    ns.exec("ip", ["link", "set", "v0", "up"]);
    peer.exec("ip", ["link", "set", "v1", "up"]);
    expect(tcIn(ns.name, dir.path, ["qdisc", "add", "dev", "v0", "clsact"]).status).toBe(0);
    // tc (through libbpf) loads pinned_a.o, whose BTF map is pinned by name: tc puts it in <mnt>/tc/globals.
    const added = tcIn(ns.name, dir.path, [
      "filter",
      "add",
      "dev",
      "v0",
      "ingress",
      "bpf",
      "da",
      "obj",
      join(TESTDATA, "pinned_a.o"),
      "sec",
      "tc",
    ]);
    expect(added, added.stderr).toMatchObject({ status: 0 });
    const globals = join(dir.path, "tc/globals");
    const tcMap = pinnedMapId(join(globals, "dp_testdata_pinned"));

    using coll = loadCollection(objectSpec("legacy_maps"), { tcGlobalsPath: globals });
    expect(coll.map("dp_testdata_pinned").info().id).toBe(tcMap);
    // Traffic through tc's program lands in the map dp's object holds: pinned_put stores skb->len at key skb->mark (0).
    peer.exec("ping", ["-c", "2", "-W", "1", "10.77.0.1"]);
    expect(u64(coll.map("dp_testdata_pinned").get(u32(0)))).toBeGreaterThan(0n);
    // And what dp's program writes, tc's map shows.
    coll.map("dp_testdata_pinned").delete(u32(0));
    coll.program("legacy_count").testRun({ data: frame(ETH_P_IP) });
    const shown = execFileSync("bpftool", ["-j", "map", "dump", "pinned", join(globals, "dp_testdata_pinned")], {
      encoding: "utf8",
    });
    // key 0 (the test run's mark), value 64 (its length), as tc's BTF types print them.
    expect((JSON.parse(shown) as { formatted: unknown }[]).map((e) => e.formatted)).toEqual([{ key: 0, value: 64 }]);
  });

  test("bpf_map_def maps (libbpf before 1.0) load too", () => {
    using coll = loadCollection(objectSpec("legacy_map_def"));
    expect(coll.map("map_def_counts")).toMatchObject({ type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
    coll.program("map_def_count").testRun({ data: frame(ETH_P_IP) });
    expect(u64(coll.map("map_def_counts").get(u32(0)))).toBe(1n);
  });
});
