#!/usr/bin/env node
// Captures the netlink requests iproute2 sends for one command, as a test
// fixture: the command runs in a fresh network namespace (after optional
// set-up commands) under `strace -e trace=sendmsg,sendto -e write=all`, and
// every buffer sent is stored as hex (iproute2 sends dumps with sendto).
//
//   node scripts/capture_iproute2.mjs NAME [--setup "ip ...; ip ..."] -- ip ARGS...
//
// writes packages/routing/testdata/iproute2/NAME.json. Run as root.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const name = args.shift();
const sep = args.indexOf("--");
if (!name || sep < 0 || args[sep + 1] !== "ip") {
  console.error('usage: capture_iproute2.mjs NAME [--setup "ip ...; ip ..."] -- ip ARGS...');
  process.exit(2);
}
const opts = args.slice(0, sep);
const command = args.slice(sep + 1);
const setupIdx = opts.indexOf("--setup");
const setup = setupIdx >= 0 ? opts[setupIdx + 1].split(";").map((s) => s.trim()).filter(Boolean) : [];

/**
 * Cuts a sent buffer after its last netlink message: iproute2 sends dump
 * requests as its whole request struct, longer than nlmsg_len.
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
function ipIn(words) {
  if (words[0] !== "ip") throw new Error(`set-up commands must start with "ip": ${words.join(" ")}`);
  return ["-n", ns, ...words.slice(1)];
}
execFileSync("ip", ["netns", "add", ns]);
try {
  for (const cmd of setup) execFileSync("ip", ipIn(cmd.split(/\s+/)), { stdio: "inherit" });
  const trace = join(dir, "trace.txt");
  execFileSync("strace", ["-f", "-qq", "-e", "trace=sendmsg,sendto", "-e", "write=all", "-o", trace, "ip", ...ipIn(command)], {
    stdio: "inherit",
  });
  const buffers = [];
  let cur;
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    if (/ (sendmsg|sendto)\(/.test(line)) {
      cur = [];
      buffers.push(cur);
      continue;
    }
    const m = /^ \| [0-9a-f]{5} {2}((?:[0-9a-f]{2}\s{1,2}){1,16})/.exec(line);
    if (m && cur) cur.push(m[1].replace(/\s+/g, ""));
  }
  const version = execFileSync("ip", ["-V"], { encoding: "utf8" }).trim();
  const fixture = {
    command: command.join(" "),
    setup,
    captured: `strace -e trace=sendmsg,sendto -e write=all, ${version}, Linux ${execFileSync("uname", ["-r"], { encoding: "utf8" }).trim()}`,
    sendmsg: buffers.map((b) => trimToMessages(b.join(""))),
  };
  const out = fileURLToPath(new URL(`../packages/routing/testdata/iproute2/${name}.json`, import.meta.url));
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
  console.log(`wrote ${out} (${fixture.sendmsg.length} sendmsg buffers)`);
} finally {
  execFileSync("ip", ["netns", "del", ns]);
  rmSync(dir, { recursive: true, force: true });
}
