#!/usr/bin/env node
// Prints the public surface of a package: for each entry point in its
// package.json `exports` (".", "./testing", ...), every exported name with
// the declarations behind it as TypeScript would emit them (.d.ts text,
// JSDoc included), sorted by name. Two trees whose surfaces print the same
// bytes export the same API, whatever files the declarations live in.
//
//   node scripts/api_surface.mjs packages/core > core.api.txt
//   node scripts/api_surface.mjs --check packages/core OLD.api.txt
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import ts from "typescript";

/** The surface text of the package in `dir`. */
export function apiSurface(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const entries = Object.entries(pkg.exports)
    .filter(([, v]) => typeof v === "object" && v["@dp/source"])
    .map(([k, v]) => [k, resolve(dir, v["@dp/source"])]);
  const out = mkdtempSync(join(tmpdir(), "dp-api-"));
  try {
    const options = {
      declaration: true,
      emitDeclarationOnly: true,
      outDir: out,
      rootDir: resolve(dir, "src"),
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2023,
      lib: ["lib.esnext.d.ts"],
      types: ["node"],
      strict: true,
      allowImportingTsExtensions: true,
      rewriteRelativeImportExtensions: true,
      customConditions: ["@dp/source"],
      skipLibCheck: true,
    };
    const program = ts.createProgram(
      entries.map(([, f]) => f),
      options,
    );
    program.emit();
    const dts = entries.map(([k, f]) => [k, join(out, f.slice(resolve(dir, "src").length).replace(/\.ts$/, ".d.ts"))]);
    const dProgram = ts.createProgram(
      dts.map(([, f]) => f),
      { ...options, noEmit: true },
    );
    const checker = dProgram.getTypeChecker();
    const lines = [];
    for (const [entry, file] of dts) {
      const sf = dProgram.getSourceFile(file);
      const mod = sf && checker.getSymbolAtLocation(sf);
      if (!mod) throw new Error(`api_surface: cannot read ${file}`);
      for (const sym of checker.getExportsOfModule(mod).sort((a, b) => a.name.localeCompare(b.name))) {
        const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
        const decls = (target.declarations ?? []).map((d) => d.getFullText().trim()).join("\n");
        lines.push(`== ${entry} ${sym.name}\n${decls}`);
      }
    }
    return lines.join("\n") + "\n";
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === "--check") {
  const text = apiSurface(resolve(args[1]));
  const expected = readFileSync(args[2], "utf8");
  if (text !== expected) {
    writeFileSync(`${args[2]}.new`, text);
    console.error(`api_surface: the surface of ${args[1]} differs from ${args[2]} (written: ${args[2]}.new)`);
    process.exit(1);
  }
  console.log(`api_surface: ${args[1]} unchanged`);
} else {
  process.stdout.write(apiSurface(resolve(args[0] ?? ".")));
}
