// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket redirection between local TCP sockets, the way Cilium
 * short-circuits traffic between endpoints on one node. Written against
 * the kernel's UAPI headers (<linux/bpf.h>) instead of vmlinux.h.
 *
 * sockops_insert (sock_ops, attached to a cgroup) puts every established
 * IPv4 TCP socket of the cgroup into sock_hash, keyed by its 4-tuple as
 * seen from that socket.
 *
 * msg_redirect (sk_msg, attached to sock_hash) runs on sendmsg() of those
 * sockets and puts the data straight into the receive queue of the peer
 * socket (the one whose local end is this socket's remote end), skipping
 * the TCP/IP stack. It counts messages and bytes in stats. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2

struct sock_key {
	__be32 local_ip4;
	__be32 remote_ip4;
	__u32 local_port;  /* host order */
	__u32 remote_port; /* host order */
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, struct sock_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

enum stat { SOCKETS_ADDED = 0, MESSAGES_REDIRECTED = 1, BYTES_REDIRECTED = 2, STATS = 3 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STATS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);

	if (v)
		__sync_fetch_and_add(v, n);
}

SEC("sockops")
int sockops_insert(struct bpf_sock_ops *skops)
{
	struct sock_key key = {};

	if (skops->family != AF_INET)
		return 1;
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	key.local_ip4 = skops->local_ip4;
	key.remote_ip4 = skops->remote_ip4;
	key.local_port = skops->local_port;		 /* host order already */
	key.remote_port = bpf_ntohl(skops->remote_port); /* network order in the upper half */
	if (bpf_sock_hash_update(skops, &sock_hash, &key, BPF_NOEXIST) == 0)
		count(SOCKETS_ADDED, 1);
	return 1;
}

SEC("sk_msg")
int msg_redirect(struct sk_msg_md *msg)
{
	struct sock_key peer = {};
	__u64 size = msg->size;

	if (msg->family != AF_INET)
		return SK_PASS;
	peer.local_ip4 = msg->remote_ip4;
	peer.remote_ip4 = msg->local_ip4;
	peer.local_port = bpf_ntohl(msg->remote_port);
	peer.remote_port = msg->local_port;
	if (bpf_msg_redirect_hash(msg, &sock_hash, &peer, BPF_F_INGRESS) == SK_PASS) {
		count(MESSAGES_REDIRECTED, 1);
		count(BYTES_REDIRECTED, size);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
