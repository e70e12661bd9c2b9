// A randomized comparison with iproute2: a few hundred mixed operations,
// valid and invalid, on links, addresses, routes, rules, neighbours and
// nexthop objects in one namespace; after each, dp's listing must equal
// what `ip -json` shows. Seeded and bounded: DP_ROUTING_SEED=N reruns a
// failing sequence (the failure names the seed and the operation);
// DP_ROUTING_OPS=N changes its length.
import { beforeEach, describe, expect, test } from "vitest";
import { NetlinkError } from "@dp/core";
import { netns, requireRoot, type TestNetns } from "@dp/core/testing";
import { openRouting, RuleShadowedError, type Routing } from "@dp/routing";

beforeEach((t) => requireRoot(t));

const SEED = Number(process.env["DP_ROUTING_SEED"] ?? 20261207);
const OPS = Number(process.env["DP_ROUTING_OPS"] ?? 300);

/** mulberry32: a small, fast, reproducible generator. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = "link" | "address" | "route" | "rule" | "neighbor" | "nexthop";

interface Op {
  readonly kind: Kind;
  readonly what: string;
  /** Whether dp must refuse it before any system call (a TypeError, RangeError or SyntaxError). */
  readonly invalid: boolean;
  readonly run: (rt: Routing, ns: TestNetns) => unknown;
}

const TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };
const IP_PROTOS: Record<string, number> = { tcp: 6, udp: 17 };

function json<T>(ns: TestNetns, args: string[]): T[] {
  let out;
  try {
    out = ns.exec("ip", ["-json", ...args]).trim();
  } catch (err) {
    // ip -6 route show table N fails while the table has no route yet.
    if (String(err).includes("FIB table does not exist")) return [];
    throw err;
  }
  return out === "" ? [] : (JSON.parse(out) as T[]);
}

/** Each side of the comparison, as sorted lines of text. */
function views(ns: TestNetns, rt: Routing, kind: Kind): [string[], string[]] {
  const links = json<{ ifindex: number; ifname: string }>(ns, ["link", "show"]);
  const name = new Map(links.map((l) => [l.ifindex, l.ifname]));
  const sorted = (a: string[]): string[] => a.sort();
  switch (kind) {
    case "link": {
      const ip = json<{
        ifindex: number;
        ifname: string;
        mtu: number;
        address?: string;
        flags: string[];
        master?: string;
        linkinfo?: { info_kind?: string };
      }>(ns, ["-details", "link", "show"]);
      return [
        sorted(
          rt.links
            .list()
            .map(
              (l) =>
                `${l.index} ${l.name} ${l.rawKind ?? "-"} ${l.up} ${l.mtu} ${l.mac ?? "-"} ${l.master === undefined ? "-" : name.get(l.master)}`,
            ),
        ),
        sorted(
          ip.map(
            (l) =>
              `${l.ifindex} ${l.ifname} ${l.linkinfo?.info_kind ?? "-"} ${l.flags.includes("UP")} ${l.mtu} ${l.address ?? "-"} ${l.master ?? "-"}`,
          ),
        ),
      ];
    }
    case "address": {
      const ip = json<{ ifindex: number; addr_info: { local: string; prefixlen: number; address?: string }[] }>(ns, [
        "addr",
        "show",
      ]);
      return [
        sorted(
          rt.addresses.list().map((a) => `${a.index} ${a.address}${a.peer === undefined ? "" : ` peer ${a.peer}`}`),
        ),
        sorted(
          ip.flatMap((l) =>
            l.addr_info.map(
              (a) => `${l.ifindex} ${a.local}/${a.prefixlen}${a.address === undefined ? "" : ` peer ${a.address}`}`,
            ),
          ),
        ),
      ];
    }
    case "route": {
      type IpRoute = {
        dst: string;
        from?: string;
        type?: string;
        gateway?: string;
        dev?: string;
        metric?: number;
        nhid?: number;
        flags: string[];
        metrics?: { mtu?: number; advmss?: number }[];
        flow?: { from?: string; to: string };
        pref?: string;
      };
      const ipSide: string[] = [];
      const dpSide: string[] = [];
      for (const family of [4, 6] as const) {
        for (const r of json<IpRoute>(ns, [`-${family}`, "route", "show", "table", "100"])) {
          const dst = r.dst === "default" || r.dst.includes("/") ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`;
          const m = Object.assign({}, ...(r.metrics ?? [])) as { mtu?: number; advmss?: number };
          ipSide.push(
            `${dst} ${r.from ?? "-"} ${r.type ?? "unicast"} ${r.gateway ?? "-"} ${r.dev ?? "-"} ${r.metric ?? 0} ${r.nhid ?? "-"} ${r.flags.includes("onlink")} ${m.mtu ?? "-"} ${m.advmss ?? "-"} ${r.flow === undefined ? "-" : `${r.flow.from ?? 0}/${r.flow.to}`} ${r.pref ?? "-"}`,
          );
        }
        for (const r of rt.routes.list({ table: 100, family })) {
          dpSide.push(
            `${r.dst} ${r.from ?? "-"} ${r.type} ${r.via ?? "-"} ${r.dev === undefined ? "-" : name.get(r.dev)} ${r.metric} ${r.nhid ?? "-"} ${r.onlink} ${r.metrics?.mtu ?? "-"} ${r.metrics?.advmss ?? "-"} ${r.realms === undefined ? "-" : `${r.realms.from}/${r.realms.to}`} ${r.pref ?? "-"}`,
          );
        }
      }
      return [sorted(dpSide), sorted(ipSide)];
    }
    case "rule": {
      type IpRule = {
        priority: number;
        not?: null;
        src: string;
        srclen?: number;
        iif?: string;
        fwmark?: string;
        fwmask?: string;
        table?: string;
        ipproto?: string;
        sport?: number;
        sport_start?: number;
        sport_end?: number;
        dport?: number;
        dport_start?: number;
        dport_end?: number;
        uid_start?: number;
        uid_end?: number;
        goto?: number;
        tos?: string;
        flow_from?: string;
        flow_to?: string;
        suppress_prefixlen?: number;
        suppress_ifgroup?: string;
        l3mdev?: null;
      };
      const range = (one?: number, start?: number, end?: number): string =>
        one !== undefined ? `${one}-${one}` : start !== undefined ? `${start}-${end}` : "-";
      const ipSide: string[] = [];
      const dpSide: string[] = [];
      for (const family of [4, 6] as const) {
        for (const r of json<IpRule>(ns, [`-${family}`, "rule", "show"])) {
          const from = r.src === "all" ? "-" : `${r.src}/${r.srclen ?? (family === 4 ? 32 : 128)}`;
          const dport = range(r.dport, r.dport_start, r.dport_end);
          const more = `${r.tos === undefined ? "-" : Number(r.tos)} ${r.flow_to === undefined ? "-" : `${r.flow_from ?? 0}/${r.flow_to}`} ${r.suppress_prefixlen ?? "-"} ${r.suppress_ifgroup ?? "-"} ${r.l3mdev !== undefined} ${range(r.sport, r.sport_start, r.sport_end)}`;
          const mark =
            r.fwmark === undefined
              ? "-"
              : `${Number(r.fwmark)}/${r.fwmask === undefined ? 0xffffffff : Number(r.fwmask)}`;
          const table = r.table === undefined ? 0 : (TABLES[r.table] ?? Number(r.table));
          ipSide.push(
            `${family} ${r.priority} ${r.not !== undefined} ${from} ${r.iif ?? "-"} ${mark} ${table} ${r.ipproto === undefined ? "-" : IP_PROTOS[r.ipproto]} ${dport} ${r.uid_start === undefined ? "-" : `${r.uid_start}-${r.uid_end}`} ${r.goto ?? "-"} ${more}`,
          );
        }
      }
      for (const r of rt.rules.list()) {
        const mark = r.fwmark === undefined ? "-" : `${r.fwmark}/${r.fwmask}`;
        dpSide.push(
          `${r.family} ${r.priority} ${r.invert} ${r.from ?? "-"} ${r.iif ?? "-"} ${mark} ${r.table} ${r.ipProto ?? "-"} ${r.dport === undefined ? "-" : `${r.dport.start}-${r.dport.end}`} ${r.uidRange === undefined ? "-" : `${r.uidRange.start}-${r.uidRange.end}`} ${r.goto ?? "-"} ${r.tos ?? "-"} ${r.realms === undefined ? "-" : `${r.realms.from}/${r.realms.to}`} ${r.suppressPrefixLength ?? "-"} ${r.suppressIfgroup ?? "-"} ${r.l3mdev === true} ${r.sport === undefined ? "-" : `${r.sport.start}-${r.sport.end}`}`,
        );
      }
      return [sorted(dpSide), sorted(ipSide)];
    }
    case "neighbor": {
      const ip = json<{ dst: string; dev: string; lladdr?: string; state: string[] }>(ns, [
        "neigh",
        "show",
        "nud",
        "permanent",
      ]);
      return [
        sorted(
          rt.neighbors
            .list()
            .filter((n) => n.state === "permanent")
            .map((n) => `${n.ip} ${name.get(n.index)} ${n.mac ?? "-"}`),
        ),
        sorted(ip.map((n) => `${n.dst} ${n.dev} ${n.lladdr ?? "-"}`)),
      ];
    }
    case "nexthop": {
      const ip = json<{
        id: number;
        gateway?: string;
        dev?: string;
        blackhole?: null;
        group?: { id: number; weight?: number }[];
      }>(ns, ["nexthop", "show"]);
      return [
        sorted(
          rt.nexthops
            .list()
            .map(
              (n) =>
                `${n.id} ${n.via ?? "-"} ${n.dev === undefined ? "-" : name.get(n.dev)} ${n.blackhole} ${n.group?.map((g) => `${g.id}/${g.weight}`).join(",") ?? "-"}`,
            ),
        ),
        sorted(
          ip.map(
            (n) =>
              `${n.id} ${n.gateway ?? "-"} ${n.dev ?? "-"} ${n.blackhole !== undefined} ${n.group?.map((g) => `${g.id}/${g.weight ?? 1}`).join(",") ?? "-"}`,
          ),
        ),
      ];
    }
  }
}

/** Objects made by ip itself, which dp must read as ip shows them. */
const IP_MADE: readonly [Kind, string][] = [
  ["rule", "rule add pref 110 tos 0x10 lookup 100"],
  ["rule", "rule add pref 111 from 10.0.0.0/8 realms 1/2 lookup 100"],
  ["rule", "rule add pref 112 lookup main suppress_prefixlength 0 suppress_ifgroup 5"],
  ["rule", "rule add pref 113 l3mdev"],
  ["rule", "rule add pref 114 ipproto udp sport 1000-2000 dport 53 lookup 100"],
  ["rule", "rule del pref 110"],
  ["rule", "rule del pref 114"],
  ["route", "route add 10.9.8.0/24 via 10.1.0.1 dev d0 table 100 mtu lock 1400 advmss 1300 realms 3"],
  ["route", "route add fd00:9:8::/64 from fd00:7::/64 via fd00:1::1 dev d0 table 100"],
  ["route", "route add fd00:9:8::/64 via fd00:1::1 dev d0 table 100 pref high"],
  ["route", "route add 10.9.9.0/24 nhid 10 table 100"],
  ["route", "route del 10.9.8.0/24 table 100"],
  ["route", "-6 route del fd00:9:8::/64 table 100"],
  ["nexthop", "nexthop add id 20 group 1/2 type resilient buckets 8"],
  ["nexthop", "nexthop add id 21 via fd00:1::1 dev d0"],
  ["nexthop", "nexthop del id 20"],
  ["neighbor", "neigh add 10.1.0.60 lladdr 02:00:00:00:02:01 dev d0"],
  ["neighbor", "neigh del 10.1.0.60 dev d0"],
  ["address", "addr add 10.2.9.9/32 peer 10.2.9.1 dev d0"],
  ["address", "addr del 10.2.9.9/32 peer 10.2.9.1 dev d0"],
  ["link", "link add i9 type ifb"],
  ["link", "link add link d0 name mt9 type macvtap mode private"],
  ["link", "link del mt9"],
];

/** The next operation, drawn from small pools so that operations meet each other's objects. */
function nextOp(rand: () => number, rt: Routing): Op {
  if (rand() < 0.15) {
    const [kind, command] = IP_MADE[Math.floor(rand() * IP_MADE.length)] as [Kind, string];
    return { kind, what: `ip ${command}`, invalid: false, run: (_, ns) => ns.exec("ip", command.split(" ")) };
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
  const links = ["r0", "r1", "r2", "br0", "i0"];
  const devs = ["d0", "d1", "r0", "r1"];
  const v4 = (): string => `10.${int(1, 2)}.${int(0, 3)}.${int(1, 9)}`;
  const invalid = rand() < 0.12;
  switch (pick(["link", "address", "route", "rule", "neighbor", "nexthop"] as const)) {
    case "link": {
      if (invalid) {
        const bad = pick([`r${"%"}d`, "r0\u0000x", "x".repeat(16), ""]);
        return {
          kind: "link",
          what: `links.add bridge ${JSON.stringify(bad)}`,
          invalid,
          run: (r) => r.links.add({ kind: "bridge", name: bad }),
        };
      }
      const l = pick(links);
      const action = pick(["add", "add", "set", "set", "delete"] as const);
      if (action === "add") {
        if (l === "br0")
          return {
            kind: "link",
            what: "links.add bridge br0",
            invalid,
            run: (r) => r.links.add({ kind: "bridge", name: "br0" }),
          };
        if (l === "i0")
          return {
            kind: "link",
            what: "links.add ifb i0",
            invalid,
            run: (r) => r.links.add({ kind: "ifb", name: "i0" }),
          };
        return {
          kind: "link",
          what: `links.add veth ${l}`,
          invalid,
          run: (r) => r.links.add({ kind: "veth", name: l, peer: { name: `p${l}` } }),
        };
      }
      if (action === "delete")
        return { kind: "link", what: `links.delete ${l}`, invalid, run: (r) => r.links.delete(l) };
      const changes = pick([
        { up: true },
        { up: false },
        { mtu: int(1280, 9000) },
        { mac: `02:00:00:00:00:${int(16, 99)}` },
        { master: "br0" },
        { master: null },
      ] as const);
      return {
        kind: "link",
        what: `links.set ${l} ${JSON.stringify(changes)}`,
        invalid,
        run: (r) => r.links.set(l, changes),
      };
    }
    case "address": {
      if (invalid) {
        const dev = pick([2 ** 32 + 3, 2 ** 31, 0]);
        return {
          kind: "address",
          what: `addresses.add 10.9.9.9/32 dev ${dev}`,
          invalid,
          run: (r) => r.addresses.add("10.9.9.9/32", { dev }),
        };
      }
      const dev = pick(devs);
      const cidr = rand() < 0.7 ? `${v4()}/${pick([24, 32])}` : `fd00:${int(1, 3)}::${int(1, 9)}/64`;
      if (rand() < 0.6) {
        return {
          kind: "address",
          what: `addresses.add ${cidr} dev ${dev}`,
          invalid,
          run: (r) => r.addresses.add(cidr, { dev, ...(cidr.includes(":") ? { flags: ["nodad"] as const } : {}) }),
        };
      }
      return {
        kind: "address",
        what: `addresses.delete ${cidr} dev ${dev}`,
        invalid,
        run: (r) => r.addresses.delete(cidr, { dev }),
      };
    }
    case "route": {
      if (invalid) {
        return {
          kind: "route",
          what: "routes.add host bits",
          invalid,
          run: (r) => r.routes.add({ dst: "10.9.0.1/24", type: "blackhole", table: 100 }),
        };
      }
      const v6 = rand() < 0.3;
      const dst = v6 ? `fd00:9:${int(0, 5)}::/64` : `10.9.${int(0, 7)}.0/24`;
      const action = pick(["add", "replace", "delete"] as const);
      if (action === "delete") {
        const listed = rt.routes.list({ table: 100 });
        const victim = listed.length > 0 && rand() < 0.7 ? listed[int(0, listed.length - 1)] : undefined;
        if (victim !== undefined)
          return {
            kind: "route",
            what: `routes.delete listed ${victim.dst}`,
            invalid,
            run: (r) => r.routes.delete(victim),
          };
        return {
          kind: "route",
          what: `routes.delete ${dst}`,
          invalid,
          run: (r) => r.routes.delete({ dst, table: 100 }),
        };
      }
      const shape = pick(["blackhole", "via", "nhid", "metrics"] as const);
      const base = { dst, table: 100, metric: pick([0, 5]) * (v6 ? 0 : 1) + (v6 ? 1024 : 0) };
      const spec =
        shape === "blackhole"
          ? { ...base, type: "blackhole" as const }
          : shape === "via"
            ? {
                ...base,
                via: v6 ? "fd00:1::1" : "10.1.0.1",
                dev: "d0",
                ...(v6 ? { pref: pick(["low", "high"] as const) } : { realms: { from: 0, to: int(1, 5) } }),
              }
            : shape === "nhid"
              ? { ...base, nhid: pick([1, 2, 10]) }
              : {
                  ...base,
                  via: v6 ? "fd00:1::1" : "10.1.0.1",
                  dev: "d0",
                  metrics: { mtu: int(1280, 1500), advmss: int(1000, 1200) },
                };
      if (v6 && shape === "nhid")
        return {
          kind: "route",
          what: `routes.${action} ${dst} blackhole`,
          invalid,
          run: (r) => r.routes[action]({ ...base, type: "blackhole" }),
        };
      return {
        kind: "route",
        what: `routes.${action} ${JSON.stringify(spec)}`,
        invalid,
        run: (r) => r.routes[action](spec),
      };
    }
    case "rule": {
      if (invalid)
        return {
          kind: "rule",
          what: 'rules.add iif "d0\\0x"',
          invalid,
          run: (r) => r.rules.add({ iif: "d0\u0000x", table: 100 }),
        };
      if (rand() < 0.45) {
        const listed = rt.rules.list().filter((r) => r.priority >= 100 && r.priority < 200);
        if (listed.length > 0) {
          const victim = listed[int(0, listed.length - 1)]!;
          return {
            kind: "rule",
            what: `rules.delete listed ${victim.priority}`,
            invalid,
            run: (r) => r.rules.delete(victim),
          };
        }
      }
      const priority = int(100, 104);
      const spec = pick([
        { priority, table: 100 },
        { priority, table: 100, ipProto: "tcp" as const, dport: 80 },
        { priority, table: 101, fwmark: 0, fwmask: 0xff00 },
        { priority, table: 100, uidRange: { start: 1000, end: 2000 } },
        { priority, from: "10.1.0.0/16", table: 100, invert: true },
        { priority, iif: "d0", table: 102 },
        { family: 6 as const, priority, from: "fd00:1::/64", table: 100 },
        { priority, goto: 150 },
      ]);
      return { kind: "rule", what: `rules.add ${JSON.stringify(spec)}`, invalid, run: (r) => r.rules.add(spec) };
    }
    case "neighbor": {
      if (invalid)
        return {
          kind: "neighbor",
          what: "neighbors.add dev 2³²+3",
          invalid,
          run: (r) => r.neighbors.add({ ip: "10.1.0.77", mac: "02:00:00:00:00:01", dev: 2 ** 32 + 3 }),
        };
      const ip = rand() < 0.7 ? `10.1.0.${int(50, 55)}` : `fd00:1::${int(50, 55)}`;
      const action = pick(["add", "replace", "delete"] as const);
      if (action === "delete")
        return {
          kind: "neighbor",
          what: `neighbors.delete ${ip}`,
          invalid,
          run: (r) => r.neighbors.delete({ ip, dev: "d0" }),
        };
      const mac = `02:00:00:00:01:${int(10, 20)}`;
      return {
        kind: "neighbor",
        what: `neighbors.${action} ${ip} ${mac}`,
        invalid,
        run: (r) => r.neighbors[action]({ ip, mac, dev: "d0" }),
      };
    }
    case "nexthop": {
      if (invalid)
        return {
          kind: "nexthop",
          what: "nexthops.add id 0",
          invalid,
          run: (r) => r.nexthops.add({ id: 0, blackhole: true }),
        };
      const action = pick(["add", "add", "replace", "delete"] as const);
      if (action === "delete") {
        const id = pick([1, 2, 3, 10]);
        return { kind: "nexthop", what: `nexthops.delete ${id}`, invalid, run: (r) => r.nexthops.delete(id) };
      }
      const spec = pick([
        { id: 1, via: "10.1.0.1", dev: "d0" },
        { id: 2, via: `10.1.0.${int(3, 4)}`, dev: "d0" },
        { id: 3, blackhole: true },
        { id: 10, group: [{ id: 1 }, { id: 2, weight: int(1, 4) }] },
      ]);
      return {
        kind: "nexthop",
        what: `nexthops.${action} ${JSON.stringify(spec)}`,
        invalid,
        run: (r) => r.nexthops[action](spec),
      };
    }
  }
}

describe("randomized comparison with ip -json", () => {
  test(
    `${OPS} mixed valid and invalid operations agree with ip -json after each (seed ${SEED})`,
    { timeout: 120_000 },
    () => {
      using ns = netns();
      ns.exec("ip", ["link", "set", "lo", "up"]);
      ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
      ns.exec("ip", ["link", "set", "d0", "up"]);
      ns.exec("ip", ["link", "set", "d1", "up"]);
      ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
      ns.exec("ip", ["addr", "add", "fd00:1::2/64", "dev", "d0", "nodad"]);
      using rt = openRouting({ netns: ns.ns });
      const rand = generator(SEED);
      const outcomes = { ok: 0, refused: 0, invalid: 0 };
      for (let i = 0; i < OPS; i++) {
        const op = nextOp(rand, rt);
        const where = `seed ${SEED}, operation ${i}: ${op.what}`;
        try {
          op.run(rt, ns);
          expect.soft(op.invalid, `${where} should have been refused`).toBe(false);
          outcomes.ok++;
        } catch (err) {
          if (op.invalid) {
            expect(
              err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError,
              `${where}: ${String(err)}`,
            ).toBe(true);
            outcomes.invalid++;
          } else {
            // The kernel's refusals (EEXIST, ENOENT, EBUSY...), dp's refusal to delete a shadowed rule and ip's failures are outcomes, not failures.
            const ipFailed = op.what.startsWith("ip ") && String(err).includes("Command failed");
            expect(
              ipFailed || err instanceof NetlinkError || err instanceof RuleShadowedError,
              `${where}: ${String(err)}`,
            ).toBe(true);
            outcomes.refused++;
          }
        }
        const [dp, ip] = views(ns, rt, op.kind);
        expect(dp, where).toEqual(ip);
        if (i % 50 === 49) {
          for (const kind of ["link", "address", "route", "rule", "neighbor", "nexthop"] as const) {
            const [dpAll, ipAll] = views(ns, rt, kind);
            expect(dpAll, `${where} (full check of ${kind}s)`).toEqual(ipAll);
          }
        }
      }
      // The sequence exercised all three outcomes.
      expect(outcomes.ok).toBeGreaterThan(OPS / 4);
      expect(outcomes.refused).toBeGreaterThan(0);
      expect(outcomes.invalid).toBeGreaterThan(0);
    },
  );
});
