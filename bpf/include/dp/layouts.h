/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* dp_layouts: a one-entry array the programs never use. It only declares
 * the layouts dp-gen cannot find in the maps' own types: the ipcache and
 * the per-endpoint policy tries (LPM keys with more than an address, and
 * an inner map of a map of maps) and the ring buffer's records (a ring
 * buffer with a value type does not load with older libbpf, bpftool 7.1
 * included). With it the TypeScript bindings generated from an object's
 * BTF have their codecs and cannot drift from the C. */
#ifndef DP_LAYOUTS_H
#define DP_LAYOUTS_H

#include "ipcache.h"
#include "policy.h"
#include "events.h"

struct dp_layouts {
	struct dp_ipcache_key ipcache_key;
	struct dp_ipcache_info ipcache_info;
	struct dp_policy_key policy_key;
	struct dp_policy_value policy_value;
	struct dp_event event;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_layouts);
} dp_layouts SEC(".maps");

#endif /* DP_LAYOUTS_H */
