import type { AgentConfig } from "./agent_config.ts";
import type { ConfigWarning } from "./config_error.ts";
import { parseConfigInput } from "./_parse.ts";

/**
 * Options of {@link loadConfig}.
 *
 * @example A file with overrides
 * ```ts no-run
 * import type { LoadConfigOptions } from "@dp/agent";
 * const options: LoadConfigOptions = { file: "/etc/dp/config.yaml", flags: { debug: true, devices: "eth0" } };
 * ```
 */
export interface LoadConfigOptions {
  /**
   * A YAML or JSON config file (JSON when the name ends in `.json`), or a
   * Kubernetes ConfigMap manifest whose `data` holds the keys.
   *
   * @default none
   */
  readonly file?: string;
  /**
   * The config as text, instead of a file (give one or the other).
   *
   * @default none
   */
  readonly text?: string;
  /**
   * How to parse `file` or `text`.
   *
   * @default "json" for a file ending in `.json`, else "yaml" (which also reads JSON)
   */
  readonly format?: "yaml" | "json";
  /**
   * Overrides from the command line, by key name (a leading `--` is
   * dropped): strings as typed, `true` for a bare boolean flag.
   *
   * @default none
   */
  readonly flags?: Readonly<Record<string, string | boolean>>;
}

/**
 * What {@link loadConfig} returns: the config and the warnings (unknown keys).
 *
 * @example Defaults
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type LoadedConfig } from "@dp/agent";
 * const loaded: LoadedConfig = loadConfig({});
 * assert.equal(loaded.config["ipv4-range"], "10.200.0.0/16");
 * assert.deepEqual(loaded.warnings, []);
 * ```
 */
export interface LoadedConfig {
  /** The validated config, every key defaulted. */
  readonly config: AgentConfig;
  /** Keys that were ignored and why. */
  readonly warnings: ConfigWarning[];
}

/**
 * Loads the agent's config: reads a YAML or JSON file (or text), applies
 * `--flag` overrides (same key names), coerces Cilium's string forms
 * (`"True"`/`"false"`, `"524288"`, `"eth0,eth1"`, `"5m"`), validates every
 * key and checks keys that contradict each other. Unknown keys are
 * warnings. Touches nothing but the file.
 *
 * @param options The file or text, its format, and the flags; none gives the defaults.
 * @returns The config and the warnings.
 * @throws {ConfigError} When the file cannot be read or parsed, a value has the wrong type or is out of range, or keys contradict each other; every problem is listed.
 * @throws {TypeError} When both `file` and `text` are given, or `format` is neither "yaml" nor "json".
 * @example Cilium's string booleans and a flag overriding the file
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "@dp/agent";
 * const { config } = loadConfig({
 *   text: 'debug: "True"\nbpf-ct-global-tcp-max: "524288"\ndevices: eth0,eth1',
 *   flags: { "--debug": "false" },
 * });
 * assert.equal(config.debug, false);
 * assert.equal(config["bpf-ct-global-tcp-max"], 524288);
 * assert.deepEqual(config.devices, ["eth0", "eth1"]);
 * ```
 * @example Every problem at once
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig } from "@dp/agent";
 * assert.throws(() => loadConfig({ text: "cluster-id: 300\nenable-ipv4: maybe" }), {
 *   name: "ConfigError",
 *   message:
 *     'Invalid config: cluster-id: 300 is out of range (expected an integer from 0 to 255); ' +
 *     'enable-ipv4: "maybe" is not a boolean (expected true or false, also "True", "false", "1", "0")',
 * });
 * ```
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  return parseConfigInput(options);
}
