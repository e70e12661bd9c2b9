#!/usr/bin/env node
// The `dp-cni` CNI plugin as an ES module. In a source checkout that was
// not built (or with DP_FROM_SOURCE=1), it runs src/main.ts in this same
// process through tsx, with the "@dp/source" export condition so the @dp/*
// packages resolve to their sources; from a built install it runs
// dist/main.js, which loads only the agent's API client. The package's bin
// is dp-cni.cjs, which starts faster from a built install and comes here
// otherwise.
import { existsSync } from "node:fs";
import module from "node:module";
import { fileURLToPath } from "node:url";

const dist = new URL("../dist/main.js", import.meta.url);
const source = new URL("../src/main.ts", import.meta.url);

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
  process.stdout.write(
    `${JSON.stringify({ cniVersion: "1.1.0", code: 5, msg: "dp-cni: cannot find dist/main.js or src/main.ts: reinstall @dp/cni" })}\n`,
  );
  process.exitCode = 1;
}
