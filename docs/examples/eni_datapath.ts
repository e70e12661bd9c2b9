// The ENI datapath of docs/eni.md: routing two ENIs and their pods,
// recovering the IPs in use after a restart, and the masquerade policy.
// Type-checked with `npx tsc -p docs/examples`. It changes the rules and
// routes of the namespace it runs in: try it as root in a scratch one,
// `ip netns exec <ns> node --conditions=@dp/source --import tsx docs/examples/eni_datapath.ts`,
// after creating eth1 and eth2 there (up).
import assert from "node:assert/strict";
import {
  type EniDatapathOptions,
  type EniDatapathState,
  listEniPodIps,
  masqueradePolicy,
  reconcileEniDatapath,
  shouldMasquerade,
} from "@dp/eni";
import { openRouting } from "@dp/routing";

// #region state
// ENIs as the IP pool reports them (EniAllocation: deviceIndex, subnetCidr,
// routerIp) with the VPC's CIDRs; pods as the CNI plugin created them.
const state: EniDatapathState = {
  enis: [
    { dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.128.0/17", vpcCidrs: ["192.168.0.0/16"] },
    { dev: "eth2", deviceIndex: 2, table: 92, subnetCidr: "192.168.0.0/17", vpcCidrs: ["192.168.0.0/16"] },
  ],
  pods: [
    { ip: "192.168.130.7", eni: "eth1", hostDev: "lxc1f2e3d4c5b6a" },
    { ip: "192.168.105.44", eni: "eth2", hostDev: "lxc5a4def8d96c5" },
  ],
};
const options: EniDatapathOptions = { enableEndpointRoutes: true, egressMasqueradeInterfaces: ["eth+"] };
// #endregion state

// #region reconcile
using routing = openRouting();
const changes = reconcileEniDatapath(routing, state, options);
for (const line of changes.added) console.log(`added ${line}`);
for (const line of changes.skipped) console.log(`skipped ${line}`);
// Reconciling is idempotent: run it on every change and on a timer.
const again = reconcileEniDatapath(routing, state, options);
assert.deepEqual([again.added, again.removed, again.repaired], [[], [], []]);
// #endregion reconcile

// #region recovery
// After a restart: the IPs in use come from the kernel, not from memory.
const inUse = listEniPodIps(routing, options);
assert.deepEqual(inUse, ["192.168.105.44", "192.168.130.7"]);
// openEniPool({ ..., inUse }) then never releases them.
// #endregion recovery

// #region masquerade
const policy = masqueradePolicy(state, options);
assert.equal(shouldMasquerade(policy, { src: "192.168.105.44", dst: "203.0.113.9", oif: "eth0" }), true);
assert.equal(shouldMasquerade(policy, { src: "192.168.105.44", dst: "192.168.7.7", oif: "eth0" }), false);
// #endregion masquerade
