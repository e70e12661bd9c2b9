import { defineConfig } from "vitest/config";

// In development every @dp/* package resolves to its TypeScript sources
// through the "@dp/source" export condition.
// No "module": some dependencies (the AWS SDK) point it at builds Node cannot load.
const conditions = ["@dp/source", "import", "node", "default"];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ["@dp/source"] } },
  test: {
    pool: "forks",
    // gc() lets the leak check run finalizers after each file.
    execArgv: ["--expose-gc"],
    // DP_FROM_SOURCE: a `dp` a test starts runs the sources, never an older build.
    env: { DP_TRACE_LEAKS: "1", DP_FROM_SOURCE: "1" },
    setupFiles: ["./scripts/vitest_setup.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "scripts/**/*.test.ts", "bpf/**/*.test.ts"],
          exclude: ["**/*.kernel.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "kernel",
          include: ["packages/*/src/**/*.kernel.test.ts", "bpf/**/*.kernel.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      // The programs in examples/, each run as a child process (as root).
      {
        extends: true,
        test: {
          name: "examples",
          include: ["examples/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      // The JSDoc examples, extracted by scripts/doctest.ts (CONTRIBUTING.md §9).
      {
        extends: true,
        test: {
          name: "docs",
          include: [".doctest/**/*.test.ts"],
          exclude: ["**/*.kernel.test.ts", "**/node_modules/**"],
        },
      },
      {
        extends: true,
        test: {
          name: "docs-kernel",
          include: [".doctest/**/*.kernel.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
