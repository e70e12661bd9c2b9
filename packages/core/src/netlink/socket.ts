import { ClosedError, SyscallError } from "../errors.ts";
import { Fd, rawFd } from "../bpf/fd.ts";
import {
  attrString,
  attrU32,
  NLM_F,
  NLMSG,
  NLMSG_HDRLEN,
  type NetlinkMessage,
  NetlinkWriter,
  parseNetlinkAttributes,
  parseNetlinkMessages,
} from "./codec.ts";
import { type Netns, withNetns } from "../network/netns.ts";
import { sys } from "../_sys/sys.ts";
import { type ReadySource, watchReadable } from "../_sys/reactor.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_DONTWAIT = 0x40;
const MSG_TRUNC = 0x20;
const EAGAIN = 11;
const EINTR = 4;
const ENOBUFS = 105;
const NLMSGERR_ATTR_MSG = 1;
const NLMSGERR_ATTR_OFFS = 2;
const DUMP_RETRIES = 10;
const SOCKADDR_NL_SIZE = 12;

const PROTOCOLS = { route: 0, xfrm: 6, generic: 16 } as const;

/** A netlink protocol by name (`NETLINK_ROUTE`, `NETLINK_XFRM`, `NETLINK_GENERIC`), or its number. */
export type NetlinkProtocol = "route" | "xfrm" | "generic" | number;

/** Options for {@link openNetlink}. */
export interface OpenNetlinkOptions {
  /**
   * The network namespace the socket talks to; it stays bound to it for life.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
  /**
   * Multicast groups (numbers, as in `RTNLGRP_*`) to join for events.
   *
   * @default none
   */
  readonly groups?: readonly number[];
  /**
   * Receive buffer size in bytes (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`).
   *
   * @default the system default
   */
  readonly receiveBufferSize?: number;
  /**
   * Enable `NETLINK_GET_STRICT_CHK`, so dump requests are checked strictly
   * and their filters (such as a route table) are applied by the kernel.
   *
   * @default true
   */
  readonly strictCheck?: boolean;
}

/** Options for {@link NetlinkError}. */
export interface NetlinkErrorOptions {
  /** The netlink operation, such as `"RTM_NEWROUTE"`. */
  readonly op: string;
  /** The positive kernel error number. */
  readonly errno: number;
  /** The kernel's extended-ack message, if it sent one. */
  readonly extAck?: string | undefined;
  /** The extended-ack offset of the offending attribute within the request, if sent. */
  readonly extAckOffset?: number | undefined;
  /** The sequence number of the refused request, when known. */
  readonly seq?: number | undefined;
  /** The error that caused this one. */
  readonly cause?: unknown;
}

/**
 * The kernel refused a netlink request. `extAck` carries the kernel's own
 * explanation (`NETLINK_EXT_ACK`), which is also the error's hint.
 *
 * @example The message shape
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkError } from "@dp/core";
 *
 * const err = new NetlinkError('Cannot add route "10.0.0.0/24"', { op: "RTM_NEWROUTE", errno: 19, extAck: "Nexthop device is not up" });
 * assert.equal(err.message, 'Cannot add route "10.0.0.0/24": ENODEV (no such device): Nexthop device is not up');
 * assert.equal(err.code, "ENODEV");
 * ```
 */
export class NetlinkError extends SyscallError {
  override readonly name: string = "NetlinkError";
  /** The kernel's extended-ack message. */
  readonly extAck: string | undefined;
  /** Offset of the offending attribute in the request, when the kernel said. */
  readonly extAckOffset: number | undefined;
  /** The sequence number of the refused request, when known (batches: which message failed). */
  readonly seq: number | undefined;

  /**
   * Creates an error for a refused request.
   *
   * @param what What was being done, such as `Cannot add route "10.0.0.0/24"`.
   * @param options The operation, error number and extended ack.
   */
  constructor(what: string, options: NetlinkErrorOptions) {
    super(what, {
      syscall: "netlink",
      op: options.op,
      errno: options.errno,
      hint: options.extAck,
      cause: options.cause,
    });
    this.extAck = options.extAck;
    this.extAckOffset = options.extAckOffset;
    this.seq = options.seq;
  }
}

/** A batch of messages from {@link NetlinkSocket.receive}. */
export interface NetlinkMessagesReceived {
  /** Always `"messages"`. */
  readonly kind: "messages";
  /** The messages of one datagram, copied. */
  readonly messages: readonly NetlinkMessage[];
}

/** The receive buffer overflowed and the kernel dropped messages. */
export interface NetlinkOverrun {
  /** Always `"overrun"`. */
  readonly kind: "overrun";
}

/** What {@link NetlinkSocket.receive} yields. */
export type NetlinkReceived = NetlinkMessagesReceived | NetlinkOverrun;

/** Options for {@link NetlinkSocket.receive}. */
export interface NetlinkReceiveOptions {
  /**
   * Stops the iteration.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
}

interface ErrorReply {
  readonly errno: number;
  readonly extAck: string | undefined;
  readonly offset: number | undefined;
}

function parseError(msg: NetlinkMessage): ErrorReply {
  const dv = new DataView(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength);
  const errno = -dv.getInt32(0, true);
  let extAck: string | undefined;
  let offset: number | undefined;
  if (msg.flags & NLM_F.ACK_TLVS) {
    // int error, then the original header (capped) or the whole request.
    const origLen = msg.flags & NLM_F.CAPPED ? NLMSG_HDRLEN : dv.getUint32(4, true);
    const tlvs = msg.payload.subarray(4 + ((origLen + 3) & ~3));
    for (const a of parseNetlinkAttributes(tlvs)) {
      if (a.type === NLMSGERR_ATTR_MSG) extAck = attrString(a.data);
      else if (a.type === NLMSGERR_ATTR_OFFS) offset = attrU32(a.data);
    }
  }
  return { errno, extAck, offset };
}

/**
 * A netlink socket bound to one protocol and one network namespace.
 *
 * Requests are synchronous: rtnetlink and xfrm answer while the request is
 * being sent or received, so no call waits for anything (receives use
 * `MSG_DONTWAIT`). Events are asynchronous: {@link NetlinkSocket.receive}
 * waits through the process's reactor (one epoll set and at most one libuv
 * worker thread for every waiting reader) and never blocks the event loop.
 * Only messages the kernel sent (sender port id 0) are accepted; datagrams
 * from other sockets are dropped. `close()` closes the socket.
 *
 * @example Listing links with a dump
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { NLM_F, openNetlink, parseNetlinkAttributes, attrString } from "@dp/core";
 *
 * const RTM_GETLINK = 18;
 * const IFLA_IFNAME = 3;
 * using nl = openNetlink("route");
 * const w = nl.writer();
 * w.begin(RTM_GETLINK, NLM_F.REQUEST | NLM_F.DUMP, nl.nextSeq()).zeros(16);
 * w.end();
 * const links = nl.dump(w, "list links", "RTM_GETLINK");
 * const names = links.map((m) => attrString(parseNetlinkAttributes(m.payload.subarray(16)).find((a) => a.type === IFLA_IFNAME)!.data));
 * assert.ok(names.includes("lo"));
 * ```
 */
export class NetlinkSocket {
  /** The protocol number. */
  readonly protocol: number;
  #fd: Fd;
  #seq: number;
  #buf: Uint8Array = new Uint8Array(64 * 1024);
  #source: ReadySource | undefined;
  #from: Uint8Array = new Uint8Array(SOCKADDR_NL_SIZE);
  #fromLen: Uint32Array = new Uint32Array(1);
  #writer: NetlinkWriter = new NetlinkWriter();

  /**
   * Wraps an open netlink socket.
   *
   * @internal Sockets are opened by {@link openNetlink}.
   * @param fd The socket.
   * @param protocol The protocol number.
   */
  constructor(fd: Fd, protocol: number) {
    this.#fd = fd;
    this.protocol = protocol;
    this.#seq = (Date.now() & 0x3fffffff) >>> 0;
  }

  /** The socket's descriptor. */
  get fd(): Fd {
    return this.#fd;
  }

  /** Whether {@link NetlinkSocket.close} was called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Returns a fresh sequence number. */
  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    return this.#seq;
  }

  /** Returns the socket's reusable writer, emptied. Valid until the next call. */
  writer(): NetlinkWriter {
    return this.#writer.reset();
  }

  /**
   * Sends the messages in `w` (one datagram) and waits for the kernel's
   * answers.
   *
   * Messages that carry `NLM_F_ACK` are waited for (ACK or error); when no
   * message carries it, every message is waited for (its reply or error).
   * The kernel handles a datagram's messages in order, so a batch may ask
   * for an ACK on its last message only: errors of the earlier ones arrive
   * before that ACK and are reported too. That keeps a large batch from
   * overflowing the receive buffer with ACKs.
   *
   * @param w One or more complete messages, each with its own sequence number.
   * @param what What is being done, for errors (`Cannot ${what}`).
   * @param op The operation name, such as `"RTM_NEWROUTE"`.
   * @returns Reply messages (not ACKs), in order.
   * @throws {NetlinkError} For the first message the kernel refused (later ones in the batch were still processed); its `seq` names the message.
   */
  request(w: NetlinkWriter | Uint8Array, what: string, op: string): NetlinkMessage[] {
    const bytes = w instanceof NetlinkWriter ? w.view() : w;
    const sent = parseNetlinkMessages(bytes);
    const acked = sent.filter((m) => (m.flags & NLM_F.ACK) !== 0);
    const pending = new Set((acked.length > 0 ? acked : sent).map((m) => m.seq));
    const ours = new Set(sent.map((m) => m.seq));
    const wantsAck = new Set(acked.map((m) => m.seq));
    this.#send(bytes, what, op);
    const replies: NetlinkMessage[] = [];
    let failure: NetlinkError | undefined;
    while (pending.size > 0) {
      for (const m of this.#recv(what, op, false) ?? []) {
        if (!ours.has(m.seq)) continue;
        if (m.type === NLMSG.ERROR) {
          const e = parseError(m);
          pending.delete(m.seq);
          if (e.errno !== 0 && failure === undefined) {
            failure = new NetlinkError(`Cannot ${what}`, {
              op,
              errno: e.errno,
              extAck: e.extAck,
              extAckOffset: e.offset,
              seq: m.seq,
            });
          }
        } else if (m.type === NLMSG.DONE) {
          if (!wantsAck.has(m.seq)) pending.delete(m.seq);
        } else {
          replies.push(copyMessage(m));
          // A single reply ends a request unless an ACK follows it.
          if ((m.flags & NLM_F.MULTI) === 0 && !wantsAck.has(m.seq)) pending.delete(m.seq);
        }
      }
    }
    if (failure !== undefined) throw failure;
    return replies;
  }

  /**
   * Runs a dump request and collects every part until `NLMSG_DONE`. An
   * interrupted dump (`NLM_F_DUMP_INTR`: the table changed meanwhile) is
   * run again, up to 10 times, then reported.
   *
   * @param w Exactly one dump request (`NLM_F_DUMP`).
   * @param what What is being listed, for errors.
   * @param op The operation name, such as `"RTM_GETROUTE"`.
   * @returns Every reply message, copied.
   * @throws {NetlinkError} When the kernel refuses the dump, or EINTR when it stays inconsistent.
   */
  dump(w: NetlinkWriter | Uint8Array, what: string, op: string): NetlinkMessage[] {
    const bytes = w instanceof NetlinkWriter ? w.bytes() : w;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let attempt = 0; attempt < DUMP_RETRIES; attempt++) {
      const seq = this.nextSeq();
      dv.setUint32(8, seq, true);
      this.#send(bytes, what, op);
      const out: NetlinkMessage[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const m of this.#recv(what, op, false) ?? []) {
          if (m.seq !== seq) continue;
          if (m.flags & NLM_F.DUMP_INTR) interrupted = true;
          if (m.type === NLMSG.DONE) {
            done = true;
          } else if (m.type === NLMSG.ERROR) {
            const e = parseError(m);
            if (e.errno === 0) {
              done = true;
              continue;
            }
            throw new NetlinkError(`Cannot ${what}`, { op, errno: e.errno, extAck: e.extAck, extAckOffset: e.offset });
          } else {
            out.push(copyMessage(m));
          }
        }
      }
      if (!interrupted) return out;
    }
    throw new NetlinkError(`Cannot ${what}: the dump kept changing`, { op, errno: EINTR });
  }

  /**
   * Receives multicast messages (events) as they arrive, waiting through
   * the process's reactor: any number of waiting sockets share one epoll set
   * and at most one libuv worker thread. A receive-buffer overflow (ENOBUFS:
   * events were lost) yields `{ kind: "overrun" }` and the iteration goes
   * on. Datagrams not sent by the kernel (sender port id other than 0) are
   * dropped. The iteration ends when the signal aborts or the socket is
   * closed; a signal that is already aborted yields nothing.
   *
   * @param options The signal that stops the iteration.
   * @returns Batches of messages, copied.
   * @throws {NetlinkError} When receiving fails for another reason.
   * @throws {SyntaxError} When the kernel sent a datagram that does not parse as netlink messages.
   */
  async *receive(options: NetlinkReceiveOptions = {}): AsyncGenerator<NetlinkReceived, void, undefined> {
    const signal = options.signal;
    if (signal?.aborted || this.closed) return;
    const source = (this.#source ??= watchReadable(
      rawFd(this.#fd),
      `events on netlink socket (protocol ${this.protocol})`,
    ));
    for (;;) {
      for (;;) {
        if (signal?.aborted || this.closed) return;
        let batch: NetlinkMessage[] | undefined;
        try {
          batch = this.#recv("receive netlink events", "recvfrom", true);
        } catch (err) {
          if (err instanceof NetlinkError && err.errno === ENOBUFS) {
            yield { kind: "overrun" };
            continue;
          }
          throw err;
        }
        if (batch === undefined) break;
        yield { kind: "messages", messages: batch.map(copyMessage) };
      }
      if (!(await source.wait(signal))) return;
    }
  }

  /** Closes the socket; pending {@link NetlinkSocket.receive} iterations end. Calling it again does nothing. */
  close(): void {
    this.#source?.close();
    this.#fd.close();
  }

  /** Closes the socket (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #send(bytes: Uint8Array, what: string, op: string): void {
    if (this.#fd.closed) throw new ClosedError("netlink socket");
    const s = sys();
    for (;;) {
      const ret = s.sendto(rawFd(this.#fd), bytes, bytes.length, 0, null, 0);
      if (ret === -EINTR) continue;
      if (ret < 0) throw new NetlinkError(`Cannot ${what}: sending failed`, { op, errno: -ret });
      return;
    }
  }

  /**
   * Receives one datagram the kernel sent, dropping any other socket's;
   * undefined when nothing is queued and `poll` is set.
   */
  #recv(what: string, op: string, poll: boolean): NetlinkMessage[] | undefined {
    if (this.#fd.closed) throw new ClosedError("netlink socket");
    const s = sys();
    const from = this.#from;
    const fromLen = this.#fromLen;
    for (;;) {
      from.fill(0);
      fromLen[0] = SOCKADDR_NL_SIZE;
      const ret = s.recvfrom(rawFd(this.#fd), this.#buf, this.#buf.length, MSG_TRUNC | MSG_DONTWAIT, from, fromLen);
      if (ret === -EINTR) continue;
      if (ret === -EAGAIN) {
        if (poll) return undefined;
        throw new NetlinkError(`Cannot ${what}: the kernel sent no answer`, { op, errno: EAGAIN });
      }
      if (ret < 0) throw new NetlinkError(`Cannot ${what}: receiving failed`, { op, errno: -ret });
      if (ret > this.#buf.length) {
        // MSG_TRUNC gave the real size; that datagram is lost. Grow for the
        // next ones and report the loss.
        this.#buf = new Uint8Array(ret);
        throw new NetlinkError(`Cannot ${what}: a ${ret}-byte reply did not fit the receive buffer`, {
          op,
          errno: ENOBUFS,
        });
      }
      // nl_pid of the sender: 0 is the kernel. Another process can send to
      // this socket's port id (or, with CAP_NET_ADMIN, to its groups).
      if (new DataView(from.buffer).getUint32(4, true) !== 0) continue;
      return parseNetlinkMessages(this.#buf, ret);
    }
  }
}

function copyMessage(m: NetlinkMessage): NetlinkMessage {
  return { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid, payload: m.payload.slice() };
}

function setIntOption(fd: number, level: number, name: number, value: number): number {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  return sys().setsockopt(fd, level, name, buf, 4);
}

/**
 * Opens a netlink socket for a protocol, optionally inside another network
 * namespace and joined to multicast groups. Extended acks and capped acks
 * are switched on, so errors carry the kernel's explanation.
 *
 * @param protocol `"route"`, `"xfrm"`, `"generic"` or a protocol number.
 * @param options Namespace, groups, buffer size.
 * @returns The socket.
 * @throws {SyscallError} When the socket cannot be opened, bound or configured.
 * @example A socket in another namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openNetlink } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using nl = openNetlink("route", { netns: ns.ns });
 * assert.equal(nl.protocol, 0);
 * ```
 */
export function openNetlink(protocol: NetlinkProtocol, options: OpenNetlinkOptions = {}): NetlinkSocket {
  const proto = typeof protocol === "number" ? protocol : PROTOCOLS[protocol];
  if (proto === undefined || !Number.isInteger(proto) || proto < 0 || proto > 31) {
    throw new TypeError(`Invalid netlink protocol ${JSON.stringify(protocol)}`);
  }
  const s = sys();
  const open = (): number => s.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
  const ret = options.netns === undefined ? open() : withNetns(options.netns, open);
  if (ret < 0) {
    throw new SyscallError(`Cannot open netlink socket for protocol ${proto}`, {
      syscall: "socket",
      op: "socket",
      errno: -ret,
    });
  }
  const fd = new Fd(ret, `netlink socket (protocol ${proto})`);
  try {
    const fail = (what: string, syscall: string, r: number): never => {
      throw new SyscallError(`Cannot ${what} on netlink socket`, { syscall, op: syscall, errno: -r });
    };
    const sa = new Uint8Array(12);
    new DataView(sa.buffer).setUint16(0, AF_NETLINK, true);
    const b = s.bind(ret, sa, 12);
    if (b < 0) fail("bind", "bind", b);
    for (const opt of [NETLINK_EXT_ACK, NETLINK_CAP_ACK]) setIntOption(ret, SOL_NETLINK, opt, 1);
    if (options.strictCheck ?? true) setIntOption(ret, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    if (options.receiveBufferSize !== undefined) {
      if (setIntOption(ret, SOL_SOCKET, SO_RCVBUFFORCE, options.receiveBufferSize) < 0) {
        const r = setIntOption(ret, SOL_SOCKET, SO_RCVBUF, options.receiveBufferSize);
        if (r < 0) fail("set SO_RCVBUF", "setsockopt", r);
      }
    }
    for (const group of options.groups ?? []) {
      const r = setIntOption(ret, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group);
      if (r < 0) fail(`join multicast group ${group}`, "setsockopt", r);
    }
    return new NetlinkSocket(fd, proto);
  } catch (err) {
    fd.close();
    throw err;
  }
}
