import { defineConfig } from "tsup";

export default defineConfig({
  entry: { mod: "src/mod.ts", client: "src/api/client_mod.ts", cli: "src/cli/main.ts" },
  format: ["esm"],
  target: "node22",
  // The package tsconfig is a composite project for `tsc -b`; the bundled
  // declarations are built outside it.
  dts: {
    entry: { mod: "src/mod.ts", client: "src/api/client_mod.ts" },
    compilerOptions: { composite: false, emitDeclarationOnly: false },
  },
  sourcemap: true,
  clean: true,
  external: [/^@dp\//, "commander", "prom-client", "yaml", "zod"],
});
