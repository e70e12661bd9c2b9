// A tc program with a typed policy map. B runs a UDP echo service on ports
// 7000 and 7001; the tc program on B's ingress looks up each packet's
// destination address, port and protocol in a hash map that this program
// fills through the codecs dp-gen generated: one entry drops port 7001,
// another sends port 7002 to 7000. Then the same program runs on frames
// built with the packet kit (BPF_PROG_TEST_RUN), without any interface.
//
//   npm run example -- tc_policy      (as root)
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { createNetns, deleteNetns, loadCollection, readCollectionSpec } from "@dp/core";
import { attachTc, eth, expectRewrite, ipv4, packet, testRun, udp } from "@dp/hooks";
import { openRouting } from "@dp/routing";
import { bind, type PolicyKey } from "./tc_policy.gen.ts";

const OBJECT = fileURLToPath(new URL("../../bpf/build/examples/tc_policy/tc_policy.o", import.meta.url));
const A = `dp-ex-tc-a-${process.pid}`;
const B = `dp-ex-tc-b-${process.pid}`;
const SERVER = "10.201.0.2";
const IPPROTO_UDP = 17;
/** `enum policy_action` in tc_policy.c. */
const Action = { allow: 0, drop: 1, redirectPort: 2 } as const;

/** A UDP echo service in B on ports 7000 and 7001 that says which port answered. */
async function startEchoService(): Promise<ChildProcess> {
  const script = `
    const dgram = require("node:dgram");
    let ready = 0;
    for (const port of [7000, 7001]) {
      const s = dgram.createSocket("udp4");
      s.on("message", (msg, from) => s.send(port + ":" + msg, from.port, from.address));
      s.bind(port, "${SERVER}", () => { if (++ready === 2) console.log("ready"); });
    }`;
  const child = spawn("ip", ["netns", "exec", B, process.execPath, "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await once(child.stdout!, "data");
  return child;
}

/** Sends one datagram from A and returns the answer, or "no answer" after a second. */
function probe(port: number): string {
  const script = `
    const s = require("node:dgram").createSocket("udp4");
    const timer = setTimeout(() => { console.log("no answer"); s.close(); }, 1000);
    s.on("message", (msg) => { console.log("answered by " + msg.toString().split(":")[0]); clearTimeout(timer); s.close(); });
    s.send("hello", ${port}, "${SERVER}");`;
  const answer = execFileSync("ip", ["netns", "exec", A, process.execPath, "-e", script], { encoding: "utf8" }).trim();
  console.log(`  udp ${SERVER}:${port} -> ${answer}`);
  return answer;
}

using nsA = createNetns(A);
using nsB = createNetns(B);
let echo: ChildProcess | undefined;
try {
  using rtA = openRouting({ netns: nsA });
  using rtB = openRouting({ netns: nsB });
  rtA.links.add({ kind: "veth", name: "eth0", peer: { name: "eth0", netns: nsB } });
  for (const rt of [rtA, rtB]) rt.links.set("eth0", { up: true });
  rtA.addresses.add("10.201.0.1/24", { dev: "eth0" });
  rtB.addresses.add(`${SERVER}/24`, { dev: "eth0" });
  console.log(`veth ${A}/eth0 (10.201.0.1) <-> ${B}/eth0 (${SERVER}), UDP echo on ports 7000 and 7001 in ${B}`);
  echo = await startEchoService();

  // #region policy
  using coll = loadCollection(readCollectionSpec(OBJECT));
  using tc = bind(coll);
  using link = attachTc("eth0", tc.programs.apply_policy, { direction: "ingress", netns: nsB });
  console.log(`attached apply_policy to eth0 ingress in ${B} (${link.kind})`);

  const policy = tc.maps.policy; // HashMap<PolicyKey, PolicyValue>: addresses as text, ports as numbers
  const to = (dport: number): PolicyKey => ({ daddr: SERVER, dport, proto: IPPROTO_UDP, pad: 0 });
  // #endregion policy

  console.log("without policy entries:");
  probe(7000);
  probe(7001);

  // #region rules
  policy.set(to(7001), { action: Action.drop, to_port: 0, pad: 0, packets: 0n });
  policy.set(to(7002), { action: Action.redirectPort, to_port: 7000, pad: 0, packets: 0n });
  // #endregion rules
  console.log("with 7001 dropped and 7002 sent to 7000:");
  probe(7000);
  probe(7001);
  probe(7002);

  console.log("policy entries:");
  for (const [key, value] of policy) {
    const action = Object.keys(Action).find((k) => Action[k as keyof typeof Action] === value.action);
    const detail = value.action === Action.redirectPort ? ` to ${value.to_port}` : "";
    console.log(`  ${key.daddr}:${key.dport}/udp ${action}${detail}, ${value.packets} packet(s)`);
  }

  // #region test-run
  // The same program on frames built with the packet kit, run with BPF_PROG_TEST_RUN.
  const frame = (dport: number): Uint8Array =>
    packet(eth(), ipv4({ src: "10.201.0.1", dst: SERVER }), udp({ sport: 40000, dport }), "hello");
  const redirected = testRun(tc.programs.apply_policy, frame(7002));
  expectRewrite(frame(7002), redirected.packet, { udp: { dport: 7000 } }); // only the port (and the checksum) changed
  console.log(
    `test run, port 7002: ${redirected.verdict}, rewritten to port ${redirected.parsed.udp?.dport}, checksums valid`,
  );
  console.log(`test run, port 7001: ${testRun(tc.programs.apply_policy, frame(7001)).verdict}`);
  // #endregion test-run
} finally {
  echo?.kill();
  deleteNetns(A);
  deleteNetns(B);
  console.log(`removed ${A} and ${B}`);
}
