// Run as an unprivileged user by a kernel test: prints what openLedger()
// throws for a directory under /sys/fs/bpf, which only root may look into.
import { SyscallError } from "@dp/core";
import { openLedger } from "@dp/hooks";

try {
  openLedger(process.argv[2] as string).close();
  console.log(JSON.stringify({ opened: true }));
} catch (err) {
  const e = err as Error;
  console.log(
    JSON.stringify({
      name: e.name,
      code: err instanceof SyscallError ? err.code : undefined,
      hint: err instanceof SyscallError ? err.hint : undefined,
      message: e.message,
    }),
  );
}
