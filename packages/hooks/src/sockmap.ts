// sk_msg and sk_skb programs on a sockmap or sockhash (BPF_PROG_ATTACH):
// they run for the sockets stored in the map, to redirect data between
// them (Cilium's socket-level acceleration of local traffic).
import {
  attachProgram,
  BpfProgram,
  ClosedError,
  detachProgram,
  type Fd,
  programById,
  type ProgramType,
  queryPrograms,
  SyscallError,
} from "@dp/core";
import { SockHash, SockMap } from "@dp/maps";
import type { Link } from "./link.ts";

/**
 * A sockmap hook: `"skMsgVerdict"` runs an sk_msg program on every
 * `sendmsg()` of the map's sockets; `"skSkbStreamParser"` and
 * `"skSkbStreamVerdict"` (or `"skSkbVerdict"`, without a parser) run sk_skb
 * programs on the data they receive.
 *
 * @useDeclaredType
 */
export type SockmapAttachType = "skMsgVerdict" | "skSkbStreamParser" | "skSkbStreamVerdict" | "skSkbVerdict";

/** The program type each sockmap hook runs. */
const SOCKMAP_HOOKS: Readonly<Record<SockmapAttachType, ProgramType>> = {
  skMsgVerdict: "skMsg",
  skSkbStreamParser: "skSkb",
  skSkbStreamVerdict: "skSkb",
  skSkbVerdict: "skSkb",
};

/** A socket map or socket hash, the only maps sk_msg and sk_skb programs attach to. */
export type SocketMap = SockMap | SockHash<unknown>;

/** Options for {@link attachSockmap}. */
export interface SockmapOptions {
  /**
   * Replace a program already attached to the map's hook. Without it,
   * attaching where another program is attached fails with EBUSY (the
   * kernel itself would silently swap it).
   *
   * @default false
   */
  readonly replace?: boolean;
}

const EBUSY = 16;
const ENOENT = 2;
const EINVAL = 22;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return v === null ? "null" : typeof v;
}

function mapText(map: SocketMap): string {
  return `${map.kind} "${map.map.name}"`;
}

function checkMap(map: unknown, what: string): asserts map is SocketMap {
  if (map instanceof SockMap || map instanceof SockHash) return;
  const kind =
    typeof map === "object" && map !== null && "map" in map
      ? ` (a ${String((map as { map: { type?: unknown } }).map.type)} map)`
      : "";
  throw new TypeError(
    `${what}: sk_msg and sk_skb programs attach only to a SockMap or SockHash, got ${describe(map)}${kind}`,
  );
}

function checkHook(program: unknown, attachType: unknown, what: string): asserts program is BpfProgram {
  if (typeof attachType !== "string" || !Object.hasOwn(SOCKMAP_HOOKS, attachType)) {
    throw new TypeError(
      `${what}: ${describe(attachType)} is not a sockmap hook (use "skMsgVerdict", "skSkbStreamParser", "skSkbStreamVerdict" or "skSkbVerdict")`,
    );
  }
  if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: expected a BpfProgram, got ${describe(program)}`);
  const type = SOCKMAP_HOOKS[attachType as SockmapAttachType];
  if (program.type !== type) throw new TypeError(`${what}: "${attachType}" runs ${type} programs, not ${program.type}`);
}

function programText(program: BpfProgram): string {
  return program.name === "" ? `${program.type} program` : `${program.type} program "${program.name}"`;
}

/** The programs attached to a map's hook, or undefined when the kernel cannot list them (before 5.19). */
function attachedIds(map: Fd, attachType: SockmapAttachType): number[] | undefined {
  try {
    return queryPrograms({ fd: map }, attachType).programs.map((p) => p.programId);
  } catch (err) {
    if (err instanceof SyscallError && (err.errno === EINVAL || err.errno === EOPNOTSUPP || err.errno === ENOTSUPP))
      return undefined;
    throw err;
  }
}

interface SockmapLinkInit {
  readonly map: Fd;
  readonly mapName: string;
  readonly mapKind: "sockmap" | "sockhash";
  readonly attachType: SockmapAttachType;
  readonly programId: number;
}

/**
 * A program attached to a sockmap or sockhash by {@link attachSockmap}.
 *
 * The attachment belongs to the map, not to this process: it stays until
 * `detach()` or until the map is freed. The handle holds its own reference
 * to the map, so the map stays alive while the handle is open.
 * `detach()` removes exactly this program (`BPF_PROG_DETACH` with it as
 * the one to remove; nothing when someone replaced it since) and is
 * idempotent; `close()` releases the handle and leaves the program
 * attached; `[Symbol.dispose]` detaches.
 *
 * @example Attaching an sk_msg verdict program
 * ```ts no-run
 * import type { BpfProgram } from "@dp/core";
 * import { SockMap } from "@dp/maps";
 * import { attachSockmap } from "@dp/hooks";
 *
 * declare const verdict: BpfProgram;
 * using socks = SockMap.create({ maxEntries: 64 });
 * using link = attachSockmap(socks, verdict, "skMsgVerdict");
 * console.log(link.programId);
 * ```
 */
export class SockmapLink implements Link {
  /** Always `"sockmap"`. */
  readonly kind = "sockmap" as const;
  /** The hook. */
  readonly attachType: SockmapAttachType;
  /** The map's name. */
  readonly mapName: string;
  /** The map's type. */
  readonly mapKind: "sockmap" | "sockhash";
  #map: Fd | undefined;
  #programId: number;
  #attached = true;

  /**
   * Wraps an attachment.
   *
   * @internal Made by {@link attachSockmap}.
   * @param init The map reference and the hook.
   */
  constructor(init: SockmapLinkInit) {
    this.#map = init.map;
    this.mapName = init.mapName;
    this.mapKind = init.mapKind;
    this.attachType = init.attachType;
    this.#programId = init.programId;
  }

  /** The attached program's kernel id. */
  get programId(): number {
    return this.#programId;
  }

  /** Whether this handle holds the attachment: not detached or closed. */
  get attached(): boolean {
    return this.#attached && this.#map !== undefined;
  }

  /** Whether the handle was released by {@link SockmapLink.close} or {@link SockmapLink.detach}. */
  get closed(): boolean {
    return this.#map === undefined;
  }

  /**
   * Replaces the program on the map's hook. The kernel swaps it in one
   * step, so the map's sockets never run without a program.
   *
   * @param program The new program, of the type the hook runs.
   * @throws {TypeError} When the program cannot run on the hook (before any system call).
   * @throws {ClosedError} When the handle was released.
   * @throws {SyscallError} When the kernel refuses.
   */
  update(program: BpfProgram): void {
    const what = `Cannot update the ${this.attachType} program of ${this.mapKind} "${this.mapName}"`;
    checkHook(program, this.attachType, what);
    const map = this.#map;
    if (map === undefined || !this.#attached)
      throw new ClosedError(`${this.attachType} attachment of ${this.mapKind} "${this.mapName}"`);
    const id = program.info().id;
    attachProgram({ fd: map }, program, this.attachType);
    this.#programId = id;
  }

  /**
   * Removes the program from the map's hook if it is still the one
   * attached, and closes the handle. Calling it again does nothing.
   *
   * @throws {SyscallError} When the kernel refuses for another reason than "not attached".
   */
  detach(): void {
    const map = this.#map;
    if (map !== undefined && this.#attached) {
      let program: BpfProgram | undefined;
      try {
        program = programById(this.#programId);
      } catch (err) {
        // The program is gone, so it is attached nowhere.
        if (!(err instanceof SyscallError && err.errno === ENOENT)) throw err;
      }
      if (program !== undefined) {
        try {
          detachProgram({ fd: map }, program, this.attachType);
        } catch (err) {
          if (!(err instanceof SyscallError && err.errno === ENOENT)) throw err;
        } finally {
          program.close();
        }
      }
    }
    this.#attached = false;
    this.close();
  }

  /** Releases the handle (and its reference to the map); the program stays attached while the map lives. Calling it again does nothing. */
  close(): void {
    const map = this.#map;
    if (map === undefined) return;
    this.#map = undefined;
    map.close();
  }

  /** Detaches (for `using`). */
  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * Attaches an sk_msg or sk_skb program to a socket map or socket hash
 * (`BPF_PROG_ATTACH` on the map).
 *
 * The program runs for the sockets the map holds; attach it before
 * sockets are added (the kernel binds a socket's programs when it enters
 * the map). Typically a sock_ops program on a cgroup adds established
 * sockets, and an sk_msg program redirects each message straight to the
 * peer socket with `bpf_msg_redirect_hash()`. Only sockmaps and sockhashes
 * are accepted, by type and at run time.
 *
 * @param map The socket map or hash.
 * @param program An sk_msg program for `"skMsgVerdict"`, an sk_skb program for the others.
 * @param attachType The hook.
 * @param options Whether to replace a program already there.
 * @returns The attachment.
 * @throws {TypeError} Before any system call, when `map` is not a SockMap or SockHash, the hook is unknown or the program type does not match it.
 * @throws {SyscallError} EBUSY when another program is attached (without `replace`); the kernel's refusal otherwise.
 * @capability CAP_NET_ADMIN
 * @capability CAP_BPF
 * @example Attaching and detaching an sk_msg program
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { SockMap } from "@dp/maps";
 * import { attachSockmap } from "@dp/hooks";
 *
 * using socks = SockMap.create({ maxEntries: 4 });
 * // r0 = SK_PASS; exit
 * using pass = loadProgram({ type: "skMsg", license: "GPL", instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]) });
 * using link = attachSockmap(socks, pass, "skMsgVerdict");
 * assert.equal(link.programId, pass.info().id);
 * ```
 */
export function attachSockmap(
  map: SocketMap,
  program: BpfProgram,
  attachType: SockmapAttachType,
  options: SockmapOptions = {},
): SockmapLink {
  const label = program instanceof BpfProgram ? programText(program) : "program";
  const what = `Cannot attach ${label} to ${map instanceof SockMap || map instanceof SockHash ? mapText(map) : "map"} as ${describe(attachType)}`;
  checkMap(map, what);
  checkHook(program, attachType, what);
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${what}: options must be an object, got ${describe(options)}`);
  if (options.replace !== undefined && typeof options.replace !== "boolean") {
    throw new TypeError(`${what}: replace must be a boolean, got ${describe(options.replace)}`);
  }
  if (program.closed) throw new ClosedError(label);
  const id = program.info().id;
  const ref = map.map.fd.dup();
  try {
    const there = attachedIds(ref, attachType)?.filter((p) => p !== id) ?? [];
    if (there.length > 0 && options.replace !== true) {
      throw new SyscallError(`${what} (program ${there.join(", ")} is attached there)`, {
        syscall: "bpf",
        op: "BPF_PROG_QUERY",
        errno: EBUSY,
        hint: "detach it, or pass replace: true",
      });
    }
    attachProgram({ fd: ref }, program, attachType);
    return new SockmapLink({ map: ref, mapName: map.map.name, mapKind: map.kind, attachType, programId: id });
  } catch (err) {
    ref.close();
    throw err;
  }
}
