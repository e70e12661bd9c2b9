/**
 * Test support for ENI IPAM: a local, stateful EC2 Query API endpoint and
 * an IMDSv2 endpoint served on loopback, for the real AWS SDK.
 *
 * The fake models one VPC: subnets with EC2's address accounting,
 * security groups, instances with per-type ENI and address limits, and
 * ENIs with their addresses and attachments. Tests seed and inspect it
 * through {@link FakeEc2.state}, inject errors with
 * {@link FakeEc2.failNext} and {@link FakeEc2.throttle}, and count the
 * requests in {@link FakeEc2.calls}.
 *
 * @example Allocating addresses until the instance type's limit
 * ```ts
 * import assert from "node:assert/strict";
 * import { createEc2Api, Ec2Error } from "@dp/eni";
 * import { startFakeEc2 } from "@dp/eni/testing";
 *
 * await using fake = await startFakeEc2({ instances: [{ type: "t3.small" }] }); // 4 addresses per ENI
 * using ec2 = createEc2Api({ endpoint: fake.endpoint, region: fake.region, credentials: { accessKeyId: "test", secretAccessKey: "test" } });
 * const eniId = fake.state.networkInterfaces()[0]!.id;
 * assert.equal((await ec2.assignPrivateIpAddresses(eniId, 3)).length, 3);
 * await assert.rejects(ec2.assignPrivateIpAddresses(eniId, 1), (e) => e instanceof Ec2Error && e.code === "PrivateIpAddressLimitExceeded");
 * assert.equal(fake.state.networkInterface(eniId)!.ips.length, 4);
 * ```
 *
 * @module @dp/eni/testing
 */
export { startFakeEc2 } from "./fake_ec2.ts";
export type {
  FailNextMetadataOptions,
  FailNextOptions,
  FakeEc2,
  FakeEc2Call,
  FakeEc2Options,
  ThrottleOptions,
} from "./fake_ec2.ts";
export type {
  FakeEc2State,
  FakeInstanceInit,
  FakeSecurityGroup,
  FakeSecurityGroupInit,
  FakeSubnetInit,
} from "./fake_ec2_state.ts";
