import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { TestNetns } from "./netns.ts";

/** One end of a veth pair. */
export interface VethEnd {
  /** The namespace it lives in. */
  readonly ns: TestNetns;
  /** The interface name. */
  readonly name: string;
  /** The interface index inside its namespace. */
  readonly index: number;
  /** The IPv4 address with prefix length, when one was assigned. */
  readonly address: string | undefined;
}

/** A veth pair between two test namespaces. */
export interface VethPair {
  /** The end in the first namespace. */
  readonly a: VethEnd;
  /** The end in the second namespace. */
  readonly b: VethEnd;
}

/** Options for {@link vethPair}. */
export interface VethOptions {
  /**
   * IPv4 address/prefix for end a.
   *
   * @default none
   */
  readonly addressA?: string;
  /**
   * IPv4 address/prefix for end b.
   *
   * @default none
   */
  readonly addressB?: string;
  /**
   * Interface name of end a.
   *
   * @default generated
   */
  readonly nameA?: string;
  /**
   * Interface name of end b.
   *
   * @default generated
   */
  readonly nameB?: string;
}

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function indexOf(ns: TestNetns, name: string): number {
  const out = JSON.parse(ip(["-n", ns.name, "-json", "link", "show", "dev", name])) as { ifindex: number }[];
  return (out[0] as { ifindex: number }).ifindex;
}

/**
 * Creates a veth pair with one end in each namespace, both up, optionally
 * with IPv4 addresses. The pair goes away with its namespaces.
 *
 * @param a The namespace of the first end.
 * @param b The namespace of the second end.
 * @param options Names and addresses.
 * @returns Both ends.
 * @throws {Error} When `ip` fails; nothing is left behind.
 */
export function vethPair(a: TestNetns, b: TestNetns, options: VethOptions = {}): VethPair {
  const tag = randomBytes(3).toString("hex");
  const nameA = options.nameA ?? `va${tag}`;
  const nameB = options.nameB ?? `vb${tag}`;
  ip(["-n", a.name, "link", "add", nameA, "type", "veth", "peer", "name", nameB, "netns", b.name]);
  try {
    if (options.addressA) ip(["-n", a.name, "addr", "add", options.addressA, "dev", nameA]);
    if (options.addressB) ip(["-n", b.name, "addr", "add", options.addressB, "dev", nameB]);
    ip(["-n", a.name, "link", "set", nameA, "up"]);
    ip(["-n", b.name, "link", "set", nameB, "up"]);
    return {
      a: { ns: a, name: nameA, index: indexOf(a, nameA), address: options.addressA },
      b: { ns: b, name: nameB, index: indexOf(b, nameB), address: options.addressB },
    };
  } catch (err) {
    ip(["-n", a.name, "link", "del", nameA]);
    throw err;
  }
}
