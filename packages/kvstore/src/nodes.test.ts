import assert from "node:assert/strict";
import { parseCidr } from "@dp/core";
import { describe, it } from "vitest";
import { InvalidNodeError, validateNode } from "./nodes.ts";
import { canonicalPrefix, prefixesOverlap } from "./_net.ts";

function fieldOf(input: unknown): string {
  try {
    validateNode(input);
  } catch (err) {
    if (err instanceof InvalidNodeError) return err.field;
    throw err;
  }
  assert.fail("expected an InvalidNodeError");
}

describe("validateNode", () => {
  it("treats optional fields set to undefined as absent and refuses prototype names", () => {
    assert.deepEqual(validateNode({ name: "a", ipv4: undefined, labels: undefined }), validateNode({ name: "a" }));
    assert.equal(fieldOf({ name: "a", toString: "x" }), "toString");
    assert.equal(fieldOf({ name: "a", constructor: 1 }), "constructor");
  });

  it("canonicalises a full record", () => {
    const node = validateNode({
      name: "node-a.example",
      cluster: { name: "east", id: 7 },
      ipv4: "192.168.1.10",
      ipv6: "FD00:0:0::10",
      podCidrs: ["10.1.0.0/24", "fd01:0::/64"],
      nodeId: 3,
      health: { ipv4: "10.1.0.2", healthy: true },
      encryption: { ipsecKeyIds: [3, 2], wireguardPublicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=" },
      labels: { zone: "a" },
    });
    assert.equal(node.ipv6, "fd00::10");
    assert.deepEqual(node.podCidrs, ["10.1.0.0/24", "fd01::/64"]);
    assert.deepEqual(node.cluster, { name: "east", id: 7 });
  });

  it("names the bad field", () => {
    assert.equal(fieldOf({ name: "Node_A" }), "name");
    assert.equal(fieldOf({ name: "a", ipv4: "fd00::1" }), "ipv4");
    assert.equal(fieldOf({ name: "a", ipv6: "10.0.0.1" }), "ipv6");
    assert.equal(fieldOf({ name: "a", podCidrs: ["10.1.0.0/24", "10.1.0.1/24"] }), "podCidrs[1]");
    assert.equal(fieldOf({ name: "a", cluster: { name: "x", id: 256 } }), "cluster.id");
    assert.equal(fieldOf({ name: "a", nodeId: 0 }), "nodeId");
    assert.equal(fieldOf({ name: "a", encryption: { ipsecKeyIds: [16] } }), "encryption.ipsecKeyIds[0]");
    assert.equal(fieldOf({ name: "a", encryption: { wireguardPublicKey: "nope" } }), "encryption.wireguardPublicKey");
    assert.equal(fieldOf({ name: "a", health: { healthy: "yes" } }), "health.healthy");
    assert.equal(fieldOf({ name: "a", labels: { x: 1 } }), "labels.x");
    assert.equal(fieldOf({ name: "a", podCIDRs: [] }), "podCIDRs");
  });
});

describe("prefixes", () => {
  it("canonicalises and finds overlaps", () => {
    assert.equal(canonicalPrefix("10.1.0.5").text, "10.1.0.5/32");
    assert.equal(canonicalPrefix("fd00:0::1").text, "fd00::1/128");
    assert.throws(() => canonicalPrefix("10.1.0.5/24"), /host bits are set/);
    const o = (a: string, b: string): boolean => prefixesOverlap(parseCidr(a), parseCidr(b));
    assert.equal(o("10.1.0.0/16", "10.1.2.0/24"), true);
    assert.equal(o("10.1.0.0/24", "10.1.1.0/24"), false);
    assert.equal(o("10.0.0.0/8", "fd00::/8"), false);
    assert.equal(o("fd00::/64", "fd00::1/128"), true);
    assert.equal(o("0.0.0.0/0", "192.168.0.0/16"), true);
  });
});
