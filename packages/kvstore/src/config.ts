import { readFileText } from "@dp/core/internal";
import { parseYamlMapping, type YamlValue } from "./_yaml.ts";

/**
 * How to reach etcd: the fields of Cilium's `etcd-config` file, in
 * camelCase. Plain `http://` endpoints need no other field; TLS takes the
 * CA bundle and, for client certificates, both `certFile` and `keyFile`;
 * etcd's password auth takes `username` and `password`.
 *
 * @example A TLS configuration
 * ```ts
 * import assert from "node:assert/strict";
 * import { type EtcdConfig, validateEtcdConfig } from "@dp/kvstore";
 *
 * const config: EtcdConfig = {
 *   endpoints: ["https://10.0.0.1:2379"],
 *   trustedCaFile: "/var/lib/etcd-secrets/etcd-client-ca.crt",
 *   certFile: "/var/lib/etcd-secrets/etcd-client.crt",
 *   keyFile: "/var/lib/etcd-secrets/etcd-client.key",
 * };
 * assert.deepEqual(validateEtcdConfig(config), config);
 * ```
 */
export interface EtcdConfig {
  /** The client URLs (`http://host:port` or `https://host:port`); at least one. */
  readonly endpoints: readonly string[];
  /** A PEM bundle of the CAs that sign the etcd server certificates (`trusted-ca-file`, alias `ca-file`). */
  readonly trustedCaFile?: string;
  /** The client certificate, PEM (`cert-file`); needs `keyFile`. */
  readonly certFile?: string;
  /** The client certificate's private key, PEM (`key-file`); needs `certFile`. */
  readonly keyFile?: string;
  /** The etcd user (`username`); needs `password`. */
  readonly username?: string;
  /** The etcd user's password (`password`); needs `username`. */
  readonly password?: string;
}

/**
 * An `etcd-config` that is well formed but wrong: a missing or malformed
 * field, a field without its partner, or a TLS file that cannot be read.
 * `field` names the field as the YAML file spells it (`endpoints[1]`,
 * `cert-file`).
 *
 * @example Catching a bad endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { EtcdConfigError, parseEtcdConfig } from "@dp/kvstore";
 *
 * try {
 *   parseEtcdConfig("endpoints:\n- 10.0.0.1:2379\n");
 *   assert.fail("expected an error");
 * } catch (err) {
 *   assert.ok(err instanceof EtcdConfigError);
 *   assert.equal(err.field, "endpoints[0]");
 * }
 * ```
 */
export class EtcdConfigError extends TypeError {
  /** The field, as spelled in the YAML file. */
  readonly field: string;
  /** What is wrong with it. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param field The field.
   * @param reason What is wrong.
   * @param options The cause.
   */
  constructor(field: string, reason: string, options?: ErrorOptions) {
    super(`Invalid etcd config field "${field}": ${reason}`, options);
    this.name = "EtcdConfigError";
    this.field = field;
    this.reason = reason;
  }
}

const YAML_FIELDS: Readonly<Record<string, keyof EtcdConfig>> = {
  endpoints: "endpoints",
  "trusted-ca-file": "trustedCaFile",
  "ca-file": "trustedCaFile",
  "cert-file": "certFile",
  "key-file": "keyFile",
  username: "username",
  password: "password",
};

const YAML_NAMES: Readonly<Record<keyof EtcdConfig, string>> = {
  endpoints: "endpoints",
  trustedCaFile: "trusted-ca-file",
  certFile: "cert-file",
  keyFile: "key-file",
  username: "username",
  password: "password",
};

function checkEndpoint(value: unknown, field: string): string {
  if (typeof value !== "string") throw new EtcdConfigError(field, `expected a URL string, got ${typeof value}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new EtcdConfigError(
      field,
      `${JSON.stringify(value)} is not a URL (expected http://host:port or https://host:port)`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    // The URL is not repeated: it holds credentials.
    throw new EtcdConfigError(field, "credentials in the URL are not allowed (use username and password)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new EtcdConfigError(field, `${JSON.stringify(value)}: the scheme must be http or https`);
  }
  if (url.hostname === "") throw new EtcdConfigError(field, `${JSON.stringify(value)} has no host`);
  if (url.pathname !== "/" && url.pathname !== "") {
    throw new EtcdConfigError(field, `${JSON.stringify(value)}: a path is not allowed`);
  }
  return value;
}

function checkString(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new EtcdConfigError(field, `expected a string, got ${typeof value}`);
  if (value === "") throw new EtcdConfigError(field, "must not be empty");
  return value;
}

/**
 * Checks an {@link EtcdConfig} object (from JSON, or built in code)
 * without touching the file system or the network.
 *
 * @param input The candidate configuration.
 * @returns The configuration, with only the known fields.
 * @throws {EtcdConfigError} When a field is missing, malformed or unknown, or `certFile`/`keyFile` or `username`/`password` come without their partner, or TLS files are given for `http://` endpoints only.
 * @example A missing endpoint list
 * ```ts
 * import assert from "node:assert/strict";
 * import { EtcdConfigError, validateEtcdConfig } from "@dp/kvstore";
 *
 * assert.throws(() => validateEtcdConfig({ endpoints: [] }), EtcdConfigError);
 * ```
 */
export function validateEtcdConfig(input: unknown): EtcdConfig {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new EtcdConfigError("(root)", `expected an object, got ${Array.isArray(input) ? "an array" : typeof input}`);
  }
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(key in YAML_NAMES)) throw new EtcdConfigError(key, "unknown field");
  }
  const eps = obj.endpoints;
  if (eps === undefined) throw new EtcdConfigError("endpoints", "is required");
  if (!Array.isArray(eps)) throw new EtcdConfigError("endpoints", `expected a list of URLs, got ${typeof eps}`);
  if (eps.length === 0) throw new EtcdConfigError("endpoints", "needs at least one URL");
  const endpoints = eps.map((e, i) => checkEndpoint(e, `endpoints[${i}]`));
  const out: { -readonly [K in keyof EtcdConfig]: EtcdConfig[K] } = { endpoints };
  for (const key of ["trustedCaFile", "certFile", "keyFile", "username", "password"] as const) {
    const v = checkString(obj[key], YAML_NAMES[key]);
    if (v !== undefined) out[key] = v;
  }
  if ((out.certFile === undefined) !== (out.keyFile === undefined)) {
    const missing = out.certFile === undefined ? "cert-file" : "key-file";
    const given = out.certFile === undefined ? "key-file" : "cert-file";
    throw new EtcdConfigError(missing, `is required when "${given}" is set`);
  }
  if ((out.username === undefined) !== (out.password === undefined)) {
    const missing = out.username === undefined ? "username" : "password";
    throw new EtcdConfigError(missing, `is required when "${missing === "username" ? "password" : "username"}" is set`);
  }
  const tls = out.trustedCaFile ?? out.certFile;
  if (tls !== undefined && !endpoints.some((e) => e.startsWith("https:"))) {
    const field = out.trustedCaFile !== undefined ? "trusted-ca-file" : "cert-file";
    throw new EtcdConfigError(field, "TLS files are set but no endpoint uses https://");
  }
  if (tls !== undefined && endpoints.some((e) => e.startsWith("http:"))) {
    const i = endpoints.findIndex((e) => e.startsWith("http:"));
    throw new EtcdConfigError(`endpoints[${i}]`, "mixes http:// with https:// endpoints while TLS files are set");
  }
  return out;
}

/**
 * Parses the text of Cilium's `etcd-config` YAML file (`endpoints`,
 * `trusted-ca-file` or `ca-file`, `cert-file`, `key-file`, `username`,
 * `password`) and validates it. Files are only named here; they are read
 * by {@link openKvstore}.
 *
 * @param text The YAML text.
 * @returns The configuration.
 * @throws {SyntaxError} When the text is not the YAML subset of an etcd-config (a top-level mapping of strings and lists), naming the line.
 * @throws {EtcdConfigError} When a field is unknown, missing or malformed (see {@link validateEtcdConfig}).
 * @example Cilium's file
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseEtcdConfig } from "@dp/kvstore";
 *
 * const config = parseEtcdConfig(`---
 * endpoints:
 * - https://192.168.0.1:2379
 * trusted-ca-file: /var/lib/etcd-secrets/etcd-client-ca.crt
 * key-file: /var/lib/etcd-secrets/etcd-client.key
 * cert-file: /var/lib/etcd-secrets/etcd-client.crt
 * `);
 * assert.deepEqual(config.endpoints, ["https://192.168.0.1:2379"]);
 * assert.equal(config.keyFile, "/var/lib/etcd-secrets/etcd-client.key");
 * ```
 */
export function parseEtcdConfig(text: string): EtcdConfig {
  if (typeof text !== "string") throw new TypeError(`Invalid etcd config: expected a string, got ${typeof text}`);
  const raw = parseYamlMapping(text);
  const obj: Record<string, YamlValue> = {};
  for (const [key, value] of raw) {
    const field = YAML_FIELDS[key];
    if (field === undefined) throw new EtcdConfigError(key, "unknown field");
    if (field in obj) throw new EtcdConfigError(key, `duplicates "${YAML_NAMES[field]}"`);
    if (field === "endpoints") {
      obj[field] = typeof value === "string" ? [value] : value;
    } else {
      if (typeof value !== "string") throw new EtcdConfigError(key, "expected a string, got a list");
      obj[field] = value;
    }
  }
  return validateEtcdConfig(obj);
}

/**
 * Reads and parses an `etcd-config` file, as the agent's `etcd-config`
 * option names it.
 *
 * @param path The file.
 * @returns The configuration.
 * @throws {SyscallError} When the file cannot be read.
 * @throws {SyntaxError} When it is not an etcd-config YAML file.
 * @throws {EtcdConfigError} When a field is wrong.
 * @example Reading a missing file
 * ```ts
 * import assert from "node:assert/strict";
 * import { SyscallError } from "@dp/core";
 * import { readEtcdConfigFile } from "@dp/kvstore";
 *
 * assert.throws(() => readEtcdConfigFile("/nonexistent/etcd-config.yaml"), SyscallError);
 * ```
 */
export function readEtcdConfigFile(path: string): EtcdConfig {
  return parseEtcdConfig(readFileText(path, { what: `Cannot read etcd config "${path}"`, maxBytes: 1 << 20 }));
}
