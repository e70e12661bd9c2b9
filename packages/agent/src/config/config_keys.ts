import type { AgentConfig } from "./agent_config.ts";
import { FIELD_KEYS, FIELDS } from "./_fields.ts";

/**
 * A config key's name: Cilium's kebab-case name where the concept is the
 * same.
 *
 * @example Typing a key
 * ```ts no-run
 * import type { ConfigKey } from "@dp/agent";
 * const key: ConfigKey = "enable-host-legacy-routing";
 * ```
 */
export type ConfigKey = keyof AgentConfig;

/**
 * What dp knows about one config key: its value's shape, default,
 * meaning and whether dp does what it asks for. docs/config.md and
 * `dp agent --help` are made from these.
 *
 * @example The flag for a key
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONFIG_KEYS, type ConfigKeyInfo } from "@dp/agent";
 * const debug: ConfigKeyInfo | undefined = CONFIG_KEYS.find((k) => k.key === "debug");
 * assert.equal(debug?.kind, "boolean");
 * assert.equal(`--${debug?.key}`, "--debug");
 * ```
 */
export interface ConfigKeyInfo {
  /** The key. */
  readonly key: ConfigKey;
  /**
   * The value's shape: `boolean` (also Cilium's `"True"`/`"false"`),
   * `integer` and `number` (also as decimal strings), `string`, `list`
   * (a YAML list or a comma- or space-separated string), `duration` (Go's
   * form: `"5m"`, `"1m30s"`), `choice` (one of {@link ConfigKeyInfo.choices}).
   */
  readonly kind: "boolean" | "integer" | "number" | "string" | "list" | "duration" | "choice";
  /** The allowed values of a `choice`, else `undefined`. */
  readonly choices: readonly string[] | undefined;
  /** The form a value must have, as error messages say it: `an integer from 0 to 255`. */
  readonly expected: string;
  /** The default, as text (`true`, `10.200.0.0/16`, `<state-dir>/dp.sock`). */
  readonly default: string;
  /** What the key does. */
  readonly description: string;
  /** `supported`, or `not-supported-yet`: accepted, and reported in `dp status` when it asks for something. */
  readonly status: "supported" | "not-supported-yet";
}

/**
 * Every config key dp knows, in the order docs/config.md lists them:
 * first the supported ones, then those accepted but not supported yet.
 *
 * @example Listing the keys dp does not support yet
 * ```ts
 * import assert from "node:assert/strict";
 * import { CONFIG_KEYS } from "@dp/agent";
 * const later = CONFIG_KEYS.filter((k) => k.status === "not-supported-yet").map((k) => k.key);
 * assert.ok(later.includes("tunnel"));
 * assert.ok(!later.includes("enable-ipv4"));
 * ```
 */
export const CONFIG_KEYS: readonly ConfigKeyInfo[] = Object.freeze(
  FIELD_KEYS.map((key): ConfigKeyInfo => {
    const f = FIELDS[key];
    return Object.freeze({
      key,
      kind: f.kind,
      choices: f.choices,
      expected: f.expected,
      default: f.defaultText,
      description: f.description,
      status: f.status,
    });
  }),
);
