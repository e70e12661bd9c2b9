// The kernel smoke test: what `npm run smoke` runs. It probes the kernel,
// makes a network namespace, loads a compiled XDP program that counts
// into a per-CPU map, runs it on packets with BPF_PROG_TEST_RUN, pins the
// map and reads it back from the pin through a typed view; it loads two compiled objects with the
// ELF/BTF loader (CO-RE against this kernel, a constant set before load,
// variables read after a run); then it wires two namespaces together
// with @dp/routing (a veth pair, addresses, a route), attaches a counting
// tc program with @dp/hooks, sends pings across and reads the counters
// through a typed @dp/maps array, then blocks ping with a drop program.
// It removes everything it made.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import {
  createNetns,
  deleteNetns,
  hasHelper,
  hasMapType,
  hasTcx,
  interfaceIndex,
  kernelVersion,
  loadCollection,
  openPinnedMap,
  readCollectionSpec,
  SyscallError,
  unpin,
  withNetns,
} from "@dp/core";
import { attachTc, listAttachments } from "@dp/hooks";
import { ArrayMap, PerCpuArrayMap, struct, u64 } from "@dp/maps";
import { openRouting } from "@dp/routing";

function line(label: string, value: unknown): void {
  console.log(`  ${label.padEnd(28)} ${String(value)}`);
}

function main(): void {
  const v = kernelVersion();
  console.log("dp kernel smoke test");
  line("kernel", `${v.major}.${v.minor}.${v.patch}`);
  line("tcx links", hasTcx());
  line("lpm trie maps", hasMapType("lpmTrie"));
  line("bpf_redirect_peer in tc", hasHelper("schedCls", "redirectPeer"));

  const nsName = `dp-smoke-${process.pid}`;
  const pinDir = `/sys/fs/bpf/dp-smoke-${process.pid}`;
  using ns = createNetns(nsName);
  try {
    line("netns", `${nsName} (lo is ifindex ${withNetns(ns, () => interfaceIndex("lo"))} inside)`);

    // xdp_count.c: one per-CPU array of {packets, bytes}, counted by an XDP program.
    using xdp = loadCollection(readCollectionSpec("bpf/build/testdata/xdp_count.o"));
    using counters = new PerCpuArrayMap(xdp.map("xdp_counters"), struct({ packets: u64, bytes: u64 }));
    const prog = xdp.program("count_packets");
    const info = prog.info();
    line("program", `id ${info.id} tag ${info.tag} (${info.xlatedSize} bytes translated, ${info.jitedSize} JITed)`);

    const run = prog.testRun({ data: new Uint8Array(64), repeat: 1000 });
    line("test run verdict", `${run.retval} (XDP_PASS), ${run.duration} ns per run`);

    counters.map.pin(`${pinDir}/counts`);
    using pinned = new PerCpuArrayMap(openPinnedMap(`${pinDir}/counts`), struct({ packets: u64, bytes: u64 }));
    const total = pinned.sum(0) ?? { packets: 0n, bytes: 0n };
    line("packets counted (from pin)", `${total.packets} packets, ${total.bytes} bytes`);
    unpin(`${pinDir}/counts`);
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
    deleteNetns(nsName);
  }
  loaderDemo();
  routingDemo();
  console.log("ok");
}

/** Loads bpf/testdata/core.c's object: CO-RE against this kernel's BTF, then one run. */
function loaderDemo(): void {
  const spec = readCollectionSpec("bpf/build/testdata/core.o");
  using coll = loadCollection(spec);
  const core = coll.coreRelocations.get("core_values") ?? [];
  line(
    "object core.o",
    `${coll.programs.size} program, ${coll.maps.size} map, ${core.length} CO-RE relocations applied`,
  );
  const run = coll.program("core_values").testRun({ data: new Uint8Array(77) });
  const out = coll.map("core_out").get(new Uint8Array(4)) as Uint8Array;
  const dv = new DataView(out.buffer, out.byteOffset);
  line(
    "CO-RE reads",
    `skb->len ${run.retval}, sizeof(struct sk_buff) ${dv.getUint32(24, true)}, tgid ${dv.getUint32(44, true)} (pid ${process.pid})`,
  );

  const globals = readCollectionSpec("bpf/build/testdata/globals.o");
  globals.constants.set("magic", 42);
  using g = loadCollection(globals);
  const verdict = g.program("globals_tc").testRun({ data: new Uint8Array(64) }).retval;
  line(
    "globals.o, magic set to 42",
    `returns ${verdict}, bss_message ${JSON.stringify(new TextDecoder().decode(g.variable("bss_message").get() as Uint8Array).replace(/\0+$/, ""))}`,
  );
}

function routingDemo(): void {
  const a = `dp-smoke-a-${process.pid}`;
  const b = `dp-smoke-b-${process.pid}`;
  using nsA = createNetns(a);
  try {
    using nsB = createNetns(b);
    try {
      using rtA = openRouting({ netns: nsA });
      using rtB = openRouting({ netns: nsB });
      rtA.links.add({ kind: "veth", name: "eth0", peer: { name: "eth0", netns: nsB } });
      for (const rt of [rtA, rtB]) {
        rt.links.set("lo", { up: true });
        rt.links.set("eth0", { up: true });
      }
      rtA.addresses.add("10.77.0.1/24", { dev: "eth0" });
      rtB.addresses.add("10.77.0.2/24", { dev: "eth0" });
      rtB.addresses.add("10.78.0.2/32", { dev: "lo" });
      rtA.routes.add({ dst: "10.78.0.0/24", via: "10.77.0.2" });
      line("routing", `veth ${a}/eth0 <-> ${b}/eth0, route 10.78.0.0/24 via 10.77.0.2`);
      // A counting tc program on B's end, typed reads of its counters.
      using hooks = loadCollection(readCollectionSpec("bpf/build/testdata/hooks_tc.o"));
      using counters = new ArrayMap(hooks.map("tc_counters"), u64);
      using ingress = attachTc("eth0", hooks.program("tc_count"), { direction: "ingress", netns: nsB });
      line("tc program on eth0 in B", `${ingress.kind} ingress, program id ${ingress.programId}`);
      execFileSync("ip", ["netns", "exec", a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.2"], {
        stdio: "ignore",
      });
      const stats = rtA.links.get("eth0")?.stats;
      line("ping 10.78.0.2 (3 packets)", `ok; eth0 tx ${stats?.txPackets} packets, rx ${stats?.rxPackets} packets`);
      line("seen by the tc program", `${counters.get(1)} echo requests, ${counters.get(2)} echo replies on ingress`);
      const attached = listAttachments({ iface: "eth0", netns: nsB }).map((x) => `${x.hook} ${x.programName}`);
      line("attachments on eth0 in B", attached.join(", "));
      ingress.detach();
      execFileSync("ip", ["netns", "exec", a, "ping", "-c", "1", "-W", "2", "10.78.0.2"], { stdio: "ignore" });
      using drop = attachTc("eth0", hooks.program("tc_drop"), { direction: "ingress", netns: nsB });
      let dropped = false;
      try {
        execFileSync("ip", ["netns", "exec", a, "ping", "-c", "1", "-W", "1", "10.78.0.2"], { stdio: "ignore" });
      } catch {
        dropped = true;
      }
      line("tc drop program", dropped ? `ping blocked, ${counters.get(3)} packet(s) dropped` : "ping still answered");
      drop.detach();
    } finally {
      deleteNetns(b);
    }
  } finally {
    deleteNetns(a);
  }
}

try {
  main();
} catch (err) {
  if (err instanceof SyscallError) {
    console.error(`dp smoke: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
