// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket redirection between local TCP sockets, the way Cilium accelerates
 * traffic between local endpoints.
 *
 * sockops_insert (sockops) puts every established IPv4 TCP socket of its
 * cgroup into sock_hash, keyed by its own 4-tuple as seen locally.
 *
 * msg_redirect (sk_msg) runs on sendmsg() of the sockets in sock_hash and
 * redirects the data straight into the receive queue of the peer socket
 * (the one whose local tuple is this socket's remote tuple), counting
 * redirected messages in redirect_stats[0] and bytes in [1]. A message
 * whose peer is not in the map passes normally (and is not counted).
 *
 * skb_verdict (sk_skb/stream_verdict) and skb_parser
 * (sk_skb/stream_parser) pass everything; they exist to attach.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2

struct sock_key {
	__u32 local_ip4;
	__u32 remote_ip4;
	__u32 local_port;  /* host order */
	__u32 remote_port; /* host order */
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, struct sock_key);
	__type(value, __u64);
} sock_hash SEC(".maps");

enum { REDIRECTED = 0, REDIRECTED_BYTES = 1, INSERTED = 2, SLOTS = 4 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} redirect_stats SEC(".maps");

static __always_inline void add(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&redirect_stats, &slot);

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
	key.local_port = skops->local_port;
	key.remote_port = bpf_ntohl(skops->remote_port);
	if (bpf_sock_hash_update(skops, &sock_hash, &key, BPF_NOEXIST) == 0)
		add(INSERTED, 1);
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
		add(REDIRECTED, 1);
		add(REDIRECTED_BYTES, size);
	}
	return SK_PASS;
}

SEC("sk_skb/stream_parser")
int skb_parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int skb_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
