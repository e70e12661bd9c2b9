// Where the `dp` command of this package is: bin/dp.mjs next to the
// package.json named @dp/agent, found from this module upward (works from
// the sources and from the bundled dist/).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The path of `bin/dp.mjs` of @dp/agent.
 *
 * @returns The absolute path.
 * @throws {Error} When the package's bin cannot be found.
 */
export function dpBinPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      const { name } = JSON.parse(readFileSync(pkg, "utf8")) as { name?: string };
      if (name === "@dp/agent") {
        const bin = join(dir, "bin", "dp.mjs");
        if (existsSync(bin)) return bin;
        throw new Error(`Cannot start the agent: ${bin} is missing`);
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("Cannot start the agent: the @dp/agent package directory was not found");
    dir = up;
  }
}
