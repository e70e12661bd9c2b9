// Run as an unprivileged user by a kernel test: mountBpffs(dir) must fail
// with EPERM and leave no directory behind. Prints what it threw and
// whether the directory (and its parent, created with it) still exist.
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { mountBpffs, SyscallError } from "@dp/core";

const dir = process.argv[2] as string;
try {
  mountBpffs(dir);
  console.log(JSON.stringify({ mounted: true }));
} catch (err) {
  if (!(err instanceof SyscallError)) throw err;
  console.log(JSON.stringify({ code: err.code, message: err.message, dir: existsSync(dir), parent: existsSync(dirname(dir)) }));
}
