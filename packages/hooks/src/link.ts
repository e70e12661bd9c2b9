// What every attachment returns: a Link that detaches exactly what it
// attached. The hook modules (tc.ts, xdp.ts, cgroup.ts, sockmap.ts)
// implement it; listAttachments() describes what is attached, ours or not.
import type { BpfProgram } from "@dp/core";

/**
 * How an attachment is held:
 *
 * - `"tcx"`: a tcx bpf_link (Linux 6.6+);
 * - `"tc"`: a netlink cls_bpf filter (direct-action) on a clsact qdisc;
 * - `"xdp"`: an XDP bpf_link (Linux 5.9+);
 * - `"xdpNetlink"`: XDP set through netlink (`IFLA_XDP`);
 * - `"cgroup"`: a cgroup bpf_link;
 * - `"sockmap"`: a program attached to a sockmap or sockhash (`BPF_PROG_ATTACH`).
 *
 * @useDeclaredType
 */
export type LinkKind = "tcx" | "tc" | "xdp" | "xdpNetlink" | "cgroup" | "sockmap";

/**
 * An attachment made by this process. `detach()` removes exactly this
 * attachment and nothing else; calling it again does nothing.
 * `[Symbol.dispose]` detaches too, except for pinned links, which outlive
 * the handle until `unpin()`.
 */
export interface Link {
  /** How the attachment is held. */
  readonly kind: LinkKind;
  /** The attached program's kernel id (stays valid after the program handle closes). */
  readonly programId: number;
  /** Whether {@link Link.detach} has not been called and the attachment was not found gone. */
  readonly attached: boolean;
  /**
   * Replaces the program atomically, keeping the place (priority, order).
   *
   * @param program The new program, of the same type.
   */
  update(program: BpfProgram): void;
  /** Removes the attachment. Idempotent. */
  detach(): void;
  /** Detaches, unless the link is pinned. */
  [Symbol.dispose](): void;
}

/** Where a cls_bpf filter sits, as `tc filter show` prints it. */
export interface FilterPlace {
  /** The filter priority (`pref`). */
  readonly priority: number;
  /** The filter handle. */
  readonly handle: number;
  /** The filter name (`TCA_BPF_NAME`). */
  readonly name: string;
}

/**
 * One attached program as `listAttachments()` reports it: from a tcx
 * query, a netlink filter or XDP dump, or a cgroup query.
 */
export interface Attachment {
  /** The hook: `"tcIngress"`, `"tcEgress"`, `"xdp"`, or a cgroup attach type such as `"cgroupSockOps"`. */
  readonly hook: string;
  /** How it is held: see {@link LinkKind}. */
  readonly kind: LinkKind;
  /** The program's kernel id. */
  readonly programId: number;
  /** The program's name as the kernel knows it (`bpftool prog show`), `""` when unknown. */
  readonly programName: string;
  /** The bpf_link id, for link-based attachments. */
  readonly linkId?: number;
  /** The cls_bpf filter, for netlink tc attachments. */
  readonly filter?: FilterPlace;
  /** XDP mode: `"skb"`, `"drv"` or `"hw"`. */
  readonly xdpMode?: "skb" | "drv" | "hw";
}
