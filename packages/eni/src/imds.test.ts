import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "vitest";
import { createEc2Api } from "./ec2.ts";
import { MetadataError, readInstanceMetadata } from "./imds.ts";
import { startFakeEc2 } from "./testing/mod.ts";

const CREDENTIALS = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

async function token(endpoint: string, ttl = "60"): Promise<string> {
  const res = await fetch(`${endpoint}/latest/api/token`, {
    method: "PUT",
    headers: { "x-aws-ec2-metadata-token-ttl-seconds": ttl },
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-aws-ec2-metadata-token-ttl-seconds"), ttl);
  return res.text();
}

test("the IMDS endpoint answers 401 without a session token and 200 with one", async () => {
  await using fake = await startFakeEc2();
  const url = `${fake.imdsEndpoint}/latest/meta-data/instance-id`;
  const without = await fetch(url);
  assert.equal(without.status, 401);
  await without.text();
  const wrong = await fetch(url, { headers: { "x-aws-ec2-metadata-token": "forged" } });
  assert.equal(wrong.status, 401);
  await wrong.text();
  const ok = await fetch(url, { headers: { "x-aws-ec2-metadata-token": await token(fake.imdsEndpoint) } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), fake.instanceId);
});

test("the IMDS token endpoint requires PUT and a TTL from 1 to 21600 seconds", async () => {
  await using fake = await startFakeEc2();
  const url = `${fake.imdsEndpoint}/latest/api/token`;
  for (const [method, ttl, status] of [
    ["PUT", undefined, 400],
    ["PUT", "0", 400],
    ["PUT", "21601", 400],
    ["PUT", "abc", 400],
    ["GET", "60", 405],
    ["PUT", "21600", 200],
  ] as const) {
    const res = await fetch(url, {
      method,
      headers: ttl === undefined ? {} : { "x-aws-ec2-metadata-token-ttl-seconds": ttl },
    });
    assert.equal(res.status, status, `${method} ttl=${ttl}`);
    await res.text();
  }
});

test("the IMDS endpoint lists directories and answers 404 for unknown paths", async () => {
  await using fake = await startFakeEc2();
  const headers = { "x-aws-ec2-metadata-token": await token(fake.imdsEndpoint) };
  const get = async (path: string): Promise<[number, string]> => {
    const res = await fetch(`${fake.imdsEndpoint}/latest/meta-data/${path}`, { headers });
    return [res.status, await res.text()];
  };
  const mac = fake.state.networkInterfaces()[0]?.mac ?? "";
  assert.deepEqual(await get("placement/"), [200, "availability-zone\nregion"]);
  assert.deepEqual(await get("network/interfaces/macs/"), [200, `${mac}/`]);
  assert.deepEqual(await get("network/interfaces/macs"), [200, `${mac}/`]);
  const [status, keys] = await get(`network/interfaces/macs/${mac}/`);
  assert.equal(status, 200);
  for (const key of [
    "device-number",
    "interface-id",
    "local-ipv4s",
    "security-group-ids",
    "subnet-id",
    "subnet-ipv4-cidr-block",
    "vpc-id",
    "vpc-ipv4-cidr-blocks",
  ]) {
    assert.ok(keys.split("\n").includes(key), key);
  }
  assert.deepEqual(await get("no-such-thing"), [404, ""]);
});

test("readInstanceMetadata() reads identity and every attached ENI, sorted by device number", async () => {
  await using fake = await startFakeEc2({
    vpcCidrs: ["10.0.0.0/16", "100.64.0.0/16"],
    subnets: [{ cidr: "10.0.0.0/24" }, { cidr: "100.64.0.0/20" }],
    instances: [{ type: "m5.xlarge" }],
  });
  using ec2 = createEc2Api({ endpoint: fake.endpoint, region: fake.region, credentials: CREDENTIALS });
  const sg = fake.state.addSecurityGroup({ name: "pods" });
  const podSubnet = fake.state.subnets()[1]?.id ?? "";
  // Attached in reverse device order, so that sorting matters.
  const second = await ec2.createNetworkInterface({
    subnetId: podSubnet,
    securityGroupIds: [sg.id],
    secondaryIpCount: 1,
  });
  const first = await ec2.createNetworkInterface({
    subnetId: podSubnet,
    securityGroupIds: [sg.id],
    secondaryIpCount: 2,
  });
  await ec2.attachNetworkInterface(second.id, fake.instanceId, 2);
  await ec2.attachNetworkInterface(first.id, fake.instanceId, 1);
  const primary = fake.state.networkInterfaces()[0];

  const md = await readInstanceMetadata({ endpoint: fake.imdsEndpoint });
  assert.deepEqual(
    { ...md, interfaces: undefined },
    {
      instanceId: fake.instanceId,
      instanceType: "m5.xlarge",
      availabilityZone: "us-east-1a",
      region: "us-east-1",
      mac: primary?.mac,
      interfaces: undefined,
    },
  );
  const vpcId = fake.state.vpc().id;
  assert.deepEqual(md.interfaces, [
    {
      mac: primary?.mac,
      deviceNumber: 0,
      interfaceId: primary?.id,
      subnetId: primary?.subnetId,
      subnetCidr: "10.0.0.0/24",
      vpcId,
      vpcCidrs: ["10.0.0.0/16", "100.64.0.0/16"],
      ips: ["10.0.0.4"],
      securityGroupIds: primary?.securityGroupIds,
    },
    {
      mac: first.mac,
      deviceNumber: 1,
      interfaceId: first.id,
      subnetId: podSubnet,
      subnetCidr: "100.64.0.0/20",
      vpcId,
      vpcCidrs: ["10.0.0.0/16", "100.64.0.0/16"],
      ips: first.ips,
      securityGroupIds: [sg.id],
    },
    {
      mac: second.mac,
      deviceNumber: 2,
      interfaceId: second.id,
      subnetId: podSubnet,
      subnetCidr: "100.64.0.0/20",
      vpcId,
      vpcCidrs: ["10.0.0.0/16", "100.64.0.0/16"],
      ips: second.ips,
      securityGroupIds: [sg.id],
    },
  ]);
  assert.equal(first.ips.length, 3);
});

test("readInstanceMetadata() uses AWS_EC2_METADATA_SERVICE_ENDPOINT when no endpoint is given", async () => {
  await using fake = await startFakeEc2();
  const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `${fake.imdsEndpoint}/`;
  try {
    assert.equal((await readInstanceMetadata()).instanceId, fake.instanceId);
  } finally {
    if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
  }
});

test("readInstanceMetadata() throws MetadataError with the path and status of a failed read", async () => {
  await using fake = await startFakeEc2();
  fake.failNextMetadata("placement/region", 500);
  await assert.rejects(readInstanceMetadata({ endpoint: fake.imdsEndpoint }), (e) => {
    assert.ok(e instanceof MetadataError);
    assert.equal(e.name, "MetadataError");
    assert.equal(e.path, "placement/region");
    assert.equal(e.status, 500);
    assert.equal(e.message, 'Cannot read instance metadata "placement/region": HTTP 500');
    return true;
  });
  // The failure was one-shot.
  assert.equal((await readInstanceMetadata({ endpoint: fake.imdsEndpoint })).region, "us-east-1");
});

test("readInstanceMetadata() reports a refused token as MetadataError on api/token", async () => {
  await using fake = await startFakeEc2();
  await assert.rejects(readInstanceMetadata({ endpoint: fake.endpoint }), (e) => {
    // The EC2 endpoint is no IMDS: the PUT gets EC2's 401 AuthFailure.
    assert.ok(e instanceof MetadataError);
    assert.equal(e.path, "api/token");
    assert.equal(e.status, 401);
    return true;
  });
});

test("readInstanceMetadata() times out with a MetadataError without status", async () => {
  const server = createServer(() => {
    // Never answers.
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as { port: number };
    const start = performance.now();
    await assert.rejects(readInstanceMetadata({ endpoint: `http://127.0.0.1:${port}`, timeoutMs: 50 }), (e) => {
      assert.ok(e instanceof MetadataError);
      assert.equal(e.path, "api/token");
      assert.equal(e.status, undefined);
      return true;
    });
    assert.ok(performance.now() - start < 2000);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test("readInstanceMetadata() stops when its signal aborts", async () => {
  await using fake = await startFakeEc2();
  const controller = new AbortController();
  controller.abort(new Error("shutting down"));
  await assert.rejects(readInstanceMetadata({ endpoint: fake.imdsEndpoint, signal: controller.signal }), (e) => {
    assert.ok(e instanceof MetadataError);
    assert.equal(e.status, undefined);
    assert.match(e.message, /shutting down/);
    return true;
  });
});

test("readInstanceMetadata() throws RangeError for an out-of-range TTL or timeout", async () => {
  await assert.rejects(readInstanceMetadata({ endpoint: "http://127.0.0.1:1", tokenTtlSeconds: 0 }), RangeError);
  await assert.rejects(readInstanceMetadata({ endpoint: "http://127.0.0.1:1", tokenTtlSeconds: 21601 }), RangeError);
  await assert.rejects(readInstanceMetadata({ endpoint: "http://127.0.0.1:1", timeoutMs: 0 }), RangeError);
});
