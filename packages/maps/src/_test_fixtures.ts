// Fixtures for the typed map kernel tests: loading
// bpf/testdata/typed_maps.o, running fill_maps with a seed, and bpftool
// dumps as the oracle.
import { execFileSync } from "node:child_process";
import { type BpfMap, type Collection, loadCollection, readCollectionSpec } from "@dp/core";

/** Loads bpf/build/testdata/typed_maps.o. */
export function loadTypedMaps(): Collection {
  return loadCollection(readCollectionSpec("bpf/build/testdata/typed_maps.o"));
}

/** Runs fill_maps once with skb->mark = seed on a 64-byte packet. */
export function fill(coll: Collection, seed: number): number {
  const ctx = new Uint8Array(12);
  new DataView(ctx.buffer).setUint32(8, seed, true);
  return coll.program("fill_maps").testRun({ data: new Uint8Array(64), ctx }).retval;
}

/** One entry of `bpftool map dump -j`, with the BTF-formatted key and value when the map has BTF. */
export interface DumpEntry {
  readonly key: string;
  readonly value?: string;
  readonly values?: readonly string[];
  readonly formatted?: {
    readonly key: unknown;
    readonly value?: unknown;
    readonly values?: readonly { cpu: number; value: unknown }[];
  };
}

/**
 * `bpftool map dump id N -j`, with integers too large for a double kept
 * exact as bigints.
 */
export function bpftoolDump(map: BpfMap): DumpEntry[] {
  const text = execFileSync("bpftool", ["map", "dump", "id", String(map.info().id), "-j"], { encoding: "utf8" });
  const exact = text.replace(/([:[,])(-?\d{16,})(?=[,\]}])/g, '$1"#big$2"');
  const raw = JSON.parse(exact, (_k, v: unknown) =>
    typeof v === "string" && v.startsWith("#big") ? BigInt(v.slice(4)) : v,
  ) as {
    key: string[];
    value?: string[] | { error: string };
    values?: { cpu: number; value: string[] }[];
    formatted?: DumpEntry["formatted"];
  }[];
  const join = (bytes: string[]): string => bytes.map((x) => x.slice(2)).join("");
  return raw.map((e) => ({
    key: join(e.key),
    ...(Array.isArray(e.value) ? { value: join(e.value) } : {}),
    ...(e.values ? { values: e.values.map((v) => join(v.value)) } : {}),
    ...(e.formatted ? { formatted: e.formatted } : {}),
  }));
}

/** Hex of bytes, as bpftoolDump() joins them. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** A u32 in host order (little-endian here), as bytes. */
export function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
