#!/usr/bin/env node
// Formatting of the whole tree, checked by `npm run lint` and applied by
// `npm run format`:
//   - TypeScript, JavaScript, JSON and Markdown with Prettier
//     (.prettierrc.json, .prettierignore);
//   - BPF C sources and headers under bpf/ and examples/ with
//     clang-format-19 (bpf/.clang-format, the kernel's style).
//
//   node scripts/format.mjs [--check] [root]
//
// With --check nothing is written; every file that is not formatted is
// named and the exit status is 1.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const CLANG_FORMAT = process.env["CLANG_FORMAT"] ?? "clang-format-19";

function cFiles(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "build") cFiles(path, out);
    } else if (name.endsWith(".c") || name.endsWith(".h")) {
      out.push(path);
    }
  }
  return out;
}

function main() {
  const args = process.argv.slice(2);
  const check = args.includes("--check");
  const root = resolve(args.find((a) => !a.startsWith("--")) ?? fileURLToPath(new URL("..", import.meta.url)));
  const here = fileURLToPath(new URL("..", import.meta.url));
  const prettier = createRequire(join(here, "package.json")).resolve("prettier/bin/prettier.cjs");
  let failed = false;

  // Prettier lists unformatted files on stdout with --list-different.
  const p = spawnSync(
    process.execPath,
    [prettier, check ? "--list-different" : "--write", "--no-error-on-unmatched-pattern", "."],
    { cwd: root, encoding: "utf8" },
  );
  if (p.error !== undefined) {
    console.error(`cannot run prettier in ${root}: ${p.error.message} (the argument is a folder, not a file)`);
    process.exit(2);
  }
  if (p.status !== 0) {
    const listed = p.stdout.trim();
    if (check && listed !== "") {
      for (const f of listed.split("\n")) console.error(`not formatted (prettier): ${f}`);
    } else {
      console.error(`${p.stdout}${p.stderr}`.trim() || `prettier exited with ${p.status}`);
    }
    failed = true;
  }

  const sources = [...cFiles(join(root, "bpf")), ...cFiles(join(root, "examples"))];
  if (sources.length > 0) {
    const style = `--style=file:${join(root, "bpf/.clang-format")}`;
    const c = spawnSync(CLANG_FORMAT, [...(check ? ["--dry-run", "-Werror"] : ["-i"]), style, ...sources], {
      encoding: "utf8",
    });
    if (c.error !== undefined) {
      console.error(`${CLANG_FORMAT} is not installed (apt-get install clang-format-19): ${c.error.message}`);
      failed = true;
    } else if (c.status !== 0) {
      const named = new Set([...c.stderr.matchAll(/^(\S+?\.[ch]):\d+:\d+: (?:error|warning)/gm)].map((m) => m[1]));
      for (const f of named) console.error(`not formatted (clang-format): ${relative(root, f)}`);
      if (named.size === 0) console.error(c.stderr.trim());
      failed = true;
    }
  }

  if (failed) {
    if (check) console.error("format: run `npm run format` to format the tree");
    process.exit(1);
  }
  if (check) console.log(`format: every file is formatted (${sources.length} C files under bpf/ and examples/)`);
}

main();
