// Ring buffer events: a tc program on lo (in a namespace of its own) emits
// one record per ICMP packet; this program reads them as they come with
// RingBuffer.records() while ping runs, and stops through an AbortSignal
// when ping has exited. Records are decoded with a codec written by hand
// for the C struct (the ring buffer is declared without a value type, which
// dp's loader does not accept on ring buffers yet, so dp-gen has none).
//
//   npm run example -- ringbuf_events      (as root)
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createNetns, deleteNetns, loadCollection, readCollectionSpec } from "@dp/core";
import { attachTc } from "@dp/hooks";
import { type Infer, ipv4, RingBuffer, struct, u16, u32, u8 } from "@dp/maps";
import { openRouting } from "@dp/routing";

const OBJECT = fileURLToPath(new URL("../../bpf/build/examples/ringbuf_events/ringbuf_events.o", import.meta.url));
const NS = `dp-ex-ring-${process.pid}`;
// #region codec
/** `struct icmp_event` of ringbuf_events.c; `struct()` checks the size against C's layout. */
const IcmpEvent = struct(
  { saddr: ipv4, daddr: ipv4, len: u32, icmp_type: u8, ttl: u8, pad: u16 },
  { name: "struct icmp_event", size: 16 },
);
type IcmpEvent = Infer<typeof IcmpEvent>;
// #endregion codec

const ICMP_TYPES: Record<number, string> = { 0: "echo reply", 8: "echo request" };

function show(e: IcmpEvent): void {
  console.log(
    `  ${e.saddr} -> ${e.daddr} icmp ${ICMP_TYPES[e.icmp_type] ?? e.icmp_type}, ${e.len} bytes, ttl ${e.ttl}`,
  );
}

using ns = createNetns(NS);
try {
  using rt = openRouting({ netns: ns });
  rt.links.set("lo", { up: true });
  using coll = loadCollection(readCollectionSpec(OBJECT));
  using events = new RingBuffer(coll.map("events"), IcmpEvent);
  using link = attachTc("lo", coll.program("icmp_events"), { direction: "ingress", netns: ns });
  console.log(`attached icmp_events to lo ingress in ${NS} (${link.kind})`);

  // #region read
  const stop = new AbortController();
  const ping = promisify(execFile)("ip", ["netns", "exec", NS, "ping", "-q", "-c", "3", "-i", "0.2", "127.0.0.1"]);
  void ping.finally(() => stop.abort()); // ping has exited: every record it caused is in the ring
  console.log("events while ping -c 3 127.0.0.1 runs:");
  let count = 0;
  for await (const event of events.records({ signal: stop.signal })) {
    show(event);
    count++;
  }
  await ping;
  // records() ends as soon as the signal aborts; what the reader had not reached yet is still in the ring.
  for (const event of events.drain()) {
    show(event);
    count++;
  }
  console.log(`read ${count} events, ${coll.variable("lost").get()} lost`);
  // #endregion read
} finally {
  deleteNetns(NS);
  console.log(`removed ${NS}`);
}
