// ENI address management against a local fake of EC2 and of the instance
// metadata service (the one @dp/eni's tests use, from @dp/eni/testing):
// the real AWS SDK talks to it on 127.0.0.1. The pool gives three pods a
// secondary address of the instance's ENIs, the ENI datapath writes their
// rules and routes into a namespace of this program's own (standing in for
// the node), one pod goes away, and the datapath is reconciled again.
//
//   npm run example -- eni_fake_ec2      (as root)
import { createNetns, deleteNetns } from "@dp/core";
import {
  createEc2Api,
  type EniAllocation,
  type EniDatapathState,
  listEniPodIps,
  openEniPool,
  readInstanceMetadata,
  reconcileEniDatapath,
} from "@dp/eni";
import { startFakeEc2 } from "@dp/eni/testing";
import { openRouting } from "@dp/routing";

const NS = `dp-ex-eni-${process.pid}`;

// #region pool
await using fake = await startFakeEc2({ instances: [{ type: "m5.large" }] });
const md = await readInstanceMetadata({ endpoint: fake.imdsEndpoint }); // IMDSv2, as on an instance
console.log(
  `instance ${md.instanceId} (${md.instanceType}) in ${md.region}, ENIs: ${md.interfaces.map((i) => `eth${i.deviceNumber} ${i.subnetCidr}`).join(", ")}`,
);

// The real SDK, pointed at the fake endpoint with dummy credentials.
using ec2 = createEc2Api({
  endpoint: fake.endpoint,
  region: md.region,
  credentials: { accessKeyId: "example", secretAccessKey: "example" },
});
const pool = await openEniPool(ec2, { instance: md.instanceId });
const pods: EniAllocation[] = [];
for (const name of ["default/web-1", "default/web-2", "default/db-1"]) {
  const a = await pool.allocate(name);
  console.log(`allocated ${a.ip} on eth${a.deviceIndex} (${a.eni}, subnet ${a.subnetCidr}) to ${name}`);
  pods.push(a);
}
const s = pool.status();
console.log(`pool: ${s.used} used, ${s.free} free, ${s.total} addresses on ${s.enis.length} ENI(s)`);
// #endregion pool

using node = createNetns(NS);
try {
  // #region datapath
  using rt = openRouting({ netns: node });
  // The node's ENIs: veth ends named as the instance names them (nothing on the host changes).
  const devices = [...new Set(pods.map((p) => p.deviceIndex))];
  for (const d of devices) {
    rt.links.add({ kind: "veth", name: `eth${d}`, peer: { name: `vpc${d}` } });
    rt.links.set(`eth${d}`, { up: true });
  }
  const vpcCidrs = md.interfaces[0]?.vpcCidrs ?? [];
  const state = (live: readonly EniAllocation[]): EniDatapathState => ({
    enis: devices.map((d) => ({
      dev: `eth${d}`,
      deviceIndex: d,
      subnetCidr: pods.find((p) => p.deviceIndex === d)?.subnetCidr ?? "",
      vpcCidrs,
    })),
    pods: live.map((p) => ({ ip: p.ip, eni: `eth${p.deviceIndex}` })),
  });
  const first = reconcileEniDatapath(rt, state(pods));
  console.log(`datapath in ${NS}:`);
  for (const line of first.added) console.log(`  + ${line}`);
  console.log(`pod addresses the kernel's rules hold: ${listEniPodIps(rt).join(", ")}`);
  // #endregion datapath

  // #region release
  const gone = pods.pop()!;
  pool.release(gone.ip);
  const second = reconcileEniDatapath(rt, state(pods));
  console.log(`released ${gone.ip} (${gone.owner}):`);
  for (const line of second.removed) console.log(`  - ${line}`);
  console.log(`pod addresses the kernel's rules hold: ${listEniPodIps(rt).join(", ")}`);
  // #endregion release
} finally {
  deleteNetns(NS);
  console.log(`removed ${NS}, stopped the fake EC2 endpoint`);
}
