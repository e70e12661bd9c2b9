/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Events the datapath sends to user space (the monitor): one fixed
 * layout, struct dp_event, for drops, traces and policy verdicts, written
 * into the dp_events ring buffer. When the ring buffer is full the event is
 * counted in dp_events_lost instead.
 *
 * The numbers below are a stable interface: values are only ever added,
 * never renumbered or reused.
 */
#ifndef DP_EVENTS_H
#define DP_EVENTS_H

#include "common.h"

/* dp_event.type */
enum dp_event_type {
	DP_EVENT_DROP = 1, /* a packet was dropped; reason says why */
	DP_EVENT_TRACE =
		2, /* a packet was forwarded; reason is a dp_trace_point (dp_trace_enabled) */
	DP_EVENT_POLICY_VERDICT = 3, /* the policy verdict for a new connection */
};

/* Why a packet was dropped (dp_event.reason of drops, and the metrics'
 * reason). 0 is not a drop: metrics count forwarded packets under it. */
enum dp_drop_reason {
	DP_FORWARDED = 0,
	DP_DROP_POLICY_DENY = 1,      /* a deny entry matched */
	DP_DROP_POLICY_DEFAULT = 2,   /* policy denied (default deny): enforced, no entry matched */
	DP_DROP_INVALID_SOURCE = 3,   /* source IP is not the endpoint's of this interface */
	DP_DROP_CT_MAP_FULL = 4,      /* the conntrack map is full: no new entry */
	DP_DROP_UNSUPPORTED_L3 = 5,   /* neither IPv4, IPv6 nor ARP */
	DP_DROP_INVALID_PACKET = 6,   /* truncated or malformed headers */
	DP_DROP_FIB_FAIL = 7,	      /* bpf_fib_lookup failed */
	DP_DROP_CT_CREATE_FAILED = 8, /* conntrack entry could not be created (other than full) */
	DP_DROP_UNKNOWN_DESTINATION =
		9, /* to-container: destination is not the endpoint of this interface */
	DP_DROP_REWRITE_FAILED = 10, /* writing the packet (MACs, TTL, checksum) failed */
	DP_DROP_ENCRYPT_KEY_MISSING =
		11, /* IPsec: the destination's node has no key in dp_encrypt (never sent in clear) */
};

/* dp_event.reason of trace events: where the packet went. */
enum dp_trace_point {
	DP_TRACE_TO_STACK = 1,	  /* handed to the host stack (TC_ACT_OK) */
	DP_TRACE_TO_ENDPOINT = 2, /* bpf_redirect_peer to the endpoint's host-side veth (ifindex) */
	DP_TRACE_TO_NETDEV =
		3, /* bpf_redirect / bpf_redirect_neigh to the FIB's egress device (ifindex) */
};

/* dp_event.verdict */
enum dp_verdict {
	DP_VERDICT_NONE = 0,  /* no policy decision (e.g. a reply, or dropped before policy) */
	DP_VERDICT_ALLOW = 1, /* an allow entry matched */
	DP_VERDICT_DENY = 2,  /* a deny entry matched */
	DP_VERDICT_DEFAULT_ALLOW = 3, /* no rule selects the endpoint in that direction */
	DP_VERDICT_DEFAULT_DENY = 4,  /* enforced and no entry matched */
};

/* dp_event.ct: the conntrack result of the packet (enum dp_ct_result). */

/* One event. Addresses are 16 bytes (IPv4-mapped for IPv4), ports in
 * network order; for ICMP echo the id is the port (see conntrack.h). */
struct dp_event {
	__u64 timestamp; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, ns */
	__u8 type;	 /* enum dp_event_type */
	__u8 reason; /* drops: enum dp_drop_reason; traces: enum dp_trace_point; verdicts: the drop reason or 0 */
	__u8 direction;	   /* DP_DIR_INGRESS or DP_DIR_EGRESS, from the endpoint's side */
	__u8 verdict;	   /* enum dp_verdict */
	__u8 family;	   /* DP_FAMILY_IPV4 or DP_FAMILY_IPV6; 0 when not parsed */
	__u8 protocol;	   /* L4 protocol (after IPv6 extension headers) */
	__u16 endpoint_id; /* the endpoint whose policy or interface this is about; 0 if none */
	__u32 ifindex;	   /* drops: the interface the packet was on; traces: where it went */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 len; /* packet length (skb->len) */
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u32 rule_cookie; /* policy verdicts: the matching entry's rule cookie */
	__u8 ct;	   /* enum dp_ct_result */
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024); /* bytes; records are struct dp_event */
} dp_events SEC(".maps");

/* Events that did not fit into dp_events (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} dp_events_lost SEC(".maps");

#endif /* DP_EVENTS_H */
