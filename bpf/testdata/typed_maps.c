// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Typed maps: C layouts with padding, network-order fields, arrays, nested
 * structs, a union and a packed struct, in one map of each type @dp/maps
 * wraps, plus global variables for generated bindings.
 *
 * fill_maps (tc) writes known values a test decodes in TypeScript; each run
 * uses skb->mark as a seed `s` (a test sets it through the context):
 *   policy[{identity = s, dport = htons(80), proto = 6}]
 *       = {packets = s * 1000, bytes = 0x1122334455667788, action = 1,
 *          flags = {1, 2, 3}, proxy_port = htons(15001)}
 *   backends[s % 4] = {addr = htonl(0x0a000001 + s), port = htons(8080),
 *          mac = 02:00:00:00:00:<s>, u.weight = s, addr6 = fd00::<s>,
 *          nested = {a = -s, b = s}}
 *   stats[0] (per-CPU) .packets += 1, .bytes += skb->len
 *   odd[0] = {a = 1, b = 2, c = 3, d = {4, 5, 6}, name = "odd"}
 *   packed[0] = {a = 7, b = 0x01020304}
 *   lru[s] = s * 2;  percpu_hash[s] += 1;
 *   routes: lookup of 10.1.2.3 (a test stores prefixes) → last_route
 *   queue and stack: push s;  events (ring buffer): one struct event {s, len}
 *   mmap_counters[s % 8] += 1 (a BPF_F_MMAPABLE array)
 *   run_count (.bss) += 1; last_route (.bss) = the route found or 0
 * It returns the value of `verdict` (.rodata, default TC_ACT_OK).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct policy_key {
	__u32 identity;
	__be16 dport;
	__u8 proto;
	__u8 pad;
};

struct policy_entry {
	__u64 packets;
	__u64 bytes;
	__u8 action;
	__u8 flags[3];
	__be16 proxy_port;
};

struct nested {
	__s32 a;
	__u16 b;
};

struct backend {
	__be32 addr;
	__be16 port;
	__u8 mac[6];
	union {
		__u32 weight;
		__u8 raw[4];
	} u;
	__u8 addr6[16];
	struct nested nested;
};

struct counters {
	__u64 packets;
	__u64 bytes;
};

struct odd_layout {
	__u8 a;
	__u64 b;
	__u16 c;
	__u32 d[3];
	char name[5];
};

struct packed_pair {
	__u8 a;
	__u32 b;
} __attribute__((packed));

struct lpm_v4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct event {
	__u32 seed;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counters);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct odd_layout);
} odd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packed_pair);
} packed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_v4_key);
	__type(value, __u32);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 16);
	__type(value, __u32);
} stack SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} mmap_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

struct inner_counts {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_counts);
} per_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, struct policy_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

/* Global variables. */
volatile const __u32 verdict = TC_ACT_OK;
volatile const struct nested default_nested = { .a = -1, .b = 2 };
__u64 run_count;
__u32 last_route;
struct counters totals = { .packets = 5, .bytes = 6 };

SEC("tc")
int fill_maps(struct __sk_buff *skb)
{
	__u32 s = skb->mark;
	__u32 zero = 0;
	__u32 slot = s % 4;
	struct policy_key pk = { .identity = s, .dport = bpf_htons(80), .proto = 6 };
	struct policy_entry pe = {
		.packets = (__u64)s * 1000,
		.bytes = 0x1122334455667788ULL,
		.action = 1,
		.flags = { 1, 2, 3 },
		.proxy_port = bpf_htons(15001),
	};
	struct backend be = {
		.addr = bpf_htonl(0x0a000001 + s),
		.port = bpf_htons(8080),
		.mac = { 2, 0, 0, 0, 0, (__u8)s },
		.u = { .weight = s },
		.addr6 = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (__u8)s },
		.nested = { .a = -(__s32)s, .b = (__u16)s },
	};
	struct odd_layout o = { .a = 1, .b = 2, .c = 3, .d = { 4, 5, 6 }, .name = "odd" };
	struct packed_pair pp = { .a = 7, .b = 0x01020304 };
	struct lpm_v4_key lk = { .prefixlen = 32, .addr = { 10, 1, 2, 3 } };
	struct counters *c;
	__u64 *v, one = 1, twice = (__u64)s * 2;
	__u32 *route;
	struct event *e;

	bpf_map_update_elem(&policy, &pk, &pe, BPF_ANY);
	bpf_map_update_elem(&backends, &slot, &be, BPF_ANY);
	c = bpf_map_lookup_elem(&stats, &zero);
	if (c) {
		c->packets++;
		c->bytes += skb->len;
	}
	bpf_map_update_elem(&odd, &zero, &o, BPF_ANY);
	bpf_map_update_elem(&packed, &zero, &pp, BPF_ANY);
	bpf_map_update_elem(&lru, &s, &twice, BPF_ANY);
	v = bpf_map_lookup_elem(&percpu_hash, &s);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&percpu_hash, &s, &one, BPF_NOEXIST);
	route = bpf_map_lookup_elem(&routes, &lk);
	last_route = route ? *route : 0;
	bpf_map_push_elem(&queue, &s, BPF_ANY);
	bpf_map_push_elem(&stack, &s, BPF_ANY);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->seed = s;
		e->len = skb->len;
		bpf_ringbuf_submit(e, 0);
	}
	slot = s % 8;
	v = bpf_map_lookup_elem(&mmap_counters, &slot);
	if (v)
		__sync_fetch_and_add(v, 1);
	run_count++;
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
