// Runs one example by name: `npm run example -- <name>` (as root). The npm
// script runs this file with the "@dp/source" condition and tsx, so the
// @dp/* packages resolve to their TypeScript sources in this checkout.
import { existsSync, readdirSync } from "node:fs";

const names = readdirSync(new URL(".", import.meta.url), { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(new URL(`./${e.name}/main.ts`, import.meta.url)))
  .map((e) => e.name)
  .sort();
const name = process.argv[2];
if (name === undefined || !names.includes(name)) {
  const why = name === undefined ? "no example named" : `no example ${JSON.stringify(name)}`;
  console.error(`npm run example -- <name>: ${why}; the examples are ${names.join(", ")}`);
  process.exit(2);
}
await import(`./${name}/main.ts`);
