/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU packet and byte counters by {reason, direction}: reason 0
 * (DP_FORWARDED) counts forwarded packets, the others drops by
 * enum dp_drop_reason. User space sums the CPUs.
 */
#ifndef DP_METRICS_H
#define DP_METRICS_H

#include "common.h"

struct dp_metrics_key {
	__u8 reason;	/* enum dp_drop_reason; 0 = forwarded */
	__u8 direction; /* DP_DIR_INGRESS or DP_DIR_EGRESS */
	__u16 pad;
};

struct dp_metrics_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct dp_metrics_key);
	__type(value, struct dp_metrics_value);
} dp_metrics SEC(".maps");

static __always_inline void dp_metrics_add(__u8 reason, __u8 direction, __u32 len)
{
	struct dp_metrics_key key = { .reason = reason, .direction = direction };
	struct dp_metrics_value *v, init = { .packets = 1, .bytes = len };

	v = bpf_map_lookup_elem(&dp_metrics, &key);
	if (v) {
		/* This CPU's copy: no other writer. */
		v->packets += 1;
		v->bytes += len;
		return;
	}
	bpf_map_update_elem(&dp_metrics, &key, &init, BPF_NOEXIST);
}

#endif /* DP_METRICS_H */
