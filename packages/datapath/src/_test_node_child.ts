// Test-only: the first process of the restart test. It opens a node on a
// state directory, adds the endpoints and rules it is given (JSON in
// argv[2]), prints "ready" and waits to be killed.
import { openNode } from "./node.ts";
import type { EndpointSpec } from "./endpoint/endpoint.ts";
import type { PolicyRule } from "./policy/rule.ts";

interface ChildArgs {
  readonly stateDir: string;
  readonly netns: string;
  readonly hostRouting: "bpf" | "legacy";
  readonly attachMode: "tcx" | "netlink";
  readonly router: { ipv4: string; ipv6?: string };
  readonly uplink: string;
  readonly endpoints: EndpointSpec[];
  readonly rules: PolicyRule[];
}

const args = JSON.parse(process.argv[2] ?? "{}") as ChildArgs;
const node = await openNode({
  stateDir: args.stateDir,
  netns: args.netns,
  hostRouting: args.hostRouting,
  attachMode: args.attachMode,
  router: args.router,
  uplink: args.uplink,
});
for (const ep of args.endpoints) await node.addEndpoint(ep);
await node.setRules(args.rules);
console.log(`ready ${JSON.stringify(node.endpoints().map((e) => e.id))}`);
setInterval(() => undefined, 1000);
