// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An object written for iproute2's tc (`tc filter add ... bpf obj X sec
 * classifier`): maps defined the legacy way, as `struct bpf_elf_map`
 * variables in SEC("maps") (iproute2's include/bpf_elf.h), without BTF map
 * definitions.
 *
 *   legacy_counts  array of 2 u64 counters, pinning PIN_GLOBAL_NS: tc pins
 *                  it at <bpffs>/tc/globals/legacy_counts and every object
 *                  that defines it shares it;
 *   legacy_lens    hash ifindex -> last packet length, not pinned;
 *   legacy_unused  referenced by no program: still a map of the object;
 *   dp_testdata_pinned
 *                  PIN_GLOBAL_NS, declared as pinned_a.c declares it with
 *                  LIBBPF_PIN_BY_NAME: the map tc (through libbpf) pins at
 *                  <bpffs>/tc/globals/dp_testdata_pinned for pinned_a.o is
 *                  the one this object finds there.
 *
 * legacy_count (classifier) counts IPv4 packets in slot 0 and others in
 * slot 1, records the length by ifindex and by skb->mark (as pinned_put
 * does) and returns TC_ACT_OK (0).
 *
 * tc built with libbpf 1.x (Debian 12's iproute2) refuses SEC("maps")
 * objects; iproute2's own loader (without libbpf) takes them.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define PIN_NONE      0
#define PIN_GLOBAL_NS 2
#define TC_ACT_OK     0

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

struct bpf_elf_map SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 2,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") legacy_lens = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 16,
	.flags = BPF_F_NO_PREALLOC,
	.pinning = PIN_NONE,
};

struct bpf_elf_map SEC("maps") legacy_unused = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
};

struct bpf_elf_map SEC("maps") dp_testdata_pinned = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 16,
	.pinning = PIN_GLOBAL_NS,
};

SEC("classifier")
int legacy_count(struct __sk_buff *skb)
{
	__u32 slot = skb->protocol == bpf_htons(ETH_P_IP) ? 0 : 1;
	__u32 ifindex = skb->ifindex;
	__u32 len = skb->len;
	__u32 mark = skb->mark;
	__u64 len64 = skb->len;
	__u64 *count = bpf_map_lookup_elem(&legacy_counts, &slot);

	if (count)
		__sync_fetch_and_add(count, 1);
	bpf_map_update_elem(&legacy_lens, &ifindex, &len, BPF_ANY);
	bpf_map_update_elem(&dp_testdata_pinned, &mark, &len64, BPF_ANY);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
