// The TypeScript tables of the monitor against the C enums they decode
// (bpf/include/dp/events.h, conntrack.h) and the reasons table of
// bpf/datapath/README.md: numbers and names cannot drift apart.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { CT_RESULTS, DROP_REASONS, EVENT_TYPES, POLICY_VERDICTS, TRACE_POINTS } from "@dp/datapath";

const ROOT = new URL("../../../../", import.meta.url).pathname;

/** The enumerators of `enum <name> { ... }` in a C header: name → value. */
function cEnum(header: string, name: string): Map<string, number> {
  const text = readFileSync(`${ROOT}bpf/include/dp/${header}`, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const body = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(text)?.[1];
  if (body === undefined) throw new Error(`${header} has no enum ${name}`);
  const out = new Map<string, number>();
  for (const part of body.split(",")) {
    const m = /^\s*(\w+)\s*=\s*(\d+)\s*$/.exec(part);
    if (m !== null) out.set(m[1] as string, Number(m[2]));
    else if (part.trim() !== "")
      throw new Error(
        `enum ${name}: cannot read ${JSON.stringify(part.trim())} (every enumerator needs an explicit value)`,
      );
  }
  return out;
}

/** The C enumerator each TypeScript name stands for. */
const C_NAMES = {
  event: { drop: "DP_EVENT_DROP", trace: "DP_EVENT_TRACE", "policy-verdict": "DP_EVENT_POLICY_VERDICT" },
  drop: {
    forwarded: "DP_FORWARDED",
    "policy-denied": "DP_DROP_POLICY_DENY",
    "policy-default-deny": "DP_DROP_POLICY_DEFAULT",
    "invalid-source": "DP_DROP_INVALID_SOURCE",
    "ct-map-full": "DP_DROP_CT_MAP_FULL",
    "unsupported-l3": "DP_DROP_UNSUPPORTED_L3",
    "invalid-packet": "DP_DROP_INVALID_PACKET",
    "fib-failed": "DP_DROP_FIB_FAIL",
    "ct-create-failed": "DP_DROP_CT_CREATE_FAILED",
    "unknown-destination": "DP_DROP_UNKNOWN_DESTINATION",
    "rewrite-failed": "DP_DROP_REWRITE_FAILED",
    "encrypt-key-missing": "DP_DROP_ENCRYPT_KEY_MISSING",
  },
  trace: { "to-stack": "DP_TRACE_TO_STACK", "to-endpoint": "DP_TRACE_TO_ENDPOINT", "to-netdev": "DP_TRACE_TO_NETDEV" },
  verdict: {
    none: "DP_VERDICT_NONE",
    allow: "DP_VERDICT_ALLOW",
    deny: "DP_VERDICT_DENY",
    "default-allow": "DP_VERDICT_DEFAULT_ALLOW",
    "default-deny": "DP_VERDICT_DEFAULT_DENY",
  },
  ct: {
    new: "DP_CT_NEW",
    established: "DP_CT_ESTABLISHED",
    reply: "DP_CT_REPLY",
    related: "DP_CT_RELATED",
    reopened: "DP_CT_REOPENED",
  },
} as const;

/** The TS table as C name → number, through C_NAMES. */
function asC(table: Readonly<Record<number, string>>, names: Readonly<Record<string, string>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [value, name] of Object.entries(table)) {
    const c = names[name];
    if (c === undefined) throw new Error(`no C name for ${name}`);
    out.set(c, Number(value));
  }
  return out;
}

describe("monitor tables", () => {
  test.each([
    ["EVENT_TYPES", EVENT_TYPES, C_NAMES.event, "events.h", "dp_event_type"],
    ["DROP_REASONS", DROP_REASONS, C_NAMES.drop, "events.h", "dp_drop_reason"],
    ["TRACE_POINTS", TRACE_POINTS, C_NAMES.trace, "events.h", "dp_trace_point"],
    ["POLICY_VERDICTS", POLICY_VERDICTS, C_NAMES.verdict, "events.h", "dp_verdict"],
    ["CT_RESULTS", CT_RESULTS, C_NAMES.ct, "conntrack.h", "dp_ct_result"],
  ] as const)("%s has the numbers of enum %s", (_, table, names, header, cName) => {
    const c = cEnum(header, cName);
    expect(c.size).toBeGreaterThan(0);
    expect(asC(table, names)).toEqual(c);
  });

  test("DROP_REASONS has the numbers and names of bpf/datapath/README.md's reasons table", () => {
    const readme = readFileSync(`${ROOT}bpf/datapath/README.md`, "utf8");
    const rows = new Map<string, number>();
    for (const m of readme.matchAll(/^\| *(\d+) *\| *(?:`(DP_\w+)`|forwarded)/gm))
      rows.set(m[2] ?? "DP_FORWARDED", Number(m[1]));
    expect(rows).toEqual(asC(DROP_REASONS, C_NAMES.drop));
  });
});
