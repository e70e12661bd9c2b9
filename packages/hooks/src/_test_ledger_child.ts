// A process that attaches through netlink with a ledger and then waits to
// be killed: the crash in ledger.kernel.test.ts. Run as
//   node --conditions=@dp/source --import tsx _test_ledger_child.ts NETNS IFACE LEDGER_DIR [PIN_DIR]
// It attaches a tc filter on ingress and one on egress and an XDP program
// in skb mode, all through netlink and recorded in the ledger; with
// PIN_DIR it also pins a tcx link through the ledger. It prints one JSON
// line `{"attached": {...program ids}}` and sleeps.
import { createLink, loadProgram, openNetns, withNetns } from "@dp/core";
import { asm } from "@dp/core/internal";
import { openLedger } from "./ledger.ts";
import { attachTc } from "./tc.ts";
import { attachXdp } from "./xdp.ts";

const [nsName, iface, ledgerDir, withLink] = process.argv.slice(2);
if (nsName === undefined || iface === undefined || ledgerDir === undefined) {
  process.stderr.write("usage: _test_ledger_child.ts NETNS IFACE LEDGER_DIR [link]\n");
  process.exit(2);
}

const TC_ACT_UNSPEC = -1;
const XDP_PASS = 2;
const netns = openNetns(nsName);
const ledger = openLedger(ledgerDir);
const tcProgram = loadProgram({
  name: "child_tc",
  type: "schedCls",
  license: "GPL",
  instructions: asm.program(asm.movImm(0, TC_ACT_UNSPEC), asm.exit()),
});
const xdpProgram = loadProgram({
  name: "child_xdp",
  type: "xdp",
  license: "GPL",
  instructions: asm.program(asm.movImm(0, XDP_PASS), asm.exit()),
});
const ingress = attachTc(iface, tcProgram, { direction: "ingress", mode: "netlink", netns, ledger });
const egress = attachTc(iface, tcProgram, { direction: "egress", mode: "netlink", netns, ledger });
const xdp = attachXdp(iface, xdpProgram, { mode: "skb", via: "netlink", netns, ledger });
const ids: Record<string, number> = { tc: ingress.programId, egress: egress.programId, xdp: xdp.programId };
if (withLink === "link") {
  const linkProgram = loadProgram({
    name: "child_tcx",
    type: "schedCls",
    license: "GPL",
    instructions: asm.program(asm.movImm(0, TC_ACT_UNSPEC), asm.exit()),
  });
  const link = withNetns(netns, () => createLink(linkProgram, { ifindex: ingress.ifindex }, "tcxIngress"));
  ledger.recordLink("child-tcx", link);
  ids.link = link.id;
  ids.tcx = linkProgram.info().id;
}
process.stdout.write(`${JSON.stringify({ attached: ids })}\n`);
setInterval(() => {}, 60_000);
