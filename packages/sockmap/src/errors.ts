/**
 * What went wrong, for {@link SockmapError}:
 *
 * - `"notCgroup2"`: the cgroup path is missing or not a cgroup v2 directory;
 * - `"unsupported"`: the kernel has no socket maps (`CONFIG_BPF_STREAM_PARSER`);
 * - `"closed"`: the acceleration was closed or released.
 *
 * @useDeclaredType
 */
export type SockmapErrorCode = "notCgroup2" | "unsupported" | "closed";

/**
 * A typed failure of `@dp/sockmap` (kernel refusals stay `SyscallError`s).
 *
 * @example Telling the cases apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { SockmapError } from "@dp/sockmap";
 *
 * const err = new SockmapError("Cannot accelerate cgroup \"/tmp\": not a cgroup v2 directory", "notCgroup2");
 * assert.equal(err.code, "notCgroup2");
 * assert.equal(err.name, "SockmapError");
 * ```
 */
export class SockmapError extends Error {
  /** Which failure. */
  readonly code: SockmapErrorCode;

  /**
   * Makes the error.
   *
   * @param message What failed.
   * @param code Which failure.
   * @param options The underlying error, if any.
   */
  constructor(message: string, code: SockmapErrorCode, options?: ErrorOptions) {
    super(message, options);
    this.name = "SockmapError";
    this.code = code;
  }
}
