// The child of the "killed at every system call" tests in
// ledger.kernel.test.ts. Run as
//   node --conditions=@dp/source --import tsx _test_ledger_kill_child.ts KIND NETNS IFACE LEDGER_DIR TARGET KILL_AT
// It sets up (opens the ledger and namespace, loads the programs), then
// swaps in a gateway that counts system calls and kills the process with
// SIGKILL at call KILL_AT (0: never), and makes one attachment of KIND:
//   tc        a netlink tc filter on ingress, recorded in the ledger
//   tc-update the same, then update() to a second program
//   xdp       a netlink XDP program in auto mode (the kernel picks the mode)
//   tcx       a tcx link recorded in the ledger (recordLink)
//   cgroup    a cgroup sock_ops link on TARGET recorded in the ledger
// When it is not killed it prints `{"calls": N}` (the calls the attach
// made) and exits, leaving its attachments in place as a crash would.
import { loadProgram, openNetns } from "@dp/core";
import { asm, setSys, sys } from "@dp/core/internal";
import { attachCgroup } from "./cgroup.ts";
import { openLedger } from "./ledger.ts";
import { attachTc } from "./tc.ts";
import { attachXdp } from "./xdp.ts";

const [kind, nsName, iface, ledgerDir, target, killAtText] = process.argv.slice(2);
if (
  kind === undefined ||
  nsName === undefined ||
  iface === undefined ||
  ledgerDir === undefined ||
  killAtText === undefined
) {
  process.stderr.write("usage: _test_ledger_kill_child.ts KIND NETNS IFACE LEDGER_DIR TARGET KILL_AT\n");
  process.exit(2);
}
const killAt = Number(killAtText);

const netns = openNetns(nsName);
const ledger = openLedger(ledgerDir);
function program(type: "schedCls" | "xdp" | "sockOps", name: string, r0: number): ReturnType<typeof loadProgram> {
  return loadProgram({ name, type, license: "GPL", instructions: asm.program(asm.movImm(0, r0), asm.exit()) });
}
const first =
  kind === "xdp"
    ? program("xdp", "kill_xdp", 2)
    : kind === "cgroup"
      ? program("sockOps", "kill_ops", 1)
      : program("schedCls", "kill_tc", -1);
const second = program("schedCls", "kill_tc2", -1);

// Every system call from here on is counted; call number killAt never happens.
const real = sys();
let calls = 0;
setSys(
  new Proxy(real, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      return (...args: unknown[]): unknown => {
        calls += 1;
        if (calls === killAt) process.kill(process.pid, "SIGKILL");
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }),
);

switch (kind) {
  case "tc":
    attachTc(iface, first, { direction: "ingress", mode: "netlink", netns, ledger });
    break;
  case "tc-update":
    attachTc(iface, first, { direction: "ingress", mode: "netlink", netns, ledger }).update(second);
    break;
  case "xdp":
    attachXdp(iface, first, { via: "netlink", netns, ledger });
    break;
  case "tcx":
    ledger.recordLink("kill-tcx", attachTc(iface, first, { direction: "ingress", mode: "tcx", netns }));
    break;
  case "cgroup":
    ledger.recordLink("kill-cgroup", attachCgroup(target as string, first, "cgroupSockOps"));
    break;
  default:
    throw new Error(`unknown kind ${kind}`);
}
setSys(real);
process.stdout.write(`${JSON.stringify({ calls })}\n`);
process.exit(0);
