// Test fixtures for cgroup attachments: a temporary cgroup v2 directory
// (mounting cgroup2 under a temporary directory when the host has none)
// and a Node child process that runs inside a test namespace and a cgroup.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from "node:fs";
import type { TestNetns } from "@dp/core/testing";
import { findCgroup2Mount, mountCgroup2 } from "./cgroup.ts";

/** A cgroup v2 directory owned by a test, removed on dispose. */
export class TestCgroup {
  /** The cgroup directory. */
  readonly path: string;
  readonly #mounted: string | undefined;

  /**
   * Wraps a created cgroup.
   *
   * @param path The directory.
   * @param mounted The cgroup2 mount made for it, unmounted on dispose.
   */
  constructor(path: string, mounted: string | undefined) {
    this.path = path;
    this.#mounted = mounted;
  }

  /** Removes the cgroup (its processes must have exited) and a mount made for it. */
  close(): void {
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(this.path);
        break;
      } catch (err) {
        // A process that just exited may still be counted for a moment.
        if ((err as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 50) throw err;
        execFileSync("sleep", ["0.1"]);
      }
    }
    if (this.#mounted !== undefined) {
      execFileSync("umount", [this.#mounted]);
      rmdirSync(this.#mounted);
    }
  }

  /** Removes the cgroup (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Creates a uniquely named cgroup under the cgroup2 mount, mounting
 * cgroup2 under a temporary directory when there is none.
 *
 * @returns The cgroup; dispose it after its processes exited.
 */
export function testCgroup(): TestCgroup {
  let root = findCgroup2Mount();
  let mounted: string | undefined;
  if (root === undefined) {
    mounted = mkdtempSync("/tmp/dpt-cgroup2-");
    mountCgroup2(mounted);
    root = mounted;
  }
  const path = `${root}/dpt-${process.pid}-${randomBytes(4).toString("hex")}`;
  mkdirSync(path);
  return new TestCgroup(path, mounted);
}

/**
 * Runs `body` (the body of an async JavaScript function, CommonJS: use
 * `require`) in a Node child process inside `ns`. When `cgroup` is given
 * the child is moved into it before `body` starts, so every socket it
 * creates belongs to that cgroup. `ip netns exec` remounts /sys, so the
 * move is made from here, by pid.
 *
 * @param ns The namespace.
 * @param cgroup The cgroup directory, or undefined to stay where the test is.
 * @param body The function body; its return value is sent back as JSON.
 * @param args Strings the body sees as `args`.
 * @returns What the body returned.
 */
export function runInNetns(
  ns: TestNetns,
  cgroup: string | undefined,
  body: string,
  args: readonly string[] = [],
): Promise<unknown> {
  const script = `
const args = process.argv.slice(1);
const main = async () => { ${body} };
process.stdout.write(process.pid + "\\n");
process.stdin.once("data", () => {
  main().then(
    (result) => { process.stdout.write(JSON.stringify(result ?? null) + "\\n"); process.exit(0); },
    (err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); },
  );
});`;
  const child = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", script, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    let started = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child in netns "${ns.name}" timed out: ${err}`));
    }, 30_000);
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (started || nl < 0) return;
      started = true;
      try {
        if (cgroup !== undefined) writeFileSync(`${cgroup}/cgroup.procs`, out.slice(0, nl));
        child.stdin.write("go\n");
      } catch (e) {
        child.kill("SIGKILL");
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        reject(new Error(`child in netns "${ns.name}" failed (${code}): ${err}`));
        return;
      }
      const lines = out.trim().split("\n");
      resolve(JSON.parse(lines[lines.length - 1] ?? "null"));
    });
  });
}

/**
 * A child body that starts a TCP echo server on 127.0.0.1, connects to it
 * `args[0]` times, sends `args[1]` on each connection and returns what came
 * back on each.
 */
export const ECHO_CLIENT: string = `
const net = require("node:net");
const count = Number(args[0] ?? "1");
const message = args[1] ?? "hello";
const server = net.createServer((s) => s.on("data", (d) => s.write(d)));
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const port = server.address().port;
const replies = [];
for (let i = 0; i < count; i++) {
  replies.push(await new Promise((resolve, reject) => {
    let got = "";
    const c = net.connect(port, "127.0.0.1", () => c.write(message));
    c.on("data", (d) => { got += d; if (got.length >= message.length) c.end(); });
    c.on("close", () => resolve(got));
    c.on("error", reject);
  }));
}
await new Promise((r) => server.close(r));
return replies;
`;
