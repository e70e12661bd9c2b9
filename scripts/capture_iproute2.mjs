#!/usr/bin/env node
// Captures the netlink messages an iproute2 command (`ip` or `tc`) sends,
// and with --replies the ones it receives, as a test fixture: the command
// runs in a fresh network namespace (after optional set-up commands) under
// `strace -e trace=sendmsg,sendto[,recvmsg] -e write=all [-e read=all]`,
// and every buffer is stored as hex (iproute2 sends dumps with sendto).
//
//   node scripts/capture_iproute2.mjs NAME|OUT.json [--setup "ip ...; tc ..."] [--veth] [--replies] [--refused] [--obj FILE] -- ip|tc ARGS...
//
// --refused keeps the request when the command fails (the kernel refused
// it, as `ip xfrm state add` on a kernel without ESP): what was sent is
// still the command's request.
//
// NAME writes packages/routing/testdata/iproute2/NAME.json; a path ending
// in .json is written as given. --veth first adds a veth pair d0/d1 (both
// up); --obj FILE stands for "$OBJ" in any command. Run as root.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const USAGE =
  'usage: capture_iproute2.mjs NAME|OUT.json [--setup "ip ...; tc ..."] [--veth] [--replies] [--refused] [--obj FILE] -- ip|tc ARGS...';
const args = process.argv.slice(2);
const name = args.shift();
const sep = args.indexOf("--");
const tool = args[sep + 1];
if (!name || sep < 0 || (tool !== "ip" && tool !== "tc")) {
  console.error(USAGE);
  process.exit(2);
}
const opts = args.slice(0, sep);
const command = args.slice(sep + 1);
function option(flag) {
  const i = opts.indexOf(flag);
  return i >= 0 ? opts[i + 1] : undefined;
}
const setup = (option("--setup") ?? "")
  .split(";")
  .map((s) => s.trim())
  .filter(Boolean);
const veth = opts.includes("--veth");
const replies = opts.includes("--replies");
const refused = opts.includes("--refused");
const obj = option("--obj") === undefined ? undefined : resolve(option("--obj"));
const out = name.endsWith(".json")
  ? resolve(name)
  : fileURLToPath(new URL(`../packages/routing/testdata/iproute2/${name}.json`, import.meta.url));

/**
 * Cuts a buffer after its last complete netlink message: iproute2 sends
 * dump requests as its whole request struct, longer than nlmsg_len.
 */
function trimToMessages(hex) {
  const bytes = Buffer.from(hex, "hex");
  let off = 0;
  while (off + 16 <= bytes.length) {
    const len = bytes.readUInt32LE(off);
    if (len < 16 || off + len > bytes.length) break;
    off += (len + 3) & ~3;
  }
  return bytes.subarray(0, Math.min(off, bytes.length)).toString("hex");
}

const ns = `dpcap-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), "dpcap-"));
/** `ip` runs with -n (as the routing fixtures were captured), `tc` through `ip netns exec`. */
function inNs(words) {
  const w = words.map((word) => (word === "$OBJ" && obj !== undefined ? obj : word));
  if (w[0] === "ip") return ["-n", ns, ...w.slice(1)];
  if (w[0] === "tc") return ["netns", "exec", ns, ...w];
  throw new Error(`commands must start with "ip" or "tc": ${words.join(" ")}`);
}
execFileSync("ip", ["netns", "add", ns]);
try {
  if (veth) {
    execFileSync("ip", ["-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
    execFileSync("ip", ["-n", ns, "link", "set", "d0", "up"]);
    execFileSync("ip", ["-n", ns, "link", "set", "d1", "up"]);
  }
  for (const cmd of setup) execFileSync("ip", inNs(cmd.split(/\s+/)), { stdio: "inherit" });
  const trace = join(dir, "trace.txt");
  const calls = replies ? "trace=sendmsg,sendto,recvmsg" : "trace=sendmsg,sendto";
  const dump = replies ? ["-e", "write=all", "-e", "read=all"] : ["-e", "write=all"];
  try {
    execFileSync("strace", ["-f", "-qq", "-e", calls, ...dump, "-o", trace, "ip", ...inNs(command)], {
      stdio: "inherit",
    });
  } catch (err) {
    if (!refused) throw err;
    console.error(`the command failed (status ${err.status}); keeping the request it sent (--refused)`);
  }
  const sent = [];
  const received = [];
  let cur;
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    if (/ (sendmsg|sendto)\(/.test(line)) {
      cur = [];
      sent.push(cur);
      continue;
    }
    if (/ recvmsg\(/.test(line)) {
      cur = [];
      received.push(cur);
      continue;
    }
    const m = /^ \| [0-9a-f]{5} {2}((?:[0-9a-f]{2}\s{1,2}){1,16})/.exec(line);
    if (m && cur) cur.push(m[1].replace(/\s+/g, ""));
  }
  const version = execFileSync(tool, ["-V"], { encoding: "utf8" }).trim();
  const kernel = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  const fixture = {
    command: command.join(" "),
    setup,
    captured: `strace -e ${calls} ${dump.filter((d) => d !== "-e").join(" ")}, ${version}, Linux ${kernel}`,
    sendmsg: sent.map((b) => trimToMessages(b.join(""))).filter((h) => h.length > 0),
  };
  if (replies) {
    // Link dumps (the tool resolving a device name: RTM_NEWLINK, type 16) are left out: they are
    // large and not the command's. On NETLINK_XFRM type 16 is XFRM_MSG_NEWSA, the command's own.
    const xfrm = command[1] === "xfrm";
    fixture.recvmsg = received
      .map((b) => trimToMessages(b.join("")))
      .filter((h) => h.length > 0 && (xfrm || Buffer.from(h, "hex").readUInt16LE(4) !== 16));
  }
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
  console.log(`wrote ${out} (${fixture.sendmsg.length} sent${replies ? `, ${fixture.recvmsg.length} received` : ""})`);
} finally {
  execFileSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
}
