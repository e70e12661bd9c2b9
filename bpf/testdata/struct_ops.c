// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A TCP congestion control written as struct_ops (Reno through the kernel's
 * tcp_reno_* kfuncs), in the two ways an object registers one:
 *
 *   dp_cc_link    SEC(".struct_ops.link"): a map with BPF_F_LINK, registered
 *                 by creating a bpf_link for it, unregistered when the link
 *                 is closed;
 *   dp_cc_update  SEC(".struct_ops"): registered by writing the map's value,
 *                 unregistered by deleting it.
 *
 * Both use the same three programs, which count their calls in `calls`
 * (cong_avoid runs for every ACK that grows the window). Registration is
 * host-wide: tests give each map a unique name (the `name` member) before
 * loading and select it on their own sockets only (TCP_CONGESTION).
 */
/* BPF_PROG needs the architecture (bpf/build.sh passes none). */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

struct dp_cc_calls {
	__u64 ssthresh;
	__u64 cong_avoid;
	__u64 undo_cwnd;
};

struct dp_cc_calls calls;

SEC("struct_ops/dp_cc_ssthresh")
__u32 BPF_PROG(dp_cc_ssthresh, struct sock *sk)
{
	__sync_fetch_and_add(&calls.ssthresh, 1);
	return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/dp_cc_cong_avoid")
void BPF_PROG(dp_cc_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
	__sync_fetch_and_add(&calls.cong_avoid, 1);
	tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/dp_cc_undo_cwnd")
__u32 BPF_PROG(dp_cc_undo_cwnd, struct sock *sk)
{
	__sync_fetch_and_add(&calls.undo_cwnd, 1);
	return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops.link")
struct tcp_congestion_ops dp_cc_link = {
	.ssthresh = (void *)dp_cc_ssthresh,
	.cong_avoid = (void *)dp_cc_cong_avoid,
	.undo_cwnd = (void *)dp_cc_undo_cwnd,
	.name = "dp_cc_link",
};

SEC(".struct_ops")
struct tcp_congestion_ops dp_cc_update = {
	.ssthresh = (void *)dp_cc_ssthresh,
	.cong_avoid = (void *)dp_cc_cong_avoid,
	.undo_cwnd = (void *)dp_cc_undo_cwnd,
	.name = "dp_cc_update",
};

char LICENSE[] SEC("license") = "Dual BSD/GPL";
