// Extracts the `@example` fences of the JSDoc comments in packages/*/src
// into .doctest/ (CONTRIBUTING.md §9), one file per example:
//
// - ` ```ts ` becomes `<package>/<file>_<symbol>_<n>.test.ts`, run by the
//   vitest project `docs`;
// - ` ```ts kernel ` becomes `….kernel.test.ts`, run by `docs-kernel`, and
//   skips without root (`requireRoot` from @dp/core/testing);
// - ` ```ts no-run ` becomes `….ts`, only type-checked (`tsc -p .doctest`);
// - ` ```ts ignore ` is left out.
//
// Runnable examples are wrapped in a vitest `test("<file>:<line> <title>")`
// with their imports hoisted to the top of the file. The output folder is
// deleted and written again on every run, so it never holds stale examples,
// and the output depends on the sources only.
//
// Usage: node --conditions=@dp/source --import tsx scripts/doctest.ts
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";

/** How an example is checked, from the fence's info string. */
export type ExampleKind = "run" | "kernel" | "no-run" | "ignore";

/** One fenced code block of an `@example` tag. */
export interface Example {
  /** The source file, relative to the repository root, with `/` separators. */
  readonly file: string;
  /** The 1-based line of the `@example` tag. */
  readonly line: number;
  /** The documented declaration (`Class.member` for members), or `undefined` when none was found. */
  readonly symbol: string | undefined;
  /** The text after `@example`. */
  readonly title: string;
  /** How it is checked. */
  readonly kind: ExampleKind;
  /** The code, without the comment's leading ` * `. */
  readonly code: string;
}

/** A file to write, relative to the output folder. */
export interface OutputFile {
  /** The path, with `/` separators. */
  readonly path: string;
  /** The content. */
  readonly content: string;
}

const KINDS: Readonly<Record<string, ExampleKind>> = {
  "": "run",
  kernel: "kernel",
  "no-run": "no-run",
  ignore: "ignore",
};

const TS_LANGS = new Set(["ts", "typescript"]);

/** A located problem in a source file. */
export class DoctestError extends Error {
  override readonly name: string = "DoctestError";
}

function declarationName(node: ts.Node, sf: ts.SourceFile): string | undefined {
  const nameOf = (n: ts.Node | undefined): string | undefined => {
    if (n === undefined) return undefined;
    if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n) || ts.isStringLiteral(n) || ts.isNumericLiteral(n)) {
      return n.text;
    }
    if (ts.isComputedPropertyName(n)) return n.expression.getText(sf);
    return undefined;
  };
  if (
    ts.isFunctionDeclaration(node) ||
    ts.isClassDeclaration(node) ||
    ts.isInterfaceDeclaration(node) ||
    ts.isTypeAliasDeclaration(node) ||
    ts.isEnumDeclaration(node) ||
    ts.isModuleDeclaration(node)
  ) {
    return nameOf(node.name);
  }
  if (ts.isVariableStatement(node)) return nameOf(node.declarationList.declarations[0]?.name);
  if (
    ts.isMethodDeclaration(node) ||
    ts.isPropertyDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isMethodSignature(node) ||
    ts.isPropertySignature(node) ||
    ts.isEnumMember(node)
  ) {
    const member = ts.isConstructorDeclaration(node) ? "constructor" : nameOf(node.name);
    const owner = declarationName(node.parent, sf);
    if (member === undefined) return undefined;
    return owner === undefined ? member : `${owner}.${member}`;
  }
  return undefined;
}

/**
 * Finds every JSDoc comment of a source file with the declaration it
 * documents.
 */
function jsdocComments(sf: ts.SourceFile): { pos: number; end: number; symbol: string | undefined }[] {
  const text = sf.text;
  const found = new Map<number, { pos: number; end: number; symbol: string | undefined }>();
  const visit = (node: ts.Node): void => {
    const ranges = [
      ...(ts.getLeadingCommentRanges(text, node.pos) ?? []),
      ...(ts.getTrailingCommentRanges(text, node.pos) ?? []),
    ];
    for (const r of ranges) {
      if (r.kind !== ts.SyntaxKind.MultiLineCommentTrivia) continue;
      if (!text.startsWith("/**", r.pos) || text.startsWith("/**/", r.pos)) continue;
      const known = found.get(r.pos);
      // The outermost node starting after the comment names it; when that
      // one is no declaration (an `export { … }`), an inner one may be.
      if (known !== undefined && known.symbol !== undefined) continue;
      const symbol = node.getStart(sf) >= r.end ? declarationName(node, sf) : undefined;
      found.set(r.pos, { pos: r.pos, end: r.end, symbol });
    }
    for (const child of node.getChildren(sf)) visit(child);
  };
  visit(sf);
  return [...found.values()].sort((a, b) => a.pos - b.pos);
}

function lineOf(sf: ts.SourceFile, pos: number): number {
  return sf.getLineAndCharacterOfPosition(pos).line + 1;
}

/**
 * Extracts the `@example` fences of one source file.
 *
 * @param file The file's path relative to the repository root, used in messages and test names.
 * @param text The file's content.
 * @returns The examples in source order.
 * @throws {DoctestError} For an `@example` without a fence, an unclosed fence or an unknown fence attribute.
 */
export function extractExamples(file: string, text: string): Example[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const examples: Example[] = [];
  for (const comment of jsdocComments(sf)) {
    const raw = text.slice(comment.pos + 3, comment.end - 2);
    const firstLine = lineOf(sf, comment.pos);
    const lines = raw.split("\n").map((l) => l.replace(/^[ \t]*\*(?: |(?=\t)|$)/, "").replace(/\r$/, ""));
    const isModule = lines.some((l) => /^\s*@module\b/.test(l));
    const symbol = isModule ? "module" : comment.symbol;

    let current: { line: number; title: string; fences: number } | undefined;
    const finish = (): void => {
      if (current !== undefined && current.fences === 0) {
        throw new DoctestError(`${file}:${current.line}: @example has no fenced code block`);
      }
      current = undefined;
    };
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i] as string;
      const tag = /^\s*@(\w+)\b(.*)$/.exec(l);
      if (tag) {
        finish();
        if (tag[1] === "example") current = { line: firstLine + i, title: (tag[2] as string).trim(), fences: 0 };
        continue;
      }
      const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(l);
      if (!open) continue;
      const indent = (open[1] as string).length;
      const marker = open[2] as string;
      const lang = open[3] as string;
      const attrs = (open[4] as string).trim();
      const start = i;
      const closing = new RegExp(`^\\s*${marker.charAt(0)}{${marker.length},}\\s*$`);
      let close = -1;
      for (let j = i + 1; j < lines.length; j++) {
        if (closing.test(lines[j] as string)) {
          close = j;
          break;
        }
      }
      if (close < 0) throw new DoctestError(`${file}:${firstLine + start}: unclosed code fence`);
      i = close;
      if (current === undefined) continue; // a fence in the description, not an example
      current.fences++;
      if (!TS_LANGS.has(lang)) continue; // not TypeScript: nothing to check
      const kind = KINDS[attrs];
      if (kind === undefined) {
        throw new DoctestError(
          `${file}:${firstLine + start}: unknown fence "${marker}${lang} ${attrs}" (use ts, ts kernel, ts no-run or ts ignore)`,
        );
      }
      const code = lines
        .slice(start + 1, close)
        .map((c) => c.slice(Math.min(indent, c.length - c.trimStart().length)))
        .join("\n");
      examples.push({ file, line: current.line, symbol, title: current.title, kind, code });
    }
    finish();
  }
  return examples;
}

/**
 * Splits an example into its import declarations and the rest.
 *
 * @param code The example.
 * @returns The import statements' text, the names they bind and the remaining code.
 */
export function splitImports(code: string): { imports: string[]; names: Set<string>; body: string } {
  const sf = ts.createSourceFile("example.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: string[] = [];
  const names = new Set<string>();
  const cuts: [number, number][] = [];
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) && !ts.isImportEqualsDeclaration(st)) continue;
    imports.push(st.getText(sf));
    cuts.push([st.getStart(sf), st.end]);
    if (ts.isImportEqualsDeclaration(st)) {
      names.add(st.name.text);
      continue;
    }
    const clause = st.importClause;
    if (clause?.name) names.add(clause.name.text);
    const bindings = clause?.namedBindings;
    if (bindings && ts.isNamespaceImport(bindings)) names.add(bindings.name.text);
    if (bindings && ts.isNamedImports(bindings)) for (const el of bindings.elements) names.add(el.name.text);
  }
  let body = "";
  let at = 0;
  for (const [from, to] of cuts) {
    body += code.slice(at, from);
    at = to;
  }
  body += code.slice(at);
  // Drop the lines the imports left empty at the top, and trailing blanks.
  body = body.replace(/^(?:[ \t]*\n)+/, "").replace(/\s+$/, "");
  return { imports, names, body };
}

function indent(code: string, by: string): string {
  return code
    .split("\n")
    .map((l) => (l.trim() === "" ? "" : by + l))
    .join("\n");
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "_").replace(/^_+|_+$/g, "") || "_";
}

/**
 * Renders a package's examples as files.
 *
 * @param pkg The package's folder name under packages/.
 * @param srcRoot The package's src/ folder, relative to the repository root.
 * @param examples The package's examples, in a stable order.
 * @returns The files to write under `<pkg>/`, without the `ignore` examples.
 * @throws {DoctestError} When an example binds a name the wrapper needs.
 */
export function renderExamples(pkg: string, srcRoot: string, examples: readonly Example[]): OutputFile[] {
  const counts = new Map<string, number>();
  const out: OutputFile[] = [];
  for (const ex of examples) {
    const stem = relative(srcRoot, ex.file).split(sep).join("/").replace(/\.ts$/, "");
    const base = `${stem}_${safeName(ex.symbol ?? `L${ex.line}`)}`;
    const n = (counts.get(base) ?? 0) + 1;
    counts.set(base, n);
    if (ex.kind === "ignore") continue;
    const where = `${ex.file}:${ex.line}`;
    const header = `// Generated by scripts/doctest.ts from ${where}: edit the example there, not here.\n`;
    if (ex.kind === "no-run") {
      const { imports } = splitImports(ex.code);
      const code = ex.code.replace(/\s+$/, "");
      out.push({
        path: `${pkg}/${base}_${n}.ts`,
        content: `${header}${code}\n${imports.length === 0 ? "\nexport {};\n" : ""}`,
      });
      continue;
    }
    const { imports, names, body } = splitImports(ex.code);
    if (names.has("test")) throw new DoctestError(`${where}: the example must not import a name "test"`);
    const head = ['import { test } from "vitest";'];
    if (ex.kind === "kernel" && !names.has("requireRoot")) head.push('import { requireRoot } from "@dp/core/testing";');
    const name = JSON.stringify(ex.title === "" ? where : `${where} ${ex.title}`);
    const wrapped =
      ex.kind === "kernel"
        ? `test(${name}, async (t) => {\n  requireRoot(t);\n  {\n${indent(body, "    ")}\n  }\n});\n`
        : `test(${name}, async () => {\n${indent(body, "  ")}\n});\n`;
    out.push({
      path: `${pkg}/${base}_${n}${ex.kind === "kernel" ? ".kernel.test.ts" : ".test.ts"}`,
      content: `${header}${[...head, ...imports].join("\n")}\n\n${wrapped}`,
    });
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "_gen" && name !== "node_modules") files.push(...sourceFiles(path));
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) {
      files.push(path);
    }
  }
  return files;
}

/** `paths` entries mapping each package export to its `@dp/source` file, so examples type-check against sources. */
function sourcePaths(root: string, outDir: string, pkgs: readonly string[]): Record<string, string[]> {
  const paths: Record<string, string[]> = {};
  for (const pkg of pkgs) {
    const dir = join(root, "packages", pkg);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
      name: string;
      exports?: Record<string, unknown>;
    };
    for (const [sub, target] of Object.entries(manifest.exports ?? {})) {
      const source =
        typeof target === "object" && target !== null ? (target as Record<string, unknown>)["@dp/source"] : undefined;
      if (typeof source !== "string") continue;
      const spec = sub === "." ? manifest.name : `${manifest.name}/${sub.replace(/^\.\//, "")}`;
      paths[spec] = [relative(outDir, join(dir, source)).split(sep).join("/")];
    }
  }
  return paths;
}

function tsconfig(paths: Record<string, string[]>): string {
  const config = {
    extends: "../tsconfig.base.json",
    compilerOptions: {
      composite: false,
      declaration: false,
      emitDeclarationOnly: false,
      isolatedDeclarations: false,
      noEmit: true,
      types: ["node"],
      paths,
    },
    include: ["**/*.ts"],
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

function main(): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const outDir = join(root, ".doctest");
  const pkgs = readdirSync(join(root, "packages"))
    .filter((p) => statSync(join(root, "packages", p, "src"), { throwIfNoEntry: false })?.isDirectory())
    .sort();

  const files: OutputFile[] = [];
  const counts: Record<ExampleKind, number> = { run: 0, kernel: 0, "no-run": 0, ignore: 0 };
  const problems: string[] = [];
  for (const pkg of pkgs) {
    const srcRoot = join("packages", pkg, "src");
    const examples: Example[] = [];
    for (const path of sourceFiles(join(root, srcRoot))) {
      const file = relative(root, path).split(sep).join("/");
      try {
        examples.push(...extractExamples(file, readFileSync(path, "utf8")));
      } catch (err) {
        if (!(err instanceof DoctestError)) throw err;
        problems.push(err.message);
      }
    }
    for (const ex of examples) counts[ex.kind]++;
    try {
      files.push(...renderExamples(pkg, srcRoot, examples));
    } catch (err) {
      if (!(err instanceof DoctestError)) throw err;
      problems.push(err.message);
    }
  }

  // Stale examples must never run: clear the folder even when extraction failed.
  rmSync(outDir, { recursive: true, force: true });
  if (problems.length > 0) {
    for (const p of problems) console.error(`doctest: ${p}`);
    process.exitCode = 1;
    return;
  }
  for (const f of files) {
    const path = join(outDir, ...f.path.split("/"));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, f.content);
  }
  writeFileSync(join(outDir, "tsconfig.json"), tsconfig(sourcePaths(root, outDir, pkgs)));
  const total = counts.run + counts.kernel + counts["no-run"] + counts.ignore;
  console.log(
    `doctest: ${total} examples (${counts.run} ts, ${counts.kernel} kernel, ${counts["no-run"]} no-run, ${counts.ignore} ignore) -> ${files.length} files in .doctest/`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
