// The `dp-cni` process: the environment and stdin in, the answer on stdout
// and the exit status out (bin/dp-cni.cjs runs its build, bin/dp-cni.mjs the source).
import { runCni } from "./run_cni.ts";

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY === true) return "";
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * Runs the `dp-cni` plugin in this process: reads the network config from
 * stdin, runs the operation `CNI_COMMAND` names, writes the answer on
 * stdout and sets the exit status (1 on error).
 *
 * @returns Resolves when the answer is written.
 * @example What bin/dp-cni.mjs does with the sources (not a package export)
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main();
 * ```
 */
export async function main(): Promise<void> {
  const out = await runCni({ env: process.env, stdin: await readStdin() });
  process.exitCode = out.exitCode;
  await new Promise<void>((resolve) => process.stdout.write(out.stdout, () => resolve()));
}
