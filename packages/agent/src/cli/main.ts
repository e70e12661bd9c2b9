// The `dp` executable: bin/dp.mjs runs this file (built as dist/cli.js, or
// from the sources through tsx). SIGINT ends long-running commands with
// exit code 130 (SIGTERM stops `dp agent` with 0); a second signal exits
// at once.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runCli } from "./run_cli.ts";

/**
 * Runs `dp` with the process's arguments and exits with its code.
 *
 * @returns Resolves when the exit code is set.
 */
export async function main(): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    controller.abort(signal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // `dp bpf ct list | head`: the reader went away; stop quietly, as other tools do.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
    process.exit(process.exitCode ?? 0);
  });
  const code = await runCli(process.argv.slice(2), { signal: controller.signal });
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  process.exitCode = code;
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) await main();
