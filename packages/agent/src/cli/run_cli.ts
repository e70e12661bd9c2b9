import { CommanderError } from "commander";
import { describeError, EXIT } from "./_errors.ts";
import { type CliIo, createProgram } from "./program.ts";

/**
 * Runs the `dp` command with the given arguments (without `node` and the
 * script): parses them, runs the command against the agent's API (or the
 * node's pins), writes to `io`, and returns the exit code instead of
 * exiting: 0 ok, 1 the operation failed, 2 bad usage or bad config, 3 the
 * agent is not reachable, 130 interrupted. Errors are written as
 * `dp: <message>` and a `hint:` line saying what to do.
 *
 * @param argv The arguments, such as `["bpf", "ct", "list", "--json"]`.
 * @param io Where to write, the environment, and a signal that interrupts long-running commands.
 * @returns The exit code.
 * @example Printing the usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCli } from "@dp/agent";
 *
 * let out = "";
 * const code = await runCli(["--help"], { stdout: { write: (t: string) => (out += t) } });
 * assert.equal(code, 0);
 * assert.match(out, /Usage: dp/);
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo = {}): Promise<number> {
  const err = io.stderr ?? process.stderr;
  const out = io.stdout ?? process.stdout;
  const { program, session } = createProgram(io);
  let command = "";
  program
    .exitOverride()
    .configureOutput({
      writeOut: (t) => out.write(t),
      writeErr: (t) => err.write(t),
      outputError: (t, write) => write(`dp: ${t.replace(/^error: /, "")}`),
    })
    .hook("preAction", (_root, action) => {
      const names: string[] = [];
      for (let c: typeof action | null = action; c !== null && c !== program; c = c.parent) names.unshift(c.name());
      command = names.join(" ");
    });
  for (const { command: c } of walk(program)) c.exitOverride().configureOutput(program.configureOutput());
  const signal = io.signal;
  try {
    const run = program.parseAsync([...argv], { from: "user" });
    if (signal === undefined) await run;
    else {
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<"aborted">((resolve) => {
        onAbort = () => resolve("aborted");
        if (signal.aborted) resolve("aborted");
        else signal.addEventListener("abort", onAbort, { once: true });
      });
      const first = await Promise.race([run.then(() => "done" as const), aborted]);
      if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      if (first === "aborted") {
        // Long-running commands end on the signal themselves (the agent
        // closes, the demo tears down): wait for them. A SIGTERM that
        // stopped the agent cleanly is a normal end.
        await run.catch(() => undefined);
        return signal.reason === "SIGTERM" ? session.exitCode : EXIT.interrupted;
      }
    }
    return session.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are not errors; everything else commander rejects is usage.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      return EXIT.usage;
    }
    if (signal?.aborted === true) return EXIT.interrupted;
    const d = describeError(e, command);
    err.write(`dp: ${d.message}\n`);
    if (d.hint !== undefined) err.write(`hint: ${d.hint}\n`);
    return d.exitCode;
  }
}

function* walk(cmd: import("commander").Command): Generator<{ command: import("commander").Command }> {
  for (const sub of cmd.commands) {
    yield { command: sub };
    yield* walk(sub);
  }
}
