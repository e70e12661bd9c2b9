// Run as an unprivileged user by a kernel test: prints what createMap() throws.
import { createMap, SyscallError } from "@dp/core";

try {
  createMap({ name: "unpriv", type: "hash", keySize: 4, valueSize: 4, maxEntries: 1 });
  console.log("created");
} catch (err) {
  if (!(err instanceof SyscallError)) throw err;
  console.log(JSON.stringify({ code: err.code, hint: err.hint, message: err.message }));
}
