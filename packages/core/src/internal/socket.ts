import { SyscallError } from "../errors.ts";
import { Fd } from "../bpf/fd.ts";
import { sys } from "../_sys/sys.ts";

const SOCK_CLOEXEC = 0o2000000;

/** Opens a socket (close-on-exec) owned by an {@link Fd}. */
export function openSocket(domain: number, type: number, protocol: number, what: string): Fd {
  const ret = sys().socket(domain, type | SOCK_CLOEXEC, protocol);
  if (ret < 0) throw new SyscallError(`Cannot open ${what}`, { syscall: "socket", op: "socket", errno: -ret });
  return new Fd(ret, what);
}
