/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-CPU packet and byte counters by {reason, direction}: reason 0
 * (DP_FORWARDED) counts forwarded packets, the others drops by
 * enum dp_drop_reason. User space sums the CPUs.
 */
#ifndef DP_METRICS_H
#define DP_METRICS_H

#include "common.h"

/* The counter of (reason, direction) is at index reason | direction << 8:
 * reason 0-255 (enum dp_drop_reason; 0 = forwarded), direction DP_DIR_*.
 * A per-CPU array: the lookup is inlined and there is nothing to insert. */
#define DP_METRICS_INDEX(reason, direction) ((__u32)(reason) | ((__u32)(direction) << 8))

struct dp_metrics_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 512); /* 256 reasons x 2 directions */
	__type(key, __u32);
	__type(value, struct dp_metrics_value);
} dp_metrics SEC(".maps");

static __always_inline void dp_metrics_add(__u8 reason, __u8 direction, __u32 len)
{
	__u32 index = DP_METRICS_INDEX(reason, direction & 1);
	struct dp_metrics_value *v = bpf_map_lookup_elem(&dp_metrics, &index);

	if (v) {
		/* This CPU's copy: no other writer. */
		v->packets += 1;
		v->bytes += len;
	}
}

#endif /* DP_METRICS_H */
