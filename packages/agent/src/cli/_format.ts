// Human output of the dp command: aligned tables and key/value blocks in the
// shape of `cilium status`, `cilium endpoint list`, `cilium bpf ... list`.
// Pure functions over the wire types, unit-tested without an agent.
import { formatMonitorEvent, IP_PROTOCOLS, type MonitorEvent, type NodeCounter } from "@dp/datapath";
import type {
  AgentStatus,
  ApiConntrackEntry,
  ApiEndpoint,
  ApiIdentity,
  ApiPolicy,
  ApiPolicyMapEntry,
  MonitorLine,
  PolicyTraceResponse,
  Wire,
} from "../api/types.ts";

/** Columns padded to the widest cell, separated by three spaces (`tabwriter`-like); trailing spaces trimmed. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** `Key:   value` lines with the values aligned. */
export function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...pairs.map(([k]) => k.length + 1));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`.trimEnd()).join("\n") + "\n";
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(IP_PROTOCOLS).map(([name, n]) => [n, name]),
);

/** The name of an IP protocol number (`TCP`), or the number. */
export function protocolName(n: number): string {
  return PROTOCOL_NAMES[n] ?? String(n);
}

function feature(f: AgentStatus["masquerading"]): string {
  const state = f.state === "enabled" ? "Enabled" : f.state === "disabled" ? "Disabled" : "Not supported yet";
  const m = f.message.trim();
  if (m === "" || m.toLowerCase() === state.toLowerCase()) return state;
  if (m.toLowerCase().startsWith(state.toLowerCase())) return m;
  return `${state} (${m})`;
}

/** The `KVStore` line, as `cilium status` shows it: `Ok   etcd: ...` or `Unhealthy: <reason>`. */
function kvstore(k: AgentStatus["kvstore"]): string {
  const m = k.message.trim();
  switch (k.state) {
    case "disabled":
      return m === "" ? "Disabled" : m;
    case "connected":
      return `Ok   ${m}`;
    case "unhealthy":
      return `Unhealthy: ${m}`;
    case "connecting":
      return `Connecting: ${m}`;
    case "closed":
      return "Closed";
  }
}

function percent(entries: number, max: number): string {
  if (max === 0) return "-";
  const p = (entries / max) * 100;
  if (entries > 0 && p < 0.01) return "<0.01%";
  return `${p.toFixed(entries === 0 || p >= 1 ? 0 : 2)}%`;
}

/** The `Encryption` line: the mode, the key ids held, the key per remote node and any xfrm errors. */
function encryption(e: AgentStatus["encryption"]): string {
  if (e.mode !== "ipsec") return "Disabled";
  const keys = e.keyIds.length === 0 ? "no keys" : `keys ${e.keyIds.join(", ")} (current ${e.keyIds.at(-1)})`;
  const nodes =
    e.nodeKeys.length === 0 ? "no remote nodes" : e.nodeKeys.map((k) => `node ${k.nodeId} → key ${k.spi}`).join(", ");
  const errors = Object.entries(e.xfrmErrors).map(([name, n]) => `${name[0]?.toUpperCase()}${name.slice(1)}=${n}`);
  return `IPsec   (${keys}; ${nodes}${errors.length === 0 ? "" : `; xfrm errors: ${errors.join(" ")}`})`;
}

/**
 * `dp status`: the agent's state like `cilium status` (host routing and
 * why, masquerading, kvstore, maps with fill levels, endpoints,
 * controllers). `verbose` lists every map and controller and the counters.
 */
export function formatStatus(s: AgentStatus, verbose: boolean): string {
  const failing = s.controllers.filter((c) => c.failures > 0);
  const pairs: [string, string][] = [
    ["Agent", `Ok   dp ${s.version} (pid ${s.pid}, since ${s.startedAt})`],
    ["Cluster", `${s.cluster.name} (id ${s.cluster.id})`],
    ["KVStore", kvstore(s.kvstore)],
    ["Host Routing", `${s.hostRouting.mode === "bpf" ? "BPF" : "Legacy"}   (${s.hostRouting.reason})`],
    ["Attach Mode", s.attachMode === "tcx" ? "tcx" : "netlink (cls_bpf)"],
    ["Masquerading", feature(s.masquerading)],
    ["Encryption", encryption(s.encryption)],
    ["Node", `netns ${s.node.netns === "" ? "(agent's)" : s.node.netns}, state ${s.node.stateDir}`],
    ["Devices", s.node.devices.length === 0 ? "(none)" : s.node.devices.join(", ")],
    [
      "Adopted",
      s.adopted.maps + s.adopted.endpoints + s.adopted.attachments === 0
        ? "nothing (fresh start)"
        : `${s.adopted.maps} maps, ${s.adopted.endpoints} endpoints, ${s.adopted.attachments} attachments`,
    ],
    [
      "Endpoints",
      `${s.endpoints.total}${s.endpoints.policyMapFull > 0 ? ` (${s.endpoints.policyMapFull} with a full policy map)` : ""}`,
    ],
    ["Identities", String(s.identities)],
    ["Policy", `${s.policy.rules} rules, revision ${s.policy.revision}`],
    [
      "Controllers",
      `${s.controllers.length - failing.length}/${s.controllers.length} healthy${failing.length > 0 ? `, failing: ${failing.map((c) => c.name).join(", ")}` : ""}`,
    ],
  ];
  const shared = s.maps.filter((m) => !m.name.startsWith("dp_policy/"));
  const policyMaps = s.maps.filter((m) => m.name.startsWith("dp_policy/"));
  let out = keyValues(pairs);
  out += "BPF Maps:\n";
  const mapRows = (verbose ? s.maps : shared).map((m) => [
    `  ${m.name}`,
    String(m.entries),
    String(m.maxEntries),
    percent(m.entries, m.maxEntries),
  ]);
  if (!verbose && policyMaps.length > 0) {
    const fullest = policyMaps.reduce((a, b) => (b.entries / b.maxEntries > a.entries / a.maxEntries ? b : a));
    mapRows.push([
      `  dp_policy/* (${policyMaps.length}, fullest)`,
      String(fullest.entries),
      String(fullest.maxEntries),
      percent(fullest.entries, fullest.maxEntries),
    ]);
  }
  out += table(["  MAP", "ENTRIES", "MAX", "FILL"], mapRows);
  if (s.unsupported.length > 0) {
    out += "Not supported yet:\n";
    for (const u of s.unsupported) out += `  ${u.key}: ${u.message}\n`;
  }
  if (s.unknownKeys.length > 0) out += `Unknown config keys: ${s.unknownKeys.join(", ")}\n`;
  if (verbose) {
    out += "Controllers:\n";
    out += table(
      ["  NAME", "RUNS", "FAILURES", "LAST SUCCESS", "LAST ERROR"],
      s.controllers.map((c) => [
        `  ${c.name}`,
        String(c.runs),
        String(c.failures),
        c.lastSuccess ?? "never",
        c.lastError ?? "",
      ]),
    );
    out += "Counters:\n";
    out += formatMetrics(s.counters.metrics, "  ");
    out += `  lost events: ${s.counters.lostEvents}, policy map full: ${s.counters.policyMapFull}\n`;
  } else if (failing.length > 0) {
    for (const c of failing) out += `  ${c.name}: ${c.lastError ?? "failing"}\n`;
  }
  return out;
}

/** The state of a node read from its pins when no agent answers (`dp status` without an agent). */
export interface PinnedStatus {
  /** The state directory. */
  readonly stateDir: string;
  /** What the node recorded about itself. */
  readonly hostRouting: string | undefined;
  /** The uplink. */
  readonly uplink: string | undefined;
  /** Map fill levels. */
  readonly maps: readonly { readonly name: string; readonly entries: number; readonly maxEntries: number }[];
  /** Endpoints. */
  readonly endpoints: number;
  /** Rules recorded. */
  readonly rules: number;
  /** The encryption the programs were loaded with, and the key per remote node (`dp_encrypt`). */
  readonly encryption: {
    /** `"ipsec"` or `"disabled"`. */
    readonly mode: "ipsec" | "disabled";
    /** The key each remote node's traffic is marked with. */
    readonly keys: readonly {
      /** The remote node's id. */
      readonly nodeId: number;
      /** The key id (SPI). */
      readonly spi: number;
    }[];
  };
}

/** `dp status` from the pins: what the datapath holds while no agent runs. */
export function formatPinnedStatus(s: PinnedStatus, agentError: string): string {
  let out = keyValues([
    ["Agent", `Not reachable (${agentError})`],
    ["Datapath", `pinned in ${s.stateDir} (still forwarding with the state below)`],
    ["Host Routing", s.hostRouting === "bpf" ? "BPF" : s.hostRouting === "legacy" ? "Legacy" : "unknown"],
    ["Uplink", s.uplink ?? "(none)"],
    [
      "Encryption",
      s.encryption.mode !== "ipsec"
        ? "Disabled"
        : `IPsec   (${s.encryption.keys.length === 0 ? "no remote nodes" : s.encryption.keys.map((k) => `node ${k.nodeId} → key ${k.spi}`).join(", ")})`,
    ],
    ["Endpoints", String(s.endpoints)],
    ["Policy", `${s.rules} rules`],
  ]);
  out += "BPF Maps:\n";
  out += table(
    ["  MAP", "ENTRIES", "MAX", "FILL"],
    s.maps.map((m) => [`  ${m.name}`, String(m.entries), String(m.maxEntries), percent(m.entries, m.maxEntries)]),
  );
  return out;
}

function enforcement(on: boolean): string {
  return on ? "Enabled" : "Disabled";
}

/** `dp endpoint list`: like `cilium endpoint list`. */
export function formatEndpoints(eps: readonly ApiEndpoint[]): string {
  return table(
    [
      "ENDPOINT",
      "POLICY (ingress)",
      "POLICY (egress)",
      "IDENTITY",
      "LABELS (source:key[=value])",
      "IPv6",
      "IPv4",
      "INTERFACE",
    ],
    eps.flatMap((e) => {
      const labels = e.labels.length === 0 ? [""] : e.labels;
      return labels.map((l, i) =>
        i === 0
          ? [
              String(e.id),
              enforcement(e.enforcement.ingress),
              enforcement(e.enforcement.egress),
              String(e.identity),
              l,
              e.ipv6 ?? "",
              e.ipv4,
              e.hostIfname,
            ]
          : ["", "", "", "", l, "", "", ""],
      );
    }),
  );
}

/** `dp endpoint get ID`. */
export function formatEndpoint(e: ApiEndpoint): string {
  return keyValues([
    ["Endpoint", String(e.id)],
    ["Identity", String(e.identity)],
    ["Labels", e.labels.join(", ")],
    ["IPv4", e.ipv4],
    ["IPv6", e.ipv6 ?? "(none)"],
    ["Netns", e.netns],
    ["Interface", `${e.ifname} (mac ${e.mac})`],
    ["Host interface", `${e.hostIfname} (ifindex ${e.hostIfindex}, mac ${e.hostMac})`],
    ["Policy ingress", enforcement(e.enforcement.ingress)],
    ["Policy egress", enforcement(e.enforcement.egress)],
    ["Policy map full", e.policyMapFull ? "yes: entries were refused" : "no"],
    ["Container id", e.containerId ?? "(none)"],
  ]);
}

/** `dp identity list`. */
export function formatIdentities(ids: readonly ApiIdentity[]): string {
  return table(
    ["ID", "KIND", "ENDPOINTS", "LABELS"],
    ids.map((i) => [String(i.id), i.kind, String(i.endpoints), i.labels.join(", ")]),
  );
}

/** `dp identity get ID`. */
export function formatIdentity(i: ApiIdentity): string {
  return keyValues([
    ["Identity", String(i.id)],
    ["Kind", i.kind],
    ["Labels", i.labels.join(", ")],
    ["Endpoints", String(i.endpoints)],
  ]);
}

/** `dp policy get`: the rules as JSON (what `dp policy import` reads back) and the revision, like `cilium policy get`. */
export function formatPolicy(p: ApiPolicy): string {
  return `${JSON.stringify(p.rules, null, 2)}\nRevision: ${p.revision}\n`;
}

/** `dp policy trace`: each direction's explanation and the verdict. */
export function formatTrace(t: PolicyTraceResponse): string {
  let out = "";
  for (const d of [t.egress, t.ingress]) if (d !== undefined) out += `${d.message}\n`;
  return `${out}Final verdict: ${t.verdict.toUpperCase()}\n`;
}

/** Seconds from now to a `CLOCK_MONOTONIC` deadline in nanoseconds (negative when past). */
export function secondsUntil(deadlineNs: bigint, nowNs: bigint): number {
  return Number((deadlineNs - nowNs) / 1_000_000_000n);
}

function endpointText(addr: string, port: number, family: number): string {
  return family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * `dp bpf ct list`: one line per entry like `cilium bpf ct list global`:
 * `TCP OUT 10.0.1.2:40000 -> 10.0.1.1:80 expires=21597s state=established ...`.
 */
export function formatConntrack(entries: readonly ApiConntrackEntry[], nowNs: bigint): string {
  let out = "";
  for (const e of entries) {
    const flags = e.flags.length === 0 ? "" : ` Flags=${e.flags.join(",")}`;
    out +=
      `${protocolName(e.protocol)} ${e.scope === "egress" ? "OUT" : "IN"} ` +
      `${endpointText(e.saddr, e.sport, e.family)} -> ${endpointText(e.daddr, e.dport, e.family)} ` +
      `expires=${secondsUntil(BigInt(e.expires), nowNs)}s state=${e.state} ` +
      `TxPackets=${e.txPackets} TxBytes=${e.txBytes} RxPackets=${e.rxPackets} RxBytes=${e.rxBytes}` +
      `${flags} SourceSecurityID=${e.srcIdentity}\n`;
  }
  return out;
}

function portText(e: ApiPolicyMapEntry): string {
  if (e.prefixLength <= 40) return "ANY";
  const proto = protocolName(e.protocol);
  if (e.prefixLength === 48) return `ANY/${proto}`;
  const block = 2 ** (64 - e.prefixLength);
  return block === 1 ? `${e.port}/${proto}` : `${e.port}-${e.port + block - 1}/${proto}`;
}

/** `dp bpf policy get ID`: like `cilium bpf policy get`. */
export function formatPolicyMap(entries: readonly ApiPolicyMapEntry[]): string {
  return table(
    ["POLICY", "DIRECTION", "IDENTITY", "PORT/PROTO", "PROXY PORT", "BYTES", "PACKETS", "PREFIX", "RULE"],
    entries.map((e) => [
      e.deny ? "Deny" : "Allow",
      e.direction === "ingress" ? "Ingress" : "Egress",
      e.identity === 0 ? "ANY" : String(e.identity),
      portText(e),
      e.proxyPort === 0 ? "NONE" : String(e.proxyPort),
      e.bytes,
      e.packets,
      String(e.prefixLength),
      String(e.ruleCookie),
    ]),
  );
}

/** `dp bpf ipcache list`: like `cilium bpf ipcache list`. */
export function formatIpcache(entries: readonly { readonly prefix: string; readonly identity: number }[]): string {
  return table(
    ["IP PREFIX/ADDRESS", "IDENTITY"],
    entries.map((e) => [e.prefix, String(e.identity)]),
  );
}

/** `dp bpf metrics`: like `cilium bpf metrics list`. */
export function formatMetrics(counters: readonly Wire<NodeCounter>[], indent = ""): string {
  return table(
    [`${indent}REASON`, "DIRECTION", "PACKETS", "BYTES"],
    counters.map((c) => [
      `${indent}${c.reason === 0 ? "forwarded" : c.reasonName}`,
      c.direction.toUpperCase(),
      c.packets,
      c.bytes,
    ]),
  );
}

/** A monitor line for humans: the event as `cilium monitor` prints it, or the loss notice. */
export function formatMonitorLine(line: MonitorLine): string {
  if (line.kind === "lost") {
    return `xx lost ${line.count} events (${line.why === "slow-reader" ? "this reader was too slow" : "the ring buffer was full"})`;
  }
  const event = { ...line.event, timestamp: BigInt(line.event.timestamp) } as MonitorEvent;
  return formatMonitorEvent(event);
}
