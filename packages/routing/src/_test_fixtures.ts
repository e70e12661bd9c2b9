// Test support: iproute2 request fixtures (testdata/iproute2/*.json) and the
// normalisation that makes them comparable with dp's requests.
import { readFileSync } from "node:fs";
import { NetlinkError, type NetlinkMessage, type NetlinkSocket, NetlinkWriter } from "@dp/core";
import { RTM } from "@dp/core/internal";
import { fileURLToPath } from "node:url";

/** A captured iproute2 command. */
export interface Iproute2Fixture {
  /** The command, such as "ip route add 10.0.0.0/24 dev d0". */
  readonly command: string;
  /** Commands run before it in the same fresh namespace. */
  readonly setup: readonly string[];
  /** How it was captured. */
  readonly captured: string;
  /** Every sendmsg buffer, as hex. */
  readonly sendmsg: readonly string[];
  /** Every buffer received (captured with --replies), as hex, link dumps left out. */
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
 * Zeroes the padding after each attribute of a message (iproute2 leaves
 * stack garbage there), from `headerLen` bytes into the payload, entering
 * attributes flagged `NLA_F_NESTED` and those in `nested`.
 */
export function zeroPadding(hex: string, headerLen: number, nested: readonly number[] = []): string {
  const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
  const dv = new DataView(bytes.buffer);
  const walk = (start: number, end: number): void => {
    for (let off = start; off + 4 <= end;) {
      const len = dv.getUint16(off, true);
      const type = dv.getUint16(off + 2, true);
      if (len < 4 || off + len > end) return;
      if ((type & 0x8000) !== 0 || nested.includes(type & 0x3fff)) walk(off + 4, off + len);
      const next = Math.min(end, off + ((len + 3) & ~3));
      bytes.fill(0, off + len, next);
      off = next;
    }
  };
  walk(16 + headerLen, dv.getUint32(0, true));
  return Buffer.from(bytes).toString("hex");
}

/** The fixture's sendmsg buffer that carries a message of `type` (normalised): the first, or the last. */
export function fixtureRequest(name: string, type: number, pick: "first" | "last" = "first"): string {
  const f = loadFixture(name);
  for (const hex of pick === "first" ? f.sendmsg : [...f.sendmsg].reverse()) {
    const bytes = Uint8Array.from(Buffer.from(hex, "hex"));
    if (new DataView(bytes.buffer).getUint16(4, true) === type) return normalize(bytes);
  }
  throw new Error(`Fixture "${name}" has no message of type ${type}`);
}

/** A netlink socket that fails the test on any use (proves no request is sent). */
export function forbiddenSocket(): NetlinkSocket {
  return new Proxy({} as NetlinkSocket, {
    get(_, name) {
      throw new Error(`unexpected netlink socket use: ${String(name)}`);
    },
  });
}

/** In the capture namespace, `ip link add d0 type veth peer name d1` makes d1 index 2 and d0 index 3. */
export const CAPTURE_D0 = 3;

/** Options for {@link recordingSocket}. */
export interface RecordingSocketOptions {
  /** Refuse every recorded request with this errno (and ext-ack text). */
  readonly fail?: { readonly errno: number; readonly extAck?: string };
  /** Answer every recorded request with this message. */
  readonly reply?: NetlinkMessage;
}

/**
 * A socket that answers RTM_GETLINK with index {@link CAPTURE_D0} and
 * records every other request, for unit tests of the encoders' callers.
 */
export function recordingSocket(options: RecordingSocketOptions = {}): { nl: NetlinkSocket; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  const nl = {
    writer: () => new NetlinkWriter(),
    nextSeq: () => 1,
    request(w: NetlinkWriter, what: string, op: string): NetlinkMessage[] {
      const bytes = w.bytes();
      const type = new DataView(bytes.buffer).getUint16(4, true);
      if (type === RTM.GETLINK) {
        const payload = new Uint8Array(16);
        new DataView(payload.buffer).setInt32(4, CAPTURE_D0, true);
        return [{ type: RTM.NEWLINK, flags: 0, seq: 1, pid: 0, payload }];
      }
      sent.push(bytes);
      const fail = options.fail;
      if (fail) throw new NetlinkError(`Cannot ${what}`, { op, errno: fail.errno, extAck: fail.extAck });
      return options.reply === undefined ? [] : [options.reply];
    },
  };
  return { nl: nl as unknown as NetlinkSocket, sent };
}
