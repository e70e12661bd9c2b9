import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { type FakeEc2, startFakeEc2 } from "./mod.ts";

const AUTH =
  "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00";

/** One raw Query API request, as the SDK would send it. */
async function call(
  fake: FakeEc2,
  action: string,
  params: Record<string, string> = {},
  auth = AUTH,
): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams({ Action: action, Version: "2016-11-15", ...params }).toString();
  const res = await fetch(`${fake.endpoint}/`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(auth ? { authorization: auth } : {}) },
    body,
  });
  return { status: res.status, body: await res.text() };
}

function errorCode(body: string): string | undefined {
  return /<Response><Errors><Error><Code>([^<]*)<\/Code><Message>[^<]*<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/.exec(
    body,
  )?.[1];
}

describe("wire format", () => {
  test("startFakeEc2() answers with EC2's namespaced response document", async () => {
    await using fake = await startFakeEc2();
    const { status, body } = await call(fake, "DescribeVpcs");
    assert.equal(status, 200);
    assert.match(
      body,
      /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<DescribeVpcsResponse xmlns="http:\/\/ec2\.amazonaws\.com\/doc\/2016-11-15\/"><requestId>[0-9a-f-]{36}<\/requestId><vpcSet><item><vpcId>vpc-/,
    );
    assert.match(
      body,
      /<cidrBlockAssociationSet><item><associationId>[^<]+<\/associationId><cidrBlock>10\.0\.0\.0\/16<\/cidrBlock><cidrBlockState><state>associated<\/state><\/cidrBlockState><\/item><\/cidrBlockAssociationSet>/,
    );
  });

  test("startFakeEc2() refuses unsigned requests with 401 AuthFailure", async () => {
    await using fake = await startFakeEc2();
    const { status, body } = await call(fake, "DescribeVpcs", {}, "");
    assert.equal(status, 401);
    assert.equal(errorCode(body), "AuthFailure");
  });

  test("startFakeEc2() answers 400 InvalidAction for an action it does not serve", async () => {
    await using fake = await startFakeEc2();
    const { status, body } = await call(fake, "RunInstances");
    assert.equal(status, 400);
    assert.equal(errorCode(body), "InvalidAction");
  });

  test("startFakeEc2() answers 400 MissingParameter for a missing required parameter", async () => {
    await using fake = await startFakeEc2();
    const { status, body } = await call(fake, "AssignPrivateIpAddresses", { SecondaryPrivateIpAddressCount: "1" });
    assert.equal(status, 400);
    assert.equal(errorCode(body), "MissingParameter");
  });

  test("startFakeEc2() answers 412 DryRunOperation to a dry run and changes nothing", async () => {
    await using fake = await startFakeEc2();
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    const { status, body } = await call(fake, "AssignPrivateIpAddresses", {
      NetworkInterfaceId: eniId,
      SecondaryPrivateIpAddressCount: "1",
      DryRun: "true",
    });
    assert.equal(status, 412);
    assert.equal(errorCode(body), "DryRunOperation");
    assert.equal(fake.state.networkInterface(eniId)?.ips.length, 1);
  });

  test("startFakeEc2() escapes text in XML", async () => {
    await using fake = await startFakeEc2();
    const subnetId = fake.state.subnets()[0]?.id ?? "";
    const { body } = await call(fake, "CreateNetworkInterface", { SubnetId: subnetId, Description: `<a & "b">` });
    assert.match(body, /<description>&#60;a &#38; &#34;b&#34;&#62;<\/description>/);
  });

  test("startFakeEc2() pages with MaxResults and NextToken, and refuses MaxResults with ids", async () => {
    await using fake = await startFakeEc2();
    for (let i = 0; i < 5; i++) fake.state.addInstance();
    const first = await call(fake, "DescribeNetworkInterfaces", { MaxResults: "5" });
    assert.equal(first.body.match(/<networkInterfaceId>/g)?.length, 5);
    assert.match(first.body, /<nextToken>fake-page-5<\/nextToken>/);
    const second = await call(fake, "DescribeNetworkInterfaces", { MaxResults: "5", NextToken: "fake-page-5" });
    assert.equal(second.body.match(/<networkInterfaceId>/g)?.length, 1);
    assert.doesNotMatch(second.body, /<nextToken>/);
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    const mixed = await call(fake, "DescribeNetworkInterfaces", { MaxResults: "5", "NetworkInterfaceId.1": eniId });
    assert.equal(errorCode(mixed.body), "InvalidParameterCombination");
    const small = await call(fake, "DescribeNetworkInterfaces", { MaxResults: "4" });
    assert.equal(errorCode(small.body), "InvalidParameterValue");
    const bad = await call(fake, "DescribeNetworkInterfaces", { NextToken: "nope" });
    assert.equal(errorCode(bad.body), "InvalidPaginationToken");
  });

  test("startFakeEc2() matches filters with tags and wildcards, and refuses unknown filters", async () => {
    await using fake = await startFakeEc2({
      subnets: [
        { cidr: "10.0.0.0/24", tags: { "kubernetes.io/role": "nodes" } },
        { cidr: "10.0.1.0/24", tags: { "kubernetes.io/role": "pods-a" } },
        { cidr: "10.0.2.0/24", tags: { "kubernetes.io/role": "pods-b" } },
      ],
    });
    const res = await call(fake, "DescribeSubnets", {
      "Filter.1.Name": "tag:kubernetes.io/role",
      "Filter.1.Value.1": "pods-*",
    });
    assert.deepEqual(
      [...res.body.matchAll(/<cidrBlock>([^<]+)<\/cidrBlock>/g)].map((m) => m[1]),
      ["10.0.1.0/24", "10.0.2.0/24"],
    );
    const bad = await call(fake, "DescribeSubnets", { "Filter.1.Name": "colour", "Filter.1.Value.1": "red" });
    assert.equal(errorCode(bad.body), "InvalidParameterValue");
  });

  test("CreateNetworkInterface is idempotent per ClientToken", async () => {
    await using fake = await startFakeEc2();
    const params = { SubnetId: fake.state.subnets()[0]?.id ?? "", ClientToken: "token-1" };
    const a = await call(fake, "CreateNetworkInterface", params);
    const b = await call(fake, "CreateNetworkInterface", params);
    const id = (body: string): string | undefined => /<networkInterfaceId>([^<]+)</.exec(body)?.[1];
    assert.equal(id(a.body), id(b.body));
    assert.equal(fake.state.networkInterfaces().length, 2);
  });
});

describe("failure injection", () => {
  test("throttle({ times }) refuses the next calls with 503 RequestLimitExceeded", async () => {
    await using fake = await startFakeEc2();
    fake.throttle({ times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const { status, body } = await call(fake, "DescribeVpcs");
      statuses.push([status, errorCode(body)]);
    }
    assert.deepEqual(statuses, [
      [503, "RequestLimitExceeded"],
      [503, "RequestLimitExceeded"],
      [200, undefined],
    ]);
  });

  test("throttle({ every }) refuses every n-th call of the given actions", async () => {
    await using fake = await startFakeEc2();
    fake.throttle({ every: 3, actions: ["DescribeVpcs"] });
    const statuses = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await call(fake, "DescribeVpcs")).status);
      statuses.push((await call(fake, "DescribeSubnets")).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 503, 200, 200, 200, 200, 200, 503, 200, 200, 200]);
    fake.clearFaults();
    for (let i = 0; i < 3; i++) assert.equal((await call(fake, "DescribeVpcs")).status, 200);
  });

  test("throttle() throws RangeError unless exactly one of every and times is given", async () => {
    await using fake = await startFakeEc2();
    assert.throws(() => fake.throttle({}), RangeError);
    assert.throws(() => fake.throttle({ every: 2, times: 2 }), RangeError);
    assert.throws(() => fake.throttle({ every: 0 }), RangeError);
    assert.throws(() => fake.throttle({ times: -1 }), RangeError);
  });

  test("failNext() fails the given number of calls of one action with the given status", async () => {
    await using fake = await startFakeEc2();
    fake.failNext("DescribeSubnets", "InternalError", { times: 2 });
    fake.failNext("DescribeVpcs", "Blocked", { status: 403, message: "no" });
    const results = [];
    for (const action of ["DescribeSubnets", "DescribeVpcs", "DescribeSubnets", "DescribeVpcs", "DescribeSubnets"]) {
      const { status, body } = await call(fake, action);
      results.push([action, status, errorCode(body)]);
    }
    assert.deepEqual(results, [
      ["DescribeSubnets", 500, "InternalError"],
      ["DescribeVpcs", 403, "Blocked"],
      ["DescribeSubnets", 500, "InternalError"],
      ["DescribeVpcs", 200, undefined],
      ["DescribeSubnets", 200, undefined],
    ]);
  });

  test("failNext({ applied: true }) makes the change and still fails", async () => {
    await using fake = await startFakeEc2();
    const eniId = fake.state.networkInterfaces()[0]?.id ?? "";
    fake.failNext("AssignPrivateIpAddresses", "InternalError", { applied: true });
    const { status } = await call(fake, "AssignPrivateIpAddresses", {
      NetworkInterfaceId: eniId,
      SecondaryPrivateIpAddressCount: "2",
    });
    assert.equal(status, 500);
    assert.equal(fake.state.networkInterface(eniId)?.ips.length, 3);
  });

  test("calls records every request with its parameters, status and error code", async () => {
    await using fake = await startFakeEc2();
    fake.throttle({ times: 1 });
    await call(fake, "DescribeVpcs", { "VpcId.1": "vpc-x" });
    await call(fake, "DescribeVpcs", { "VpcId.1": "vpc-x" });
    assert.deepEqual(fake.calls, [
      { action: "DescribeVpcs", params: { "VpcId.1": "vpc-x" }, status: 503, errorCode: "RequestLimitExceeded" },
      { action: "DescribeVpcs", params: { "VpcId.1": "vpc-x" }, status: 400, errorCode: "InvalidVpcID.NotFound" },
    ]);
    fake.clearCalls();
    assert.deepEqual(fake.calls, []);
  });
});

describe("state", () => {
  test("addInstance() gives the instance a primary ENI at device index 0 that cannot be deleted", async () => {
    await using fake = await startFakeEc2();
    const instance = fake.state.addInstance({ type: "t3.micro", id: "i-second" });
    assert.equal(instance.id, "i-second");
    const eni = fake.state.networkInterfaces().find((e) => e.attachment?.instanceId === "i-second");
    assert.equal(eni?.attachment?.deviceIndex, 0);
    assert.equal(eni?.attachment?.deleteOnTermination, true);
    assert.equal(eni?.primaryIp, "10.0.0.5");
    const { body } = await call(fake, "DeleteNetworkInterface", { NetworkInterfaceId: eni?.id ?? "" });
    assert.equal(errorCode(body), "InvalidParameterValue");
  });

  test("addSubnet() accounts for EC2's five reserved addresses and refuses overlaps", async () => {
    await using fake = await startFakeEc2();
    const subnet = fake.state.addSubnet({ cidr: "10.0.8.0/28", id: "subnet-small" });
    assert.equal(subnet.availableIps, 11);
    assert.deepEqual(fake.state.reserveIps("subnet-small", 2), ["10.0.8.4", "10.0.8.5"]);
    assert.equal(fake.state.subnets()[1]?.availableIps, 9);
    assert.throws(() => fake.state.reserveIps("subnet-small", 10), RangeError);
    assert.throws(() => fake.state.addSubnet({ cidr: "10.0.0.128/25" }), RangeError);
    assert.throws(() => fake.state.addSubnet({ cidr: "192.168.0.0/24" }), RangeError);
    assert.throws(() => fake.state.addSubnet({ cidr: "10.0.9.0/29" }), RangeError);
    assert.throws(() => fake.state.addSubnet({ cidr: "10.0.9.1/24" }), SyntaxError);
    fake.state.addVpcCidr("100.64.0.0/16");
    assert.equal(fake.state.addSubnet({ cidr: "100.64.0.0/24" }).availableIps, 251);
  });

  test("startFakeEc2() throws RangeError for an unknown instance type", async () => {
    await assert.rejects(startFakeEc2({ instances: [{ type: "z1.unknown" }] }), RangeError);
  });

  test("instanceTypes() holds the built-in table plus added types", async () => {
    await using fake = await startFakeEc2({
      instanceTypes: [{ type: "m5.large", maxEnis: 2, ipv4PerEni: 5, ipv6PerEni: 0 }],
    });
    fake.state.setInstanceType({ type: "a1.custom", maxEnis: 1, ipv4PerEni: 1, ipv6PerEni: 0 });
    const types = fake.state.instanceTypes();
    assert.deepEqual(types[0], { type: "a1.custom", maxEnis: 1, ipv4PerEni: 1, ipv6PerEni: 0 });
    assert.deepEqual(
      types.find((t) => t.type === "m5.large"),
      { type: "m5.large", maxEnis: 2, ipv4PerEni: 5, ipv6PerEni: 0 },
    );
  });

  test("close() is idempotent and stops both endpoints", async () => {
    const fake = await startFakeEc2();
    await fake.close();
    await fake.close();
    await assert.rejects(fetch(`${fake.endpoint}/`));
    await assert.rejects(fetch(`${fake.imdsEndpoint}/latest/api/token`, { method: "PUT" }));
  });
});
