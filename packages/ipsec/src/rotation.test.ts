import { describe, expect, test } from "vitest";
import { type IpsecKey, parseKeyFile } from "./keys.ts";
import { KeyRotation, type RotationPlan } from "./rotation.ts";
import { type IpsecNode, parseIpsecMark } from "./scheme.ts";

const DELAY = 60_000;

function key(id: number, byte = id): IpsecKey {
  return parseKeyFile(`${id} rfc4106(gcm(aes)) 0x${byte.toString(16).padStart(2, "0").repeat(20)} 128`).current;
}

const A: IpsecNode = { id: 1, ips: ["192.168.0.1"], podCidrs: ["10.1.0.0/24"] };
const B: IpsecNode = { id: 2, ips: ["192.168.0.2"], podCidrs: ["10.2.0.0/24"] };

/** The SPIs of the states of one kind in a plan. */
function spis(plan: RotationPlan, kind: "encrypt" | "decrypt"): number[] {
  return plan.desired.states
    .filter((s) => parseIpsecMark(s.mark)?.kind === kind)
    .map((s) => s.spi)
    .sort();
}

/** The key ids of the keyed out policies in a plan. */
function outPolicyKeys(plan: RotationPlan): number[] {
  return plan.desired.policies
    .filter((p) => p.dir === "out" && p.action !== "block")
    .map((p) => parseIpsecMark(p.mark)?.keyId ?? 0)
    .sort();
}

describe("KeyRotation between two nodes", () => {
  test("install next to the old key, switch egress once the peer has it, remove after the delay", () => {
    let now = 0;
    const clock = (): number => now;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: clock });
    const b = new KeyRotation({ removalDelayMs: DELAY, now: clock });
    expect(a.rotate(key(1))).toEqual([{ kind: "install", keyId: 1 }]);
    b.rotate(key(1));

    let pa = a.plan(A, [{ node: B, keyIds: b.keyIds }]);
    let pb = b.plan(B, [{ node: A, keyIds: a.keyIds }]);
    expect(pa.actions).toEqual([
      { kind: "install", keyId: 1 },
      { kind: "egress", nodeId: 2, from: undefined, to: 1 },
    ]);
    expect(pa.egress.get(2)).toBe(1);
    expect(pb.egress.get(1)).toBe(1);

    // t=1s: A gets key 2. It installs in states for it at once but keeps
    // encrypting with 1: B does not have 2 yet.
    now = 1_000;
    a.rotate(key(2));
    pa = a.plan(A, [{ node: B, keyIds: b.keyIds }]);
    expect(pa.keyIds).toEqual([1, 2]);
    expect(pa.actions).toEqual([{ kind: "install", keyId: 2 }]);
    expect(pa.egress.get(2)).toBe(1);
    expect(spis(pa, "decrypt")).toEqual([1, 2]);
    expect(spis(pa, "encrypt")).toEqual([1]);
    expect(outPolicyKeys(pa)).toEqual([1]);
    expect(pa.nextRemovalAt).toBe(1_000 + DELAY);

    // B still sees only key 1 in common.
    pb = b.plan(B, [{ node: A, keyIds: pa.keyIds }]);
    expect(pb.egress.get(1)).toBe(1);
    expect(pb.actions).toEqual([]);

    // t=5s: B gets key 2 and switches to it (A has it); A follows once it sees B's ids.
    now = 5_000;
    b.rotate(key(2));
    pb = b.plan(B, [{ node: A, keyIds: a.keyIds }]);
    expect(pb.actions).toEqual([
      { kind: "install", keyId: 2 },
      { kind: "egress", nodeId: 1, from: 1, to: 2 },
    ]);
    pa = a.plan(A, [{ node: B, keyIds: pb.keyIds }]);
    expect(pa.actions).toEqual([{ kind: "egress", nodeId: 2, from: 1, to: 2 }]);
    // Old and new out states and policies coexist until key 1 is removed.
    expect(spis(pa, "encrypt")).toEqual([1, 2]);
    expect(outPolicyKeys(pa)).toEqual([1, 2]);

    // Just before A's delay: nothing removed.
    now = 1_000 + DELAY - 1;
    pa = a.plan(A, [{ node: B, keyIds: b.keyIds }]);
    expect(pa.actions).toEqual([]);
    expect(pa.keyIds).toEqual([1, 2]);

    // A's delay is over: key 1 goes; B keeps it until its own delay.
    now = 1_000 + DELAY;
    pa = a.plan(A, [{ node: B, keyIds: b.keyIds }]);
    expect(pa.actions).toEqual([{ kind: "remove", keyId: 1 }]);
    expect(pa.keyIds).toEqual([2]);
    expect(spis(pa, "decrypt")).toEqual([2]);
    expect(spis(pa, "encrypt")).toEqual([2]);
    expect(outPolicyKeys(pa)).toEqual([2]);
    expect(pa.nextRemovalAt).toBeUndefined();

    pb = b.plan(B, [{ node: A, keyIds: pa.keyIds }]);
    expect(pb.keyIds).toEqual([1, 2]);
    expect(pb.egress.get(1)).toBe(2);
    expect(spis(pb, "encrypt")).toEqual([2]);
    now = 5_000 + DELAY;
    pb = b.plan(B, [{ node: A, keyIds: pa.keyIds }]);
    expect(pb.actions).toEqual([{ kind: "remove", keyId: 1 }]);
    expect(pb.keyIds).toEqual([2]);
  });

  test("a peer without a common key is reported stalled once, and nothing is encrypted towards it", () => {
    const now = 0;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: () => now });
    a.rotate(key(3));
    const p1 = a.plan(A, [{ node: B, keyIds: [4] }]);
    expect(p1.actions).toContainEqual({ kind: "stalled", nodeId: 2, peerKeyIds: [4] });
    expect(p1.egress.has(2)).toBe(false);
    expect(spis(p1, "encrypt")).toEqual([]);
    expect(outPolicyKeys(p1)).toEqual([]);
    // The in state for key 3 is there: the peer can start sending once it loads it.
    expect(spis(p1, "decrypt")).toEqual([3]);
    // The default-drop policy stays, so marked traffic is dropped, not sent in clear.
    expect(p1.desired.policies.some((p) => p.action === "block")).toBe(true);
    expect(a.plan(A, [{ node: B, keyIds: [4] }]).actions).toEqual([]);
    expect(a.plan(A, [{ node: B, keyIds: [3, 4] }]).actions).toEqual([
      { kind: "egress", nodeId: 2, from: undefined, to: 3 },
    ]);
  });

  test("the most recent key is by installation order: ids wrap from 15 to 1", () => {
    let now = 0;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: () => now });
    a.rotate(key(15));
    now = 1;
    a.rotate(key(1));
    expect(a.egressKey([15, 1])?.id).toBe(1);
    expect(a.egressKey([15])?.id).toBe(15);
    expect(a.egressKey([2])).toBeUndefined();
    expect(a.current?.id).toBe(1);
  });

  test("the delay counts from when a key was superseded, not installed", () => {
    let now = 0;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: () => now });
    a.rotate(key(1));
    now = 10 * DELAY;
    a.rotate(key(2));
    expect(a.plan(A, []).actions).toEqual([
      { kind: "install", keyId: 1 },
      { kind: "install", keyId: 2 },
    ]);
    expect(a.keyIds).toEqual([1, 2]);
    now = 11 * DELAY;
    expect(a.plan(A, []).actions).toEqual([{ kind: "remove", keyId: 1 }]);
  });

  test("load() installs a file's lines in order; an old line is kept for the delay after a restart", () => {
    let now = 0;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: () => now });
    const file = parseKeyFile(
      `1 rfc4106(gcm(aes)) 0x${"01".repeat(20)} 128\n2 rfc4106(gcm(aes)) 0x${"02".repeat(20)} 128`,
    );
    expect(a.load(file)).toEqual([
      { kind: "install", keyId: 1 },
      { kind: "install", keyId: 2 },
    ]);
    expect(a.current?.id).toBe(2);
    now = DELAY;
    expect(a.plan(A, []).keyIds).toEqual([2]);
  });

  test("the same key again changes nothing; an id with other bytes, or a superseded id, is refused", () => {
    const a = new KeyRotation({ now: () => 0 });
    a.rotate(key(1));
    expect(a.rotate(key(1))).toEqual([]);
    expect(() => a.rotate(key(1, 0x99))).toThrow(/other key bytes/);
    a.rotate(key(2));
    expect(() => a.rotate(key(1))).toThrow(/superseded/);
  });

  test("all 15 ids in use: an id comes back only after its key is removed", () => {
    let now = 0;
    const a = new KeyRotation({ removalDelayMs: DELAY, now: () => now });
    expect(a.keys).toEqual([]);
    expect(a.current).toBeUndefined();
    for (let id = 1; id <= 15; id++) a.rotate(key(id));
    expect(() => a.rotate(key(1, 0x42))).toThrow(RangeError);
    now = DELAY;
    expect(a.plan(A, []).keyIds).toEqual([15]);
    expect(a.rotate(key(1, 0x42))).toEqual([{ kind: "install", keyId: 1 }]);
  });

  test("the default delay is 5 minutes; a bad delay is a RangeError", () => {
    let now = 0;
    const a = new KeyRotation({ now: () => now });
    a.rotate(key(1));
    a.rotate(key(2));
    now = 5 * 60_000 - 1;
    expect(a.plan(A, []).keyIds).toEqual([1, 2]);
    now = 5 * 60_000;
    expect(a.plan(A, []).keyIds).toEqual([2]);
    expect(() => new KeyRotation({ removalDelayMs: -1 })).toThrow(RangeError);
    expect(() => new KeyRotation({ removalDelayMs: Number.NaN })).toThrow(RangeError);
  });
});
