import assert from "node:assert/strict";
import { ClosedError } from "@dp/core";
import { describe, test } from "vitest";
import { createEc2Api, type Ec2ApiClient, type Ec2ApiOptions, type Ec2Clock } from "./ec2.ts";
import { Ec2Error } from "./ec2_api.ts";
import { type FakeEc2, startFakeEc2 } from "./testing/mod.ts";

const CREDENTIALS = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

/**
 * A clock whose sleeps return at once and record their length; they
 * advance time unless `frozen`.
 */
function virtualClock(frozen = false): Ec2Clock & { readonly sleeps: number[] } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: (ms) => {
      sleeps.push(ms);
      if (!frozen) t += ms;
      return Promise.resolve();
    },
  };
}

function connect(fake: FakeEc2, options: Ec2ApiOptions = {}): Ec2ApiClient {
  return createEc2Api({
    endpoint: fake.endpoint,
    region: fake.region,
    credentials: CREDENTIALS,
    clock: virtualClock(),
    ...options,
  });
}

function rejectsWith(code: string, fields: { operation?: string; retryable?: boolean } = {}): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof Ec2Error, `expected an Ec2Error, got ${String(e)}`);
    assert.equal(e.code, code);
    if (fields.operation !== undefined) assert.equal(e.operation, fields.operation);
    if (fields.retryable !== undefined) assert.equal(e.retryable, fields.retryable);
    assert.equal(e.name, "Ec2Error");
    return true;
  };
}

describe("describe calls", () => {
  test("describeInstance() returns the instance's type, subnet, VPC and zone", async () => {
    await using fake = await startFakeEc2({ instances: [{ type: "c5.xlarge" }] });
    using ec2 = connect(fake);
    const subnet = fake.state.subnets()[0];
    assert.deepEqual(await ec2.describeInstance(fake.instanceId), {
      id: fake.instanceId,
      type: "c5.xlarge",
      subnetId: subnet?.id,
      vpcId: fake.state.vpc().id,
      availabilityZone: "us-east-1a",
    });
  });

  test("describeInstance() throws Ec2Error InvalidInstanceID.NotFound for an unknown id", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    await assert.rejects(
      ec2.describeInstance("i-0123456789abcdef0"),
      rejectsWith("InvalidInstanceID.NotFound", { operation: "DescribeInstances", retryable: false }),
    );
    assert.equal(ec2.stats().calls, 1);
  });

  test("describeNetworkInterfaces() returns the attached ENIs with addresses, groups, attachment and tags", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const sg = fake.state.addSecurityGroup({ name: "pods" });
    const created = await ec2.createNetworkInterface({
      subnetId: fake.state.subnets()[0]?.id ?? "",
      securityGroupIds: [sg.id],
      description: "cilium-eni",
      tags: { "cilium-managed": "true" },
      secondaryIpCount: 2,
    });
    const attachmentId = await ec2.attachNetworkInterface(created.id, fake.instanceId, 1);
    const enis = await ec2.describeNetworkInterfaces({ instanceId: fake.instanceId });
    assert.equal(enis.length, 2);
    assert.deepEqual(enis[1], {
      id: created.id,
      subnetId: created.subnetId,
      vpcId: fake.state.vpc().id,
      availabilityZone: "us-east-1a",
      mac: created.mac,
      description: "cilium-eni",
      status: "in-use",
      securityGroupIds: [sg.id],
      primaryIp: "10.0.0.5",
      ips: ["10.0.0.5", "10.0.0.6", "10.0.0.7"],
      ipv6: [],
      attachment: {
        id: attachmentId,
        instanceId: fake.instanceId,
        deviceIndex: 1,
        status: "attached",
        deleteOnTermination: false,
      },
      tags: { "cilium-managed": "true" },
    });
    assert.deepEqual(enis[1], fake.state.networkInterface(created.id));
    assert.deepEqual(enis[0], fake.state.networkInterfaces()[0]);
  });

  test("describeNetworkInterfaces() selects by ids and skips unknown ones", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const primary = fake.state.networkInterfaces()[0];
    const enis = await ec2.describeNetworkInterfaces({ ids: [primary?.id ?? "", "eni-0000000000000dead"] });
    assert.deepEqual(
      enis.map((e) => e.id),
      [primary?.id],
    );
    assert.deepEqual(await ec2.describeNetworkInterfaces({ ids: [] }), []);
    assert.equal(ec2.stats().calls, 1);
  });

  test("describeNetworkInterfaces() follows NextToken across pages", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake, { pageSize: 5 });
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const ids = [fake.state.networkInterfaces()[0]?.id ?? ""];
    for (let i = 0; i < 6; i++) ids.push((await ec2.createNetworkInterface({ subnetId, securityGroupIds: [] })).id);
    const enis = await ec2.describeNetworkInterfaces({ ids });
    assert.deepEqual(
      enis.map((e) => e.id),
      ids,
    );
    assert.equal(ec2.stats().byOperation.DescribeNetworkInterfaces, 2);
    assert.deepEqual(
      fake.calls.filter((c) => c.action === "DescribeNetworkInterfaces").map((c) => c.params.NextToken),
      [undefined, "fake-page-5"],
    );
  });

  test("describeSubnets() returns subnets of a VPC or by id, with tags and free addresses", async () => {
    await using fake = await startFakeEc2({
      subnets: [
        { cidr: "10.0.0.0/24", tags: { tier: "nodes" } },
        { cidr: "10.0.16.0/20", availabilityZone: "us-east-1b", tags: { tier: "pods" } },
      ],
    });
    using ec2 = connect(fake);
    const vpcId = fake.state.vpc().id;
    const all = await ec2.describeSubnets({ vpcId });
    assert.deepEqual(
      all.map((s) => [s.cidr, s.availabilityZone, s.availableIps, s.tags, s.vpcId]),
      [
        ["10.0.0.0/24", "us-east-1a", 250, { tier: "nodes" }, vpcId],
        ["10.0.16.0/20", "us-east-1b", 4091, { tier: "pods" }, vpcId],
      ],
    );
    const second = all[1]?.id ?? "";
    assert.deepEqual(
      (await ec2.describeSubnets({ ids: [second] })).map((s) => s.id),
      [second],
    );
    assert.deepEqual(await ec2.describeSubnets({ vpcId: "vpc-0000000000000dead" }), []);
  });

  test("describeVpc() returns the primary CIDR first, then the secondary ones", async () => {
    await using fake = await startFakeEc2({ vpcCidrs: ["10.0.0.0/16", "100.64.0.0/16"] });
    using ec2 = connect(fake);
    const vpc = await ec2.describeVpc(fake.state.vpc().id);
    assert.deepEqual(vpc, { id: fake.state.vpc().id, cidrs: ["10.0.0.0/16", "100.64.0.0/16"] });
    await assert.rejects(
      ec2.describeVpc("vpc-0000000000000dead"),
      rejectsWith("InvalidVpcID.NotFound", { retryable: false }),
    );
  });

  test("describeInstanceTypes() returns ENI and address limits per type", async () => {
    await using fake = await startFakeEc2({
      instanceTypes: [{ type: "x9.tiny", maxEnis: 2, ipv4PerEni: 3, ipv6PerEni: 0 }],
    });
    using ec2 = connect(fake);
    assert.deepEqual(await ec2.describeInstanceTypes(["m5.large", "t3.micro", "x9.tiny"]), [
      { type: "m5.large", maxEnis: 3, ipv4PerEni: 10, ipv6PerEni: 10 },
      { type: "t3.micro", maxEnis: 2, ipv4PerEni: 2, ipv6PerEni: 2 },
      { type: "x9.tiny", maxEnis: 2, ipv4PerEni: 3, ipv6PerEni: 0 },
    ]);
    await assert.rejects(ec2.describeInstanceTypes(["m5.nope"]), rejectsWith("InvalidInstanceType"));
    assert.deepEqual(await ec2.describeInstanceTypes([]), []);
  });
});

describe("addresses", () => {
  test("assignPrivateIpAddresses() fills an ENI up to its type's limit, then throws PrivateIpAddressLimitExceeded", async () => {
    await using fake = await startFakeEc2(); // m5.large: 10 addresses per ENI
    using ec2 = connect(fake);
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    const first = await ec2.assignPrivateIpAddresses(eniId, 4);
    const second = await ec2.assignPrivateIpAddresses(eniId, 5);
    assert.deepEqual(
      [...first, ...second],
      ["10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"],
    );
    assert.equal(fake.state.networkInterface(eniId)?.ips.length, 10);
    await assert.rejects(
      ec2.assignPrivateIpAddresses(eniId, 1),
      rejectsWith("PrivateIpAddressLimitExceeded", { operation: "AssignPrivateIpAddresses", retryable: false }),
    );
    assert.equal(fake.state.networkInterface(eniId)?.ips.length, 10);
  });

  test("assignPrivateIpAddresses() throws InsufficientFreeAddressesInSubnet when the subnet is full", async () => {
    // A /28 has 11 usable addresses; the primary ENI holds one.
    await using fake = await startFakeEc2({ subnets: [{ cidr: "10.0.0.0/28" }], instances: [{ type: "m5.4xlarge" }] });
    using ec2 = connect(fake);
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    fake.state.reserveIps(fake.state.subnets()[0]?.id ?? "", 4);
    await assert.rejects(
      ec2.assignPrivateIpAddresses(eniId, 7),
      rejectsWith("InsufficientFreeAddressesInSubnet", { retryable: false }),
    );
    assert.equal((await ec2.assignPrivateIpAddresses(eniId, 6)).length, 6);
    assert.equal(fake.state.subnets()[0]?.availableIps, 0);
  });

  test("unassignPrivateIpAddresses() returns addresses to the subnet", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    const ips = await ec2.assignPrivateIpAddresses(eniId, 3);
    assert.equal(fake.state.subnets()[0]?.availableIps, 247);
    await ec2.unassignPrivateIpAddresses(eniId, [ips[0] ?? "", ips[2] ?? ""]);
    assert.deepEqual(fake.state.networkInterface(eniId)?.ips, ["10.0.0.4", ips[1]]);
    assert.equal(fake.state.subnets()[0]?.availableIps, 249);
    await assert.rejects(ec2.unassignPrivateIpAddresses(eniId, ["10.0.0.200"]), rejectsWith("InvalidParameterValue"));
    await ec2.unassignPrivateIpAddresses(eniId, []);
    assert.equal(ec2.stats().byOperation.UnassignPrivateIpAddresses, 2);
  });

  test("assignPrivateIpAddresses() throws RangeError for a count below 1, before any call", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    await assert.rejects(ec2.assignPrivateIpAddresses("eni-1", 0), RangeError);
    assert.equal(ec2.stats().calls, 0);
  });
});

describe("ENI lifecycle", () => {
  test("create, attach, set delete-on-termination, detach and delete an ENI", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const eni = await ec2.createNetworkInterface({
      subnetId,
      securityGroupIds: [],
      description: "d",
      secondaryIpCount: 1,
    });
    assert.equal(eni.status, "available");
    assert.equal(eni.attachment, undefined);
    assert.deepEqual(eni.ips, ["10.0.0.5", "10.0.0.6"]);
    assert.deepEqual(eni.securityGroupIds, [fake.state.securityGroups()[0]?.id]);

    const attachmentId = await ec2.attachNetworkInterface(eni.id, fake.instanceId, 1);
    await ec2.setDeleteOnTermination(eni.id, attachmentId, true);
    const [attached] = await ec2.describeNetworkInterfaces({ ids: [eni.id] });
    assert.deepEqual(attached?.attachment, {
      id: attachmentId,
      instanceId: fake.instanceId,
      deviceIndex: 1,
      status: "attached",
      deleteOnTermination: true,
    });
    await assert.rejects(
      ec2.deleteNetworkInterface(eni.id),
      rejectsWith("InvalidParameterValue", { operation: "DeleteNetworkInterface" }),
    );

    await ec2.detachNetworkInterface(attachmentId, false);
    assert.equal(fake.state.networkInterface(eni.id)?.status, "available");
    await ec2.deleteNetworkInterface(eni.id);
    assert.equal(fake.state.networkInterface(eni.id), undefined);
    assert.equal(fake.state.subnets()[0]?.availableIps, 250);
    await assert.rejects(ec2.deleteNetworkInterface(eni.id), rejectsWith("InvalidNetworkInterfaceID.NotFound"));
  });

  test("createNetworkInterface() sends groups, description, tags and the secondary count as EC2 expects", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const a = fake.state.addSecurityGroup({ name: "a" });
    const b = fake.state.addSecurityGroup({ name: "b" });
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const eni = await ec2.createNetworkInterface({
      subnetId,
      securityGroupIds: [a.id, b.id],
      description: "pods",
      tags: { owner: "dp", node: "n1" },
      secondaryIpCount: 3,
    });
    const { ClientToken, ...params } = fake.calls[0]?.params ?? {};
    assert.match(ClientToken ?? "", /^[0-9a-f-]{36}$/);
    assert.deepEqual(params, {
      SubnetId: subnetId,
      "SecurityGroupId.1": a.id,
      "SecurityGroupId.2": b.id,
      Description: "pods",
      "TagSpecification.1.ResourceType": "network-interface",
      "TagSpecification.1.Tag.1.Key": "owner",
      "TagSpecification.1.Tag.1.Value": "dp",
      "TagSpecification.1.Tag.2.Key": "node",
      "TagSpecification.1.Tag.2.Value": "n1",
      SecondaryPrivateIpAddressCount: "3",
    });
    assert.deepEqual(eni.tags, { owner: "dp", node: "n1" });
    assert.deepEqual(eni.securityGroupIds, [a.id, b.id]);
    await assert.rejects(
      ec2.createNetworkInterface({ subnetId, securityGroupIds: ["sg-0000000000000dead"] }),
      rejectsWith("InvalidGroup.NotFound"),
    );
    await assert.rejects(
      ec2.createNetworkInterface({ subnetId: "subnet-0000000000000dead", securityGroupIds: [] }),
      rejectsWith("InvalidSubnetID.NotFound"),
    );
  });

  test("attachNetworkInterface() throws AttachmentLimitExceeded past the instance type's ENI limit", async () => {
    await using fake = await startFakeEc2(); // m5.large: 3 ENIs
    using ec2 = connect(fake);
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const enis = [];
    for (let i = 0; i < 3; i++) enis.push(await ec2.createNetworkInterface({ subnetId, securityGroupIds: [] }));
    await ec2.attachNetworkInterface(enis[0]?.id ?? "", fake.instanceId, 1);
    await ec2.attachNetworkInterface(enis[1]?.id ?? "", fake.instanceId, 2);
    await assert.rejects(
      ec2.attachNetworkInterface(enis[2]?.id ?? "", fake.instanceId, 3),
      rejectsWith("AttachmentLimitExceeded", { operation: "AttachNetworkInterface", retryable: false }),
    );
    assert.equal(fake.state.networkInterface(enis[2]?.id ?? "")?.attachment, undefined);
  });

  test("attachNetworkInterface() throws InvalidParameterValue when the device index is in use", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const a = await ec2.createNetworkInterface({ subnetId, securityGroupIds: [] });
    const b = await ec2.createNetworkInterface({ subnetId, securityGroupIds: [] });
    await ec2.attachNetworkInterface(a.id, fake.instanceId, 1);
    await assert.rejects(ec2.attachNetworkInterface(b.id, fake.instanceId, 1), rejectsWith("InvalidParameterValue"));
    await assert.rejects(ec2.attachNetworkInterface(a.id, fake.instanceId, 2), rejectsWith("InvalidParameterValue"));
  });

  test("setDeleteOnTermination() throws InvalidAttachmentID.NotFound for another ENI's attachment", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const primary = fake.state.networkInterfaces()[0];
    const eni = await ec2.createNetworkInterface({ subnetId: fake.state.subnets()[0]?.id ?? "", securityGroupIds: [] });
    await assert.rejects(
      ec2.setDeleteOnTermination(eni.id, primary?.attachment?.id ?? "", true),
      rejectsWith("InvalidAttachmentID.NotFound"),
    );
  });

  test("detachNetworkInterface() refuses the primary ENI", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    const primary = fake.state.networkInterfaces()[0];
    await assert.rejects(
      ec2.detachNetworkInterface(primary?.attachment?.id ?? "", true),
      rejectsWith("OperationNotPermitted"),
    );
  });
});

describe("retries and errors", () => {
  test("throttled calls are retried with exponential backoff and counted", async () => {
    await using fake = await startFakeEc2();
    const clock = virtualClock();
    using ec2 = connect(fake, { clock, random: () => 0.5 });
    fake.throttle({ times: 3 });
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    assert.equal((await ec2.assignPrivateIpAddresses(eniId, 2)).length, 2);
    // Waits of ceiling/2 + random*ceiling/2 for ceilings 100, 200, 400.
    assert.deepEqual(clock.sleeps, [75, 150, 300]);
    assert.deepEqual(ec2.stats(), { calls: 4, throttled: 3, byOperation: { AssignPrivateIpAddresses: 4 } });
    assert.deepEqual(
      fake.calls.map((c) => [c.status, c.errorCode]),
      [
        [503, "RequestLimitExceeded"],
        [503, "RequestLimitExceeded"],
        [503, "RequestLimitExceeded"],
        [200, undefined],
      ],
    );
    assert.equal(fake.state.networkInterface(eniId)?.ips.length, 3);
  });

  test("the backoff is capped by retry.maxDelayMs", async () => {
    await using fake = await startFakeEc2();
    const clock = virtualClock();
    using ec2 = connect(fake, { clock, random: () => 1, retry: { attempts: 6, baseDelayMs: 100, maxDelayMs: 300 } });
    fake.throttle({ times: 5 });
    await ec2.describeVpc(fake.state.vpc().id);
    assert.deepEqual(clock.sleeps, [100, 200, 300, 300, 300]);
  });

  test("a call throttled on every attempt throws a retryable Ec2Error RequestLimitExceeded", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake, { retry: { attempts: 3 } });
    fake.throttle({ every: 1 });
    await assert.rejects(ec2.describeVpc(fake.state.vpc().id), (e) => {
      assert.ok(e instanceof Ec2Error);
      assert.equal(e.code, "RequestLimitExceeded");
      assert.equal(e.retryable, true);
      assert.match(
        e.message,
        /^EC2 DescribeVpcs failed: RequestLimitExceeded: Request limit exceeded\. \(gave up after 3 attempts\)$/,
      );
      assert.ok(e.cause instanceof Error);
      return true;
    });
    assert.deepEqual(ec2.stats(), { calls: 3, throttled: 3, byOperation: { DescribeVpcs: 3 } });
  });

  test("server errors (HTTP 5xx) are retried", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    fake.failNext("DescribeSubnets", "InternalError");
    fake.failNext("DescribeSubnets", "Unavailable", { status: 503 });
    fake.failNext("DescribeSubnets", "SomethingNew", { status: 502 });
    assert.equal((await ec2.describeSubnets({ vpcId: fake.state.vpc().id })).length, 1);
    assert.deepEqual(ec2.stats(), { calls: 4, throttled: 0, byOperation: { DescribeSubnets: 4 } });
  });

  test("a non-retryable error surfaces at once as Ec2Error with EC2's code and message", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    fake.failNext("AttachNetworkInterface", "UnauthorizedOperation", {
      message: "You are not authorized to perform this operation.",
    });
    await assert.rejects(ec2.attachNetworkInterface("eni-1", fake.instanceId, 1), (e) => {
      assert.ok(e instanceof Ec2Error);
      assert.equal(e.code, "UnauthorizedOperation");
      assert.equal(e.operation, "AttachNetworkInterface");
      assert.equal(e.retryable, false);
      assert.equal(
        e.message,
        "EC2 AttachNetworkInterface failed: UnauthorizedOperation: You are not authorized to perform this operation.",
      );
      assert.equal((e.cause as { name?: string }).name, "UnauthorizedOperation");
      return true;
    });
    assert.equal(ec2.stats().calls, 1);
  });

  test("createNetworkInterface() retried after a lost response creates one ENI (same client token)", async () => {
    await using fake = await startFakeEc2();
    using ec2 = connect(fake);
    fake.failNext("CreateNetworkInterface", "InternalError", { applied: true });
    const eni = await ec2.createNetworkInterface({ subnetId: fake.state.subnets()[0]?.id ?? "", securityGroupIds: [] });
    assert.equal(fake.state.networkInterfaces().length, 2);
    assert.equal(fake.state.networkInterfaces()[1]?.id, eni.id);
    const tokens = fake.calls.map((c) => c.params.ClientToken);
    assert.equal(tokens.length, 2);
    assert.equal(tokens[0], tokens[1]);
  });

  test("connection failures are retried and then surface as a retryable Ec2Error", async () => {
    const fake = await startFakeEc2();
    const endpoint = fake.endpoint;
    await fake.close();
    using ec2 = createEc2Api({
      endpoint,
      region: "us-east-1",
      credentials: CREDENTIALS,
      clock: virtualClock(),
      retry: { attempts: 2 },
    });
    await assert.rejects(ec2.describeVpc("vpc-1"), (e) => {
      assert.ok(e instanceof Ec2Error);
      assert.equal(e.code, "ECONNREFUSED");
      assert.equal(e.retryable, true);
      return true;
    });
    assert.equal(ec2.stats().calls, 2);
  });

  test("calls after close() throw ClosedError; close() is idempotent", async () => {
    await using fake = await startFakeEc2();
    const ec2 = connect(fake);
    assert.equal(ec2.closed, false);
    ec2.close();
    ec2.close();
    assert.equal(ec2.closed, true);
    await assert.rejects(ec2.describeVpc(fake.state.vpc().id), ClosedError);
    assert.equal(fake.calls.length, 0);
  });

  test("createEc2Api() throws RangeError for out-of-range options", () => {
    for (const options of [
      { qps: 0 },
      { burst: 0 },
      { burst: 1.5 },
      { retry: { attempts: 0 } },
      { retry: { baseDelayMs: -1 } },
      { pageSize: 4 },
      { pageSize: 1001 },
      { requestTimeoutMs: 0 },
    ]) {
      assert.throws(
        () => createEc2Api({ region: "us-east-1", credentials: CREDENTIALS, ...options }),
        RangeError,
        JSON.stringify(options),
      );
    }
  });
});

describe("rate limiting", () => {
  test("calls beyond the burst are spaced at the configured rate", async () => {
    await using fake = await startFakeEc2();
    const clock = virtualClock();
    using ec2 = connect(fake, { clock, qps: 10, burst: 3 });
    const vpcId = fake.state.vpc().id;
    for (let i = 0; i < 6; i++) await ec2.describeVpc(vpcId);
    assert.deepEqual(clock.sleeps, [100, 100, 100]);
    assert.equal(ec2.stats().calls, 6);
  });

  test("retries wait for the rate limiter too", async () => {
    await using fake = await startFakeEc2();
    const clock = virtualClock();
    using ec2 = connect(fake, { clock, qps: 2, burst: 1, random: () => 1, retry: { baseDelayMs: 100 } });
    fake.throttle({ times: 1 });
    await ec2.describeVpc(fake.state.vpc().id);
    // The backoff (100 ms), then the limiter's wait for the next token (400 ms more).
    assert.deepEqual(clock.sleeps, [100, 400]);
  });

  test("concurrent calls share the limiter with the default qps 4 and burst 20", async () => {
    await using fake = await startFakeEc2();
    const clock = virtualClock(true);
    using ec2 = connect(fake, { clock });
    const vpcId = fake.state.vpc().id;
    await Promise.all(Array.from({ length: 24 }, () => ec2.describeVpc(vpcId)));
    // All reserve at t=0: the 21st waits 250 ms, the 22nd 500 ms, …
    assert.deepEqual(clock.sleeps, [250, 500, 750, 1000]);
    assert.equal(ec2.stats().calls, 24);
  });

  test("the real clock spaces calls at small scale", async () => {
    await using fake = await startFakeEc2();
    using ec2 = createEc2Api({
      endpoint: fake.endpoint,
      region: fake.region,
      credentials: CREDENTIALS,
      qps: 50,
      burst: 1,
    });
    const vpcId = fake.state.vpc().id;
    const start = performance.now();
    for (let i = 0; i < 4; i++) await ec2.describeVpc(vpcId);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 55, `4 calls at 50 qps after a burst of 1 took ${elapsed} ms, expected about 60`);
  });
});

describe("configuration", () => {
  test("region, endpoint and credentials come from the environment when not given", async () => {
    await using fake = await startFakeEc2({ region: "eu-west-1" });
    const saved = { ...process.env };
    try {
      process.env.AWS_REGION = "eu-west-1";
      process.env.AWS_ENDPOINT_URL_EC2 = fake.endpoint;
      process.env.AWS_ACCESS_KEY_ID = "AKIDENV";
      process.env.AWS_SECRET_ACCESS_KEY = "secret";
      using ec2 = createEc2Api({ clock: virtualClock() });
      assert.equal((await ec2.describeInstance(fake.instanceId)).availabilityZone, "eu-west-1a");
    } finally {
      for (const k of ["AWS_REGION", "AWS_ENDPOINT_URL_EC2", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  test("credentials may be a function that supplies them", async () => {
    await using fake = await startFakeEc2();
    let asked = 0;
    using ec2 = connect(fake, {
      credentials: () => {
        asked++;
        return Promise.resolve({ ...CREDENTIALS, sessionToken: "token" });
      },
    });
    await ec2.describeVpc(fake.state.vpc().id);
    assert.ok(asked >= 1);
  });
});
