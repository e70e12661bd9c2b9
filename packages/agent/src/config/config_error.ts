/**
 * One thing wrong with a config: the key, the value as given, the form the
 * key expects, and a sentence saying all three.
 *
 * @example A limit out of range
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError, loadConfig, type ConfigProblem } from "@dp/agent";
 * const error = (() => { try { loadConfig({ text: "cluster-id: 300" }); } catch (e) { return e; } })();
 * assert.ok(error instanceof ConfigError);
 * const problem: ConfigProblem | undefined = error.problems[0];
 * assert.equal(problem?.key, "cluster-id");
 * assert.equal(problem?.value, 300);
 * assert.equal(problem?.expected, "an integer from 0 to 255");
 * ```
 */
export interface ConfigProblem {
  /** The config key at fault (kebab-case, as in the file), or `""` for the document itself. */
  readonly key: string;
  /** The value as given (as parsed from the file or the flag). */
  readonly value: unknown;
  /** The form the key expects, such as `"an integer from 0 to 255"`. */
  readonly expected: string;
  /** The whole problem as a sentence fragment: `cluster-id: 300 is out of range (expected an integer from 0 to 255)`. */
  readonly message: string;
}

/**
 * A config key dp does not know. Not an error: Cilium's configs carry keys
 * dp has no use for; they are reported and ignored.
 *
 * @example An unknown key
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type ConfigWarning } from "@dp/agent";
 * const warnings: ConfigWarning[] = loadConfig({ text: "cgroup-root: /run/cilium/cgroupv2" }).warnings;
 * assert.deepEqual(warnings, [{ key: "cgroup-root", message: 'unknown key "cgroup-root"' }]);
 * ```
 */
export interface ConfigWarning {
  /** The key. */
  readonly key: string;
  /** What is wrong with it, such as `unknown key "foo"`. */
  readonly message: string;
}

/**
 * Thrown for a config that cannot be used: wrong types, values out of
 * range, contradictory keys, a missing device. Lists every problem at
 * once; the message reads `Invalid config: <problem>; <problem>`.
 *
 * @example Building one for a device that does not exist
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConfigError } from "@dp/agent";
 * const error = new ConfigError([
 *   { key: "devices", value: "eth9", expected: "a network device of the node", message: 'devices: "eth9" does not exist (expected a network device of the node)' },
 * ]);
 * assert.ok(error instanceof TypeError);
 * assert.equal(error.message, 'Invalid config: devices: "eth9" does not exist (expected a network device of the node)');
 * ```
 */
export class ConfigError extends TypeError {
  /** Every problem found, in key order. */
  readonly problems: readonly ConfigProblem[];
  /** The config file, when the config came from one. */
  readonly file: string | undefined;

  /**
   * Makes the error from its problems.
   *
   * @param problems What is wrong (at least one).
   * @param options `file`: the config file the problems are in; `cause`: the underlying error.
   */
  constructor(problems: readonly ConfigProblem[], options: { readonly file?: string; readonly cause?: unknown } = {}) {
    const where = options.file === undefined ? "" : ` in ${JSON.stringify(options.file)}`;
    super(
      `Invalid config${where}: ${problems.map((p) => p.message).join("; ")}`,
      "cause" in options ? { cause: options.cause } : undefined,
    );
    this.name = "ConfigError";
    this.problems = problems;
    this.file = options.file;
  }
}
