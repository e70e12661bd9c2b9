// Counts IPv4 packets per source address with XDP. Two network namespaces
// joined by a veth pair; the XDP program runs on B's end, A pings B from
// two of its addresses, and the LRU hash the program fills is read through
// the typed map dp-gen generated (keys as address text).
//
//   npm run example -- xdp_counter      (as root)
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createNetns, deleteNetns, loadCollection, readCollectionSpec } from "@dp/core";
import { attachXdp } from "@dp/hooks";
import { openRouting } from "@dp/routing";
import { bind } from "./xdp_counter.gen.ts";

const OBJECT = fileURLToPath(new URL("../../bpf/build/examples/xdp_counter/xdp_counter.o", import.meta.url));
const A = `dp-ex-xdp-a-${process.pid}`;
const B = `dp-ex-xdp-b-${process.pid}`;

// #region setup
// Two namespaces and a veth pair between them: nothing here touches the host's interfaces.
using nsA = createNetns(A);
using nsB = createNetns(B);
try {
  using rtA = openRouting({ netns: nsA });
  using rtB = openRouting({ netns: nsB });
  rtA.links.add({ kind: "veth", name: "eth0", peer: { name: "eth0", netns: nsB } });
  for (const rt of [rtA, rtB]) rt.links.set("eth0", { up: true });
  rtA.addresses.add("10.200.0.1/24", { dev: "eth0" });
  rtA.addresses.add("10.200.0.11/24", { dev: "eth0" });
  rtB.addresses.add("10.200.0.2/24", { dev: "eth0" });
  console.log(`veth ${A}/eth0 (10.200.0.1, 10.200.0.11) <-> ${B}/eth0 (10.200.0.2)`);
  // #endregion setup

  // #region attach
  using coll = loadCollection(readCollectionSpec(OBJECT));
  using counter = bind(coll);
  using link = attachXdp("eth0", counter.programs.count_sources, { netns: nsB });
  console.log(`attached count_sources to eth0 in ${B} (${link.mode} mode)`);
  // #endregion attach

  const ping = (from: string, count: number): void => {
    execFileSync(
      "ip",
      ["netns", "exec", A, "ping", "-q", "-c", `${count}`, "-i", "0.2", "-W", "2", "-I", from, "10.200.0.2"],
      {
        stdio: "ignore",
      },
    );
    console.log(`pinged 10.200.0.2 from ${from} ${count} times`);
  };
  ping("10.200.0.1", 3);
  ping("10.200.0.11", 2);

  // #region read
  // Keys are the source addresses as text: the ipv4 codec, chosen with `dp-gen --ipv4-fields pkt_count.key`.
  const counts = [...counter.maps.pkt_count.entries()].sort(([a], [b]) => a.localeCompare(b));
  console.log("packets per source address:");
  for (const [source, packets] of counts) console.log(`  ${source.padEnd(15)} ${packets}`);
  // #endregion read
} finally {
  deleteNetns(A);
  deleteNetns(B);
  console.log(`removed ${A} and ${B}`);
}
