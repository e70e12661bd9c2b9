/**
 * A Cilium-style datapath on one node: endpoints, security identities,
 * identity-based policy, connection tracking, eBPF host routing and a
 * monitor, built from the BPF programs in `bpf/datapath/`.
 *
 * @module @dp/datapath
 */
export {};
