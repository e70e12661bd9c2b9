// Netlink cls_bpf filters on a clsact qdisc: the requests iproute2's
// `tc qdisc add dev X clsact` and `tc filter add dev X ingress prio P handle H
// bpf da ...` send (byte for byte, see testdata/tc/), their dumps, and the
// operations attachTc, listAttachments and the ledger's reconcile share.
import {
  attrString,
  attrU32,
  type NetlinkMessage,
  NetlinkError,
  type NetlinkSocket,
  type NetlinkWriter,
  type Netns,
  NLM_F,
  netlinkAttributeMap,
  openNetlink,
} from "@dp/core";
import { RTM, TCA, TCA_BPF } from "@dp/core/internal";

/** A clsact hook. */
export type TcHookDirection = "ingress" | "egress";

/** Size of `struct tcmsg`. */
const TCMSG_LEN = 20;
/** `TC_H_CLSACT` (= `TC_H_INGRESS`): the clsact qdisc's parent. */
const TC_H_CLSACT = 0xffff_fff1;
/** The clsact qdisc's own handle, `ffff:`. */
const CLSACT_HANDLE = 0xffff_0000;
/** `TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)` and `..._EGRESS`: the filter parents. */
const PARENTS: Readonly<Record<TcHookDirection, number>> = { ingress: 0xffff_fff2, egress: 0xffff_fff3 };
/** `ETH_P_ALL`: the filters see every protocol. */
export const ETH_P_ALL = 0x0003;
/** `TCA_BPF_FLAG_ACT_DIRECT`: the program's return value is the tc action (`da`). */
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** cls_bpf keeps at most this many name bytes (`CLS_BPF_NAME_LEN`, the NUL included). */
const CLS_BPF_NAME_LEN = 256;
const ENOENT = 2;
const EINVAL = 22;
const EEXIST = 17;

/** Filter priorities are 16 bits; 0 asks the kernel to choose. */
export const MAX_PRIORITY = 0xffff;
/** Filter handles are 32 bits; 0 asks the kernel to choose. */
export const MAX_HANDLE = 0xffff_ffff;

/** Where a filter sits: interface, hook, priority and handle. */
export interface TcFilterPlace {
  /** The interface index. */
  readonly ifindex: number;
  /** The clsact hook. */
  readonly direction: TcHookDirection;
  /** The priority (1-65535); lower runs first. */
  readonly priority: number;
  /** The handle (1-0xffffffff), unique within a priority. */
  readonly handle: number;
}

/** A tc filter on a clsact hook, as a `RTM_GETTFILTER` dump reports it. */
export interface TcFilter extends TcFilterPlace {
  /** The classifier kind, such as `"bpf"` or `"u32"`. */
  readonly kind: string;
  /** The protocol it matches, in host order (`0x0003` is `ETH_P_ALL`, `tc`'s `protocol all`). */
  readonly protocol: number;
  /** The filter chain. */
  readonly chain: number;
  /** cls_bpf: the name `tc filter show` prints (`TCA_BPF_NAME`), `""` when none. */
  readonly name: string;
  /** cls_bpf: the attached program's id, 0 for other kinds. */
  readonly programId: number;
  /** cls_bpf: the program tag as 16 hex digits, `""` when unknown. */
  readonly programTag: string;
  /** cls_bpf: whether it runs in direct-action mode (`da`). */
  readonly directAction: boolean;
}

/** What a new or replacing cls_bpf filter carries. */
export interface TcFilterSpec extends TcFilterPlace {
  /** The program descriptor (raw number). */
  readonly fd: number;
  /** The filter name (`TCA_BPF_NAME`). */
  readonly name: string;
}

function tcmsg(w: NetlinkWriter, ifindex: number, handle: number, parent: number, info: number): void {
  // struct tcmsg: family, pad1, pad2, ifindex, handle, parent, info
  w.u8(0).u8(0).u16(0).s32(ifindex).u32(handle).u32(parent).u32(info);
}

/** `tcm_info` of a filter: the priority in the upper half, the protocol (network order) in the lower. */
function filterInfo(priority: number, protocol: number): number {
  const be = ((protocol & 0xff) << 8) | ((protocol >> 8) & 0xff);
  return ((priority << 16) | be) >>> 0;
}

/**
 * Encodes `tc qdisc add dev IFINDEX clsact` (create, fail if present).
 *
 * @param w The writer.
 * @param seq The sequence number.
 * @param ifindex The interface index.
 */
export function encodeClsactAdd(w: NetlinkWriter, seq: number, ifindex: number): void {
  w.begin(RTM.NEWQDISC, NLM_F.REQUEST | NLM_F.ACK | NLM_F.EXCL | NLM_F.CREATE, seq);
  tcmsg(w, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0);
  w.attrString(TCA.KIND, "clsact");
  w.end();
}

/**
 * Encodes `tc qdisc del dev IFINDEX clsact`.
 *
 * @param w The writer.
 * @param seq The sequence number.
 * @param ifindex The interface index.
 */
export function encodeClsactDelete(w: NetlinkWriter, seq: number, ifindex: number): void {
  w.begin(RTM.DELQDISC, NLM_F.REQUEST | NLM_F.ACK, seq);
  tcmsg(w, ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0);
  w.attrString(TCA.KIND, "clsact");
  w.end();
}

/**
 * Encodes a direct-action cls_bpf filter for every protocol.
 *
 * `"create"` is `tc filter add ... prio P handle H bpf da fd F name N` (fails
 * when the place is taken); `"replace"` swaps the program of the filter at
 * that place and fails with ENOENT when there is none (unlike `tc filter
 * replace`, which would create one).
 *
 * @param w The writer.
 * @param seq The sequence number.
 * @param spec Place, program descriptor and name.
 * @param mode Create or replace.
 */
export function encodeFilterAdd(w: NetlinkWriter, seq: number, spec: TcFilterSpec, mode: "create" | "replace"): void {
  const flags =
    mode === "create"
      ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.EXCL | NLM_F.CREATE
      : NLM_F.REQUEST | NLM_F.ACK | NLM_F.REPLACE;
  w.begin(RTM.NEWTFILTER, flags, seq);
  tcmsg(w, spec.ifindex, spec.handle, PARENTS[spec.direction], filterInfo(spec.priority, ETH_P_ALL));
  w.attrString(TCA.KIND, "bpf");
  w.nest(TCA.OPTIONS, () => {
    w.attrU32(TCA_BPF.FD, spec.fd);
    w.attrString(TCA_BPF.NAME, spec.name);
    w.attrU32(TCA_BPF.FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
  });
  w.end();
}

/**
 * Encodes `tc filter del dev IFINDEX DIRECTION prio P handle H protocol all bpf`.
 *
 * @param w The writer.
 * @param seq The sequence number.
 * @param place The filter.
 */
export function encodeFilterDelete(w: NetlinkWriter, seq: number, place: TcFilterPlace): void {
  w.begin(RTM.DELTFILTER, NLM_F.REQUEST | NLM_F.ACK, seq);
  tcmsg(w, place.ifindex, place.handle, PARENTS[place.direction], filterInfo(place.priority, ETH_P_ALL));
  w.attrString(TCA.KIND, "bpf");
  w.end();
}

/**
 * Encodes `tc filter show dev IFINDEX DIRECTION` (a dump of every chain).
 *
 * @param w The writer.
 * @param seq The sequence number.
 * @param ifindex The interface index.
 * @param direction The hook.
 */
export function encodeFilterDump(w: NetlinkWriter, seq: number, ifindex: number, direction: TcHookDirection): void {
  w.begin(RTM.GETTFILTER, NLM_F.REQUEST | NLM_F.DUMP, seq);
  tcmsg(w, ifindex, 0, PARENTS[direction], 0);
  w.end();
}

/**
 * Decodes one `RTM_NEWTFILTER` message of a clsact hook.
 *
 * @param msg The message.
 * @returns The filter, or `undefined` for what is not a filter: the
 *   per-priority header entries (handle 0, no options) and other parents.
 * @throws {SyntaxError} When the message is truncated.
 */
export function decodeFilter(msg: NetlinkMessage): TcFilter | undefined {
  if (msg.type !== RTM.NEWTFILTER) return undefined;
  const p = msg.payload;
  if (p.length < TCMSG_LEN)
    throw new SyntaxError(`Invalid RTM_NEWTFILTER message: ${p.length} bytes, want at least ${TCMSG_LEN}`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const ifindex = dv.getInt32(4, true);
  const handle = dv.getUint32(8, true);
  const parent = dv.getUint32(12, true);
  const info = dv.getUint32(16, true);
  const direction = parent === PARENTS.ingress ? "ingress" : parent === PARENTS.egress ? "egress" : undefined;
  if (direction === undefined) return undefined;
  const attrs = netlinkAttributeMap(p.subarray(TCMSG_LEN));
  const options = attrs.get(TCA.OPTIONS);
  if (handle === 0 && options === undefined) return undefined;
  const kindAttr = attrs.get(TCA.KIND);
  const kind = kindAttr === undefined ? "" : attrString(kindAttr);
  const chainAttr = attrs.get(TCA.CHAIN);
  const be = info & 0xffff;
  let name = "";
  let programId = 0;
  let programTag = "";
  let directAction = false;
  if (kind === "bpf" && options !== undefined) {
    const o = netlinkAttributeMap(options);
    const n = o.get(TCA_BPF.NAME);
    if (n !== undefined) name = attrString(n);
    const id = o.get(TCA_BPF.ID);
    if (id !== undefined) programId = attrU32(id);
    const tag = o.get(TCA_BPF.TAG);
    if (tag !== undefined) programTag = Array.from(tag, (b) => b.toString(16).padStart(2, "0")).join("");
    const flags = o.get(TCA_BPF.FLAGS);
    if (flags !== undefined) directAction = (attrU32(flags) & TCA_BPF_FLAG_ACT_DIRECT) !== 0;
  }
  return {
    ifindex,
    direction,
    priority: info >>> 16,
    handle,
    kind,
    protocol: ((be & 0xff) << 8) | (be >> 8),
    chain: chainAttr === undefined ? 0 : attrU32(chainAttr),
    name,
    programId,
    programTag,
    directAction,
  };
}

/** Validates a cls_bpf filter name. */
export function checkFilterName(name: unknown): string {
  if (typeof name !== "string") throw new TypeError(`Invalid tc filter name ${JSON.stringify(name)}: must be a string`);
  const bytes = new TextEncoder().encode(name);
  if (bytes.includes(0) || bytes.length >= CLS_BPF_NAME_LEN) {
    throw new RangeError(
      `Invalid tc filter name ${JSON.stringify(name)}: use at most ${CLS_BPF_NAME_LEN - 1} bytes and no NUL`,
    );
  }
  return name;
}

/** Describes a hook for messages: `"eth0" ingress`. */
export function hookText(ifname: string, direction: TcHookDirection): string {
  return `${JSON.stringify(ifname)} ${direction}`;
}

/**
 * Creates the clsact qdisc unless one is there.
 *
 * @param nl A route socket in the interface's namespace.
 * @param ifindex The interface index.
 * @param ifname The interface name, for errors.
 * @returns Whether this call created it.
 * @throws {NetlinkError} When the device has another qdisc where clsact goes (such as `ingress`) or cannot be reached.
 */
export function ensureClsact(nl: NetlinkSocket, ifindex: number, ifname: string): boolean {
  const w = nl.writer();
  encodeClsactAdd(w, nl.nextSeq(), ifindex);
  try {
    nl.request(w, `add clsact qdisc to ${JSON.stringify(ifname)}`, "RTM_NEWQDISC");
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === EEXIST) {
      // EEXIST is also what an `ingress` qdisc in clsact's place gives: tell them apart.
      if (hasClsact(nl, ifindex)) return false;
      throw new NetlinkError(`Cannot add clsact qdisc to ${JSON.stringify(ifname)}`, {
        op: "RTM_NEWQDISC",
        errno: EEXIST,
        extAck: "another qdisc (such as ingress) holds the clsact slot: delete it or use tcx",
        cause: err,
      });
    }
    throw err;
  }
}

/** Whether the interface has a clsact qdisc (`RTM_GETQDISC` dump). */
export function hasClsact(nl: NetlinkSocket, ifindex: number): boolean {
  const w = nl.writer();
  w.begin(RTM.GETQDISC, NLM_F.REQUEST | NLM_F.DUMP, nl.nextSeq());
  tcmsg(w, ifindex, 0, 0, 0);
  w.end();
  for (const m of nl.dump(w, `list qdiscs of interface ${ifindex}`, "RTM_GETQDISC")) {
    const p = m.payload;
    if (m.type !== RTM.NEWQDISC || p.length < TCMSG_LEN) continue;
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    if (dv.getInt32(4, true) !== ifindex || dv.getUint32(12, true) !== TC_H_CLSACT) continue;
    const kind = netlinkAttributeMap(p.subarray(TCMSG_LEN)).get(TCA.KIND);
    if (kind !== undefined && attrString(kind) === "clsact") return true;
  }
  return false;
}

/**
 * Deletes the clsact qdisc when neither hook has a filter left.
 *
 * @param nl A route socket in the interface's namespace.
 * @param ifindex The interface index.
 * @param ifname The interface name, for errors.
 * @returns Whether it was deleted.
 * @throws {NetlinkError} When listing or deleting fails for another reason than it being gone.
 */
export function deleteClsactIfUnused(nl: NetlinkSocket, ifindex: number, ifname: string): boolean {
  if (dumpFilters(nl, ifindex, "ingress", ifname).length > 0) return false;
  if (dumpFilters(nl, ifindex, "egress", ifname).length > 0) return false;
  if (!hasClsact(nl, ifindex)) return false;
  const w = nl.writer();
  encodeClsactDelete(w, nl.nextSeq(), ifindex);
  try {
    nl.request(w, `delete clsact qdisc of ${JSON.stringify(ifname)}`, "RTM_DELQDISC");
    return true;
  } catch (err) {
    if (err instanceof NetlinkError && (err.errno === ENOENT || err.errno === EINVAL)) return false;
    throw err;
  }
}

/**
 * Lists the filters of a clsact hook, every kind and chain, ordered by
 * priority then handle. A device without clsact has none, and so has a
 * missing one (the kernel's dump is just empty).
 *
 * @param nl A route socket in the interface's namespace.
 * @param ifindex The interface index.
 * @param direction The hook.
 * @param ifname The interface name, for errors.
 * @returns The filters.
 * @throws {NetlinkError} When the kernel refuses the dump.
 */
export function dumpFilters(
  nl: NetlinkSocket,
  ifindex: number,
  direction: TcHookDirection,
  ifname: string = `${ifindex}`,
): TcFilter[] {
  const w = nl.writer();
  encodeFilterDump(w, nl.nextSeq(), ifindex, direction);
  const out: TcFilter[] = [];
  for (const m of nl.dump(w, `list tc filters of ${hookText(ifname, direction)}`, "RTM_GETTFILTER")) {
    const f = decodeFilter(m);
    if (f !== undefined && f.ifindex === ifindex) out.push(f);
  }
  return out.sort((a, b) => a.priority - b.priority || a.handle - b.handle);
}

/**
 * Deletes one cls_bpf filter, optionally only while it still runs the
 * expected program.
 *
 * @param nl A route socket in the interface's namespace.
 * @param place The filter.
 * @param ifname The interface name, for errors.
 * @param programId Only delete when the filter runs this program.
 * @returns Whether a filter was deleted (`false`: gone, or running another program).
 * @throws {NetlinkError} When deleting fails for another reason.
 */
export function removeFilter(nl: NetlinkSocket, place: TcFilterPlace, ifname: string, programId?: number): boolean {
  const current = dumpFilters(nl, place.ifindex, place.direction, ifname).find(
    (f) => f.priority === place.priority && f.handle === place.handle,
  );
  if (current === undefined || current.kind !== "bpf") return false;
  if (programId !== undefined && current.programId !== programId) return false;
  const w = nl.writer();
  encodeFilterDelete(w, nl.nextSeq(), place);
  try {
    nl.request(
      w,
      `delete tc filter ${hookText(ifname, place.direction)} priority ${place.priority} handle ${place.handle}`,
      "RTM_DELTFILTER",
    );
    return true;
  } catch (err) {
    // Gone meanwhile: the filter (ENOENT) or the whole qdisc (EINVAL).
    if (err instanceof NetlinkError && (err.errno === ENOENT || err.errno === EINVAL)) return false;
    throw err;
  }
}

function withSocket<T>(netns: Netns | undefined, fn: (nl: NetlinkSocket) => T): T {
  using nl = openNetlink("route", netns === undefined ? {} : { netns });
  return fn(nl);
}

/**
 * Lists the filters on a clsact hook (`tc filter show dev X ingress`), every
 * kind, ours and others', ordered by priority then handle.
 *
 * @param ifindex The interface index in `netns`.
 * @param direction The hook.
 * @param netns The namespace, default the calling thread's.
 * @returns The filters; none when the device has no clsact qdisc or does not exist.
 * @throws {NetlinkError} When the kernel refuses the dump.
 */
export function listTcFilters(ifindex: number, direction: TcHookDirection, netns?: Netns): TcFilter[] {
  return withSocket(netns, (nl) => dumpFilters(nl, ifindex, direction));
}

/**
 * Finds the filter at one place.
 *
 * @param place Interface index, hook, priority and handle.
 * @param netns The namespace, default the calling thread's.
 * @returns The filter, or `undefined` when there is none (also when the interface is gone).
 * @throws {NetlinkError} When the kernel refuses the dump.
 */
export function findTcFilter(place: TcFilterPlace, netns?: Netns): TcFilter | undefined {
  return listTcFilters(place.ifindex, place.direction, netns).find(
    (f) => f.priority === place.priority && f.handle === place.handle,
  );
}

/** Options for {@link deleteTcFilter}. */
export interface DeleteTcFilterOptions {
  /**
   * Only delete the filter while it runs this program (by id): a filter
   * someone replaced is not ours any more.
   *
   * @default any program
   */
  readonly programId?: number;
  /**
   * The namespace.
   *
   * @default the calling thread's
   */
  readonly netns?: Netns;
}

/**
 * Deletes one cls_bpf filter and nothing else (the clsact qdisc stays).
 *
 * @param place Interface index, hook, priority and handle.
 * @param options The expected program and the namespace.
 * @returns Whether a filter was deleted; `false` when it (or its interface) is gone, or it runs another program.
 * @throws {NetlinkError} When listing or deleting fails for another reason.
 */
export function deleteTcFilter(place: TcFilterPlace, options: DeleteTcFilterOptions = {}): boolean {
  return withSocket(options.netns, (nl) => removeFilter(nl, place, `${place.ifindex}`, options.programId));
}

/** Where a new filter should go: an explicit place, or next to another filter, or after all. */
export interface PlaceRequest {
  /** An explicit priority. */
  readonly priority?: number | undefined;
  /** An explicit handle. */
  readonly handle?: number | undefined;
  /** Go right before the filters of this priority. */
  readonly before?: number | undefined;
  /** Go right after the filters of this priority. */
  readonly after?: number | undefined;
}

/** The priority of the first filter dp adds to an empty hook: room on both sides. */
export const FIRST_PRIORITY = 0x8000;
/** How far after the last filter an appended one goes, leaving room to insert between. */
export const PRIORITY_STEP = 0x100;

/**
 * Chooses the priority and handle of a new filter among the existing ones
 * of a hook, without moving anyone:
 *
 * - explicit `priority` (and `handle`): that place; the handle defaults to
 *   the lowest one free at that priority;
 * - `before: p`: halfway between `p` and the priority that runs before it
 *   (or 0), so there is room for more; filters at one priority share one
 *   classifier, so the new one needs a priority of its own;
 * - `after: p`: halfway between `p` and the next priority (or 65536);
 * - nothing: after every existing filter ({@link PRIORITY_STEP} after the
 *   last one, or the next free priority when that is too high), the way
 *   tcx appends; {@link FIRST_PRIORITY} on an empty hook.
 *
 * @param filters The hook's filters.
 * @param request What the caller asked for.
 * @returns Priority and handle.
 * @throws {RangeError} When the requested place is taken or no priority is free there.
 */
export function choosePlace(filters: readonly TcFilter[], request: PlaceRequest): { priority: number; handle: number } {
  const priorities = [...new Set(filters.map((f) => f.priority))].sort((a, b) => a - b);
  if (request.priority !== undefined) {
    const taken = new Set(filters.filter((f) => f.priority === request.priority).map((f) => f.handle));
    let handle = request.handle ?? 1;
    if (request.handle === undefined) while (taken.has(handle)) handle++;
    if (taken.has(handle))
      throw new RangeError(`priority ${request.priority} handle ${handle} is taken by another filter`);
    return { priority: request.priority, handle };
  }
  const handle = request.handle ?? 1;
  if (request.before !== undefined) {
    const p = request.before;
    const below = priorities.filter((q) => q < p).pop() ?? 0;
    const mid = Math.floor((below + p) / 2);
    if (mid <= below) {
      throw new RangeError(
        `no priority is free right before priority ${p}${below > 0 ? ` (${below} is next to it)` : ""}: pass an explicit priority`,
      );
    }
    return { priority: mid, handle };
  }
  if (request.after !== undefined) {
    const p = request.after;
    const above = priorities.find((q) => q > p) ?? MAX_PRIORITY + 1;
    const mid = Math.ceil((p + above) / 2);
    if (mid >= above) {
      throw new RangeError(
        `no priority is free right after priority ${p}${above <= MAX_PRIORITY ? ` (${above} is next to it)` : ""}: pass an explicit priority`,
      );
    }
    return { priority: mid, handle };
  }
  const last = priorities[priorities.length - 1];
  if (last === undefined) return { priority: FIRST_PRIORITY, handle };
  if (last + PRIORITY_STEP <= MAX_PRIORITY) return { priority: last + PRIORITY_STEP, handle };
  if (last < MAX_PRIORITY) return { priority: last + 1, handle };
  throw new RangeError(`no priority is free after priority ${last}: pass an explicit priority`);
}
