import { compareKernelVersions, kernelVersion, parseKernelVersion } from "../features/features.ts";
import { NotSupportedError } from "../errors.ts";
import { readKernelConfig } from "../loader/kconfig.ts";

/** The part of a test framework's context the skip helpers use (vitest's `TestContext` fits). */
export interface SkipContext {
  /** Skips the current test with a note. */
  skip(note?: string): void;
}

function strict(): boolean {
  return process.env["DP_REQUIRE_KERNEL"] === "1";
}

function skipOrFail(t: SkipContext, reason: string): void {
  if (strict()) throw new Error(`Required by DP_REQUIRE_KERNEL=1: ${reason}`);
  t.skip(reason);
}

/**
 * The `CONFIG_` options declared absent on the machine kind the tests run
 * on (`DP_KNOWN_ABSENT`, separated by spaces or commas; CI sets it): a test
 * that needs only such options still skips under `DP_REQUIRE_KERNEL=1`, and
 * is counted as skipped.
 */
function knownAbsent(): ReadonlySet<string> {
  return new Set((process.env["DP_KNOWN_ABSENT"] ?? "").split(/[\s,]+/).filter(Boolean));
}

/**
 * Skips the test unless it runs as root (effective uid 0).
 *
 * @param t The test context.
 * @throws {Error} Instead of skipping when `DP_REQUIRE_KERNEL=1`.
 */
export function requireRoot(t: SkipContext): void {
  if (process.geteuid?.() !== 0) skipOrFail(t, "needs root (run the kernel tests as root)");
}

/**
 * Skips the test when the kernel is older than `min`.
 *
 * @param t The test context.
 * @param min The minimum version, such as `"6.6"`.
 * @param why What needs it.
 * @throws {Error} Instead of skipping when `DP_REQUIRE_KERNEL=1`.
 */
export function requireKernel(t: SkipContext, min: string, why: string): void {
  if (compareKernelVersions(kernelVersion(), parseKernelVersion(min)) < 0) {
    skipOrFail(t, `needs Linux ${min} for ${why}`);
  }
}

/**
 * Reads the running kernel's build configuration from `/proc/config.gz`,
 * else `/boot/config-<release>` (cached).
 *
 * @returns `CONFIG_*` names mapped to their values (`"y"`, `"m"`, numbers, strings).
 * @throws {NotSupportedError} When neither file exists (`CONFIG_IKCONFIG_PROC` is off and there is no config in /boot).
 * @throws {Error} When a file exists but cannot be read or parsed.
 */
export function kernelConfig(): ReadonlyMap<string, string> {
  return readKernelConfig();
}

/**
 * Skips the test unless every named `CONFIG_` option is built in or a
 * module; the skip names the missing ones. Options listed in
 * `DP_KNOWN_ABSENT` (space or comma separated: what the machine kind is
 * declared to lack, such as `CONFIG_INET_ESP`) stay skips even under
 * `DP_REQUIRE_KERNEL=1`, so the summary counts what was not exercised.
 *
 * @param t The test context.
 * @param names Options such as `"CONFIG_NET_CLS_BPF"`.
 * @throws {Error} Instead of skipping when `DP_REQUIRE_KERNEL=1` and a missing option is not declared absent.
 */
export function requireConfig(t: SkipContext, ...names: string[]): void {
  let cfg: ReadonlyMap<string, string>;
  try {
    cfg = readKernelConfig();
  } catch (err) {
    if (!(err instanceof NotSupportedError)) throw err;
    skipOrFail(t, `cannot check ${names.join(", ")}: ${err.message}`);
    return;
  }
  const missing = names.filter((n) => {
    const v = cfg.get(n);
    return v !== "y" && v !== "m";
  });
  if (missing.length === 0) return;
  const reason = `kernel lacks ${missing.join(", ")}`;
  const absent = knownAbsent();
  if (missing.every((n) => absent.has(n))) t.skip(`${reason} (declared absent on this machine kind)`);
  else skipOrFail(t, reason);
}

/**
 * Skips the test when `err` is a {@link NotSupportedError}, unless the
 * kernel is at or above the feature's `minKernel` (then the feature should
 * be there and `err` is rethrown). Any other error is rethrown.
 *
 * @param t The test context.
 * @param err What the code under test threw.
 * @throws {unknown} `err` when it is not a skip reason.
 */
export function skipIfNotSupported(t: SkipContext, err: unknown): void {
  if (!(err instanceof NotSupportedError)) throw err;
  if (err.minKernel !== undefined && compareKernelVersions(kernelVersion(), parseKernelVersion(err.minKernel)) >= 0) {
    throw err;
  }
  skipOrFail(t, err.message);
}
