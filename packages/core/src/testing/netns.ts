import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createNetns, deleteNetns, type Netns, withNetns } from "../network/netns.ts";

/** Options for {@link netns}. */
export interface NetnsOptions {
  /**
   * A short label put into the generated name (letters and digits).
   *
   * @default "t"
   */
  readonly label?: string;
  /**
   * Bring `lo` up.
   *
   * @default true
   */
  readonly loopbackUp?: boolean;
}

const live = new Set<string>();
let hooked = false;

function cleanupAll(): void {
  for (const name of live) {
    try {
      deleteNetns(name);
    } catch {
      // best effort at exit
    }
  }
  live.clear();
}

/**
 * A network namespace owned by a test: uniquely named, removed on dispose
 * (and at process exit if a test never got that far).
 *
 * @example Two namespaces in one test
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { netns } from "@dp/core/testing";
 *
 * using a = netns();
 * using b = netns();
 * assert.notEqual(a.name, b.name);
 * ```
 */
export class TestNetns {
  /** The namespace's name under /run/netns. */
  readonly name: string;
  /** The open namespace. */
  readonly ns: Netns;

  /**
   * Wraps a created namespace.
   *
   * @internal Made by {@link netns}.
   * @param name The name.
   * @param ns The open namespace.
   */
  constructor(name: string, ns: Netns) {
    this.name = name;
    this.ns = ns;
  }

  /**
   * Runs a synchronous function inside the namespace.
   *
   * @typeParam T The function's result.
   * @param fn The function.
   * @returns What `fn` returned.
   */
  run<T>(fn: () => T): T {
    return withNetns(this.ns, fn);
  }

  /**
   * Runs a command inside the namespace (`ip netns exec`) and returns its standard output.
   *
   * @param command The program, such as `"ip"` or `"ping"`.
   * @param args Its arguments.
   * @returns Standard output.
   * @throws {Error} When the command exits non-zero; the message includes its standard error.
   */
  exec(command: string, args: readonly string[] = []): string {
    try {
      return execFileSync("ip", ["netns", "exec", this.name, command, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 60_000,
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(
        `Command failed in netns "${this.name}": ${command} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Deletes the namespace. Calling it again does nothing. */
  close(): void {
    if (!live.has(this.name)) return;
    live.delete(this.name);
    this.ns.close();
    deleteNetns(this.name);
  }

  /** Deletes the namespace (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Creates a network namespace for a test, with a name no other test or
 * process can collide with (`dpt-<label>-<pid>-<random>`).
 *
 * @param options Name label and loopback state.
 * @returns The namespace; dispose it with `using` or `close()`.
 */
export function netns(options: NetnsOptions = {}): TestNetns {
  if (!hooked) {
    hooked = true;
    process.once("exit", cleanupAll);
  }
  const label = (options.label ?? "t").replace(/[^A-Za-z0-9]/g, "").slice(0, 12) || "t";
  const name = `dpt-${label}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const ns = createNetns(name);
  live.add(name);
  const t = new TestNetns(name, ns);
  try {
    if (options.loopbackUp ?? true) t.exec("ip", ["link", "set", "lo", "up"]);
  } catch (err) {
    t.close();
    throw err;
  }
  return t;
}
