import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";
import { EtcdConfigError, parseEtcdConfig, readEtcdConfigFile, validateEtcdConfig } from "./config.ts";
import { readTls } from "./_tls.ts";

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EtcdConfigError) return err.field;
    throw err;
  }
  assert.fail("expected an EtcdConfigError");
}

describe("parseEtcdConfig", () => {
  it("parses Cilium's etcd-config file", () => {
    const config = parseEtcdConfig(`---
# from the cilium-etcd-secrets
endpoints:
  - https://192.168.0.1:2379
  - "https://192.168.0.2:2379"
trusted-ca-file: '/var/lib/etcd-secrets/etcd-client-ca.crt'
key-file: /var/lib/etcd-secrets/etcd-client.key # the key
cert-file: /var/lib/etcd-secrets/etcd-client.crt
`);
    assert.deepEqual(config, {
      endpoints: ["https://192.168.0.1:2379", "https://192.168.0.2:2379"],
      trustedCaFile: "/var/lib/etcd-secrets/etcd-client-ca.crt",
      certFile: "/var/lib/etcd-secrets/etcd-client.crt",
      keyFile: "/var/lib/etcd-secrets/etcd-client.key",
    });
  });

  it("takes flow lists, ca-file and password auth", () => {
    const config = parseEtcdConfig(
      "endpoints: [http://127.0.0.1:2379, http://127.0.0.1:2380]\nusername: dp\npassword: 's3cr#t'\n",
    );
    assert.deepEqual(config, {
      endpoints: ["http://127.0.0.1:2379", "http://127.0.0.1:2380"],
      username: "dp",
      password: "s3cr#t",
    });
    assert.equal(parseEtcdConfig("endpoints: [https://e:2379]\nca-file: /ca.pem\n").trustedCaFile, "/ca.pem");
  });

  it("refuses credentials in endpoint URLs without repeating them", () => {
    for (const url of ["http://user:hunter2@127.0.0.1:2379", "https://user@e:2379"]) {
      assert.throws(
        () => validateEtcdConfig({ endpoints: [url] }),
        (err) =>
          err instanceof EtcdConfigError &&
          err.field === "endpoints[0]" &&
          !err.message.includes("hunter2") &&
          !err.message.includes("user@"),
      );
    }
  });

  it("does not repeat a bad quoted value in the error", () => {
    assert.throws(
      () => parseEtcdConfig('endpoints: [http://a:1]\npassword: "hunter2\\q"\n'),
      (err) => err instanceof SyntaxError && err.message.includes("line 2") && !err.message.includes("hunter2"),
    );
  });

  it("names the field of each mistake", () => {
    assert.equal(
      fieldOf(() => parseEtcdConfig("trusted-ca-file: /x\n")),
      "endpoints",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints: []\n")),
      "endpoints",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\n- 10.0.0.1:2379\n")),
      "endpoints[1]",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- ftp://a:1\n")),
      "endpoints[0]",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- https://a:1\ncert-file: /c\n")),
      "key-file",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- https://a:1\nkey-file: /k\n")),
      "cert-file",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\nusername: u\n")),
      "password",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\ntrusted-ca-file: /ca\n")),
      "trusted-ca-file",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- https://a:1\n- http://b:1\ntrusted-ca-file: /ca\n")),
      "endpoints[1]",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\nkey-pair: x\n")),
      "key-pair",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\nca-file: /a\ntrusted-ca-file: /b\n")),
      "trusted-ca-file",
    );
    assert.equal(
      fieldOf(() => parseEtcdConfig("endpoints:\n- http://a:1\nusername:\n- a\n")),
      "username",
    );
    const err = (() => {
      try {
        parseEtcdConfig("endpoints:\n- 10.0.0.1:2379\n");
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    assert.match(String(err?.message), /^Invalid etcd config field "endpoints\[0\]": "10\.0\.0\.1:2379"/);
  });

  it("reports YAML it cannot read as a SyntaxError with the line", () => {
    assert.throws(() => parseEtcdConfig("endpoints:\n  nested: 1\n"), /line 2: unexpected indentation/);
    assert.throws(() => parseEtcdConfig("- a\n"), /line 1: a list item outside a list/);
    assert.throws(() => parseEtcdConfig("endpoints: [a\n"), /line 1: unterminated list/);
    assert.throws(() => parseEtcdConfig("endpoints: x\nendpoints: y\n"), /line 2: duplicate key "endpoints"/);
    assert.throws(() => parseEtcdConfig("what is this\n"), SyntaxError);
  });
});

describe("validateEtcdConfig", () => {
  it("refuses non-objects and unknown fields", () => {
    assert.equal(
      fieldOf(() => validateEtcdConfig(null)),
      "(root)",
    );
    assert.equal(
      fieldOf(() => validateEtcdConfig({ endpoints: ["http://a:1"], dialTimeout: 1 })),
      "dialTimeout",
    );
    assert.equal(
      fieldOf(() => validateEtcdConfig({ endpoints: "http://a:1" })),
      "endpoints",
    );
    assert.equal(
      fieldOf(() => validateEtcdConfig({ endpoints: ["http://a:1"], username: "", password: "p" })),
      "username",
    );
  });
});

describe("readEtcdConfigFile and TLS files", () => {
  it("reads the config and names the TLS file that is missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "dp-kvcfg-"));
    try {
      const ca = join(dir, "ca.pem");
      writeFileSync(ca, "-----BEGIN CERTIFICATE-----\n");
      const path = join(dir, "etcd-config.yaml");
      writeFileSync(
        path,
        `endpoints:\n- https://127.0.0.1:2379\ntrusted-ca-file: ${ca}\ncert-file: ${dir}/nope.crt\nkey-file: ${dir}/nope.key\n`,
      );
      const config = readEtcdConfigFile(path);
      assert.equal(config.trustedCaFile, ca);
      assert.equal(
        fieldOf(() => readTls(config)),
        "cert-file",
      );
      const tls = readTls({ endpoints: ["https://127.0.0.1:2379"], trustedCaFile: ca });
      assert.equal(tls?.rootCertificate.toString(), "-----BEGIN CERTIFICATE-----\n");
      assert.equal(readTls({ endpoints: ["http://127.0.0.1:2379"] }), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
