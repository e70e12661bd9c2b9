#!/usr/bin/env node
// The dp-gen command (see src/gen_cli.ts). An installed package runs its
// build, dist/gen_cli.js. In a checkout of the dp repository, where
// src/ is present and the build may be missing or stale, it runs the
// TypeScript source through tsx with the "@dp/source" condition, so that
// `npx dp-gen` works there without `npm run build`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = fileURLToPath(new URL("../src/gen_cli.ts", import.meta.url));
const built = new URL("../dist/gen_cli.js", import.meta.url);

function tsxLoader() {
  try {
    return import.meta.resolve("tsx");
  } catch {
    return undefined;
  }
}

const tsx = existsSync(source) ? tsxLoader() : undefined;
if (tsx !== undefined) {
  const run = spawnSync(
    process.execPath,
    ["--conditions=@dp/source", "--import", tsx, source, ...process.argv.slice(2)],
    {
      stdio: "inherit",
    },
  );
  process.exitCode = run.status ?? 1;
} else if (existsSync(built)) {
  const { runGenCli } = await import(built.href);
  process.exitCode = runGenCli(process.argv.slice(2));
} else {
  process.stderr.write(
    "dp-gen: neither dist/gen_cli.js nor src/gen_cli.ts with tsx is available: run `npm run build` in @dp/maps\n",
  );
  process.exitCode = 1;
}
