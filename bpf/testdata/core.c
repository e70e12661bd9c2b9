// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* CO-RE relocations (.BTF.ext core_relo records) against vmlinux BTF.
 *
 * Every result below goes into core_out[0] (a struct core_result), so a test
 * can run core_values once with BPF_PROG_TEST_RUN and compare each field with
 * what /sys/kernel/btf/vmlinux says. Most use a local "flavour" type (a name
 * ending in ___<suffix>, which CO-RE ignores when matching) whose local
 * layout is deliberately wrong: an object loaded without the relocation
 * applied gives the wrong value instead of the right one by luck.
 *
 * Relocation kinds covered (enum bpf_core_relo_kind):
 *   FIELD_BYTE_OFFSET (0)  BPF_CORE_READ() of task_struct fields, the
 *                          __sk_buff___dp access on the context, and
 *                          bpf_core_field_offset();
 *   FIELD_BYTE_SIZE (1)    bpf_core_field_size();
 *   FIELD_EXISTS (2)       bpf_core_field_exists(), one present, one absent;
 *   TYPE_ID_LOCAL (6)      bpf_core_type_id_local();
 *   TYPE_ID_TARGET (7)     bpf_core_type_id_kernel();
 *   TYPE_EXISTS (8)        bpf_core_type_exists(), one present, one absent;
 *   TYPE_SIZE (9)          bpf_core_type_size();
 *   ENUMVAL_EXISTS (10)    bpf_core_enum_value_exists(), present and absent;
 *   ENUMVAL_VALUE (11)     bpf_core_enum_value().
 *
 * core_values (tc) also returns skb->len, read through a flavour of
 * struct __sk_buff whose local offset of `len` is 8 (mark's offset in the
 * real struct): without the relocation the program returns skb->mark
 * instead of the packet length.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Flavours of kernel types, with local layouts that differ from the kernel's. */
struct sk_buff___dp_small {
	unsigned int len;
} __attribute__((preserve_access_index));

struct sk_buff___dp_missing {
	int dp_no_such_field;
} __attribute__((preserve_access_index));

struct __sk_buff___dp {
	__u32 local_only[2];
	__u32 len; /* at offset 8, where the real struct has `mark` */
} __attribute__((preserve_access_index));

struct task_struct___dp {
	int tgid;
} __attribute__((preserve_access_index));

enum bpf_map_type___dp {
	BPF_MAP_TYPE_RINGBUF___dp = 99,
	BPF_MAP_TYPE_DP_NO_SUCH_TYPE___dp = 100,
};

/* A type no kernel has. */
struct dp_no_such_type {
	int x;
};

struct core_result {
	__u32 skb_len_exists;	    /* 1 */
	__u32 missing_field_exists; /* 0 */
	__u32 skb_len_size;	    /* size of sk_buff.len: 4 */
	__u32 skb_len_offset;	    /* offset of sk_buff.len in vmlinux */
	__u32 sk_buff_exists;	    /* 1 */
	__u32 missing_type_exists;  /* 0 */
	__u32 sk_buff_size;	    /* size of struct sk_buff in vmlinux */
	__u32 sk_buff_kernel_id;    /* BTF id of struct sk_buff in vmlinux */
	__u32 sk_buff_local_id;	    /* BTF id of struct sk_buff in this object's BTF */
	__u32 ringbuf_exists;	    /* 1 */
	__u32 missing_enum_exists;  /* 0 */
	__u32 tgid;		    /* current task's tgid (pid in the initial pid namespace) */
	__u64 ringbuf_value;	    /* BPF_MAP_TYPE_RINGBUF: 27 */
	__u32 tgid_flavour;	    /* the same tgid, read through task_struct___dp */
	__u32 net_ns_inum;	    /* inode of the current task's network namespace */
	__u32 skb_len;		    /* skb->len through __sk_buff___dp */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct core_result);
} core_out SEC(".maps");

SEC("tc")
int core_values(struct __sk_buff *skb)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct___dp *task_dp = (struct task_struct___dp *)task;
	struct __sk_buff___dp *skb_dp = (struct __sk_buff___dp *)skb;
	__u32 key = 0;
	struct core_result *r = bpf_map_lookup_elem(&core_out, &key);

	if (!r)
		return -1;
	r->skb_len_exists = bpf_core_field_exists(struct sk_buff, len);
	r->missing_field_exists =
		bpf_core_field_exists(struct sk_buff___dp_missing, dp_no_such_field);
	r->skb_len_size = bpf_core_field_size(struct sk_buff, len);
	r->skb_len_offset = bpf_core_field_offset(struct sk_buff___dp_small, len);
	r->sk_buff_exists = bpf_core_type_exists(struct sk_buff);
	r->missing_type_exists = bpf_core_type_exists(struct dp_no_such_type);
	r->sk_buff_size = bpf_core_type_size(struct sk_buff___dp_small);
	r->sk_buff_kernel_id = bpf_core_type_id_kernel(struct sk_buff);
	r->sk_buff_local_id = bpf_core_type_id_local(struct sk_buff);
	r->ringbuf_exists =
		bpf_core_enum_value_exists(enum bpf_map_type___dp, BPF_MAP_TYPE_RINGBUF___dp);
	r->missing_enum_exists = bpf_core_enum_value_exists(enum bpf_map_type___dp,
							    BPF_MAP_TYPE_DP_NO_SUCH_TYPE___dp);
	r->ringbuf_value = bpf_core_enum_value(enum bpf_map_type___dp, BPF_MAP_TYPE_RINGBUF___dp);
	r->tgid = BPF_CORE_READ(task, tgid);
	r->tgid_flavour = BPF_CORE_READ(task_dp, tgid);
	r->net_ns_inum = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	r->skb_len = skb_dp->len;
	return skb_dp->len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
