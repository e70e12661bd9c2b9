// The system call gateway's interface. Every method returns the call's
// result when it is >= 0 and the negated errno when it failed, so hot paths
// never allocate an exception object for an expected failure (ENOENT on a
// missing key). Pointers are plain numbers: user-space addresses on x86-64
// and arm64 fit in 53 bits.

/** The operating-system calls @dp/core makes, injectable for unit tests. */
export interface Sys {
  /** `bpf(cmd, attr, size)` */
  bpf(cmd: number, attr: number, size: number): number;
  /** `close(fd)` */
  close(fd: number): number;
  /** `fcntl(fd, cmd, arg)` */
  fcntl(fd: number, cmd: number, arg: number): number;
  /** `open(path, flags, mode)` */
  open(path: string, flags: number, mode: number): number;
  /** `unlink(path)` */
  unlink(path: string): number;
  /** `setns(fd, nstype)` */
  setns(fd: number, nstype: number): number;
  /** `unshare(flags)` */
  unshare(flags: number): number;
  /** `mount(source, target, fstype, flags, data)` */
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  /** `umount2(target, flags)` */
  umount2(target: string, flags: number): number;
  /** `statfs(path)`: returns the filesystem magic (`f_type`) or -errno. */
  statfsType(path: string): number;
  /** `gettid()` */
  gettid(): number;
  /** `mmap(NULL, length, prot, flags, fd, offset)`: returns the address or -errno. */
  mmap(length: number, prot: number, flags: number, fd: number, offset: number): number;
  /** `munmap(addr, length)` */
  munmap(addr: number, length: number): number;
  /** Views `length` bytes of native memory at `addr` without copying. */
  view(addr: number, length: number): ArrayBuffer;
  /** `socket(domain, type, protocol)` */
  socket(domain: number, type: number, protocol: number): number;
  /** `bind(fd, addr, addrlen)` with a sockaddr in `addr`. */
  bind(fd: number, addr: Uint8Array, addrlen: number): number;
  /** `getsockname(fd, addr, &len)`: `len` is a one-element array, in and out. */
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  /** `sendto(fd, buf, len, flags, addr, addrlen)`; `addr` may be null. */
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, addrlen: number): number;
  /** `recvfrom(fd, buf, len, flags, addr, &addrlen)`; `addr` and `addrlen` may be null. */
  recvfrom(
    fd: number,
    buf: Uint8Array,
    len: number,
    flags: number,
    addr: Uint8Array | null,
    addrlen: Uint32Array | null,
  ): number;
  /** `setsockopt(fd, level, name, value, len)` */
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  /** `getsockopt(fd, level, name, value, &len)` */
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint32Array): number;
  /** `if_nametoindex(name)`: 0 when there is no such interface. */
  ifNameToIndex(name: string): number;
  /** `if_indextoname(index)`: null when there is no such interface. */
  ifIndexToName(index: number): string | null;
  /** `poll(fds, nfds, timeout)` over `struct pollfd` records in `fds`. */
  poll(fds: Uint8Array, nfds: number, timeout: number): number;
  /** `epoll_create1(EPOLL_CLOEXEC)` */
  epollCreate(): number;
  /**
   * `epoll_ctl(epfd, op, fd, &{ events, data: token })`: the event's data is
   * the 32-bit `token`, which {@link Sys.epollWaitAsync} reports back.
   */
  epollCtl(epfd: number, op: number, fd: number, events: number, token: number): number;
  /**
   * `epoll_wait()` on a libuv worker thread, so the event loop keeps
   * running. Fills `ready` with `[events, token]` pairs (at most
   * `ready.length / 2` of them) and resolves with their count, or with a
   * negative number when the call failed (errno is not kept).
   */
  epollWaitAsync(epfd: number, ready: Uint32Array, timeout: number): Promise<number>;
  /** `eventfd(initval, flags)` */
  eventfd(initval: number, flags: number): number;
  /** `read(fd, buf, len)` */
  read(fd: number, buf: Uint8Array, len: number): number;
  /** `write(fd, buf, len)` */
  write(fd: number, buf: Uint8Array, len: number): number;
  /** The address of a typed array's first byte. The array must be backed by an `ArrayBuffer` it owns. */
  addressOf(buf: Uint8Array): number;
}
