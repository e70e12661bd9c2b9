import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "vitest";

const SCRIPT = fileURLToPath(new URL("./check_cycles.mjs", import.meta.url));
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A tree with `packages/<name>/package.json` and source files, from a map of paths to contents. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "dp-cycles-"));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function pkg(name: string, deps: string[] = []): string {
  return JSON.stringify({ name, dependencies: Object.fromEntries(deps.map((d) => [d, "0.1.0"])) });
}

function check(root: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, root], { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("scripts/check_cycles.mjs", () => {
  test("passes a tree whose files and packages import downwards only", () => {
    const root = tree({
      "packages/a/package.json": pkg("@dp/a"),
      "packages/a/src/mod.ts": 'export { x } from "./x.ts";\n',
      "packages/a/src/x.ts": 'import type { Y } from "./y.ts";\nexport const x: Y = 1;\n',
      "packages/a/src/y.ts": "export type Y = number;\n",
      "packages/b/package.json": pkg("@dp/b", ["@dp/a"]),
      "packages/b/src/mod.ts": 'import { x } from "@dp/a";\nexport const y = x;\n',
    });
    const r = check(root);
    expect(r.out).toMatch(/no import cycles/);
    expect(r.status).toBe(0);
  });

  test("fails on a two-file cycle, type-only imports included, naming both files", () => {
    const root = tree({
      "packages/a/package.json": pkg("@dp/a"),
      "packages/a/src/x.ts": 'import type { Y } from "./sub/y.ts";\nexport type X = Y;\n',
      "packages/a/src/sub/y.ts": 'import { type X } from "../x.ts";\nexport type Y = X | 1;\n',
    });
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.out).toContain("import cycle: packages/a/src/sub/y.ts <-> packages/a/src/x.ts");
  });

  test("fails on a package cycle made by an import that package.json does not declare", () => {
    const root = tree({
      "packages/a/package.json": pkg("@dp/a", ["@dp/b"]),
      "packages/a/src/mod.ts": 'export * from "@dp/b";\n',
      "packages/b/package.json": pkg("@dp/b"),
      "packages/b/src/mod.ts": 'import { a } from "@dp/a/internal";\nexport const b = a;\n',
    });
    const r = check(root);
    expect(r.status).toBe(1);
    expect(r.out).toContain("package cycle: @dp/a <-> @dp/b");
  });

  test("ignores imports written in comments and JSDoc examples", () => {
    const root = tree({
      "packages/a/package.json": pkg("@dp/a"),
      "packages/a/src/x.ts": '/**\n * ```ts\n * import { y } from "./y.ts";\n * ```\n */\nexport const x = 1;\n',
      "packages/a/src/y.ts": 'import { x } from "./x.ts"; // import { z } from "./x.ts"\nexport const y = x;\n',
    });
    expect(check(root).status).toBe(0);
  });

  test("finds no cycle in this repository", () => {
    const out = execFileSync(process.execPath, [SCRIPT], { encoding: "utf8" });
    expect(out).toMatch(/no import cycles/);
  });
});
