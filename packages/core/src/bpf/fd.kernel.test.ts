import { beforeEach, describe, expect, test } from "vitest";
import { ClosedError, createMap, Fd } from "@dp/core";
import { openFds, rawFd, takeFdLeaks } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";

beforeEach((t) => requireRoot(t));

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function leakOneMap(): number {
  const map = createMap({ name: "t_leaked", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
  return rawFd(map.fd);
}

describe("Fd", () => {
  test("the safety net closes a descriptor whose owner was collected and reports where it was created", async () => {
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe("function");
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === "DpLeakWarning") warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      const raw = leakOneMap();
      await settle();
      const leaks = takeFdLeaks();
      expect(leaks).toHaveLength(1);
      expect(leaks[0]?.what).toBe('map "t_leaked"');
      expect(leaks[0]?.stack).toMatch(/leakOneMap/);
      expect(warnings.some((w) => w.message.includes(`fd ${raw}`))).toBe(true);
      expect(openFds().some((f) => f.what === 'map "t_leaked"')).toBe(false);
    } finally {
      process.off("warning", onWarning);
    }
  });

  test("close() is idempotent, dup() gives an independent descriptor, disown() hands the number over", () => {
    const map = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    const copy = map.fd.dup();
    expect(copy).toBeInstanceOf(Fd);
    expect(rawFd(copy)).not.toBe(rawFd(map.fd));
    expect(rawFd(copy)).toBeGreaterThan(0);
    map.close();
    map.close();
    expect(() => map.fd).toThrow(ClosedError);
    // The duplicate still refers to the map.
    const raw = copy.disown();
    expect(copy.closed).toBe(true);
    expect(() => copy.dup()).toThrow(ClosedError);
    const adopted = new Fd(raw, "adopted map");
    adopted.close();
    expect(adopted.closed).toBe(true);
  });

  test("using closes at the end of the block", () => {
    let fd: Fd;
    {
      using map = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
      fd = map.fd;
      expect(fd.closed).toBe(false);
    }
    expect(fd.closed).toBe(true);
  });
});
