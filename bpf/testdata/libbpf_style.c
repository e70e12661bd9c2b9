// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An object exactly as libbpf users write one: vmlinux.h for kernel types,
 * libbpf's headers, SEC("tc"), a `const volatile` setting, BPF_CORE_READ and
 * a ring buffer. It must load unmodified.
 *
 * Note for loaders: with vmlinux.h every struct carries
 * preserve_access_index, so even the packet header reads (ethhdr, iphdr) and
 * the __sk_buff field reads are CO-RE field offset relocations, not plain
 * offsets; and bpf_get_current_task() + BPF_CORE_READ() becomes
 * bpf_probe_read_kernel() calls on relocated offsets.
 *
 * tc_events (tc) sends one struct event into the `events` ring buffer for
 * every IPv4 packet (only those with IP protocol `only_protocol` when that
 * is set before load), counts events it could not reserve space for in
 * `lost`, and returns TC_ACT_OK (0) for every packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP  0x0800
#define TC_ACT_OK 0

/* 0 reports every IPv4 packet; e.g. 17 reports UDP only. */
const volatile __u8 only_protocol = 0;

struct event {
	__u32 pid;     /* tgid of the current task (the test runner in a test run) */
	__u32 len;     /* skb->len */
	__be32 saddr;  /* network byte order */
	__be32 daddr;  /* network byte order */
	__u16 h_proto; /* host byte order: 0x0800 */
	__u8 protocol;
	__u8 ttl;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

SEC("tc")
int tc_events(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct task_struct *task;
	struct event *e;

	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	if (only_protocol && ip->protocol != only_protocol)
		return TC_ACT_OK;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		u32 key = 0;
		u64 *n = bpf_map_lookup_elem(&lost, &key);

		if (n)
			*n += 1;
		return TC_ACT_OK;
	}
	task = (struct task_struct *)bpf_get_current_task();
	e->pid = BPF_CORE_READ(task, tgid);
	e->len = skb->len;
	e->saddr = ip->saddr;
	e->daddr = ip->daddr;
	e->h_proto = bpf_ntohs(eth->h_proto);
	e->protocol = ip->protocol;
	e->ttl = ip->ttl;
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
