// docs/cli.md must document every command of the tree: a `## \`dp <path>`
// heading per command that runs something, and each of its options in that
// section (dp agent's config-key flags are documented in docs/config.md).
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { CONFIG_KEYS } from "../config/config_keys.ts";
import { commandPaths } from "./completion.ts";
import { createProgram } from "./program.ts";

const DOC = readFileSync(new URL("../../../../docs/cli.md", import.meta.url), "utf8");

/** The sections of the page by heading (`dp bpf ct list`). */
function sections(): Map<string, string> {
  const out = new Map<string, string>();
  const parts = DOC.split(/^## /m).slice(1);
  for (const part of parts) {
    const heading = /^`(dp(?: [a-z-]+)*)/.exec(part);
    if (heading?.[1] !== undefined) out.set(heading[1], part);
  }
  return out;
}

describe("docs/cli.md", () => {
  const { program } = createProgram();
  const docs = sections();
  const configFlags = new Set(CONFIG_KEYS.map((k) => `--${k.key}`));
  const runnable = commandPaths(program).filter(
    ({ path, command }) => path.length > 0 && command.commands.length === 0,
  );

  test("docs/cli.md has a section for every command of the tree", () => {
    const missing = runnable.map(({ path }) => `dp ${path.join(" ")}`).filter((name) => !docs.has(name));
    expect(missing).toEqual([]);
  });

  test("docs/cli.md names every option of each command in its section", () => {
    const missing: string[] = [];
    for (const { path, command } of runnable) {
      const name = `dp ${path.join(" ")}`;
      const text = docs.get(name) ?? "";
      for (const o of command.options) {
        const flag = o.long ?? "";
        if (flag === "" || (path[0] === "agent" && configFlags.has(flag))) continue;
        if (!text.includes(`\`${flag}`)) missing.push(`${name} ${flag}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("docs/cli.md documents the global options and every exit code", () => {
    for (const o of program.options) expect(DOC).toContain(`\`${o.long ?? ""} `);
    for (const code of [0, 1, 2, 3, 130]) expect(DOC).toMatch(new RegExp(`^\\| ${code} +\\|`, "m"));
  });

  test("docs/cli.md documents no command the tree lacks", () => {
    const known = new Set(runnable.map(({ path }) => `dp ${path.join(" ")}`));
    expect([...docs.keys()].filter((name) => !known.has(name))).toEqual([]);
  });
});
