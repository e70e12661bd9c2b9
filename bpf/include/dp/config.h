/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The datapath's load-time settings: `const volatile` globals in .rodata
 * that the TypeScript side sets in the object spec before loading (they
 * are constants to the verifier, so a disabled feature costs nothing).
 * Every object of bpf/datapath includes this header, so every object has
 * the same settings: give them the same values.
 */
#ifndef DP_CONFIG_H
#define DP_CONFIG_H

#include "common.h"

/* Host routing: 0 = legacy (packets between endpoints and to the outside
 * go through the host stack), 1 = BPF (bpf_redirect_peer into a local
 * endpoint, bpf_fib_lookup + bpf_redirect_neigh towards the outside). */
const volatile __u8 dp_host_routing_bpf = 0;

/* 1 = send trace events (packets forwarded, and where to) into dp_events. */
const volatile __u8 dp_trace_enabled = 0;

/* 1 = IPsec: pod traffic towards a remote node's pods (ipcache node_id) is
 * marked for encryption with the node's key from dp_encrypt, or dropped
 * when the node has none (encrypt.h). */
const volatile __u8 dp_enable_ipsec = 0;

/* Conntrack lifetimes in seconds (Cilium's defaults). An entry expires at
 * its last packet's time plus the lifetime of its state. */
const volatile __u32 dp_ct_timeout_syn = 60;	/* TCP, no packet without SYN seen yet */
const volatile __u32 dp_ct_timeout_tcp = 21600; /* TCP established (6 h) */
const volatile __u32 dp_ct_timeout_close = 10;	/* TCP after a FIN or RST */
const volatile __u32 dp_ct_timeout_any = 60;	/* UDP, ICMP and other protocols */

#endif /* DP_CONFIG_H */
