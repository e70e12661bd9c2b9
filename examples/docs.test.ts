// The guide quotes the examples: every block of docs/writing-programs.md
// between `<!-- #region NAME from PATH -->` and `<!-- #endregion NAME -->`
// must be the code between `// #region NAME` and `// #endregion NAME` in
// PATH (relative to docs/), without the region's common indentation.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const DOCS = fileURLToPath(new URL("../docs/", import.meta.url));
const GUIDE = "writing-programs.md";

interface Quote {
  readonly name: string;
  readonly path: string;
  readonly code: string;
}

function quotes(markdown: string): Quote[] {
  const out: Quote[] = [];
  const re = /<!-- #region (\S+) from (\S+) -->\n\n```\w*\n([\s\S]*?)\n```\n\n<!-- #endregion \1 -->/g;
  for (const m of markdown.matchAll(re)) out.push({ name: m[1] ?? "", path: m[2] ?? "", code: m[3] ?? "" });
  return out;
}

function region(source: string, name: string, path: string): string {
  const lines = source.split("\n");
  const start = lines.findIndex((l) => l.trim() === `// #region ${name}`);
  const end = lines.findIndex((l) => l.trim() === `// #endregion ${name}`);
  if (start < 0 || end < start) throw new Error(`${path} has no region ${JSON.stringify(name)}`);
  const body = lines.slice(start + 1, end);
  const indent = Math.min(...body.filter((l) => l.trim() !== "").map((l) => l.length - l.trimStart().length));
  return body.map((l) => l.slice(indent)).join("\n");
}

test(`docs/${GUIDE} quotes the examples' code as it is`, () => {
  const markdown = readFileSync(DOCS + GUIDE, "utf8");
  const found = quotes(markdown);
  // Every region marker was matched (none has a malformed block).
  expect(found.length).toBe(markdown.split("<!-- #region ").length - 1);
  expect(found.length).toBeGreaterThanOrEqual(9);
  for (const q of found) {
    const source = readFileSync(new URL(q.path, new URL(`file://${DOCS}`)), "utf8");
    expect(q.code, `region ${q.name} of ${q.path}`).toBe(region(source, q.name, q.path));
  }
});
