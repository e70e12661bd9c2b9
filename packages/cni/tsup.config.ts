import { defineConfig } from "tsup";

export default defineConfig([
  {
    entry: { mod: "src/mod.ts", main: "src/main.ts" },
    format: ["esm"],
    target: "node22",
    // The package tsconfig is a composite project for `tsc -b`; the bundled
    // declarations are built outside it.
    dts: { entry: { mod: "src/mod.ts" }, compilerOptions: { composite: false, emitDeclarationOnly: false } },
    sourcemap: true,
    // Each build cleans only its own files: the two run at the same time.
    clean: ["*.js", "*.js.map", "*.d.ts"],
    external: [/^@dp\//],
  },
  {
    // What bin/dp-cni.cjs runs: one CommonJS file with the agent's API
    // client inside (from its sources), because a runtime pays the plugin's
    // start-up on every ADD and DEL, and Node starts a CommonJS file about
    // 20 ms sooner than an ES module graph.
    entry: { "dp-cni": "src/main.ts" },
    format: ["cjs"],
    target: "node22",
    outExtension: () => ({ js: ".cjs" }),
    sourcemap: true,
    clean: ["dp-cni.cjs", "dp-cni.cjs.map"],
    noExternal: [/^@dp\/agent/],
    esbuildOptions(options) {
      options.conditions = ["@dp/source"];
    },
  },
]);
