// /proc/net/xfrm_stat: why the xfrm layer dropped packets, per network
// namespace (CONFIG_XFRM_STATISTICS). Every xfrm error is otherwise a
// silent drop. Explanations follow Documentation/networking/xfrm_proc.rst.
import { type Netns, NotSupportedError, SyscallError, withNetns } from "@dp/core";
import { readFileText } from "@dp/core/internal";

/** The calling thread's namespace view (/proc/net follows the process's main thread). */
const XFRM_STAT_PATH = "/proc/thread-self/net/xfrm_stat";
const ENOENT = 2;

/**
 * The counters of `/proc/net/xfrm_stat` by camelCase name
 * (`XfrmInNoStates` is `xfrmInNoStates`). Counters this kernel does not
 * have are absent; counters dp does not know are kept under their
 * camelCase name too.
 */
export interface XfrmStat {
  /** A counter, by camelCase name. */
  readonly [name: string]: bigint;
}

/** One known counter of {@link XFRM_STAT_COUNTERS}. */
export interface XfrmStatCounter {
  /** The kernel's name, such as `"XfrmInNoStates"`. */
  readonly kernelName: string;
  /** The key in {@link XfrmStat}, such as `"xfrmInNoStates"`. */
  readonly name: string;
  /** Where the packet was: `"in"` (received), `"out"` (sent), `"fwd"` (forwarded) or `"acquire"`. */
  readonly path: "in" | "out" | "fwd" | "acquire";
  /** What the counter means, in one line. */
  readonly explanation: string;
}

const COUNTERS: readonly (readonly [string, XfrmStatCounter["path"], string])[] = [
  ["XfrmInError", "in", "Inbound error that fits no other counter"],
  ["XfrmInBufferError", "in", "Inbound packet dropped: no buffer left"],
  ["XfrmInHdrError", "in", "Inbound packet with a bad header"],
  [
    "XfrmInNoStates",
    "in",
    "No state for an inbound packet: wrong SPI, address, mark or protocol (peer uses a key this node lacks)",
  ],
  ["XfrmInStateProtoError", "in", "Transform protocol error, such as a wrong key or failed integrity check"],
  ["XfrmInStateModeError", "in", "Transform mode (tunnel/transport) error"],
  ["XfrmInStateSeqError", "in", "Sequence number outside the replay window (replay or heavy reordering)"],
  ["XfrmInStateExpired", "in", "Inbound packet hit an expired state"],
  ["XfrmInStateMismatch", "in", "State options do not match the packet, such as the UDP encapsulation type"],
  ["XfrmInStateInvalid", "in", "Inbound packet hit an invalid (dead or larval) state"],
  ["XfrmInTmplMismatch", "in", "Decrypted fine but no policy template matches the states used (in/fwd policy wrong)"],
  ["XfrmInNoPols", "in", "Decrypted fine but no in/fwd policy is found for the packet"],
  ["XfrmInPolBlock", "in", "An inbound block policy discarded the packet"],
  ["XfrmInPolError", "in", "Inbound policy error"],
  ["XfrmAcquireError", "acquire", "A state was used before it was fully acquired (larval state)"],
  ["XfrmFwdHdrError", "fwd", "Forwarding of a packet is not allowed (fwd routing error)"],
  ["XfrmInStateDirError", "in", "Lookup found an output state on the input path (state direction mismatch)"],
  ["XfrmInIptfsError", "in", "IP-TFS inbound processing error"],
  ["XfrmOutError", "out", "Outbound error that fits no other counter"],
  ["XfrmOutBundleGenError", "out", "Cannot build the transform bundle for an outbound packet"],
  ["XfrmOutBundleCheckError", "out", "Outbound transform bundle check failed"],
  [
    "XfrmOutNoStates",
    "out",
    "An out policy matched but no state is found for its template (missing or wrong out state)",
  ],
  ["XfrmOutStateProtoError", "out", "Outbound transform protocol error"],
  ["XfrmOutStateModeError", "out", "Outbound transform mode error"],
  [
    "XfrmOutStateSeqError",
    "out",
    "Outbound sequence number overflow: the state ran out of sequence numbers (rotate the key)",
  ],
  ["XfrmOutStateExpired", "out", "Outbound packet hit an expired state"],
  ["XfrmOutPolBlock", "out", "An outbound block policy discarded the packet (such as the default-drop policy)"],
  ["XfrmOutPolDead", "out", "Outbound packet matched a policy that is being deleted"],
  ["XfrmOutPolError", "out", "Outbound policy error"],
  ["XfrmOutStateInvalid", "out", "Outbound packet hit an invalid state, perhaps expired"],
  ["XfrmOutStateDirError", "out", "Lookup found an input state on the output path (state direction mismatch)"],
  ["XfrmOutNoQueueSpace", "out", "IP-TFS output queue full"],
];

function camel(kernelName: string): string {
  return kernelName.length === 0 ? kernelName : kernelName[0]!.toLowerCase() + kernelName.slice(1);
}

/**
 * The counters dp knows, with their kernel name, path and a one-line
 * explanation (for troubleshooting drops).
 *
 * @example Explaining a counter
 * ```ts
 * import assert from "node:assert/strict";
 * import { XFRM_STAT_COUNTERS } from "@dp/ipsec";
 *
 * const c = XFRM_STAT_COUNTERS.find((c) => c.name === "xfrmOutStateSeqError");
 * assert.equal(c?.kernelName, "XfrmOutStateSeqError");
 * assert.equal(c?.path, "out");
 * ```
 */
export const XFRM_STAT_COUNTERS: readonly XfrmStatCounter[] = COUNTERS.map(([kernelName, path, explanation]) => ({
  kernelName,
  name: camel(kernelName),
  path,
  explanation,
}));

const BY_NAME = new Map(XFRM_STAT_COUNTERS.map((c) => [c.name, c]));

/**
 * The one-line explanation of a counter.
 *
 * @param name The camelCase or kernel name.
 * @returns The explanation, or undefined for a counter dp does not know.
 * @example A counter's meaning
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainXfrmStat } from "@dp/ipsec";
 *
 * assert.match(explainXfrmStat("XfrmInNoStates") ?? "", /No state/);
 * ```
 */
export function explainXfrmStat(name: string): string | undefined {
  return BY_NAME.get(camel(name))?.explanation;
}

/**
 * Parses the text of `/proc/net/xfrm_stat` (`Name <spaces/tabs> value`
 * lines).
 *
 * @param text The file's text.
 * @returns The counters by camelCase name.
 * @throws {SyntaxError} When a line is not a name and a decimal number.
 * @example The kernel's format
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseXfrmStat } from "@dp/ipsec";
 *
 * const stat = parseXfrmStat("XfrmInError             \t0\nXfrmInNoStates          \t7\n");
 * assert.equal(stat.xfrmInNoStates, 7n);
 * ```
 */
export function parseXfrmStat(text: string): XfrmStat {
  if (typeof text !== "string") throw new TypeError(`Invalid xfrm_stat text: expected a string, got ${typeof text}`);
  const out: Record<string, bigint> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const m = /^([A-Za-z][A-Za-z0-9_]*)\s+([0-9]+)$/.exec(line);
    if (m === null) {
      throw new SyntaxError(`Invalid xfrm_stat line ${i + 1} ${JSON.stringify(line)}: expected a name and a number`);
    }
    out[camel(m[1]!)] = BigInt(m[2]!);
  }
  return out;
}

/** Options for {@link readXfrmStat}. */
export interface ReadXfrmStatOptions {
  /**
   * The namespace whose counters to read.
   *
   * @default the caller's namespace
   */
  readonly netns?: Netns;
}

/**
 * Reads `/proc/net/xfrm_stat` of a network namespace: how many packets
 * the xfrm layer dropped and why, since the namespace was created.
 *
 * @param options The namespace.
 * @returns The counters by camelCase name.
 * @throws {NotSupportedError} When the kernel has no `CONFIG_XFRM_STATISTICS`.
 * @throws {SyscallError} When the file cannot be read.
 * @example The caller's counters
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { readXfrmStat } from "@dp/ipsec";
 *
 * assert.equal(typeof readXfrmStat().xfrmInNoStates, "bigint");
 * ```
 */
export function readXfrmStat(options: ReadXfrmStatOptions = {}): XfrmStat {
  const read = (): string => {
    try {
      return readFileText(XFRM_STAT_PATH, { what: "Cannot read xfrm statistics", maxBytes: 1 << 16 });
    } catch (err) {
      if (err instanceof SyscallError && err.errno === ENOENT) {
        throw new NotSupportedError("xfrm statistics (CONFIG_XFRM_STATISTICS)", { cause: err });
      }
      throw err;
    }
  };
  return parseXfrmStat(options.netns === undefined ? read() : withNetns(options.netns, read));
}

/** A counter that grew, from {@link diffXfrmStat}. */
export interface XfrmStatDelta {
  /** The counter's camelCase name. */
  readonly name: string;
  /** How much it grew. */
  readonly delta: bigint;
  /** Its explanation, or "" when dp does not know it. */
  readonly explanation: string;
}

/**
 * The counters that grew between two readings, with their explanations:
 * what went wrong in between.
 *
 * @param before The earlier reading.
 * @param after The later reading.
 * @returns Each counter that grew: name, increase and explanation (empty for unknown counters).
 * @example What went wrong between two readings
 * ```ts
 * import assert from "node:assert/strict";
 * import { diffXfrmStat, parseXfrmStat } from "@dp/ipsec";
 *
 * const a = parseXfrmStat("XfrmOutNoStates 1\nXfrmInError 0");
 * const b = parseXfrmStat("XfrmOutNoStates 5\nXfrmInError 0");
 * assert.deepEqual(diffXfrmStat(a, b).map((d) => [d.name, d.delta]), [["xfrmOutNoStates", 4n]]);
 * ```
 */
export function diffXfrmStat(before: XfrmStat, after: XfrmStat): XfrmStatDelta[] {
  const out: XfrmStatDelta[] = [];
  for (const [name, value] of Object.entries(after)) {
    const delta = value - (before[name] ?? 0n);
    if (delta > 0n) out.push({ name, delta, explanation: BY_NAME.get(name)?.explanation ?? "" });
  }
  return out;
}
