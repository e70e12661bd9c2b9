import { afterEach, describe, expect, test } from "vitest";
import { NetlinkError, NetlinkWriter, NLM_F, NLMSG, openNetlink, parseNetlinkMessages } from "@dp/core";
import { setSys, sys, type Sys } from "@dp/core/internal";

/**
 * A gateway whose netlink socket answers each sent datagram with the
 * datagrams `reply` returns (the request's sequence number filled in).
 */
function fakeNetlink(reply: (sent: number, seq: number) => Uint8Array[]): { sys: Sys; sent: Uint8Array[] } {
  const real = sys();
  const queue: Uint8Array[] = [];
  const sent: Uint8Array[] = [];
  const fake: Sys = {
    ...real,
    socket: () => real.open("/dev/null", 0, 0),
    bind: () => 0,
    setsockopt: () => 0,
    sendto(_fd, buf, len) {
      const bytes = buf.slice(0, len);
      sent.push(bytes);
      const seq = parseNetlinkMessages(bytes)[0]?.seq ?? 0;
      queue.push(...reply(sent.length, seq));
      return len;
    },
    recvfrom(_fd, buf) {
      const next = queue.shift();
      if (next === undefined) return -11;
      buf.set(next);
      return next.length;
    },
  };
  return { sys: fake, sent };
}

function message(type: number, flags: number, seq: number, payload: Uint8Array = new Uint8Array(16)): Uint8Array {
  const w = new NetlinkWriter();
  w.begin(type, flags, seq).raw(payload);
  w.end();
  return w.bytes();
}

function ack(seq: number, errno = 0): Uint8Array {
  const p = new Uint8Array(20);
  new DataView(p.buffer).setInt32(0, -errno, true);
  return message(NLMSG.ERROR, NLM_F.CAPPED, seq, p);
}

function dumpRequest(): NetlinkWriter {
  const w = new NetlinkWriter();
  w.begin(18, NLM_F.REQUEST | NLM_F.DUMP).zeros(16);
  w.end();
  return w;
}

afterEach(() => {
  setSys(undefined);
});

describe("NetlinkSocket.dump() with an interrupted dump", () => {
  test("runs the dump again when a part carries NLM_F_DUMP_INTR", () => {
    const fake = fakeNetlink((n, seq) => [
      message(16, NLM_F.MULTI | (n === 1 ? NLM_F.DUMP_INTR : 0), seq),
      message(NLMSG.DONE, NLM_F.MULTI, seq, new Uint8Array(4)),
    ]);
    setSys(fake.sys);
    using nl = openNetlink("route");
    expect(nl.dump(dumpRequest(), "list links", "RTM_GETLINK")).toHaveLength(1);
    expect(fake.sent).toHaveLength(2);
    // Each attempt uses a fresh sequence number.
    const seqs = fake.sent.map((b) => parseNetlinkMessages(b)[0]?.seq);
    expect(new Set(seqs).size).toBe(2);
  });

  test("reports a dump that stays inconsistent as EINTR", () => {
    const fake = fakeNetlink((_, seq) => [
      message(16, NLM_F.MULTI | NLM_F.DUMP_INTR, seq),
      message(NLMSG.DONE, NLM_F.MULTI, seq, new Uint8Array(4)),
    ]);
    setSys(fake.sys);
    using nl = openNetlink("route");
    expect(() => nl.dump(dumpRequest(), "list links", "RTM_GETLINK")).toThrow(
      /^Cannot list links: the dump kept changing: EINTR/,
    );
    expect(fake.sent).toHaveLength(10);
  });
});

describe("NetlinkSocket.request() with a batch", () => {
  test("waits for the acknowledged message and reports the first refusal with its sequence number", () => {
    const fake = fakeNetlink((_, seq) => [ack(seq + 1, 17), ack(seq + 2, 0)]);
    setSys(fake.sys);
    using nl = openNetlink("route");
    const w = new NetlinkWriter();
    const first = nl.nextSeq();
    w.begin(24, NLM_F.REQUEST, first).zeros(12);
    w.end();
    w.begin(24, NLM_F.REQUEST, nl.nextSeq()).zeros(12);
    w.end();
    w.begin(24, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq()).zeros(12);
    w.end();
    try {
      nl.request(w, "add routes", "RTM_NEWROUTE");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(NetlinkError);
      expect((err as NetlinkError).seq).toBe(first + 1);
      expect((err as NetlinkError).code).toBe("EEXIST");
    }
  });

  test("a reply that never comes is an EAGAIN error, not a hang", () => {
    const fake = fakeNetlink(() => []);
    setSys(fake.sys);
    using nl = openNetlink("route");
    const w = new NetlinkWriter();
    w.begin(18, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq()).zeros(16);
    w.end();
    expect(() => nl.request(w, "get link", "RTM_GETLINK")).toThrow(/the kernel sent no answer: EAGAIN/);
  });
});
