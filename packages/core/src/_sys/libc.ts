// The real gateway: glibc through koffi. This is the only module that
// imports koffi. Functions are declared once with fixed prototypes so that
// each call converts plain numbers and typed arrays in place: no per-call
// type parsing, no pointer wrapper objects, no copies of typed arrays.
import koffi from "koffi";
import type { Sys } from "./types.ts";

const NR_BPF = 321;
const NR_GETTID = 186;
const NR_BPF_ARM64 = 280;
const NR_GETTID_ARM64 = 178;
const EPOLL_CLOEXEC = 0o2000000;
// struct epoll_event { u32 events; u64 data; } is packed on x86-64 (12
// bytes, data at 4) and naturally aligned on arm64 (16 bytes, data at 8).

/** Builds the gateway over the C library. */
export function createLibcSys(): Sys {
  const libc = koffi.load("libc.so.6");
  const arm = process.arch === "arm64";
  const nrBpf = arm ? NR_BPF_ARM64 : NR_BPF;
  const nrGettid = arm ? NR_GETTID_ARM64 : NR_GETTID;
  const epollEventSize = arm ? 16 : 12;
  const epollDataOffset = arm ? 8 : 4;

  // syscall(2) is variadic in C; every argument here is an integer-class
  // value, which the x86-64 and AAPCS64 conventions pass identically for
  // fixed and variadic calls.
  const syscall3 = libc.func("long syscall(long nr, long a, uintptr_t b, long c)");
  const syscall0 = libc.func("long syscall(long nr)");
  const close = libc.func("int close(int fd)");
  const fcntl = libc.func("int fcntl(int fd, int cmd, int arg)");
  const open = libc.func("int open(const char *path, int flags, uint32_t mode)");
  const unlink = libc.func("int unlink(const char *path)");
  const setns = libc.func("int setns(int fd, int nstype)");
  const unshare = libc.func("int unshare(int flags)");
  const mount = libc.func(
    "int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)",
  );
  const umount2 = libc.func("int umount2(const char *target, int flags)");
  const statfs = libc.func("int statfs(const char *path, _Out_ void *buf)");
  const mmap = libc.func("uintptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)");
  const munmap = libc.func("int munmap(uintptr_t addr, size_t length)");
  const socket = libc.func("int socket(int domain, int type, int protocol)");
  const bind = libc.func("int bind(int fd, void *addr, uint32_t addrlen)");
  const getsockname = libc.func("int getsockname(int fd, void *addr, void *addrlen)");
  const sendto = libc.func("intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, uint32_t addrlen)");
  const recvfrom = libc.func("intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addrlen)");
  const setsockopt = libc.func("int setsockopt(int fd, int level, int name, void *value, uint32_t len)");
  const getsockopt = libc.func("int getsockopt(int fd, int level, int name, void *value, void *len)");
  const poll = libc.func("int poll(void *fds, unsigned long nfds, int timeout)");
  const epollCreate1 = libc.func("int epoll_create1(int flags)");
  const epollCtl = libc.func("int epoll_ctl(int epfd, int op, int fd, void *event)");
  const epollWait = libc.func("int epoll_wait(int epfd, void *events, int maxevents, int timeout)");
  const eventfd = libc.func("int eventfd(unsigned int initval, int flags)");
  const read = libc.func("intptr_t read(int fd, void *buf, size_t len)");
  const write = libc.func("intptr_t write(int fd, void *buf, size_t len)");
  const ifNameToIndex = libc.func("unsigned int if_nametoindex(const char *name)");
  const ifIndexToName = libc.func("const char *if_indextoname(unsigned int index, _Out_ void *buf)");
  // memset(p, 0, 0) returns p untouched: declared twice, it converts a typed
  // array to its address and an address to a koffi pointer.
  const memset = libc.func("uintptr_t memset(void *s, int c, size_t n)");
  const toPointer = libc.func("void *memset(uintptr_t s, int c, size_t n)");

  const statfsBuf = new Uint8Array(120);
  const statfsView = new DataView(statfsBuf.buffer);
  const nameBuf = new Uint8Array(16);

  function check(ret: number): number {
    return ret < 0 ? -koffi.errno() : ret;
  }

  return {
    bpf(cmd, attr, size) {
      const ret = syscall3(nrBpf, cmd, attr, size) as number;
      return ret < 0 ? -koffi.errno() : ret;
    },
    close: (fd) => check(close(fd) as number),
    fcntl: (fd, cmd, arg) => check(fcntl(fd, cmd, arg) as number),
    open: (path, flags, mode) => check(open(path, flags, mode) as number),
    unlink: (path) => check(unlink(path) as number),
    setns: (fd, nstype) => check(setns(fd, nstype) as number),
    unshare: (flags) => check(unshare(flags) as number),
    mount: (source, target, fstype, flags, data) => check(mount(source, target, fstype, flags, data) as number),
    umount2: (target, flags) => check(umount2(target, flags) as number),
    statfsType(path) {
      const ret = statfs(path, statfsBuf) as number;
      if (ret < 0) return -koffi.errno();
      return Number(statfsView.getBigInt64(0, true) & 0xffffffffn);
    },
    gettid: () => syscall0(nrGettid) as number,
    mmap(length, prot, flags, fd, offset) {
      const addr = Number(mmap(0, length, prot, flags, fd, offset));
      // MAP_FAILED is (void *)-1: far above any user-space address.
      return addr > Number.MAX_SAFE_INTEGER ? -koffi.errno() : addr;
    },
    munmap: (addr, length) => check(munmap(addr, length) as number),
    view: (addr, length) => koffi.view(toPointer(addr, 0, 0), length),
    socket: (domain, type, protocol) => check(socket(domain, type, protocol) as number),
    bind: (fd, addr, addrlen) => check(bind(fd, addr, addrlen) as number),
    getsockname: (fd, addr, len) => check(getsockname(fd, addr, len) as number),
    sendto: (fd, buf, len, flags, addr, addrlen) => check(Number(sendto(fd, buf, len, flags, addr, addrlen))),
    recvfrom: (fd, buf, len, flags, addr, addrlen) => check(Number(recvfrom(fd, buf, len, flags, addr, addrlen))),
    setsockopt: (fd, level, name, value, len) => check(setsockopt(fd, level, name, value, len) as number),
    getsockopt: (fd, level, name, value, len) => check(getsockopt(fd, level, name, value, len) as number),
    poll: (fds, nfds, timeout) => check(poll(fds, nfds, timeout) as number),
    epollCreate: () => check(epollCreate1(EPOLL_CLOEXEC) as number),
    epollCtl(epfd, op, fd, events, token) {
      const ev = new Uint8Array(epollEventSize);
      const dv = new DataView(ev.buffer);
      dv.setUint32(0, events >>> 0, true);
      dv.setUint32(epollDataOffset, token >>> 0, true);
      return check(epollCtl(epfd, op, fd, ev) as number);
    },
    epollWaitAsync(epfd, ready, timeout) {
      const max = ready.length >>> 1;
      const raw = new Uint8Array(max * epollEventSize);
      return new Promise((resolve, reject) => {
        epollWait.async(epfd, raw, max, timeout, (err: unknown, ret: number) => {
          if (err) {
            reject(err instanceof Error ? err : new Error("epoll_wait() failed on a worker thread"));
            return;
          }
          const dv = new DataView(raw.buffer);
          for (let i = 0; i < ret; i++) {
            ready[2 * i] = dv.getUint32(i * epollEventSize, true);
            ready[2 * i + 1] = dv.getUint32(i * epollEventSize + epollDataOffset, true);
          }
          resolve(ret);
        });
      });
    },
    eventfd: (initval, flags) => check(eventfd(initval, flags) as number),
    read: (fd, buf, len) => check(Number(read(fd, buf, len))),
    write: (fd, buf, len) => check(Number(write(fd, buf, len))),
    ifNameToIndex: (name) => ifNameToIndex(name) as number,
    ifIndexToName(index) {
      const ret = ifIndexToName(index, nameBuf) as string | null;
      return ret ?? null;
    },
    addressOf: (buf) => memset(buf, 0, 0) as number,
  };
}
