import { CNI_ERROR_CODES, CniError } from "./cni_error.ts";
import type { NetConf } from "./netconf.ts";
import { CNI_VERSIONS } from "./versions.ts";

const WHAT = "Cannot parse the network config";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function invalid(field: string, problem: string): CniError {
  return new CniError(CNI_ERROR_CODES.invalidNetworkConfig, `${WHAT}: ${JSON.stringify(field)} ${problem}`, {
    field,
  });
}

function checkString(conf: Record<string, unknown>, key: string, required: boolean, prefix = ""): void {
  const v = conf[key];
  if (v === undefined && !required) return;
  if (typeof v !== "string" || v === "")
    throw invalid(
      `${prefix}${key}`,
      `must be a non-empty string, got ${v === undefined ? "nothing" : JSON.stringify(v)}`,
    );
}

function checkLabels(v: unknown, field: string): void {
  if (v === undefined) return;
  if (Array.isArray(v)) {
    const i = v.findIndex((l) => typeof l !== "string" || l === "");
    if (i >= 0) throw invalid(`${field}[${i}]`, `must be a label such as "k8s:app=web", got ${JSON.stringify(v[i])}`);
    return;
  }
  if (isObject(v)) {
    for (const [k, value] of Object.entries(v))
      if (typeof value !== "string") throw invalid(`${field}.${k}`, `must be a string, got ${JSON.stringify(value)}`);
    return;
  }
  throw invalid(
    field,
    `must be a list of labels ("k8s:app=web") or an object of key to value, got ${JSON.stringify(v)}`,
  );
}

function checkObject(conf: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const v = conf[field];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalid(field, `must be an object, got ${JSON.stringify(v)}`);
  return v;
}

function checkPrevResult(v: unknown): void {
  if (v === undefined) return;
  if (!isObject(v)) throw invalid("prevResult", `must be an object, got ${JSON.stringify(v)}`);
  for (const key of ["interfaces", "ips", "routes"]) {
    const list = v[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((x) => !isObject(x)))
      throw invalid(`prevResult.${key}`, `must be a list of objects, got ${JSON.stringify(list)}`);
  }
  const ips = (v.ips ?? []) as Record<string, unknown>[];
  ips.forEach((ip, i) => {
    if (typeof ip.address !== "string" || !ip.address.includes("/"))
      throw invalid(
        `prevResult.ips[${i}].address`,
        `must be an address with a prefix length, got ${JSON.stringify(ip.address)}`,
      );
  });
  const interfaces = (v.interfaces ?? []) as Record<string, unknown>[];
  interfaces.forEach((itf, i) => {
    if (typeof itf.name !== "string" || itf.name === "")
      throw invalid(`prevResult.interfaces[${i}].name`, `must be a non-empty string, got ${JSON.stringify(itf.name)}`);
  });
}

function checkAttachments(v: unknown): void {
  const field = "cni.dev/valid-attachments";
  if (v === undefined) return;
  if (!Array.isArray(v)) throw invalid(field, `must be a list of { containerID, ifname }, got ${JSON.stringify(v)}`);
  v.forEach((a: unknown, i) => {
    if (!isObject(a) || typeof a.containerID !== "string" || typeof a.ifname !== "string")
      throw invalid(`${field}[${i}]`, `must be { containerID, ifname } strings, got ${JSON.stringify(a)}`);
  });
}

/**
 * Parses and checks the network config a runtime gives on stdin. Only the
 * keys dp-cni reads are checked; the object is returned as it came, every
 * other key kept, so it can be handed on unchanged to a delegated IPAM
 * plugin.
 *
 * @param text The config as JSON.
 * @returns The config.
 * @throws {CniError} Code 6 when the text is not a JSON object; code 1 when
 *   `cniVersion` is not one of {@link CNI_VERSIONS}; code 7 naming the
 *   field (`labels[1]`, `ipam.type`, `socketPath`) when a key has the wrong type.
 * @example A config with labels
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseNetConf } from "@dp/cni";
 * const conf = parseNetConf('{"cniVersion":"1.1.0","name":"dp","type":"dp-cni","labels":["k8s:app=web"]}');
 * assert.deepEqual(conf.labels, ["k8s:app=web"]);
 * assert.throws(() => parseNetConf('{"cniVersion":"1.1.0","name":"dp","type":"dp-cni","labels":7}'), /"labels" must be/);
 * ```
 */
export function parseNetConf(text: string): NetConf {
  let conf: unknown;
  try {
    conf = JSON.parse(text);
  } catch (err) {
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${WHAT}: it is not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isObject(conf))
    throw new CniError(CNI_ERROR_CODES.decodeFailure, `${WHAT}: it must be a JSON object, got ${JSON.stringify(conf)}`);
  checkString(conf, "cniVersion", true);
  const version = conf.cniVersion as string;
  if (!(CNI_VERSIONS as readonly string[]).includes(version))
    throw new CniError(
      CNI_ERROR_CODES.incompatibleVersion,
      `${WHAT}: "cniVersion" ${JSON.stringify(version)} is not supported (supported: ${CNI_VERSIONS.join(", ")})`,
      { field: "cniVersion" },
    );
  checkString(conf, "name", true);
  checkString(conf, "type", true);
  checkString(conf, "socketPath", false);
  checkLabels(conf.labels, "labels");
  const ipam = checkObject(conf, "ipam");
  if (ipam !== undefined && Object.keys(ipam).length > 0) checkString(ipam, "type", true, "ipam.");
  checkObject(conf, "dns");
  const args = checkObject(conf, "args");
  if (args !== undefined) {
    const cni = checkObject(args, "cni");
    if (cni !== undefined) checkLabels(cni.labels, "args.cni.labels");
  }
  const runtimeConfig = checkObject(conf, "runtimeConfig");
  if (runtimeConfig !== undefined) checkLabels(runtimeConfig.labels, "runtimeConfig.labels");
  checkPrevResult(conf.prevResult);
  checkAttachments(conf["cni.dev/valid-attachments"]);
  return conf as NetConf;
}
