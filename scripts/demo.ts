// The kernel smoke demo: what `npm run demo` runs. It probes the kernel,
// makes a network namespace, creates a map, loads a program that counts
// into it, runs the program on packets with BPF_PROG_TEST_RUN, pins the map
// and reads it back from the pin, then removes everything it made.
import { rmSync } from "node:fs";
import {
  createMap,
  createNetns,
  deleteNetns,
  hasHelper,
  hasMapType,
  hasTcx,
  interfaceIndex,
  kernelVersion,
  loadProgram,
  openPinnedMap,
  SyscallError,
  unpin,
  withNetns,
} from "@dp/core";
import { asm, rawFd } from "@dp/core/internal";

function line(label: string, value: unknown): void {
  console.log(`  ${label.padEnd(28)} ${String(value)}`);
}

function main(): void {
  const v = kernelVersion();
  console.log("dp kernel smoke demo");
  line("kernel", `${v.major}.${v.minor}.${v.patch}`);
  line("tcx links", hasTcx());
  line("lpm trie maps", hasMapType("lpmTrie"));
  line("bpf_redirect_peer in tc", hasHelper("schedCls", "redirectPeer"));

  const nsName = `dp-demo-${process.pid}`;
  const pinDir = `/sys/fs/bpf/dp-demo-${process.pid}`;
  using ns = createNetns(nsName);
  try {
    line("netns", `${nsName} (lo is ifindex ${withNetns(ns, () => interfaceIndex("lo"))} inside)`);

    using counts = createMap({ name: "demo_counts", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 });
    const { addImm, atomicAddDw, call, exit, jeqImm, ldMapFd, movImm, movReg, program, stW } = asm;
    // key = 0; value = bpf_map_lookup_elem(&counts, &key); if (value) *value += 1; return XDP_PASS
    using prog = loadProgram({
      name: "demo_count",
      type: "xdp",
      license: "GPL",
      instructions: program(
        stW(10, -4, 0),
        movReg(2, 10),
        addImm(2, -4),
        ldMapFd(1, rawFd(counts.fd)),
        call(1),
        jeqImm(0, 0, 2),
        movImm(1, 1),
        atomicAddDw(0, 1, 0),
        movImm(0, 2),
        exit(),
      ),
    });
    const info = prog.info();
    line("program", `id ${info.id} tag ${info.tag} (${info.xlatedSize} bytes translated, ${info.jitedSize} JITed)`);

    const run = prog.testRun({ data: new Uint8Array(64), repeat: 1000 });
    line("test run verdict", `${run.retval} (XDP_PASS), ${run.duration} ns per run`);

    counts.pin(`${pinDir}/counts`);
    using pinned = openPinnedMap(`${pinDir}/counts`);
    const value = pinned.get(new Uint8Array(4)) as Uint8Array;
    line("packets counted (from pin)", new DataView(value.buffer).getBigUint64(0, true));
    unpin(`${pinDir}/counts`);
  } finally {
    rmSync(pinDir, { recursive: true, force: true });
    deleteNetns(nsName);
  }
  console.log("ok");
}

try {
  main();
} catch (err) {
  if (err instanceof SyscallError) {
    console.error(`dp demo: ${err.message}`);
    process.exit(1);
  }
  throw err;
}
