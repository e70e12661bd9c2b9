#!/usr/bin/env node
// The project's test command: builds the BPF objects,
// extracts the JSDoc examples into .doctest/ (scripts/doctest.ts), runs every
// vitest project (unit, docs and, as root, kernel and docs-kernel) and ends
// with one plain line "N passed, N failed, N skipped". Extra arguments go to
// vitest.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
process.chdir(root);

// The BPF objects are rebuilt every run (about 1.5 s) so tests never load stale ones.
{
  const built = spawnSync("bash", ["bpf/build.sh"], { stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// Always regenerate the examples so that stale ones never run. When that
// fails (a malformed @example), .doctest/ is left empty and the failure is
// counted in the summary.
const doctest = spawnSync(process.execPath, ["--conditions=@dp/source", "--import", "tsx", "scripts/doctest.ts"], {
  stdio: "inherit",
});
const doctestFailed = doctest.status === 0 ? 0 : 1;

const report = "test-results.json";
rmSync(report, { force: true });
const run = spawnSync(
  process.execPath,
  [
    "node_modules/vitest/vitest.mjs",
    "run",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${report}`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);

let passed = 0;
// Without a report vitest did not get as far as running: count that as one failure.
let failed = 1;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + r.numTodoTests;
  // A file can fail outside its tests (an afterAll leak check, an import
  // error): count each such file once.
  for (const file of r.testResults) {
    const anyFailed = file.assertionResults.some((a) => a.status === "failed");
    if (file.status === "failed" && !anyFailed) failed += 1;
  }
}
failed += doctestFailed;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
