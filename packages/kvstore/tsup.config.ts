import { defineConfig } from "tsup";

export default defineConfig({
  entry: { mod: "src/mod.ts", "testing/mod": "src/testing/mod.ts" },
  format: ["esm"],
  target: "node22",
  // The package tsconfig is a composite project for `tsc -b`; the bundled
  // declarations are built outside it.
  dts: { compilerOptions: { composite: false, emitDeclarationOnly: false } },
  sourcemap: true,
  clean: true,
  external: [/^@dp\//, "etcd3"],
});
