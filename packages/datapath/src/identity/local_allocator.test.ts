import { describe, expect, test } from "vitest";
import {
  cidrLabels,
  createLocalIdentityAllocator,
  type IdentityEvent,
  classifyIdentity,
  InvalidLabelError,
  RESERVED_IDENTITIES,
} from "@dp/datapath";

describe("createLocalIdentityAllocator()", () => {
  test("allocate() gives the same identity to the same set and counts references", async () => {
    const alloc = createLocalIdentityAllocator();
    const a = await alloc.allocate(["k8s:app=web", "k8s:tier=front"]);
    const b = await alloc.allocate(["k8s:tier=front", "k8s:app=web"]);
    const c = await alloc.allocate(["k8s:app=db"]);
    expect(a.id).toBe(256);
    expect(b).toBe(a);
    expect(c.id).toBe(257);
    expect(await alloc.release(a.id)).toBe(false);
    expect(await alloc.lookup(a.id)).toBe(a);
    expect(await alloc.release(a.id)).toBe(true);
    expect(await alloc.lookup(a.id)).toBeUndefined();
    expect(await alloc.lookupByLabels(["k8s:app=web", "k8s:tier=front"])).toBeUndefined();
    expect(await alloc.lookupByLabels(["k8s:app=db"])).toBe(c);
    await expect(alloc.release(a.id)).rejects.toThrow(RangeError);
    await expect(alloc.release(a.id)).rejects.toThrow("Cannot release identity 256: it is not allocated");
  });

  test("allocate() reuses the lowest released number first", async () => {
    const alloc = createLocalIdentityAllocator();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await alloc.allocate([`k8s:n=${i}`])).id);
    expect(ids).toEqual([256, 257, 258, 259, 260]);
    await alloc.release(259);
    await alloc.release(257);
    expect((await alloc.allocate(["k8s:n=x"])).id).toBe(257);
    expect((await alloc.allocate(["k8s:n=y"])).id).toBe(259);
    expect((await alloc.allocate(["k8s:n=z"])).id).toBe(261);
  });

  test("allocate() throws RangeError when every number of 256-65535 is in use", async () => {
    const alloc = createLocalIdentityAllocator();
    for (let i = 256; i <= 65535; i++) await alloc.allocate([`k8s:n=${i}`]);
    const err = await alloc.allocate(["k8s:n=last"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toBe(
      'Cannot allocate an identity for "k8s:n=last": all label-based identities (256-65535) are in use',
    );
    // An existing set still resolves.
    expect((await alloc.allocate(["k8s:n=300"])).id).toBe(300);
  }, 60_000);

  test("allocate() returns reserved identities for their labels, uncounted", async () => {
    const alloc = createLocalIdentityAllocator();
    for (const [name, id] of Object.entries(RESERVED_IDENTITIES)) {
      const identity = await alloc.allocate([`reserved:${name}`]);
      expect(identity.id).toBe(id);
      expect(identity.labels.toStrings()).toEqual([`reserved:${name}`]);
      expect(await alloc.release(id)).toBe(false);
      expect(await alloc.lookup(id)).toBe(identity);
    }
    expect((await alloc.list()).map((i) => i.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test("allocate() rejects empty sets, mixed reserved labels and cidr labels", async () => {
    const alloc = createLocalIdentityAllocator();
    await expect(alloc.allocate([])).rejects.toThrow(/the label set is empty/);
    await expect(alloc.allocate(["reserved:host", "k8s:app=x"])).rejects.toThrow(/reserved labels cannot be combined/);
    await expect(alloc.allocate(["cidr:10.0.0.0/8"])).rejects.toThrow(/use allocateCidr/);
    await expect(alloc.allocate(["k8s:a b"])).rejects.toBeInstanceOf(InvalidLabelError);
  });

  test("allocateCidr() gives node-local identities from 1 << 24 with Cilium's CIDR labels", async () => {
    const alloc = createLocalIdentityAllocator();
    const a = await alloc.allocateCidr("10.1.0.0/16");
    const b = await alloc.allocateCidr("fd00::/8");
    const again = await alloc.allocateCidr("10.1.0.0/16");
    expect(a.id).toBe(1 << 24);
    expect(b.id).toBe((1 << 24) + 1);
    expect(again).toBe(a);
    expect(classifyIdentity(a.id)).toBe("cidr");
    expect(a.cidr).toBe("10.1.0.0/16");
    expect(b.cidr).toBe("fd00::/8");
    expect(a.labels.equals(cidrLabels("10.1.0.0/16"))).toBe(true);
    expect(await alloc.release(a.id)).toBe(false);
    expect(await alloc.release(a.id)).toBe(true);
    expect((await alloc.allocateCidr("192.168.0.1")).cidr).toBe("192.168.0.1/32");
  });

  test("allocateCidr() rejects host bits and bad prefixes naming the CIDR", async () => {
    const alloc = createLocalIdentityAllocator();
    await expect(alloc.allocateCidr("10.0.0.1/8")).rejects.toThrow(
      'Invalid CIDR "10.0.0.1/8": host bits are set (the prefix is "10.0.0.0/8")',
    );
    await expect(alloc.allocateCidr("fd00::1/64")).rejects.toThrow(/the prefix is "fd00::\/64"/);
    await expect(alloc.allocateCidr("10.0.0.0/33")).rejects.toBeInstanceOf(SyntaxError);
    await expect(alloc.allocateCidr("nope")).rejects.toBeInstanceOf(SyntaxError);
  });

  test("allocateCidr() throws RangeError when CIDR identities run out", async () => {
    const alloc = createLocalIdentityAllocator({ maxCidrIdentities: 2 });
    await alloc.allocateCidr("10.0.0.0/8");
    await alloc.allocateCidr("11.0.0.0/8");
    await expect(alloc.allocateCidr("12.0.0.0/8")).rejects.toThrow(/all CIDR identities \(2\) are in use/);
  });

  test("subscribe() replays the current identities then sends changes in order", async () => {
    const alloc = createLocalIdentityAllocator();
    const web = await alloc.allocate(["k8s:app=web"]);
    const seen: IdentityEvent[] = [];
    const sub = alloc.subscribe((ev) => seen.push(ev));
    expect(seen.map((e) => `${e.type} ${e.identity.id}`)).toEqual([
      ...[1, 2, 3, 4, 5, 6, 7, 8, web.id].map((id) => `add ${id}`),
    ]);
    seen.length = 0;
    await alloc.allocate(["k8s:app=web"]); // no change: referenced again
    const db = await alloc.allocate(["k8s:app=db"]);
    await alloc.release(web.id);
    await alloc.release(web.id);
    sub[Symbol.dispose]();
    await alloc.release(db.id);
    expect(seen.map((e) => `${e.type} ${e.identity.id}`)).toEqual([`add ${db.id}`, `remove ${web.id}`]);
  });

  test("createLocalIdentityAllocator() rejects ranges outside the identity ranges", () => {
    expect(() => createLocalIdentityAllocator({ minIdentity: 10 })).toThrow(RangeError);
    expect(() => createLocalIdentityAllocator({ minIdentity: 500, maxIdentity: 400 })).toThrow(RangeError);
    expect(() => createLocalIdentityAllocator({ maxCidrIdentities: 0 })).toThrow(RangeError);
  });
});

describe("cidrLabels()", () => {
  test("cidrLabels() lists the prefix, every shorter prefix and reserved:world", () => {
    expect(cidrLabels("10.128.0.0/9").toStrings()).toEqual(
      [
        "cidr:0.0.0.0/0",
        "cidr:10.0.0.0/7",
        "cidr:10.0.0.0/8",
        "cidr:10.128.0.0/9",
        "cidr:8.0.0.0/5",
        "cidr:8.0.0.0/6",
        "cidr:0.0.0.0/1",
        "cidr:0.0.0.0/2",
        "cidr:0.0.0.0/3",
        "cidr:0.0.0.0/4",
        "reserved:world",
      ].sort(),
    );
    const v6 = cidrLabels("2001:db8::/32");
    expect(v6.size).toBe(34);
    expect(v6.has("2001-db8--0/32", "cidr")).toBe(true);
    expect(v6.has("0--0/0", "cidr")).toBe(true);
    expect(v6.has("2000--0/3", "cidr")).toBe(true);
  });

  test("classifyIdentity() classifies numbers and rejects those in no range", () => {
    expect(classifyIdentity(0)).toBe("any");
    expect(classifyIdentity(255)).toBe("reserved");
    expect(classifyIdentity(65535)).toBe("cluster");
    expect(classifyIdentity((1 << 25) - 1)).toBe("cidr");
    expect(() => classifyIdentity(65536)).toThrow(RangeError);
    expect(() => classifyIdentity(-1)).toThrow(RangeError);
    expect(() => classifyIdentity(1.5)).toThrow(RangeError);
  });
});
