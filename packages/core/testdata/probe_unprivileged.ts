// Run as an unprivileged user by a kernel test: prints, one JSON line each,
// what a map-type probe, loading a BTF-carrying object (whose BTF probes
// run first) and reading a missing object throw.
import { hasMapType, loadCollection, readCollectionSpec, SyscallError } from "@dp/core";

function describe(what: string, fn: () => unknown): void {
  try {
    fn();
    console.log(JSON.stringify({ what, ok: true }));
  } catch (err) {
    const e = err as Error;
    console.log(
      JSON.stringify({
        what,
        name: e.name,
        code: err instanceof SyscallError ? err.code : undefined,
        hint: err instanceof SyscallError ? err.hint : undefined,
        message: e.message,
      }),
    );
  }
}

const object = process.argv[2] as string;
describe("probe", () => hasMapType("lruHash"));
describe("load", () => loadCollection(readCollectionSpec(object)).close());
describe("missing", () => readCollectionSpec(`${object}.missing`));
