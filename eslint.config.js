// ESLint flat config for the whole monorepo (`npm run lint` = `eslint .`).
//
// Besides the recommended sets, it enforces the mechanical rules of
// CONTRIBUTING.md §2, §5 and §12: named exports only, `function` declarations at the
// top level, no `any` in signatures, and the import boundaries (koffi and raw
// OS access only behind the `_sys/` gateway of @dp/core, no deep imports into
// a sibling package's sources).
//
// Flat config replaces a rule's options instead of merging them, so the
// `no-restricted-syntax` and `no-restricted-imports` entries are assembled
// from the pieces below for each group of files. The last matching block wins.
import { builtinModules } from "node:module";
import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import tseslint from "typescript-eslint";

// --- no-restricted-syntax -----------------------------------------------------

const NO_DEFAULT_EXPORT = [
  {
    selector: "ExportDefaultDeclaration",
    message: "Use named exports only (CONTRIBUTING.md §5).",
  },
  {
    selector: "TSExportAssignment",
    message: "Use named exports only (CONTRIBUTING.md §5).",
  },
];

const NO_TOP_LEVEL_ARROW = [
  {
    selector: "Program > VariableDeclaration > VariableDeclarator > ArrowFunctionExpression",
    message: "Declare top-level functions with `function` (CONTRIBUTING.md §5).",
  },
  {
    selector: "Program > ExportNamedDeclaration > VariableDeclaration > VariableDeclarator > ArrowFunctionExpression",
    message: "Declare top-level functions with `function` (CONTRIBUTING.md §5).",
  },
];

const TS_API_SHAPE = [
  {
    selector: "TSEnumDeclaration",
    message: "Use an `as const` object plus a string-literal union, never `enum` (CONTRIBUTING.md §4).",
  },
  {
    selector: "ExportNamedDeclaration > TSModuleDeclaration",
    message: "Do not export namespaces (CONTRIBUTING.md §5).",
  },
  {
    selector:
      ":matches(PropertyDefinition, MethodDefinition, TSParameterProperty, TSAbstractPropertyDefinition, TSAbstractMethodDefinition)[accessibility='private']",
    message: "Use `#private` instead of the `private` keyword (CONTRIBUTING.md §5).",
  },
];

// --- no-restricted-imports ----------------------------------------------------

const KOFFI = {
  group: ["koffi", "koffi/*"],
  message: "koffi is allowed only in packages/core/src/_sys/ (CONTRIBUTING.md §2).",
};

const DEEP_SIBLING = [
  {
    regex: "^@dp/[^/]+/(src|dist)(/|$)",
    message: "Import @dp packages by name and public subpath, never their src/ or dist/ (CONTRIBUTING.md §2).",
  },
  {
    regex: "^(\\.\\./)+[^./][^/]*/src(/|$)",
    message: "Do not reach into a sibling package's src/: import it by package name (CONTRIBUTING.md §2).",
  },
  {
    regex: "(^|/)packages/[^/]+/src(/|$)",
    message: "Do not reach into a package's src/: import it by package name (CONTRIBUTING.md §2).",
  },
];

const NODE_BUILTINS = {
  group: ["node:*", ...builtinModules.filter((m) => !m.startsWith("_"))],
  message:
    "node: modules are allowed only in packages/core/src/_sys/, packages/core/src/testing/ and tests; go through the core gateway (CONTRIBUTING.md §2).",
};

function restrictImports(...patterns) {
  return ["error", { patterns }];
}

// --- globals for plain JS files (no `globals` package in the tree) ------------

const NODE_GLOBALS = Object.fromEntries(
  [
    "AbortController",
    "AbortSignal",
    "Buffer",
    "TextDecoder",
    "TextEncoder",
    "URL",
    "clearInterval",
    "clearTimeout",
    "console",
    "globalThis",
    "process",
    "queueMicrotask",
    "setInterval",
    "setTimeout",
    "structuredClone",
  ].map((name) => [name, "readonly"]),
);

const TYPED_FILES = ["packages/*/src/**/*.ts", "scripts/**/*.ts"];
const CONFIG_FILES = ["**/*.config.{ts,js,mjs,cjs,mts}"];
const TEST_FILES = ["**/*.test.ts"];

export default defineConfig(
  globalIgnores([
    "**/dist/",
    "**/node_modules/",
    "docs/api/",
    "bench/.build/",
    "bpf/build/",
    "packages/core/src/_gen/",
    ".doctest/",
    "coverage/",
  ]),

  js.configs.recommended,
  tseslint.configs.recommended,

  // Type-aware rules (floating promises, unsafe `any` flow, …) for the code
  // that belongs to a tsconfig project; config files and bench/ are linted
  // without type information.
  {
    name: "dp/type-checked",
    files: TYPED_FILES,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
  },

  {
    name: "dp/base",
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: "module",
      globals: NODE_GLOBALS,
    },
    linterOptions: {
      reportUnusedDisableDirectives: "error",
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
      "no-restricted-syntax": ["error", ...NO_DEFAULT_EXPORT, ...NO_TOP_LEVEL_ARROW, ...TS_API_SHAPE],
      "no-restricted-imports": restrictImports(KOFFI, ...DEEP_SIBLING),
    },
  },

  {
    name: "dp/package-sources",
    files: ["packages/*/src/**"],
    rules: {
      "no-restricted-imports": restrictImports(KOFFI, NODE_BUILTINS, ...DEEP_SIBLING),
    },
  },

  {
    name: "dp/node-allowed",
    // Command-line entry points (`*_cli.ts`) read and write files too, and
    // @dp/agent is the application at the top of the stack: its HTTP
    // servers, sockets, files, signals and child processes use Node directly
    // (kernel objects still go through the packages below it). @dp/cni is
    // an application too: the dp-cni plugin reads stdin and execs delegated
    // IPAM plugins as the CNI specification says.
    files: [
      "packages/agent/src/**",
      "packages/cni/src/**",
      "packages/core/src/testing/**",
      "packages/eni/src/testing/**",
      "packages/kvstore/src/testing/**",
      "packages/*/src/**/_test_*.ts",
      "packages/*/src/*_cli.ts",
      ...TEST_FILES,
    ],
    rules: {
      "no-restricted-imports": restrictImports(KOFFI, ...DEEP_SIBLING),
    },
  },

  {
    name: "dp/sys-gateway",
    files: ["packages/core/src/_sys/**"],
    rules: {
      "no-restricted-imports": restrictImports(...DEEP_SIBLING),
    },
  },

  {
    // Tests poke at parsed JSON and tool output; `any` flowing out of
    // `JSON.parse` is fine there (explicit `any` is still an error). They also
    // pass deliberately `async` callbacks to check that an API refuses them.
    name: "dp/tests",
    files: TEST_FILES,
    rules: {
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },

  {
    // A package bin that starts as CommonJS because it runs once per call and
    // Node starts CommonJS sooner than ES modules (dp-cni: a runtime execs
    // it for every container).
    name: "dp/commonjs-bins",
    files: ["packages/*/bin/*.cjs"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { ...NODE_GLOBALS, require: "readonly", module: "readonly", __dirname: "readonly" },
    },
    rules: {
      "@typescript-eslint/no-require-imports": "off",
    },
  },

  {
    name: "dp/config-files",
    files: CONFIG_FILES,
    rules: {
      "no-restricted-syntax": ["error", ...NO_TOP_LEVEL_ARROW, ...TS_API_SHAPE],
    },
  },
);
