// Test fixture: a raw AF_PACKET socket bound to one interface inside a test
// namespace, to put built frames on a veth and to read what the kernel on
// the other side sends back. The peer kernel's replies are the oracle for
// checksums: it answers an echo request, a SYN to a closed port or a
// datagram to a closed port only when every checksum is right.
import { execFileSync } from "node:child_process";
import type { Fd } from "@dp/core";
import { openSocket, rawFd, sys } from "@dp/core/internal";
import type { TestNetns } from "@dp/core/testing";

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_ALL_BE = 0x0300; // htons(ETH_P_ALL) as the host-order protocol argument
const PACKET_OUTGOING = 4;
const POLLIN = 1;
const MSG_DONTWAIT = 0x40;

/** The MAC address of an interface in a namespace. */
export function macOf(ns: TestNetns, ifname: string): string {
  const out = JSON.parse(ns.exec("ip", ["-json", "link", "show", "dev", ifname])) as { address: string }[];
  return (out[0] as { address: string }).address;
}

/** Reads one netns's /proc/net/snmp (and snmp6) counters as "Group.Name" → value. */
export function snmpCounters(ns: TestNetns): Map<string, number> {
  const counters = new Map<string, number>();
  const snmp = ns.exec("cat", ["/proc/net/snmp"]).trim().split("\n");
  for (let i = 0; i + 1 < snmp.length; i += 2) {
    const names = (snmp[i] as string).split(/\s+/);
    const values = (snmp[i + 1] as string).split(/\s+/);
    const group = (names[0] as string).replace(/:$/, "");
    for (let k = 1; k < names.length; k++) counters.set(`${group}.${names[k]}`, Number(values[k]));
  }
  for (const line of ns.exec("cat", ["/proc/net/snmp6"]).trim().split("\n")) {
    const [name, value] = line.split(/\s+/);
    if (name !== undefined && value !== undefined) counters.set(name, Number(value));
  }
  return counters;
}

/** A raw packet socket on one interface of a namespace. */
export class PacketSocket {
  readonly #fd: Fd;
  readonly #buf = new Uint8Array(65536);

  /**
   * Opens the socket inside `ns` and binds it to `ifname`.
   *
   * @param ns The namespace.
   * @param ifname The interface.
   */
  constructor(ns: TestNetns, ifname: string) {
    const ifindex = Number(
      execFileSync("ip", ["-n", ns.name, "-json", "link", "show", "dev", ifname], { encoding: "utf8" }).match(
        /"ifindex":(\d+)/,
      )?.[1],
    );
    this.#fd = ns.run(() => openSocket(AF_PACKET, SOCK_RAW, ETH_P_ALL_BE, "packet socket"));
    const sll = new Uint8Array(20);
    const dv = new DataView(sll.buffer);
    dv.setUint16(0, AF_PACKET, true);
    dv.setUint16(2, 0x0003, false);
    dv.setInt32(4, ifindex, true);
    if (sys().bind(rawFd(this.#fd), sll, sll.length) < 0) {
      this.#fd.close();
      throw new Error(`Cannot bind a packet socket to "${ifname}"`);
    }
  }

  /** Sends one frame as it is. */
  send(frame: Uint8Array): void {
    const copy = frame.slice();
    const n = sys().sendto(rawFd(this.#fd), copy, copy.length, 0, null, 0);
    if (n !== frame.length) throw new Error(`Cannot send a ${frame.length}-byte frame on a packet socket: ${n}`);
  }

  /**
   * Drops whatever arrived so far.
   */
  drain(): void {
    while (sys().recvfrom(rawFd(this.#fd), this.#buf, this.#buf.length, MSG_DONTWAIT, null, null) > 0) {
      // discard
    }
  }

  /**
   * Waits for an incoming frame (not one this host sent) that `match` accepts.
   *
   * @returns The frame, or `undefined` after `timeoutMs`.
   */
  receive(match: (frame: Uint8Array) => boolean, timeoutMs = 2000): Uint8Array | undefined {
    const deadline = Date.now() + timeoutMs;
    const pfd = new Uint8Array(8);
    const pdv = new DataView(pfd.buffer);
    const addr = new Uint8Array(20);
    const addrLen = new Uint32Array(1);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      pdv.setInt32(0, rawFd(this.#fd), true);
      pdv.setInt16(4, POLLIN, true);
      pdv.setInt16(6, 0, true);
      if (sys().poll(pfd, 1, left) <= 0) continue;
      addrLen[0] = addr.length;
      const n = sys().recvfrom(rawFd(this.#fd), this.#buf, this.#buf.length, MSG_DONTWAIT, addr, addrLen);
      if (n <= 0) continue;
      if (addr[10] === PACKET_OUTGOING) continue;
      const frame = this.#buf.slice(0, n);
      if (match(frame)) return frame;
    }
  }

  /** Closes the socket. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the socket (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
