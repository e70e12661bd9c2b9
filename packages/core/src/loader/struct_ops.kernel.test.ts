// struct_ops (bpf/testdata/struct_ops.c): a TCP congestion control written
// in BPF, registered host-wide under a name unique to each test run (never
// made the default), selected with TCP_CONGESTION (iperf3 -C) on sockets in
// test namespaces only, carrying real traffic, and unregistered when the
// collection closes, also when the test fails.
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { type CollectionSpec, linkById, loadCollection, readCollectionSpec } from "@dp/core";
import { netns, requireConfig, requireRoot } from "@dp/core/testing";
import { ROOT } from "../btf/_test_btf.ts";

beforeEach((t) => requireRoot(t));

const OBJECT = join(ROOT, "bpf/build/testdata/struct_ops.o");
const AVAILABLE = "/proc/sys/net/ipv4/tcp_available_congestion_control";
/** TCP_CA_NAME_MAX is 16 with the NUL. */
const NAME_MAX = 15;

function available(): string[] {
  return readFileSync(AVAILABLE, "utf8").trim().split(/\s+/);
}

/** Names the struct_ops maps of the spec uniquely (the `name` member of their struct). */
function renamed(spec: CollectionSpec, maps: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const map of maps) {
    const m = spec.maps.get(map);
    const t = m?.valueTypeId === undefined ? undefined : spec.btf?.resolve(m.valueTypeId);
    const member = t?.kind === "struct" ? t.members.find((x) => x.name === "name") : undefined;
    if (m?.contents === undefined || member === undefined) throw new Error(`no struct_ops map ${map}`);
    const name = `dpt${randomBytes(6).toString("hex")}`.slice(0, NAME_MAX);
    m.contents.fill(0, member.bitOffset / 8, member.bitOffset / 8 + NAME_MAX + 1);
    m.contents.set(new TextEncoder().encode(name), member.bitOffset / 8);
    names.set(map, name);
  }
  return names;
}

const registered: string[] = [];
afterEach(() => {
  // Whatever happened, nothing of ours stays registered.
  const left = registered.splice(0).filter((n) => available().includes(n));
  expect(left).toEqual([]);
});

/** Runs iperf3 from `client` to `server` for a moment with congestion control `cc`; returns its JSON report. */
async function iperf(
  server: ReturnType<typeof netns>,
  client: ReturnType<typeof netns>,
  address: string,
  cc: string,
): Promise<{ end: { sender_tcp_congestion?: string; sum_sent: { bytes: number } } }> {
  const daemon = spawn("ip", ["netns", "exec", server.name, "iperf3", "-s", "-1", "-B", address], { stdio: "ignore" });
  try {
    for (let i = 0; i < 50; i++) {
      if (server.exec("ss", ["-Hltn", `sport = :5201`]).trim() !== "") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const out = client.exec("iperf3", ["-c", address, "-C", cc, "-t", "1", "-J"]);
    return JSON.parse(out) as { end: { sender_tcp_congestion?: string; sum_sent: { bytes: number } } };
  } finally {
    daemon.kill();
  }
}

describe("struct_ops", () => {
  test("a BPF TCP congestion control registers, carries traffic on the sockets that select it, and unregisters on close", async (t) => {
    requireConfig(t, "CONFIG_BPF_JIT", "CONFIG_TCP_CONG_ADVANCED");
    const spec = readCollectionSpec(OBJECT);
    expect(spec.maps.get("dp_cc_link")).toMatchObject({ kind: "structOps", spec: { type: "structOps", flags: 8192 } });
    expect(spec.maps.get("dp_cc_update")).toMatchObject({ kind: "structOps", spec: { type: "structOps" } });
    const names = renamed(spec, ["dp_cc_link", "dp_cc_update"]);
    registered.push(...names.values());
    const defaultCc = readFileSync("/proc/sys/net/ipv4/tcp_congestion_control", "utf8").trim();

    using a = netns({ label: "ccA" });
    using b = netns({ label: "ccB" });
    a.exec("ip", ["link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", b.name]);
    a.exec("ip", ["addr", "add", "10.78.0.1/24", "dev", "v0"]);
    b.exec("ip", ["addr", "add", "10.78.0.2/24", "dev", "v1"]);
    a.exec("ip", ["link", "set", "v0", "up"]);
    b.exec("ip", ["link", "set", "v1", "up"]);

    {
      using coll = loadCollection(spec);
      for (const name of names.values()) expect(available()).toContain(name);
      // bpftool sees both registrations (by map), one of them through a struct_ops link.
      const shown = JSON.parse(execFileSync("bpftool", ["-j", "struct_ops", "show"], { encoding: "utf8" })) as {
        id: number;
        kernel_struct_ops: string;
      }[];
      for (const map of ["dp_cc_link", "dp_cc_update"]) {
        expect(shown).toContainEqual(
          expect.objectContaining({ id: coll.map(map).info().id, kernel_struct_ops: "tcp_congestion_ops" }),
        );
      }
      const links = JSON.parse(execFileSync("bpftool", ["-j", "link", "show"], { encoding: "utf8" })) as {
        id: number;
        type: string;
      }[];
      const structOpsLinks = links.filter((l) => l.type === "struct_ops").map((l) => l.id);
      const mapIds = structOpsLinks.map((id) => {
        using link = linkById(id);
        return link.info().mapId;
      });
      expect(mapIds).toContain(coll.map("dp_cc_link").info().id);
      expect(mapIds).not.toContain(coll.map("dp_cc_update").info().id);

      for (const map of ["dp_cc_link", "dp_cc_update"]) {
        const cc = names.get(map) as string;
        const before = coll.variable("calls").get() as Uint8Array;
        const report = await iperf(b, a, "10.78.0.2", cc);
        expect(report.end.sender_tcp_congestion).toBe(cc);
        expect(report.end.sum_sent.bytes).toBeGreaterThan(0);
        const after = coll.variable("calls").get() as Uint8Array;
        const congAvoid = (v: Uint8Array): bigint => new DataView(v.buffer, v.byteOffset).getBigUint64(8, true);
        expect(congAvoid(after)).toBeGreaterThan(congAvoid(before));
      }
      // Never the default.
      expect(readFileSync("/proc/sys/net/ipv4/tcp_congestion_control", "utf8").trim()).toBe(defaultCc);
    }
    for (const name of names.values()) expect(available()).not.toContain(name);
  });

  test("a failed load unregisters what it registered", () => {
    const spec = readCollectionSpec(OBJECT);
    const names = renamed(spec, ["dp_cc_link", "dp_cc_update"]);
    registered.push(...names.values());
    // Both maps get one name: the kernel registers the first (dp_cc_update) and refuses the second.
    const link = spec.maps.get("dp_cc_link");
    const update = spec.maps.get("dp_cc_update");
    if (link?.contents === undefined || update?.contents === undefined) throw new Error("no contents");
    const t = spec.btf?.resolve(link.valueTypeId ?? 0);
    const member = t?.kind === "struct" ? t.members.find((x) => x.name === "name") : undefined;
    const at = (member?.bitOffset ?? 0) / 8;
    update.contents.set(link.contents.subarray(at, at + NAME_MAX + 1), at);
    expect(() => loadCollection(spec)).toThrow(
      /Cannot register struct_ops map "dp_cc_link" of object "struct_ops": EEXIST/,
    );
    expect(available()).not.toContain(names.get("dp_cc_link"));
  });
});
