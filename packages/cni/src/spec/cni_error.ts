/**
 * The error codes of the CNI specification (1.0/1.1), and dp-cni's own
 * codes from 100 up.
 *
 * @example The code of a malformed network config
 * ```ts
 * import assert from "node:assert/strict";
 * import { CNI_ERROR_CODES } from "@dp/cni";
 * assert.equal(CNI_ERROR_CODES.invalidNetworkConfig, 7);
 * ```
 */
export const CNI_ERROR_CODES = {
  /** 1: the config's `cniVersion` is not one this plugin speaks. */
  incompatibleVersion: 1,
  /** 2: a field of the config is not supported (or a feature is not available). */
  unsupportedField: 2,
  /** 3: the container is unknown or does not exist. */
  unknownContainer: 3,
  /** 4: an environment variable (`CNI_COMMAND`, `CNI_NETNS`, ...) is missing or invalid. */
  invalidEnvironment: 4,
  /** 5: an I/O failure (reading stdin, the network namespace). */
  ioFailure: 5,
  /** 6: the config on stdin is not JSON (or not an object). */
  decodeFailure: 6,
  /** 7: the network config is invalid: a field has the wrong type or value. */
  invalidNetworkConfig: 7,
  /** 11: try again later (a transient condition, such as a full pool being refilled). */
  tryAgainLater: 11,
  /** 50: STATUS: the plugin cannot serve ADD now (the agent is not healthy). */
  notAvailable: 50,
  /** 100: the dp agent does not answer on its socket. */
  agentUnreachable: 100,
  /** 101: the dp agent refused or failed the request. */
  agentError: 101,
  /** 102: CHECK found the agent's endpoint different from `prevResult`. */
  checkFailed: 102,
} as const;

/**
 * A CNI error code: one of {@link CNI_ERROR_CODES}, or any code a
 * delegated plugin answered with (so any number).
 *
 * @example A code
 * ```ts no-run
 * import type { CniErrorCode } from "@dp/cni";
 * const code: CniErrorCode = 7;
 * ```
 */
export type CniErrorCode = number;

/**
 * The error JSON a CNI plugin writes on stdout when it fails (and exits
 * with status 1).
 *
 * @example A malformed config
 * ```ts no-run
 * import type { CniErrorJson } from "@dp/cni";
 * const e: CniErrorJson = { cniVersion: "1.1.0", code: 7, msg: 'Cannot parse the network config: "labels" must be ...', details: "field: labels" };
 * ```
 */
export interface CniErrorJson {
  /** The version of the spec the answer follows. */
  readonly cniVersion: string;
  /** The error code. */
  readonly code: number;
  /** A short message. */
  readonly msg: string;
  /** More detail (the field at fault, the cause). */
  readonly details?: string;
}

/**
 * A failure of a CNI operation, with its CNI error code. `runCni` turns
 * it into the error JSON on stdout; the field at fault (for a malformed
 * network config) is named in `msg` and in `field`.
 *
 * @example Failing on a wrong field
 * ```ts
 * import assert from "node:assert/strict";
 * import { CNI_ERROR_CODES, CniError } from "@dp/cni";
 * const err = new CniError(CNI_ERROR_CODES.invalidNetworkConfig, 'Cannot parse the network config: "socketPath" must be a string', { field: "socketPath" });
 * assert.equal(err.toJson("1.1.0").code, 7);
 * assert.equal(err.field, "socketPath");
 * ```
 */
export class CniError extends Error {
  /** Always `"CniError"`. */
  override readonly name: string = "CniError";
  /** The CNI error code. */
  readonly code: CniErrorCode;
  /** More detail for the `details` of the error JSON, if any. */
  readonly details: string | undefined;
  /** The network config field (or environment variable) at fault, if any. */
  readonly field: string | undefined;

  /**
   * Creates the error.
   *
   * @param code The CNI error code.
   * @param message What failed and why.
   * @param options The details, the field at fault, the cause.
   */
  constructor(
    code: CniErrorCode,
    message: string,
    options: {
      readonly details?: string | undefined;
      readonly field?: string | undefined;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.field = options.field;
  }

  /**
   * The error as the CNI error JSON.
   *
   * @param cniVersion The version of the spec the answer follows (the config's).
   * @returns The error JSON object.
   */
  toJson(cniVersion: string): CniErrorJson {
    const details = [this.field === undefined ? undefined : `field: ${this.field}`, this.details]
      .filter((part) => part !== undefined && part !== "")
      .join("; ");
    return details === ""
      ? { cniVersion, code: this.code, msg: this.message }
      : { cniVersion, code: this.code, msg: this.message, details };
  }
}
