import { afterEach, describe, expect, test } from "vitest";
import { NotSupportedError } from "@dp/core";
import { kernelConfig, requireConfig, requireKernel, skipIfNotSupported } from "@dp/core/testing";

function recorder(): { notes: string[]; skip(note?: string): void } {
  const notes: string[] = [];
  return { notes, skip: (note?: string) => void notes.push(note ?? "") };
}

const saved = process.env["DP_REQUIRE_KERNEL"];
const savedAbsent = process.env["DP_KNOWN_ABSENT"];
afterEach(() => {
  if (saved === undefined) delete process.env["DP_REQUIRE_KERNEL"];
  else process.env["DP_REQUIRE_KERNEL"] = saved;
  if (savedAbsent === undefined) delete process.env["DP_KNOWN_ABSENT"];
  else process.env["DP_KNOWN_ABSENT"] = savedAbsent;
});

describe("skips", () => {
  test("requireConfig() skips naming the missing CONFIG_ options, and fails under DP_REQUIRE_KERNEL=1", () => {
    const present = [...kernelConfig().entries()].find(([, v]) => v === "y")?.[0] as string;
    delete process.env["DP_REQUIRE_KERNEL"];
    const t = recorder();
    requireConfig(t, present, "CONFIG_DP_NOT_A_REAL_OPTION");
    expect(t.notes).toEqual(["kernel lacks CONFIG_DP_NOT_A_REAL_OPTION"]);
    const ok = recorder();
    requireConfig(ok, present);
    expect(ok.notes).toEqual([]);
    process.env["DP_REQUIRE_KERNEL"] = "1";
    expect(() => requireConfig(recorder(), "CONFIG_DP_NOT_A_REAL_OPTION")).toThrow(
      /DP_REQUIRE_KERNEL=1: kernel lacks CONFIG_DP_NOT_A_REAL_OPTION/,
    );
  });

  test("requireConfig() still skips under DP_REQUIRE_KERNEL=1 when every missing option is declared absent", () => {
    process.env["DP_REQUIRE_KERNEL"] = "1";
    process.env["DP_KNOWN_ABSENT"] = "CONFIG_DP_ABSENT_ONE, CONFIG_DP_ABSENT_TWO";
    const t = recorder();
    requireConfig(t, "CONFIG_DP_ABSENT_TWO");
    expect(t.notes).toEqual(["kernel lacks CONFIG_DP_ABSENT_TWO (declared absent on this machine kind)"]);
    expect(() => requireConfig(recorder(), "CONFIG_DP_ABSENT_ONE", "CONFIG_DP_NOT_A_REAL_OPTION")).toThrow(
      /DP_REQUIRE_KERNEL=1: kernel lacks CONFIG_DP_ABSENT_ONE, CONFIG_DP_NOT_A_REAL_OPTION/,
    );
  });

  test("requireKernel() skips on older kernels only", () => {
    delete process.env["DP_REQUIRE_KERNEL"];
    const t = recorder();
    requireKernel(t, "99.0", "a future feature");
    requireKernel(t, "3.0", "an old feature");
    expect(t.notes).toEqual(["needs Linux 99.0 for a future feature"]);
  });

  test("skipIfNotSupported() skips below the feature's minimum kernel and rethrows at or above it", () => {
    delete process.env["DP_REQUIRE_KERNEL"];
    const t = recorder();
    skipIfNotSupported(t, new NotSupportedError("time travel", { minKernel: "99.0" }));
    expect(t.notes).toEqual(["time travel not supported (requires Linux 99.0)"]);
    const present = new NotSupportedError("tcx links", { minKernel: "3.0" });
    expect(() => skipIfNotSupported(recorder(), present)).toThrow(present);
    const other = new Error("other");
    expect(() => skipIfNotSupported(recorder(), other)).toThrow(other);
  });
});
