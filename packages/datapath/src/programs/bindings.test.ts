// The TypeScript bindings in ../_gen are what dp-gen makes of the objects
// bpf/build.sh built (the same check as `npm run gen:maps -- ... --check`):
// the C layouts and the TypeScript codecs cannot drift apart. One binding
// serves the three objects: they declare the very same maps, which the
// Node creates once (from from_container.o) and hands to the other two.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { readCollectionSpec } from "@dp/core";
import { generateBindings } from "@dp/maps";
import {
  DpCtEntry,
  DpEndpointInfo,
  DpEndpointKey,
  DpEvent,
  DpIpcacheKey,
  DpPolicyKey,
  DpPolicyValue,
  DpTuple,
} from "../_gen/datapath.ts";

const ROOT = new URL("../../../../", import.meta.url).pathname;

describe("generated bindings", () => {
  test("_gen/datapath.ts is what dp-gen generates from from_container.o", () => {
    const object = "bpf/build/datapath/from_container.o";
    const out = "packages/datapath/src/_gen/datapath.ts";
    const text = generateBindings(readCollectionSpec(`${ROOT}${object}`), {
      objectPath: object,
      command: `npm run gen:maps -- ${object} -o ${out}`,
    });
    expect(readFileSync(`${ROOT}${out}`, "utf8")).toBe(text);
  });

  test.each(["to_container", "from_netdev"])("%s.o declares the same maps as from_container.o", (name) => {
    const maps = (file: string): Record<string, unknown> =>
      Object.fromEntries(
        [...readCollectionSpec(`${ROOT}bpf/build/datapath/${file}.o`).maps].map(([n, m]) => [n, m.spec]),
      );
    const ours = maps("from_container");
    const theirs = maps(name);
    expect(
      Object.keys(theirs)
        .filter((n) => n.startsWith("dp_"))
        .sort(),
    ).toEqual(
      Object.keys(ours)
        .filter((n) => n.startsWith("dp_"))
        .sort(),
    );
    for (const n of Object.keys(ours).filter((k) => k.startsWith("dp_"))) expect(theirs[n], n).toEqual(ours[n]);
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
    }).toEqual({
      tuple: 40,
      ct: 64,
      endpointKey: 20,
      endpoint: 24,
      ipcacheKey: 24,
      policyKey: 12,
      policyValue: 24,
      event: 80,
    });
  });
});
