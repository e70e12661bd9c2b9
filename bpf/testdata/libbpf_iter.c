// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* BPF iterators as libbpf users write them: SEC("iter/task") over every
 * task and the socket iterator SEC("iter/tcp") over every TCP socket, each
 * printing one line per item with BPF_SEQ_PRINTF.
 *
 * Note for loaders: iterator programs are BPF_PROG_TYPE_TRACING with the
 * expected attach type BPF_TRACE_ITER and `attach_btf_id` set to the
 * kernel's BTF FUNC `bpf_iter_task` / `bpf_iter_tcp`.
 */
/* bpf_tracing.h needs the target architecture; libbpf users pass
 * -D__TARGET_ARCH_x86 (bpf/build.sh passes none), so it is set here. */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(seq, "%d\n", task->pid);
	return 0;
}

SEC("iter/tcp")
int dump_tcp(struct bpf_iter__tcp *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct sock_common *skc = ctx->sk_common;

	if (!skc)
		return 0;
	BPF_SEQ_PRINTF(seq, "%u %u\n", skc->skc_family, ctx->uid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
