#!/usr/bin/env node
// Writes docs/config.md: the reference of every `dp agent` config key,
// rendered from @dp/agent's CONFIG_KEYS (`renderConfigDocs`) and formatted
// with Prettier. With --check nothing is written; the exit status is 1 when
// the file differs (the unit test packages/agent/src/config/config_docs.test.ts
// checks the same).
//
// Usage: npm run gen:config-docs [-- --check]
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";
import { renderConfigDocs } from "@dp/agent";

async function main() {
  const path = fileURLToPath(new URL("../docs/config.md", import.meta.url));
  const options = (await prettier.resolveConfig(path)) ?? {};
  const text = await prettier.format(renderConfigDocs(), { ...options, filepath: path });
  let old = "";
  try {
    old = readFileSync(path, "utf8");
  } catch {
    // no file yet
  }
  if (process.argv.includes("--check")) {
    if (old !== text) {
      console.error("docs/config.md differs from CONFIG_KEYS: run `npm run gen:config-docs`");
      process.exit(1);
    }
    console.log("docs/config.md is up to date");
    return;
  }
  if (old !== text) writeFileSync(path, text);
  console.log(old === text ? "docs/config.md is up to date" : "wrote docs/config.md");
}

await main();
