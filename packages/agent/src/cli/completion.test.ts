import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, test } from "vitest";
import { commandPaths } from "./completion.ts";
import { createProgram } from "./program.ts";
import { runCli } from "./run_cli.ts";

async function output(argv: string[]): Promise<string> {
  let out = "";
  expect(await runCli(argv, { stdout: { write: (t: string) => (out += t) } })).toBe(0);
  return out;
}

function hasShell(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** What bash completes after typing `words` (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const line = ["dp", ...words];
  const program = `${script}
COMP_WORDS=(${line.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${line.length - 1}; _dp; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync("bash", ["-c", program], { encoding: "utf8" })
    .split("\n")
    .filter((x) => x !== "");
}

describe("dp completion", () => {
  test("`dp completion bash` lists every subcommand and bash -n accepts it", async () => {
    const script = await output(["completion", "bash"]);
    const { program } = createProgram();
    for (const { path, command } of commandPaths(program)) {
      for (const sub of command.commands) {
        if (sub.name() === "help") continue;
        expect(script).toContain(sub.name());
        expect(complete(script, [...path, sub.name().slice(0, -1)])).toContain(sub.name());
      }
    }
    execFileSync("bash", ["-n"], { input: script });
  });

  test("`dp completion bash` completes options of the command typed so far", async () => {
    const script = await output(["completion", "bash"]);
    expect(complete(script, ["bpf", "ct", "list", "--pro"])).toEqual(["--protocol"]);
    expect(complete(script, ["--socket", "/x", "bpf", ""])).toEqual(["ct", "policy", "ipcache", "metrics"]);
  });

  test.skipIf(!hasShell("zsh"))("`dp completion zsh` passes zsh -n", async () => {
    const script = await output(["completion", "zsh"]);
    execFileSync("zsh", ["-n"], { input: script });
  });

  test("`dp completion zsh` names every subcommand with its description", async () => {
    const script = await output(["completion", "zsh"]);
    expect(script).toMatch(/^#compdef dp/);
    expect(script).toContain("'status:show the agent");
    expect(script).toContain("'ct:the conntrack maps'");
  });

  test("`dp completion fish` is a usage error", async () => {
    let err = "";
    expect(await runCli(["completion", "fish"], { stderr: { write: (t: string) => (err += t) } })).toBe(2);
    expect(err).toMatch(/^dp: Invalid shell "fish": expected bash or zsh/);
  });
});
