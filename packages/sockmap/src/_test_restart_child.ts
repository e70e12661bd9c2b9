// A process that accelerates a cgroup with a pin directory and then waits
// to be killed: the crash of the restart test in accelerate.kernel.test.ts.
//   node --conditions=@dp/source --import tsx _test_restart_child.ts CGROUP PIN
// It prints one JSON line `{"adopted": false}` and sleeps.
import { accelerate } from "./accelerate.ts";

const [cgroup, pin] = process.argv.slice(2);
if (cgroup === undefined || pin === undefined) {
  process.stderr.write("usage: _test_restart_child.ts CGROUP PIN\n");
  process.exit(2);
}
const acc = accelerate({ cgroup, pin, local: ["127.0.0.0/8", "::1"] });
process.stdout.write(`${JSON.stringify({ adopted: acc.adopted })}\n`);
setInterval(() => undefined, 60_000);
