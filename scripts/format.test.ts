import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, test } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SCRIPT = join(ROOT, "scripts/format.mjs");
const CONFIGS = [".prettierrc.json", ".prettierignore", "bpf/.clang-format"];
const hasClangFormat = spawnSync("clang-format-19", ["--version"]).status === 0;
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A tree with the repository's formatter configuration and the given files. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "dp-format-"));
  dirs.push(root);
  for (const c of CONFIGS) {
    mkdirSync(dirname(join(root, c)), { recursive: true });
    copyFileSync(join(ROOT, c), join(root, c));
  }
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

function run(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: "utf8" });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const FORMATTED_TS = "export function add(a: number, b: number): number {\n  return a + b;\n}\n";
const FORMATTED_C = "int add(int a, int b)\n{\n\treturn a + b;\n}\n";

describe.skipIf(!hasClangFormat)("scripts/format.mjs", () => {
  test("--check passes a formatted tree", () => {
    const root = tree({ "src/a.ts": FORMATTED_TS, "bpf/a.c": FORMATTED_C, "docs/a.md": "# A\n\nText.\n" });
    const r = run("--check", root);
    expect(r.out).toMatch(/every file is formatted/);
    expect(r.status).toBe(0);
  });

  test("--check fails naming an unformatted TypeScript file and an unformatted C file", () => {
    const root = tree({
      "src/a.ts": FORMATTED_TS,
      "src/b.ts": "export function add( a:number,b:number ):number{return a+b}\n\n\n\nexport const x = 1\n",
      "bpf/a.c": FORMATTED_C,
      "bpf/b.c": "int add(int a,int b){ return a+b; }\n",
    });
    const r = run("--check", root);
    expect(r.status).toBe(1);
    expect(r.out).toContain("not formatted (prettier): src/b.ts");
    expect(r.out).toContain("not formatted (clang-format): bpf/b.c");
    expect(r.out).not.toContain("src/a.ts");
    expect(r.out).not.toContain("bpf/a.c");
  });

  test("without --check it formats the files so that --check then passes", () => {
    const root = tree({ "src/b.ts": "export const x={a:1,b:2}\n", "bpf/b.c": "int f(void){return 0;}\n" });
    expect(run(root).status).toBe(0);
    expect(readFileSync(join(root, "src/b.ts"), "utf8")).toBe("export const x = { a: 1, b: 2 };\n");
    expect(readFileSync(join(root, "bpf/b.c"), "utf8")).toBe("int f(void)\n{\n\treturn 0;\n}\n");
    expect(run("--check", root).status).toBe(0);
  });

  test("leaves generated files and captured fixtures alone", () => {
    const root = tree({ "src/_gen/x.ts": "export const x={a:1}\n", "testdata/y.json": '{"a":1,\n"b":2}\n' });
    expect(run("--check", root).status).toBe(0);
  });
});
