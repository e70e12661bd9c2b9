// Test-only: runs an agent in a child process so tests can SIGKILL and
// SIGTERM it. Argument: the config as JSON. Prints "ready" when the API
// answers; on SIGTERM closes with the config's `agent-teardown-on-stop`.
import { loadConfig } from "../config/load_config.ts";
import { startAgent } from "./agent.ts";
import { createLogger } from "./logger.ts";

const { config } = loadConfig({ text: process.argv[2] ?? "{}", format: "json" });
const agent = await startAgent(config, { logger: createLogger({ stream: process.stderr, debug: true }) });
process.once("SIGTERM", () => {
  agent.close({ teardown: config["agent-teardown-on-stop"] }).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
console.log("ready");
