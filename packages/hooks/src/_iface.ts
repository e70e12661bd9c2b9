// Interface names and indexes, resolved in a chosen network namespace, with
// errors that name the interface and the namespace.
import { interfaceIndex, interfaceName, type Netns, SyscallError, withNetns } from "@dp/core";

const ENODEV = 19;
/** `IFNAMSIZ` minus the NUL. */
const MAX_NAME = 15;

/** An interface by index and name. */
export interface ResolvedInterface {
  /** The interface index in its namespace. */
  readonly index: number;
  /** The interface name. */
  readonly name: string;
}

/**
 * Checks the shape of an interface reference without any system call.
 *
 * @param iface A name or an index.
 * @throws {TypeError} When it is neither a string nor a number.
 * @throws {RangeError} When the name is empty, too long or has spaces or "/", or the index is not a positive integer.
 */
export function checkInterfaceRef(iface: unknown): asserts iface is string | number {
  if (typeof iface === "number") {
    if (!Number.isInteger(iface) || iface < 1 || iface > 0x7fff_ffff)
      throw new RangeError(`Invalid interface index ${iface}`);
    return;
  }
  if (typeof iface !== "string") throw new TypeError(`Invalid interface ${String(iface)}: use a name or an index`);
  if (iface.length === 0 || iface.length > MAX_NAME || /[\s/:]/.test(iface)) {
    throw new RangeError(
      `Invalid interface name ${JSON.stringify(iface)}: use 1-${MAX_NAME} characters without spaces, "/" or ":"`,
    );
  }
}

/** Describes a namespace for messages. */
export function netnsText(netns: Netns | undefined): string {
  if (netns === undefined) return "";
  return ` in network namespace ${JSON.stringify(netns.name ?? netns.path)}`;
}

/**
 * Resolves an interface name or index in a namespace.
 *
 * @param iface A name or an index.
 * @param netns The namespace, default the calling thread's.
 * @param what What is being done, for the error (`Cannot ${what}`).
 * @returns Index and name.
 * @throws {SyscallError} ENODEV naming the interface when there is none.
 */
export function resolveInterface(iface: string | number, netns: Netns | undefined, what: string): ResolvedInterface {
  checkInterfaceRef(iface);
  const look = (): ResolvedInterface | undefined => {
    if (typeof iface === "number") {
      const name = interfaceName(iface);
      return name === undefined ? undefined : { index: iface, name };
    }
    const index = interfaceIndex(iface);
    return index === undefined ? undefined : { index, name: iface };
  };
  const found = netns === undefined ? look() : withNetns(netns, look);
  if (found === undefined) {
    const ref = typeof iface === "number" ? `with index ${iface}` : JSON.stringify(iface);
    throw new SyscallError(`Cannot ${what}: no interface ${ref}${netnsText(netns)}`, {
      syscall: "ioctl",
      op: typeof iface === "number" ? "SIOCGIFNAME" : "SIOCGIFINDEX",
      errno: ENODEV,
    });
  }
  return found;
}
