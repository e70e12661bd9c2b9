// Reading the TLS files an etcd-config names, when the store is opened.
import { readFileText } from "@dp/core/internal";
import { type EtcdConfig, EtcdConfigError } from "./config.ts";

/** The credentials shape of the etcd3 client. */
export interface TlsCredentials {
  rootCertificate: Buffer;
  privateKey?: Buffer;
  certChain?: Buffer;
}

function read(path: string | undefined, field: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return Buffer.from(readFileText(path, { what: `Cannot read "${path}"`, maxBytes: 1 << 20 }));
  } catch (err) {
    throw new EtcdConfigError(field, `cannot read "${path}": ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}

/** Reads the TLS files of `config`; undefined when it names none. */
export function readTls(config: EtcdConfig): TlsCredentials | undefined {
  if (config.trustedCaFile === undefined && config.certFile === undefined) return undefined;
  const ca = read(config.trustedCaFile, "trusted-ca-file");
  const cert = read(config.certFile, "cert-file");
  const key = read(config.keyFile, "key-file");
  return {
    // grpc takes null for "the system roots".
    rootCertificate: ca ?? (null as unknown as Buffer),
    ...(cert !== undefined ? { certChain: cert } : {}),
    ...(key !== undefined ? { privateKey: key } : {}),
  };
}
