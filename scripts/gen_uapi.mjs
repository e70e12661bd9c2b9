#!/usr/bin/env node
// Generates packages/core/src/_gen/uapi.ts from the running kernel's BTF.
//
//   node scripts/gen_uapi.mjs [/sys/kernel/btf/vmlinux]
//
// Reads `bpftool btf dump file <btf>` (raw format) and emits the enum values
// and the byte offsets of the UAPI structs that @dp/core encodes by hand, so
// that offsets come from the kernel's own type information, not from memory.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const btfPath = process.argv[2] ?? "/sys/kernel/btf/vmlinux";
const raw = execFileSync("bpftool", ["btf", "dump", "file", btfPath], {
  encoding: "utf8",
  maxBuffer: 1 << 30,
});

/** @type {Map<number, {id:number, kind:string, name:string, size?:number, typeId?:number, nrElems?:number, members:{name:string, typeId:number, bitsOffset:number, val?:number}[]}>} */
const types = new Map();
let cur;
for (const line of raw.split("\n")) {
  const head = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
  if (head) {
    const [, id, kind, name, rest] = head;
    cur = { id: Number(id), kind, name, members: [] };
    const size = /size=(\d+)/.exec(rest);
    if (size) cur.size = Number(size[1]);
    const typeId = /(?:^| )type_id=(\d+)/.exec(rest);
    if (typeId) cur.typeId = Number(typeId[1]);
    const nr = /nr_elems=(\d+)/.exec(rest);
    if (nr) cur.nrElems = Number(nr[1]);
    types.set(cur.id, cur);
    continue;
  }
  const member = /^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)/.exec(line);
  if (member && cur) {
    cur.members.push({
      name: member[1],
      typeId: Number(member[2]),
      bitsOffset: Number(member[3]),
    });
    continue;
  }
  const enumerator = /^\t'([^']*)' val=(-?\d+)/.exec(line);
  if (enumerator && cur) {
    cur.members.push({ name: enumerator[1], typeId: 0, bitsOffset: 0, val: Number(enumerator[2]) });
  }
}

function byName(kind, name) {
  for (const t of types.values()) if (t.kind === kind && t.name === name) return t;
  throw new Error(`BTF has no ${kind} "${name}"`);
}

function resolve(id) {
  let t = types.get(id);
  while (t && ["TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"].includes(t.kind)) {
    t = types.get(t.typeId);
  }
  return t;
}

/** Flattens a struct or union into dotted member names and byte offsets. */
function flatten(t, prefix = "", base = 0, out = {}) {
  for (const m of t.members) {
    const mt = resolve(m.typeId);
    const off = base + m.bitsOffset / 8;
    const anon = m.name === "(anon)" || m.name === "";
    if (mt && (mt.kind === "STRUCT" || mt.kind === "UNION") && (anon || true)) {
      if (!anon) out[prefix + m.name] = off;
      flatten(mt, anon ? prefix : `${prefix}${m.name}.`, off, out);
    } else if (!anon) {
      out[prefix + m.name] = Math.floor(off);
    }
  }
  return out;
}

function camel(s) {
  return s.toLowerCase().replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

function enumObject(name, strip, { rename } = {}) {
  const t = byName("ENUM", name);
  const seen = new Set();
  const lines = [];
  for (const m of t.members) {
    if (!m.name.startsWith(strip) || m.name.startsWith("__")) continue;
    if (m.name.endsWith("_DEPRECATED") || m.name.endsWith("_UNSPEC")) continue;
    const key = rename ? rename(m.name.slice(strip.length)) : m.name.slice(strip.length);
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`  ${key}: ${m.val},`);
  }
  return lines.join("\n");
}

function structObject(t) {
  const flat = flatten(t);
  const lines = Object.entries(flat).map(([k, v]) => `  ${JSON.stringify(k)}: ${v},`);
  lines.push(`  SIZE: ${t.size},`);
  return lines.join("\n");
}

// The anonymous structs of union bpf_attr, named after the command family
// that uses them, identified by a member only they have.
const attr = byName("UNION", "bpf_attr");
const attrStructs = {};
const marker = {
  MAP_CREATE: "map_type",
  MAP_ELEM: "key",
  PROG_LOAD: "prog_type",
  OBJ: "pathname",
  PROG_ATTACH: "attach_bpf_fd",
  GET_ID: "start_id",
  BTF_LOAD: "btf_log_buf",
};
for (const m of attr.members) {
  const mt = resolve(m.typeId);
  if (m.name !== "(anon)") {
    attrStructs[m.name.toUpperCase()] = mt;
    continue;
  }
  const names = new Set(Object.keys(flatten(mt)));
  for (const [label, key] of Object.entries(marker)) {
    if (names.has(key) && !attrStructs[label]) attrStructs[label] = mt;
  }
}

let out = `// Generated from the kernel's BTF; do not edit.
// Regenerate with: node scripts/gen_uapi.mjs [/sys/kernel/btf/vmlinux]
// Source kernel: ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}

/** \`enum bpf_cmd\` */
export const BPF_CMD = {
${enumObject("bpf_cmd", "BPF_")}
} as const;

/** \`enum bpf_map_type\` */
export const BPF_MAP_TYPE = {
${enumObject("bpf_map_type", "BPF_MAP_TYPE_", { rename: camel })}
} as const;

/** \`enum bpf_prog_type\` */
export const BPF_PROG_TYPE = {
${enumObject("bpf_prog_type", "BPF_PROG_TYPE_", { rename: camel })}
} as const;

/** \`enum bpf_attach_type\` */
export const BPF_ATTACH_TYPE = {
${enumObject("bpf_attach_type", "BPF_", { rename: camel })}
} as const;

/** \`enum bpf_link_type\` */
export const BPF_LINK_TYPE = {
${enumObject("bpf_link_type", "BPF_LINK_TYPE_", { rename: camel })}
} as const;

/** \`enum bpf_func_id\` */
export const BPF_FUNC = {
${enumObject("bpf_func_id", "BPF_FUNC_", { rename: camel })}
} as const;
`;

for (const [label, t] of Object.entries(attrStructs).sort()) {
  out += `
/** Byte offsets of the \`bpf_attr\` members used by ${label}. */
export const ATTR_${label} = {
${structObject(t)}
} as const;
`;
}

for (const name of ["bpf_map_info", "bpf_prog_info", "bpf_link_info", "bpf_btf_info"]) {
  out += `
/** Byte offsets of \`struct ${name}\`. */
export const ${name.toUpperCase()} = {
${structObject(byName("STRUCT", name))}
} as const;
`;
}

const target = fileURLToPath(new URL("../packages/core/src/_gen/uapi.ts", import.meta.url));
writeFileSync(target, out);
console.log(`wrote ${target}`);

// rtnetlink, tc and neighbour enums, found by one member each (most are
// anonymous enums in the UAPI headers). Keys keep the kernel's names
// without the prefix.
const RTNL_ENUMS = [
  ["RTM", "RTM_NEWLINK", "RTM_"],
  ["IFLA", "IFLA_IFNAME", "IFLA_"],
  ["IFLA_INFO", "IFLA_INFO_KIND", "IFLA_INFO_"],
  ["IFLA_VXLAN", "IFLA_VXLAN_ID", "IFLA_VXLAN_"],
  ["VETH_INFO", "VETH_INFO_PEER", "VETH_INFO_"],
  ["IFLA_MACVLAN", "IFLA_MACVLAN_MODE", "IFLA_MACVLAN_"],
  ["MACVLAN_MODE", "MACVLAN_MODE_BRIDGE", "MACVLAN_MODE_"],
  ["IFLA_BR", "IFLA_BR_STP_STATE", "IFLA_BR_"],
  ["IFLA_BRPORT", "IFLA_BRPORT_STATE", "IFLA_BRPORT_"],
  ["IFLA_XDP", "IFLA_XDP_FD", "IFLA_XDP_"],
  ["IFA", "IFA_ADDRESS", "IFA_"],
  ["RTA", "RTA_DST", "RTA_"],
  ["RTN", "RTN_UNICAST", "RTN_"],
  ["RT_SCOPE", "RT_SCOPE_UNIVERSE", "RT_SCOPE_"],
  ["RT_TABLE", "RT_TABLE_MAIN", "RT_TABLE_"],
  ["RTAX", "RTAX_MTU", "RTAX_"],
  ["FRA", "FRA_DST", "FRA_"],
  ["FR_ACT", "FR_ACT_TO_TBL", "FR_ACT_"],
  ["NDA", "NDA_DST", "NDA_"],
  ["RTNLGRP", "RTNLGRP_LINK", "RTNLGRP_"],
  ["IFF", "IFF_UP", "IFF_"],
  ["TCA", "TCA_KIND", "TCA_"],
  ["TCA_BPF", "TCA_BPF_FD", "TCA_BPF_"],
  ["NETNSA", "NETNSA_NSID", "NETNSA_"],
];

function enumByMember(member) {
  for (const t of types.values()) {
    if (t.kind === "ENUM" && t.members.some((m) => m.name === member)) return t;
  }
  throw new Error(`BTF has no enum with member ${member}`);
}

let rtnl = `// Generated from the kernel's BTF; do not edit.
// Regenerate with: node scripts/gen_uapi.mjs [/sys/kernel/btf/vmlinux]
// Source kernel: ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}
//
// rtnetlink, tc and neighbour enums from the UAPI headers (linux/rtnetlink.h,
// linux/if_link.h, linux/if_addr.h, linux/fib_rules.h, linux/neighbour.h,
// linux/pkt_cls.h, linux/if.h), named by their common prefix.
`;
for (const [name, member, prefix] of RTNL_ENUMS) {
  const t = enumByMember(member);
  const lines = [];
  const seen = new Set();
  for (const m of t.members) {
    if (!m.name.startsWith(prefix) || m.name.startsWith("__")) continue;
    const key = m.name.slice(prefix.length);
    if (seen.has(key) || /^\d/.test(key)) continue;
    seen.add(key);
    lines.push(`  ${key}: ${m.val},`);
  }
  rtnl += `
/** \`${prefix}*\` values. */
export const ${name} = {
${lines.join("\n")}
} as const;
`;
}
rtnl += `
/** Byte offsets of \`struct rtnl_link_stats64\` (IFLA_STATS64). */
export const RTNL_LINK_STATS64 = {
${structObject(byName("STRUCT", "rtnl_link_stats64"))}
} as const;
`;
const rtnlTarget = fileURLToPath(new URL("../packages/core/src/_gen/rtnetlink.ts", import.meta.url));
writeFileSync(rtnlTarget, rtnl);
console.log(`wrote ${rtnlTarget}`);
