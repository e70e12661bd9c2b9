// The objects of bpf/datapath load on this kernel: through dp's loader
// (both programs over one set of maps, with node-sized maps) and, as an
// oracle, through libbpf with `bpftool prog loadall`.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { beforeEach, describe, expect, test } from "vitest";
import { bpffsDir, requireRoot } from "@dp/core/testing";
import { OBJECTS, TestDatapath } from "./_datapath.ts";

beforeEach((t) => requireRoot(t));

describe("bpf/datapath objects", () => {
  test.each(Object.entries(OBJECTS))("bpftool prog loadall loads %s and pins its program", (name, path) => {
    using dir = bpffsDir();
    const pins = dir.join(name);
    execFileSync("bpftool", ["prog", "loadall", path, pins, "type", "tc"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(readdirSync(pins)).toEqual([name]);
  });

  test("the loader loads every program with the node's default map sizes and settings", () => {
    using dp = new TestDatapath({
      hostRouting: "bpf",
      trace: true,
      maxEntries: { dp_endpoints: 65535, dp_policy: 65535, dp_ct_tcp: 1 << 20, dp_ct_any: 1 << 18, dp_events: 1 << 22 },
    });
    expect(dp.fromContainer.type).toBe("schedCls");
    expect(dp.toContainer.type).toBe("schedCls");
    expect(dp.fromNetdev.type).toBe("schedCls");
    expect([
      dp.endpoints.map.maxEntries,
      dp.policy.map.maxEntries,
      dp.ctTcp.map.maxEntries,
      dp.ctAny.map.maxEntries,
    ]).toEqual([65535, 65535, 1 << 20, 1 << 18]);
    expect(dp.ipcache.map.maxEntries).toBe(512 * 1024);
  });
});
