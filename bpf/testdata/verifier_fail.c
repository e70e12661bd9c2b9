// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A program the verifier rejects on a known source line, for mapping a
 * verifier error back to the source through .BTF.ext line_info.
 *
 * deref_unchecked (tc) dereferences bpf_map_lookup_elem()'s result without a
 * NULL check (the map is a hash on purpose: since 6.14 the verifier knows
 * that an array lookup with a constant in-bounds key cannot return NULL).
 * The kernel rejects it with
 *   R0 invalid mem access 'map_value_or_null'
 * on the line whose trailing comment starts with VERIFIER_FAIL_LINE; a test
 * finds that line by searching this file for the marker. The object compiles
 * cleanly; only loading fails.
 *
 * ok (tc) is a valid program in the same object (returns 0), so loading a
 * chosen subset of programs can skip the bad one.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fail_values SEC(".maps");

SEC("tc")
int deref_unchecked(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *value = bpf_map_lookup_elem(&fail_values, &key);

	return *value + 1; /* VERIFIER_FAIL_LINE: no NULL check */
}

SEC("tc")
int ok(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
