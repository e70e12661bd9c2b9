import { describe, expect, test } from "vitest";
import { decodeMonitorEvent, formatMonitorEvent, type MonitorEvent } from "@dp/datapath";
import type { DpEvent } from "../_gen/datapath.ts";
import { addr, record } from "./_test_records.ts";

describe("formatMonitorEvent()", () => {
  const ev = (fields: Partial<DpEvent>): MonitorEvent => decodeMonitorEvent(record(fields)) as MonitorEvent;

  test.each([
    [{}, "xx drop (Policy denied) from endpoint 12, ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:80 tcp"],
    [
      { reason: 1, direction: 0 },
      "xx drop (Policy denied by denylist) to endpoint 12, ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:80 tcp",
    ],
    [
      { reason: 3, endpoint_id: 0, protocol: 17, dport: 53 },
      "xx drop (Invalid source ip) ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:53 udp",
    ],
    [
      { reason: 5, family: 0, protocol: 0 },
      "xx drop (Unsupported L3 protocol) from endpoint 12, ifindex 3, identity 256->300: unparsed packet, 74 bytes",
    ],
    [
      { reason: 99 },
      "xx drop (unknown-99) from endpoint 12, ifindex 3, identity 256->300: 10.0.0.1:40000 -> 10.0.0.2:80 tcp",
    ],
    [
      { type: 2, reason: 2, direction: 0, ifindex: 9, ct: 1 },
      "-> endpoint 12, ifindex 9, identity 256->300 state established: 10.0.0.1:40000 -> 10.0.0.2:80 tcp",
    ],
    [{ type: 2, reason: 1 }, "-> stack, ifindex 3, identity 256->300 state new: 10.0.0.1:40000 -> 10.0.0.2:80 tcp"],
    [
      { type: 2, reason: 3, family: 6, saddr: addr("fd00::1"), daddr: addr("fd00::2") },
      "-> network, ifindex 3, identity 256->300 state new: [fd00::1]:40000 -> [fd00::2]:80 tcp",
    ],
    [
      { type: 3, reason: 0, verdict: 1, rule_cookie: 7 },
      "Policy verdict log: local EP ID 12, remote ID 300, proto 6, egress, action allow, rule cookie 7: 10.0.0.1:40000 -> 10.0.0.2:80 tcp",
    ],
    [
      { type: 3, reason: 2, verdict: 4, direction: 0, protocol: 1, sport: 0, dport: 77 },
      "Policy verdict log: local EP ID 12, remote ID 256, proto 1, ingress, action default-deny, rule cookie 0: 10.0.0.1 -> 10.0.0.2 icmp EchoRequest id 77",
    ],
    [
      { protocol: 47, sport: 0, dport: 0 },
      "xx drop (Policy denied) from endpoint 12, ifindex 3, identity 256->300: 10.0.0.1 -> 10.0.0.2 proto 47",
    ],
  ] as const)("formatMonitorEvent() writes %j as one line", (fields, line) => {
    expect(formatMonitorEvent(ev(fields))).toBe(line);
  });
});
