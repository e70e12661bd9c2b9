import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "vitest";
import { parseEtcdConfig } from "./config.ts";
import { KvstoreError, openKvstore } from "./kvstore.ts";
import { openNodeRegistry } from "./nodes.ts";
import { startEtcd } from "./testing/etcd.ts";

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makePki(
  dir: string,
): Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey" | "otherCa", string> {
  const ssl = (...args: string[]): void => void execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  for (const name of ["ca", "other-ca"]) {
    ssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
    );
  }
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const name of ["server", "client"]) {
    ssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    );
  }
  const p = (f: string): string => join(dir, f);
  return {
    ca: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("client.crt"),
    clientKey: p("client.key"),
    otherCa: p("other-ca.crt"),
  };
}

describe("TLS", () => {
  it("connects with the etcd-config's CA and client certificate, and fails with the wrong CA", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dp-kvtls-"));
    try {
      const pki = makePki(dir);
      await using etcd = await startEtcd({
        tls: { certFile: pki.serverCert, keyFile: pki.serverKey, trustedCaFile: pki.ca },
      });
      assert.match(etcd.endpoints[0]!, /^https:\/\/localhost:/);
      const config = parseEtcdConfig(
        `endpoints:\n- ${etcd.endpoints[0]}\ntrusted-ca-file: ${pki.ca}\ncert-file: ${pki.clientCert}\nkey-file: ${pki.clientKey}\n`,
      );
      await using kv = await openKvstore(config, { nodeName: "a", requestTimeout: 2000 });
      assert.equal(kv.status.state, "connected");
      await using nodes = await openNodeRegistry(kv);
      await nodes.register({ name: "a", ipv4: "192.168.1.10" });
      assert.equal(nodes.get("a")?.ipv4, "192.168.1.10");

      await assert.rejects(
        openKvstore(
          { ...config, trustedCaFile: pki.otherCa },
          { nodeName: "b", connectTimeout: 1500, requestTimeout: 500 },
        ),
        (err) => err instanceof KvstoreError && err.op === "connect to etcd",
      );
      // Node refuses an IP address as the TLS server name: the error says so.
      const byIp = config.endpoints[0]!.replace("localhost", "127.0.0.1");
      await assert.rejects(
        openKvstore({ ...config, endpoints: [byIp] }, { nodeName: "d", connectTimeout: 1500, requestTimeout: 500 }),
        (err) => err instanceof KvstoreError && /IP address/.test(err.message),
      );
      // Without a client certificate the server refuses the handshake.
      await assert.rejects(
        openKvstore(
          { endpoints: config.endpoints, trustedCaFile: pki.ca },
          { nodeName: "c", connectTimeout: 1500, requestTimeout: 500 },
        ),
        KvstoreError,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
