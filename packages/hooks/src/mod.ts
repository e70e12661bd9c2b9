/**
 * Attaching BPF programs to the kernel's hooks: tc (tcx links or netlink
 * cls_bpf), XDP, cgroups and sockmaps; listing what is attached; a ledger
 * that lets a restarted process clean up after a crash; and a packet test
 * kit for `BPF_PROG_TEST_RUN`.
 *
 * @module \@dp/hooks
 */
export type { Attachment, Link, LinkKind } from "./link.ts";
