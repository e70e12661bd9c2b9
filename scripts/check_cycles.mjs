#!/usr/bin/env node
// Import-cycle check, run by `npm run lint`.
//
// Reads every TypeScript source file of the packages (tests included), finds
// its imports and re-exports (`import`, `import type`, `export ... from`,
// dynamic `import("...")`), and reports:
//   - file cycles: a set of files of one package that import each other in a
//     circle (relative imports), type-only imports included: a cycle of types
//     is still two modules that cannot be understood one without the other;
//   - package cycles: @dp packages that depend on each other in a circle,
//     through package.json dependencies or imports of `@dp/<name>` in src/.
// Exits 1 when it finds one, naming every file or package in each cycle.
//
//   node scripts/check_cycles.mjs [root]
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const IMPORT_RE =
  /(?:^|[\s;}])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

/** Strips comments so that examples in JSDoc do not count as imports. */
function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

function listTs(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) listTs(path, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The specifiers a source file imports. */
export function importsOf(text) {
  const found = [];
  for (const m of stripComments(text).matchAll(IMPORT_RE)) found.push(m[1] ?? m[2]);
  return found;
}

/** Strongly connected components with more than one node (or a self edge), by Tarjan's algorithm. */
export function findCycles(graph) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const idx = new Map();
  const low = new Map();
  const cycles = [];
  function visit(v) {
    idx.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? new Set()).has(v)) cycles.push(comp.sort());
    }
  }
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  return cycles;
}

/** File and package import graphs of the packages under `root/packages`. */
export function importGraphs(root) {
  const files = new Map();
  const packages = new Map();
  const pkgDir = join(root, "packages");
  for (const name of readdirSync(pkgDir).sort()) {
    const dir = join(pkgDir, name);
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, "utf8"));
    const deps = new Set(
      Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies }).filter((d) => d.startsWith("@dp/")),
    );
    packages.set(pkg.name, deps);
    if (!existsSync(join(dir, "src"))) continue;
    for (const file of listTs(join(dir, "src"))) {
      const edges = new Set();
      for (const spec of importsOf(readFileSync(file, "utf8"))) {
        if (spec.startsWith(".")) {
          edges.add(relative(root, resolve(dirname(file), spec)));
        } else if (spec.startsWith("@dp/")) {
          const target = spec.split("/").slice(0, 2).join("/");
          if (target !== pkg.name) deps.add(target);
        }
      }
      files.set(relative(root, file), edges);
    }
  }
  return { files, packages };
}

function main() {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL("..", import.meta.url)));
  const { files, packages } = importGraphs(root);
  const problems = [];
  for (const cycle of findCycles(packages)) problems.push(`package cycle: ${cycle.join(" <-> ")}`);
  for (const cycle of findCycles(files)) problems.push(`import cycle: ${cycle.join(" <-> ")}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(
      `check_cycles: ${problems.length} cycle(s); move the shared types or helpers into a module both sides import`,
    );
    process.exit(1);
  }
  console.log(`check_cycles: ${files.size} files in ${packages.size} packages, no import cycles`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
