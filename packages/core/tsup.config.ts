import { defineConfig } from "tsup";

export default defineConfig({
  entry: { mod: "src/mod.ts", "testing/mod": "src/testing/mod.ts", "internal/mod": "src/internal/mod.ts" },
  format: ["esm"],
  target: "node20",
  dts: true,
  sourcemap: true,
  clean: true,
  external: ["koffi"],
});
