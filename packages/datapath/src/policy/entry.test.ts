import { describe, expect, test } from "vitest";
import { lookupPolicy, type PolicyEntry, splitPortRange } from "@dp/datapath";
import { prng } from "./_test_reference.ts";

describe("splitPortRange()", () => {
  test("splitPortRange() covers exactly the range with aligned blocks, as few as possible (randomized, seeded)", () => {
    const r = prng(7);
    for (let i = 0; i < 2000; i++) {
      const a = Math.floor(r() * 65536);
      const b = i % 3 === 0 ? Math.min(65535, a + Math.floor(r() * 40)) : Math.floor(r() * 65536);
      const [first, last] = a <= b ? [a, b] : [b, a];
      const blocks = splitPortRange(first, last);
      let at = first;
      for (const blk of blocks) {
        const size = 2 ** (16 - blk.bits);
        expect(blk.port).toBe(at);
        expect(blk.port % size).toBe(0);
        at += size;
      }
      expect(at - 1).toBe(last);
      // Minimal: no two neighbours could merge into one aligned block.
      for (let k = 1; k < blocks.length; k++) {
        const x = blocks[k - 1] as { port: number; bits: number };
        const y = blocks[k] as { port: number; bits: number };
        const mergeable = x.bits === y.bits && x.port % 2 ** (17 - x.bits) === 0;
        expect(mergeable).toBe(false);
      }
    }
  }, 60_000);

  test("splitPortRange() gives one block for a single port and for all ports", () => {
    expect(splitPortRange(80, 80)).toEqual([{ port: 80, bits: 16 }]);
    expect(splitPortRange(0, 65535)).toEqual([{ port: 0, bits: 0 }]);
    expect(splitPortRange(1, 65535)).toHaveLength(16);
  });

  test("splitPortRange() rejects reversed and out-of-range bounds", () => {
    expect(() => splitPortRange(10, 9)).toThrow(RangeError);
    expect(() => splitPortRange(0, 65536)).toThrow(RangeError);
    expect(() => splitPortRange(-1, 5)).toThrow(RangeError);
    expect(() => splitPortRange(1.5, 5)).toThrow(RangeError);
  });
});

function entry(partial: Partial<PolicyEntry>): PolicyEntry {
  return {
    identity: 0,
    egress: false,
    protocol: 0,
    port: 0,
    prefixLength: 40,
    deny: false,
    proxyPort: 0,
    ruleCookie: 0,
    ...partial,
  };
}

describe("lookupPolicy()", () => {
  test("lookupPolicy() takes the longest match within an identity, as the LPM trie does", () => {
    const entries = [
      entry({ identity: 300, protocol: 6, prefixLength: 48, deny: true, ruleCookie: 1 }),
      entry({ identity: 300, protocol: 6, port: 80, prefixLength: 64, ruleCookie: 2 }),
    ];
    // A more specific allow inside a deny of the same identity wins the LPM lookup: that is why the resolver never emits one.
    expect(lookupPolicy(entries, { identity: 300, egress: false, protocol: 6, port: 80 }).verdict).toBe("allow");
    expect(lookupPolicy(entries, { identity: 300, egress: false, protocol: 6, port: 81 }).verdict).toBe("deny");
    expect(lookupPolicy(entries, { identity: 300, egress: true, protocol: 6, port: 80 }).verdict).toBe("none");
    expect(lookupPolicy(entries, { identity: 301, egress: false, protocol: 6, port: 80 }).verdict).toBe("none");
  });

  test("lookupPolicy() denies when either lookup finds a deny entry and prefers the identity's entry otherwise", () => {
    const anyAllow = entry({ protocol: 17, prefixLength: 48, ruleCookie: 3 });
    const idAllow = entry({ identity: 300, prefixLength: 40, ruleCookie: 4 });
    const idDeny = entry({ identity: 300, protocol: 17, port: 53, prefixLength: 64, deny: true, ruleCookie: 5 });
    expect(lookupPolicy([anyAllow, idAllow], { identity: 300, egress: false, protocol: 17, port: 1 }).entry).toBe(
      idAllow,
    );
    expect(lookupPolicy([anyAllow, idAllow], { identity: 400, egress: false, protocol: 17, port: 1 }).entry).toBe(
      anyAllow,
    );
    expect(
      lookupPolicy([anyAllow, idAllow, idDeny], { identity: 300, egress: false, protocol: 17, port: 53 }).entry,
    ).toBe(idDeny);
    expect(
      lookupPolicy([anyAllow, idAllow, idDeny], { identity: 400, egress: false, protocol: 17, port: 53 }).verdict,
    ).toBe("allow");
  });
});
