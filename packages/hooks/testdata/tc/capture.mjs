#!/usr/bin/env node
// Captures the netlink requests (and replies) `tc` exchanges for one command,
// as a fixture for tc.test.ts: the command runs in a fresh network namespace
// with a veth pair d0/d1 (d1 is index 2, d0 index 3) after optional set-up
// commands, under `strace -e trace=sendmsg,sendto,recvmsg -e write=all -e
// read=all`. "$OBJ" in any command stands for bpf/build/testdata/hooks_tc.o
// (build it first with `bash bpf/build.sh`).
//
//   node packages/hooks/testdata/tc/capture.mjs NAME [--setup "tc ...; tc ..."] -- tc ARGS...
//
// writes packages/hooks/testdata/tc/NAME.json. Run as root.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const name = args.shift();
const sep = args.indexOf("--");
if (!name || sep < 0 || args[sep + 1] !== "tc") {
  console.error('usage: capture.mjs NAME [--setup "tc ...; tc ..."] -- tc ARGS...');
  process.exit(2);
}
const obj = fileURLToPath(new URL("../../../../bpf/build/testdata/hooks_tc.o", import.meta.url));
function subst(word) {
  return word === "$OBJ" ? obj : word;
}
const opts = args.slice(0, sep);
const command = args.slice(sep + 1);
const setupIdx = opts.indexOf("--setup");
const setup = setupIdx >= 0 ? opts[setupIdx + 1].split(";").map((s) => s.trim()).filter(Boolean) : [];

/** Cuts a buffer after its last complete netlink message. */
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

const ns = `dpcaptc-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), "dpcaptc-"));
function inNs(words) {
  if (words[0] !== "tc" && words[0] !== "ip") throw new Error(`commands must start with "tc" or "ip": ${words.join(" ")}`);
  return ["netns", "exec", ns, ...words.map(subst)];
}
execFileSync("ip", ["netns", "add", ns]);
try {
  execFileSync("ip", ["-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
  execFileSync("ip", ["-n", ns, "link", "set", "d0", "up"]);
  execFileSync("ip", ["-n", ns, "link", "set", "d1", "up"]);
  for (const cmd of setup) execFileSync("ip", inNs(cmd.split(/\s+/)), { stdio: "inherit" });
  const trace = join(dir, "trace.txt");
  execFileSync(
    "strace",
    ["-f", "-qq", "-e", "trace=sendmsg,sendto,recvmsg", "-e", "write=all", "-e", "read=all", "-o", trace, "ip", ...inNs(command)],
    { stdio: "inherit" },
  );
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
  const version = execFileSync("tc", ["-V"], { encoding: "utf8" }).trim();
  const fixture = {
    command: command.join(" "),
    setup,
    captured: `strace -e trace=sendmsg,sendto,recvmsg -e write=all -e read=all, ${version}, Linux ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}`,
    sendmsg: sent.map((b) => trimToMessages(b.join(""))).filter((h) => h.length > 0),
    // Link dumps (tc resolving the device name) are left out: they are large and not tc's.
    recvmsg: received
      .map((b) => trimToMessages(b.join("")))
      .filter((h) => h.length > 0 && Buffer.from(h, "hex").readUInt16LE(4) !== 16),
  };
  const out = fileURLToPath(new URL(`./${name}.json`, import.meta.url));
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
  console.log(`wrote ${out} (${fixture.sendmsg.length} sent, ${fixture.recvmsg.length} received)`);
} finally {
  execFileSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
}
