#!/usr/bin/env node
// The `dp` command. From a built install it runs dist/cli.js (the tsup
// build of src/cli/main.ts). In a source checkout that was not built, it
// runs src/cli/main.ts in this same process through tsx, with the
// "@dp/source" export condition added by a resolve hook so the @dp/*
// packages resolve to their sources (as `node --conditions=@dp/source
// --import tsx` would; one process, so signals reach the command directly).
import { existsSync } from "node:fs";
import module from "node:module";
import { fileURLToPath } from "node:url";

const dist = new URL("../dist/cli.js", import.meta.url);
const source = new URL("../src/cli/main.ts", import.meta.url);

if (existsSync(fileURLToPath(dist)) && process.env.DP_FROM_SOURCE !== "1") {
  const { main } = await import(dist.href);
  await main();
} else if (existsSync(fileURLToPath(source))) {
  const withSource = (context) =>
    context.conditions.includes("@dp/source")
      ? context
      : { ...context, conditions: ["@dp/source", ...context.conditions] };
  if (typeof module.registerHooks === "function") {
    module.registerHooks({ resolve: (specifier, context, next) => next(specifier, withSource(context)) });
  } else {
    const hook = `export async function resolve(specifier, context, next) {
      const conditions = context.conditions.includes("@dp/source") ? context.conditions : ["@dp/source", ...context.conditions];
      return next(specifier, { ...context, conditions });
    }`;
    module.register(`data:text/javascript,${encodeURIComponent(hook)}`);
  }
  const { register: registerTsx } = await import("tsx/esm/api");
  registerTsx();
  const { main } = await import(source.href);
  await main();
} else {
  process.stderr.write("dp: cannot find dist/cli.js or src/cli/main.ts: reinstall @dp/agent\n");
  process.exitCode = 1;
}
