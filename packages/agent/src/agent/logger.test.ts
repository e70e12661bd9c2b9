import { describe, expect, test } from "vitest";
import { createLogger } from "./logger.ts";

function capture(format: "text" | "json", debug = false): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger({ format, debug, stream: { write: (t: string) => lines.push(t) }, now: () => new Date(0) });
  return { lines, log };
}

describe("createLogger()", () => {
  test("json lines carry time, level, msg and the fields; bigints and errors become plain values", () => {
    const { lines, log } = capture("json");
    log.error("Failed", { count: 3n, error: new Error("boom"), nested: { a: 1 } });
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: "1970-01-01T00:00:00.000Z", level: "error", msg: "Failed", count: "3", error: "boom", nested: { a: 1 } },
    ]);
  });

  test("text lines quote values with spaces and write debug lines only with debug on", () => {
    const { lines, log } = capture("text", true);
    log.debug("Details", { path: "/a b", n: 1, ok: true, missing: undefined });
    expect(lines).toEqual([
      'time=1970-01-01T00:00:00.000Z level=debug msg="Details" path="/a b" n=1 ok=true missing=undefined\n',
    ]);
    const quiet = capture("text");
    quiet.log.debug("hidden");
    expect(quiet.lines).toEqual([]);
  });

  test("an unknown format is a TypeError", () => {
    expect(() => createLogger({ format: "xml" as "json" })).toThrow(TypeError);
  });
});
