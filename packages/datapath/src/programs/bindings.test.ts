// The TypeScript bindings in ../_gen are what dp-gen makes of the objects
// bpf/build.sh built (the same check as `npm run gen:maps -- ... --check`):
// the C layouts and the TypeScript codecs cannot drift apart.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { readCollectionSpec } from "@dp/core";
import { generateBindings } from "@dp/maps";
import { DpCtEntry, DpEndpointInfo, DpEndpointKey, DpEvent, DpIpcacheKey, DpPolicyKey, DpPolicyValue, DpTuple } from "../_gen/from_container.ts";

const ROOT = new URL("../../../../", import.meta.url).pathname;

describe("generated bindings", () => {
  test.each(["from_container", "to_container", "from_netdev"])("_gen/%s.ts is what dp-gen generates from the object", (name) => {
    const object = `bpf/build/datapath/${name}.o`;
    const out = `packages/datapath/src/_gen/${name}.ts`;
    const text = generateBindings(readCollectionSpec(`${ROOT}${object}`), {
      objectPath: object,
      command: `npm run gen:maps -- ${object} -o ${out}`,
    });
    expect(readFileSync(`${ROOT}${out}`, "utf8")).toBe(text);
  });

  test("the layouts have the sizes the C headers give them", () => {
    expect({
      tuple: DpTuple.size,
      ct: DpCtEntry.size,
      endpointKey: DpEndpointKey.size,
      endpoint: DpEndpointInfo.size,
      ipcacheKey: DpIpcacheKey.size,
      policyKey: DpPolicyKey.size,
      policyValue: DpPolicyValue.size,
      event: DpEvent.size,
    }).toEqual({ tuple: 40, ct: 64, endpointKey: 20, endpoint: 24, ipcacheKey: 24, policyKey: 12, policyValue: 24, event: 80 });
  });
});
