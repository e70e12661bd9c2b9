// Socket redirection with sock_ops and sk_msg: a sock_ops program attached
// to a cgroup of this program's own puts each TCP socket of that cgroup
// into a sockhash as it connects; an sk_msg program on the sockhash hands
// every message straight to the peer socket. A child process in the cgroup
// (and in a namespace of its own) runs a TCP echo server and a client on
// 127.0.0.1; the counters show the data went through the sockhash.
//
//   npm run example -- sockmap_redirect      (as root)
import { execFileSync } from "node:child_process";
import { mkdirSync, rmdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createNetns, deleteNetns, loadCollection, readCollectionSpec } from "@dp/core";
import { attachCgroup, attachSockmap, findCgroup2Mount, mountCgroup2 } from "@dp/hooks";
import { openRouting } from "@dp/routing";
import { bind } from "./sockmap_redirect.gen.ts";

const OBJECT = fileURLToPath(new URL("../../bpf/build/examples/sockmap_redirect/sockmap_redirect.o", import.meta.url));
const NS = `dp-ex-sockmap-${process.pid}`;
/** `enum stat` in sockmap_redirect.c. */
const Stat = { socketsAdded: 0, messagesRedirected: 1, bytesRedirected: 2 } as const;

/** The child: a TCP echo server and a client that sends `message` over 127.0.0.1 and prints the echo. */
const ECHO = `
  const net = require("node:net");
  const message = process.argv[1];
  const server = net.createServer((s) => s.on("data", (d) => s.write(d)));
  server.listen(0, "127.0.0.1", () => {
    const c = net.connect(server.address().port, "127.0.0.1", () => c.write(message));
    let got = "";
    c.on("data", (d) => { got += d; if (got.length >= message.length) c.end(); });
    c.on("close", () => { console.log(got); server.close(); });
  });`;

/**
 * Runs the child inside the cgroup and the namespace: the shell moves
 * itself into the cgroup, then nsenter (which, unlike `ip netns exec`,
 * keeps /sys as it is) enters the namespace and runs node.
 */
function runEcho(cgroup: string, message: string): string {
  const script = 'echo $$ > "$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" "$3" -e "$4" "$5"';
  return execFileSync("sh", ["-c", script, "sh", cgroup, NS, process.execPath, ECHO, message], {
    encoding: "utf8",
  }).trim();
}

/** Removes an empty cgroup; the kernel may count an exited process for a moment. */
function removeCgroup(path: string): void {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EBUSY" || attempt >= 50) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
}

// A cgroup of our own, under the cgroup2 hierarchy (mounted first on a system that has none).
mountCgroup2();
const cgroup = `${findCgroup2Mount()}/dp-ex-sockmap-${process.pid}`;
mkdirSync(cgroup);
using ns = createNetns(NS);
try {
  using rt = openRouting({ netns: ns });
  rt.links.set("lo", { up: true });
  console.log(`cgroup ${cgroup}, namespace ${NS}`);

  // #region attach
  using coll = loadCollection(readCollectionSpec(OBJECT));
  const { maps, programs } = bind(coll);
  using msg = attachSockmap(maps.sock_hash, programs.msg_redirect, "skMsgVerdict");
  using ops = attachCgroup(cgroup, programs.sockops_insert, "cgroupSockOps");
  console.log(`attached msg_redirect to sock_hash (${msg.kind}) and sockops_insert to the cgroup (${ops.kind})`);
  // #endregion attach

  const message = "hello through the sockhash";
  console.log(`sent ${JSON.stringify(message)}, echoed ${JSON.stringify(runEcho(cgroup, message))}`);
  console.log(`sockets added to sock_hash: ${maps.stats.get(Stat.socketsAdded)}`);
  console.log(
    `messages redirected: ${maps.stats.get(Stat.messagesRedirected)} (${maps.stats.get(Stat.bytesRedirected)} bytes)`,
  );
} finally {
  deleteNetns(NS);
  removeCgroup(cgroup); // the child has exited: the cgroup is empty
  console.log(`removed ${NS} and ${cgroup}`);
}
