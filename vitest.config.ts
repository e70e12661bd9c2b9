import { defineConfig } from "vitest/config";

// In development every @dp/* package resolves to its TypeScript sources
// through the "@dp/source" export condition.
const shared = {
  resolve: { conditions: ["@dp/source", "import", "module", "node", "default"] },
  ssr: { resolve: { conditions: ["@dp/source", "import", "module", "node", "default"], externalConditions: ["@dp/source"] } },
};

export default defineConfig({
  ...shared,
  test: {
    pool: "forks",
    execArgv: ["--expose-gc"],
    env: { DP_TRACE_LEAKS: "1" },
    setupFiles: ["./scripts/vitest_setup.ts"],
    projects: [
      {
        ...shared,
        test: {
          name: "unit",
          include: ["packages/*/src/**/*.test.ts", "scripts/**/*.test.ts"],
          exclude: ["**/*.kernel.test.ts", "**/node_modules/**"],
          setupFiles: ["./scripts/vitest_setup.ts"],
          env: { DP_TRACE_LEAKS: "1" },
        },
      },
      {
        ...shared,
        test: {
          name: "kernel",
          include: ["packages/*/src/**/*.kernel.test.ts", "bpf/**/*.kernel.test.ts"],
          setupFiles: ["./scripts/vitest_setup.ts"],
          env: { DP_TRACE_LEAKS: "1" },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
