// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Program specs from libbpf section names.
 *
 * One program per known section name, so the loader's table of names,
 * program types and expected attach types can be checked against this
 * object, plus two sections ("xdp" and "tc") that hold two programs each:
 * the second program of each starts at a non-zero offset in its section and
 * references a map, so the map relocation's offset must be taken relative to
 * that program's start.
 *
 * Every program returns a fixed value that BPF_PROG_TEST_RUN can check
 * (where the program type supports test runs).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK   0
#define TC_ACT_SHOT 2
#define TCX_PASS    0
#define TCX_DROP    2
#define SK_PASS	    1

/* Counts runs of the second program of the "xdp" and "tc" sections:
 * key 0 for xdp_drop_counted, key 1 for tc_shot_counted. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} section_hits SEC(".maps");

static __always_inline void hit(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&section_hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* "xdp": BPF_PROG_TYPE_XDP, two programs in one section. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_drop_counted(struct xdp_md *ctx)
{
	hit(0);
	return XDP_DROP;
}

/* "tc": BPF_PROG_TYPE_SCHED_CLS, two programs in one section. */
SEC("tc")
int tc_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

SEC("tc")
int tc_shot_counted(struct __sk_buff *skb)
{
	hit(1);
	return TC_ACT_SHOT;
}

/* "classifier": the older name for "tc". */
SEC("classifier")
int classifier_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* "tcx/ingress", "tcx/egress": SCHED_CLS with expected attach type
 * BPF_TCX_INGRESS / BPF_TCX_EGRESS. */
SEC("tcx/ingress")
int tcx_ingress_pass(struct __sk_buff *skb)
{
	return TCX_PASS;
}

SEC("tcx/egress")
int tcx_egress_drop(struct __sk_buff *skb)
{
	return TCX_DROP;
}

/* "sockops": BPF_PROG_TYPE_SOCK_OPS. */
SEC("sockops")
int sockops_ok(struct bpf_sock_ops *ops)
{
	return 1;
}

/* "sk_msg": BPF_PROG_TYPE_SK_MSG, attach type BPF_SK_MSG_VERDICT. */
SEC("sk_msg")
int sk_msg_pass(struct sk_msg_md *msg)
{
	return SK_PASS;
}

/* "sk_skb/stream_parser" and "sk_skb/stream_verdict": BPF_PROG_TYPE_SK_SKB,
 * attach types BPF_SK_SKB_STREAM_PARSER / BPF_SK_SKB_STREAM_VERDICT. */
SEC("sk_skb/stream_parser")
int stream_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int stream_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

/* "cgroup/connect4|6", "cgroup/sendmsg4", "cgroup/recvmsg4":
 * BPF_PROG_TYPE_CGROUP_SOCK_ADDR with the matching attach type. */
SEC("cgroup/connect4")
int connect4_allow(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int connect6_allow(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4_allow(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/recvmsg4")
int recvmsg4_allow(struct bpf_sock_addr *ctx)
{
	return 1;
}

/* "cgroup_skb/ingress|egress": BPF_PROG_TYPE_CGROUP_SKB with attach type
 * BPF_CGROUP_INET_INGRESS / BPF_CGROUP_INET_EGRESS. */
SEC("cgroup_skb/ingress")
int cgroup_skb_ingress_allow(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/egress")
int cgroup_skb_egress_allow(struct __sk_buff *skb)
{
	return 1;
}

/* "socket": BPF_PROG_TYPE_SOCKET_FILTER; keeps the whole packet. */
SEC("socket")
int socket_keep_all(struct __sk_buff *skb)
{
	return skb->len;
}

/* Tracing: "kprobe/<function>" (BPF_PROG_TYPE_KPROBE), "tracepoint/<category>/<name>"
 * (BPF_PROG_TYPE_TRACEPOINT) and "raw_tp/<name>" (BPF_PROG_TYPE_RAW_TRACEPOINT).
 * The part after the slash names the attach point, not the program type. */
SEC("kprobe/do_nanosleep")
int kprobe_nanosleep(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int tracepoint_getpid(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_enter")
int raw_tp_sys_enter(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
