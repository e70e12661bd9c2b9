// Test support: iproute2 request fixtures (testdata/iproute2/*.json) and the
// normalisation that makes them comparable with dp's requests.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { NetlinkError, type NetlinkMessage, type NetlinkSocket, NetlinkWriter } from "@dp/core";

/** A captured iproute2 command. */
export interface Iproute2Fixture {
  /** The command, such as "ip xfrm policy add dir out". */
  readonly command: string;
  /** Commands run before it in the same fresh namespace. */
  readonly setup: readonly string[];
  /** How it was captured. */
  readonly captured: string;
  /** Every sendmsg buffer, as hex. */
  readonly sendmsg: readonly string[];
  /** Every buffer received (captured with --replies), as hex. */
  readonly recvmsg?: readonly string[];
}

/** Loads `testdata/iproute2/NAME.json`. */
export function loadFixture(name: string): Iproute2Fixture {
  const path = fileURLToPath(new URL(`../testdata/iproute2/${name}.json`, import.meta.url));
  return JSON.parse(readFileSync(path, "utf8")) as Iproute2Fixture;
}

/** Zeroes nlmsg_seq and nlmsg_pid of every message, which differ from run to run. */
export function normalize(bytes: Uint8Array): string {
  const copy = bytes.slice();
  const dv = new DataView(copy.buffer);
  for (let off = 0; off + 16 <= copy.length;) {
    const len = dv.getUint32(off, true);
    dv.setUint32(off + 8, 0, true);
    dv.setUint32(off + 12, 0, true);
    if (len < 16) break;
    off += (len + 3) & ~3;
  }
  return Buffer.from(copy).toString("hex");
}

/**
 * Zeroes the padding after each attribute of a message (iproute2 may leave
 * stack garbage there), from `headerLen` bytes into the payload.
 */
export function zeroPadding(hex: string, headerLen: number): string {
  const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
  const dv = new DataView(bytes.buffer);
  const end = dv.getUint32(0, true);
  for (let off = 16 + headerLen; off + 4 <= end;) {
    const len = dv.getUint16(off, true);
    if (len < 4 || off + len > end) break;
    const next = Math.min(end, off + ((len + 3) & ~3));
    bytes.fill(0, off + len, next);
    off = next;
  }
  return Buffer.from(bytes).toString("hex");
}

/** The fixture's sendmsg buffer that carries a message of `type` (normalised). */
export function fixtureRequest(name: string, type: number): string {
  const f = loadFixture(name);
  for (const hex of f.sendmsg) {
    const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
    if (new DataView(bytes.buffer).getUint16(4, true) === type) return normalize(bytes);
  }
  throw new Error(`Fixture "${name}" has no message of type ${type}`);
}

/** The messages of the fixture's received buffers of `type`. */
export function fixtureReplies(name: string, type: number): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  for (const hex of loadFixture(name).recvmsg ?? []) {
    const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
    const dv = new DataView(bytes.buffer);
    for (let off = 0; off + 16 <= bytes.length;) {
      const len = dv.getUint32(off, true);
      if (len < 16 || off + len > bytes.length) break;
      if (dv.getUint16(off + 4, true) === type) {
        out.push({
          type,
          flags: dv.getUint16(off + 6, true),
          seq: dv.getUint32(off + 8, true),
          pid: dv.getUint32(off + 12, true),
          payload: bytes.slice(off + 16, off + len),
        });
      }
      off += (len + 3) & ~3;
    }
  }
  return out;
}

/** A netlink socket that fails the test on any use (proves no request is sent). */
export function forbiddenSocket(): NetlinkSocket {
  return new Proxy({} as NetlinkSocket, {
    get(_, name) {
      throw new Error(`unexpected netlink socket use: ${String(name)}`);
    },
  });
}

/** Options for {@link recordingSocket}. */
export interface RecordingSocketOptions {
  /** Refuse every request with this errno (and ext-ack text). */
  readonly fail?: { readonly errno: number; readonly extAck?: string };
  /** Answer every request with these messages. */
  readonly reply?: readonly NetlinkMessage[];
}

/** A socket that records every request (and dump), for unit tests of the encoders' callers. */
export function recordingSocket(options: RecordingSocketOptions = {}): { nl: NetlinkSocket; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  let seq = 0;
  const answer = (w: NetlinkWriter | Uint8Array, what: string, op: string): NetlinkMessage[] => {
    sent.push(w instanceof NetlinkWriter ? w.bytes() : w.slice());
    const fail = options.fail;
    if (fail) throw new NetlinkError(`Cannot ${what}`, { op, errno: fail.errno, extAck: fail.extAck });
    return [...(options.reply ?? [])];
  };
  const writer = new NetlinkWriter();
  const nl = {
    writer: () => writer.reset(),
    nextSeq: () => ++seq,
    request: answer,
    dump: answer,
  };
  return { nl: nl as unknown as NetlinkSocket, sent };
}
