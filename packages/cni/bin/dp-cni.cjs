#!/usr/bin/env node
// The `dp-cni` CNI plugin, as runtimes exec it (the package's bin). From a
// built install it runs dist/dp-cni.cjs, one CommonJS file with the agent's
// API client inside: a runtime pays the plugin's start-up on every ADD and
// DEL, and Node starts a CommonJS file about 20 ms sooner than an ES module
// graph. Otherwise (a source checkout, or DP_FROM_SOURCE=1) it hands over to
// dp-cni.mjs, which runs the TypeScript sources.
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");

const dist = join(__dirname, "..", "dist", "dp-cni.cjs");
if (existsSync(dist) && process.env.DP_FROM_SOURCE !== "1") {
  require(dist)
    .main()
    .catch((err) => {
      process.stderr.write(`dp-cni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    });
} else {
  import("./dp-cni.mjs");
}
