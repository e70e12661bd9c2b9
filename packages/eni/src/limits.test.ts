import { describe, expect, test } from "vitest";
import {
  type Ec2Api,
  instanceLimits,
  type InstanceTypeLimits,
  LimitsTable,
  maxPods,
  refreshInstanceLimits,
} from "@dp/eni";

describe("instanceLimits()", () => {
  // [type, max ENIs, IPv4 per ENI, max pods per amazon-vpc-cni-k8s's eni-max-pods.txt]
  const cases: [string, number, number, number][] = [
    ["t3.nano", 2, 2, 4],
    ["t3.micro", 2, 2, 4],
    ["t3.small", 3, 4, 11],
    ["t3.medium", 3, 6, 17],
    ["t3.large", 3, 12, 35],
    ["t3.xlarge", 4, 15, 58],
    ["t3.2xlarge", 4, 15, 58],
    ["t3a.small", 2, 4, 8],
    ["t3a.2xlarge", 4, 15, 58],
    ["m5.large", 3, 10, 29],
    ["m5.xlarge", 4, 15, 58],
    ["m5.2xlarge", 4, 15, 58],
    ["m5.4xlarge", 8, 30, 234],
    ["m5.12xlarge", 8, 30, 234],
    ["m5.16xlarge", 15, 50, 737],
    ["m5.24xlarge", 15, 50, 737],
    ["m5n.8xlarge", 8, 30, 234],
    ["m6i.32xlarge", 15, 50, 737],
    ["c5.large", 3, 10, 29],
    ["c5.9xlarge", 8, 30, 234],
    ["c5.18xlarge", 15, 50, 737],
    ["c6i.xlarge", 4, 15, 58],
    ["r5.24xlarge", 15, 50, 737],
    ["r6i.large", 3, 10, 29],
  ];
  test.each(cases)("instanceLimits() gives the published limits of %s", (type, maxEnis, ipv4PerEni, pods) => {
    expect(instanceLimits(type)).toEqual({ type, maxEnis, ipv4PerEni, ipv6PerEni: ipv4PerEni });
    expect(maxPods(instanceLimits(type)!)).toBe(pods);
  });

  test("instanceLimits() covers every size of the listed families", () => {
    for (const family of ["t3", "t3a"]) {
      for (const size of ["nano", "micro", "small", "medium", "large", "xlarge", "2xlarge"]) {
        expect(instanceLimits(`${family}.${size}`), `${family}.${size}`).toBeDefined();
      }
    }
    for (const family of ["m5", "m5n", "m6i", "c6i", "r5", "r6i"]) {
      for (const size of ["large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge"]) {
        expect(instanceLimits(`${family}.${size}`), `${family}.${size}`).toBeDefined();
      }
    }
    for (const size of ["large", "xlarge", "2xlarge", "4xlarge", "9xlarge", "12xlarge", "18xlarge", "24xlarge"]) {
      expect(instanceLimits(`c5.${size}`), `c5.${size}`).toBeDefined();
    }
  });

  test("instanceLimits() returns undefined for an unknown type", () => {
    expect(instanceLimits("x9.huge")).toBeUndefined();
    expect(instanceLimits("")).toBeUndefined();
  });

  test("instanceLimits() values are frozen", () => {
    expect(Object.isFrozen(instanceLimits("m5.large"))).toBe(true);
  });
});

describe("maxPods()", () => {
  test("maxPods() is maxEnis * (ipv4PerEni - 1) + 2", () => {
    expect(maxPods({ type: "a", maxEnis: 3, ipv4PerEni: 10, ipv6PerEni: 10 })).toBe(29);
    expect(maxPods({ type: "a", maxEnis: 1, ipv4PerEni: 1, ipv6PerEni: 0 })).toBe(2);
  });

  test("maxPods() throws RangeError when a count is not a positive integer", () => {
    expect(() => maxPods({ type: "a", maxEnis: 0, ipv4PerEni: 10, ipv6PerEni: 10 })).toThrow(RangeError);
    expect(() => maxPods({ type: "a", maxEnis: 3, ipv4PerEni: 1.5, ipv6PerEni: 10 })).toThrow(/Invalid ipv4PerEni 1.5/);
  });
});

describe("LimitsTable", () => {
  const custom: InstanceTypeLimits = { type: "z9.large", maxEnis: 2, ipv4PerEni: 5, ipv6PerEni: 5 };

  test("LimitsTable falls back to the shipped table", () => {
    const table = new LimitsTable();
    expect(table.get("m5.large")).toEqual(instanceLimits("m5.large"));
    expect(table.has("m5.large")).toBe(true);
    expect(table.get("z9.large")).toBeUndefined();
    expect(table.has("z9.large")).toBe(false);
  });

  test("LimitsTable.set() overrides a shipped value and delete() restores it", () => {
    const table = new LimitsTable();
    const size = table.size;
    table.set("m5.large", { type: "m5.large", maxEnis: 4, ipv4PerEni: 10, ipv6PerEni: 10 });
    expect(table.get("m5.large")?.maxEnis).toBe(4);
    expect(table.size).toBe(size);
    expect(table.delete("m5.large")).toBe(true);
    expect(table.delete("m5.large")).toBe(false);
    expect(table.get("m5.large")?.maxEnis).toBe(3);
  });

  test("LimitsTable iterates each type once, shipped types first", () => {
    const table = new LimitsTable([custom]);
    table.set("m5.large", { type: "m5.large", maxEnis: 4, ipv4PerEni: 10, ipv6PerEni: 10 });
    const keys = [...table.keys()];
    expect(new Set(keys).size).toBe(keys.length);
    expect(keys.length).toBe(table.size);
    expect(keys.at(-1)).toBe("z9.large");
    expect(new Map(table).get("m5.large")?.maxEnis).toBe(4);
    expect([...table.values()].length).toBe(table.size);
  });

  test("LimitsTable without the shipped table knows only what was set", () => {
    const table = new LimitsTable([custom], { shipped: false });
    expect(table.size).toBe(1);
    expect([...table]).toEqual([["z9.large", custom]]);
    expect(table.get("m5.large")).toBeUndefined();
  });

  test("LimitsTable.set() throws on limits for another type or bad counts", () => {
    const table = new LimitsTable();
    expect(() => table.set("m5.large", custom)).toThrow(TypeError);
    expect(() => table.set("z9.large", { ...custom, maxEnis: 0 })).toThrow(RangeError);
    expect(() => table.set("z9.large", { ...custom, ipv6PerEni: -1 })).toThrow(RangeError);
    expect(() => new LimitsTable([null as unknown as InstanceTypeLimits])).toThrow(TypeError);
  });
});

/** An Ec2Api with only DescribeInstanceTypes, which records its requests. */
function describeOnly(known: readonly InstanceTypeLimits[]): { api: Ec2Api; requests: string[][] } {
  const requests: string[][] = [];
  const byType = new Map(known.map((l) => [l.type, l]));
  const api = {
    describeInstanceTypes(types: readonly string[]): Promise<InstanceTypeLimits[]> {
      requests.push([...types]);
      return Promise.resolve(types.flatMap((t) => (byType.has(t) ? [byType.get(t)!] : [])));
    },
  } as Pick<Ec2Api, "describeInstanceTypes"> as Ec2Api;
  return { api, requests };
}

describe("refreshInstanceLimits()", () => {
  test("refreshInstanceLimits() merges EC2's answers over the shipped values", async () => {
    const { api } = describeOnly([{ type: "m5.large", maxEnis: 5, ipv4PerEni: 10, ipv6PerEni: 10 }]);
    const table = new LimitsTable();
    expect(await refreshInstanceLimits(api, ["m5.large", "x9.huge"], { table })).toBe(table);
    expect(table.get("m5.large")?.maxEnis).toBe(5);
    expect(table.has("x9.huge")).toBe(false);
    expect(table.get("m5.xlarge")?.maxEnis).toBe(4);
  });

  test("refreshInstanceLimits() asks at most 100 types per call, each type once", async () => {
    const types = Array.from({ length: 250 }, (_, i) => `z${i}.large`);
    const { api, requests } = describeOnly(types.map((type) => ({ type, maxEnis: 2, ipv4PerEni: 4, ipv6PerEni: 4 })));
    const table = await refreshInstanceLimits(api, [...types, ...types]);
    expect(requests.map((r) => r.length)).toEqual([100, 100, 50]);
    expect(table.get("z249.large")?.ipv4PerEni).toBe(4);
  });

  test("refreshInstanceLimits() makes no call for an empty list", async () => {
    const { api, requests } = describeOnly([]);
    await refreshInstanceLimits(api, []);
    expect(requests).toEqual([]);
  });
});
