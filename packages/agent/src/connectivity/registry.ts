// The registry of connectivity-test scenarios: the built-in ones first,
// then those later features append with registerScenario().
import { BUILTIN_SCENARIOS } from "./builtin_scenarios.ts";
import type { ConnectivityScenario } from "./scenario.ts";

const registry = new Map<string, ConnectivityScenario>(BUILTIN_SCENARIOS.map((s) => [s.name, s]));

/**
 * Adds a scenario to the connectivity test (after the ones registered
 * before it).
 *
 * @param scenario The scenario.
 * @throws {TypeError} When a scenario of that name exists, or the name is not `[a-z0-9-]+`.
 * @example Registering a scenario
 * ```ts no-run
 * import { registerScenario } from "@dp/agent";
 * registerScenario({ name: "my-scenario", description: "nothing enforced", rules: () => [], actions: [] });
 * ```
 */
export function registerScenario(scenario: ConnectivityScenario): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(scenario.name))
    throw new TypeError(`Cannot register scenario ${JSON.stringify(scenario.name)}: the name must match [a-z0-9-]+`);
  if (registry.has(scenario.name))
    throw new TypeError(`Cannot register scenario "${scenario.name}": a scenario of that name exists`);
  registry.set(scenario.name, scenario);
}

/**
 * The registered scenarios, in order, optionally filtered by name.
 *
 * @param filter Keep only the scenarios whose name matches.
 * @returns The scenarios.
 * @example The names
 * ```ts no-run
 * import { connectivityScenarios } from "@dp/agent";
 * console.log(connectivityScenarios(/deny/).map((s) => s.name));
 * ```
 */
export function connectivityScenarios(filter?: RegExp): ConnectivityScenario[] {
  return [...registry.values()].filter((s) => filter === undefined || filter.test(s.name));
}
