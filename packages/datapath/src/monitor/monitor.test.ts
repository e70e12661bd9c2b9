import { describe, expect, test } from "vitest";
import { monitor } from "@dp/datapath";

// What monitor() checks before reading; reading is tested against the
// kernel in monitor.kernel.test.ts.
describe("monitor()", () => {
  const source = {
    async *records(): AsyncGenerator<Uint8Array> {
      // Never iterated: the options are checked first.
    },
  };

  test("monitor() rejects bad filters before iterating", () => {
    expect(() => monitor(source, { types: ["drops" as "drop"] })).toThrow(/"types"/);
    expect(() => monitor(source, { endpoint: 70000 })).toThrow(RangeError);
    expect(() => monitor(source, { endpoint: "1" as unknown as number })).toThrow(TypeError);
    expect(() => monitor({} as typeof source)).toThrow(TypeError);
  });

  test("monitor() throws on a record that is neither bytes nor a decoded event, and skips unknown types", async () => {
    const unknownType = new Uint8Array(80);
    unknownType[8] = 200;
    async function* records(): AsyncGenerator<unknown> {
      yield unknownType;
      yield "not a record";
    }
    const seen: unknown[] = [];
    await expect(async () => {
      for await (const e of monitor({ records })) seen.push(e);
    }).rejects.toThrow(/Invalid monitor record/);
    expect(seen).toEqual([]);
  });
});
