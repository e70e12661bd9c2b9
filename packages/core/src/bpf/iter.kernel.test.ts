import { beforeEach, describe, expect, test } from "vitest";
import { loadCollection, loadProgram, readCollectionSpec } from "@dp/core";
import { createIterLink, readIterator } from "@dp/core/internal";
import { netns, requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

const OBJECT = new URL("../../../../bpf/build/testdata/libbpf_iter.o", import.meta.url).pathname;

describe("createIterLink() and readIterator()", () => {
  test("an iter/task program runs once per read and its output comes back", () => {
    using coll = loadCollection(readCollectionSpec(OBJECT), { programs: ["dump_task"] });
    using link = createIterLink(coll.program("dump_task"));
    expect(link.info().type).toBe("iter");
    const pids = new TextDecoder().decode(readIterator(link)).trim().split("\n").map(Number);
    expect(pids).toContain(process.pid);
    // A second read runs the program again.
    expect(new TextDecoder().decode(readIterator(link)).trim().split("\n").map(Number)).toContain(process.pid);
    expect(() => readIterator(link, { maxBytes: 4 })).toThrow(/more than 4 bytes/);
  });

  test("iter/tcp runs in the calling thread's network namespace: none in a fresh one", () => {
    using ns = netns({ label: "iter" });
    using coll = loadCollection(readCollectionSpec(OBJECT), { programs: ["dump_tcp"] });
    using link = createIterLink(coll.program("dump_tcp"));
    // A fresh namespace has no TCP socket.
    expect(ns.run(() => readIterator(link)).length).toBe(0);
  });

  test("a program that is not an iterator is refused before any system call", () => {
    using prog = loadProgram({
      type: "xdp",
      license: "GPL",
      instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
    });
    expect(() => createIterLink(prog)).toThrow(TypeError);
  });
});
