// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* @dp/sockmap: socket-layer acceleration of TCP between local sockets.
 *
 * dp_sm_sockops (sockops, on a cgroup v2) puts every TCP socket of the
 * cgroup whose two ends are local addresses (dp_sm_local4 / dp_sm_local6,
 * LPM tries) into dp_sm_socks, a sockhash keyed by the socket's own tuple
 * (struct dp_sm_key), when the connection becomes ESTABLISHED (active or
 * passive side).
 *
 * dp_sm_redirect (sk_msg, attached to dp_sm_socks) runs on every sendmsg()
 * of those sockets: it looks up the peer by the reversed tuple and moves
 * the data straight into the peer's receive queue with
 * bpf_msg_redirect_hash(BPF_F_INGRESS). It falls back to the normal TCP
 * path, never dropping, when acceleration is disabled (dp_sm_config), when
 * the peer is not in the map, while bytes sent on the normal path are
 * unacknowledged or unread by the peer (a redirect would overtake them:
 * the receiver reads its redirected queue first), and while the peer holds
 * more unread redirected bytes than the backlog bound (the redirect has no
 * flow control). The peer's fields are read through its address, recorded
 * in dp_sm_addrs at insertion and dropped when it closes (sock_ops state
 * callback).
 *
 * dp_sm_resync (iter/tcp) walks the TCP sockets of a network namespace and
 * inserts the established local ones of the configured cgroup (and its
 * descendants) that sock_ops did not see: connections established before
 * the programs were attached, or while no process was attached. Only
 * quiescent sockets (nothing unread, nothing unacknowledged) are inserted,
 * so no redirected byte can overtake one sent on the normal path. One
 * struct dp_sm_resync_rec per candidate socket is written to the iterator.
 *
 * With the policy re-check on (dp_sm_config[DP_SM_CONFIG_POLICY]), a
 * message is redirected only if the datapath's policy allows the
 * connection, looked up per message with the datapath's own headers and
 * maps (dp_endpoints, dp_ipcache, dp_policy: the loader is given a node's
 * maps): the client endpoint's egress towards the server's identity and
 * the server endpoint's ingress from the client's identity, for TCP and
 * the server's port, as from_container and to_container decide a new
 * connection. Which side is the server is recorded at insertion in the
 * low bits of dp_sm_addrs (sock_ops: active or passive open; resync: a
 * listener on the local port, found by the same iterator pass in
 * dp_sm_listen). Anything else takes the normal path, counted as a
 * policy fallback.
 *
 * dp_sm_stats (per-CPU array) counts what happened, by DP_SM_STAT_* slot;
 * dp_sm_reasons (LRU hash) keeps, per tuple, the last reason a socket was
 * or was not accelerated, for status queries.
 */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

/* A read-only, untrusted view of a kernel object by BTF type: loads from it
 * are plain loads the kernel makes fault-safe (a stale pointer reads 0),
 * not one bpf_probe_read_kernel() call per field. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#include "dp/endpoint.h"
#include "dp/identity.h"
#include "dp/ipcache.h"
#include "dp/policy.h"
/* Complete BTF for the policy map's inner key and value (dp_layouts is
 * never loaded here). */
#include "dp/layouts.h"

#define AF_INET	 2
#define AF_INET6 10

/* A socket's tuple as seen from that socket. Ports in host order;
 * addresses in network order, IPv4 in ip[0] (IPv4-mapped IPv6 addresses
 * are stored as IPv4). */
struct dp_sm_key {
	__u32 family;
	__u32 local_port;
	__u32 remote_port;
	__u32 local_ip[4];
	__u32 remote_ip[4];
};

struct dp_sm_lpm4 {
	__u32 prefixlen;
	__u32 addr;
};

struct dp_sm_lpm6 {
	__u32 prefixlen;
	__u32 addr[4];
};

/* Why a tuple is or is not accelerated (dp_sm_reasons values). */
enum {
	DP_SM_REASON_INSERTED = 1,  /* in the sockhash (sock_ops) */
	DP_SM_REASON_NOT_LOCAL = 2, /* an end is not a local address */
	DP_SM_REASON_INSERT_FAILED =
		3,		   /* the kernel refused: err holds the errno (E2BIG: map full) */
	DP_SM_REASON_NO_PEER = 4,  /* a message fell back: the peer is not in the map */
	DP_SM_REASON_DRAINING = 5, /* a message fell back: normal-path bytes in flight */
	DP_SM_REASON_RESYNCED = 6, /* in the sockhash (iterator) */
	DP_SM_REASON_RESYNC_BUSY = 7, /* the iterator skipped it: unread or unacknowledged bytes */
	DP_SM_REASON_POLICY =
		8, /* a message fell back: the datapath's policy does not allow the pair */
};

struct dp_sm_reason {
	__u32 reason;
	__u32 err;
};

enum {
	DP_SM_STAT_REDIRECTED = 0,
	DP_SM_STAT_REDIRECTED_BYTES = 1,
	DP_SM_STAT_FALLBACK_DISABLED = 2,
	DP_SM_STAT_FALLBACK_NO_PEER = 3,
	DP_SM_STAT_FALLBACK_DRAINING = 4,
	DP_SM_STAT_FALLBACK_BYTES = 5,
	DP_SM_STAT_INSERTED = 6,
	DP_SM_STAT_NOT_LOCAL = 7,
	DP_SM_STAT_INSERT_FAILED = 8,
	DP_SM_STAT_RESYNCED = 9,
	DP_SM_STAT_RESYNC_BUSY = 10,
	DP_SM_STAT_RESYNC_FAILED = 11,
	DP_SM_STAT_FALLBACK_BACKLOG = 12,
	DP_SM_STAT_FALLBACK_POLICY = 13,
	DP_SM_STAT_SLOTS = 16,
};

/* dp_sm_config slots. */
enum {
	DP_SM_CONFIG_ENABLED = 0,   /* 1: redirect; 0: every message takes the normal path */
	DP_SM_CONFIG_CGROUP_ID = 1, /* the iterator's cgroup (id = inode number); 0: any */
	DP_SM_CONFIG_BACKLOG =
		2, /* unread redirected bytes a peer may hold, at least its receive buffer */
	DP_SM_CONFIG_POLICY = 3, /* 1: re-check the datapath's policy per message */
	DP_SM_CONFIG_SLOTS = 4,
};

/* What dp_sm_resync writes per candidate socket. */
struct dp_sm_resync_rec {
	struct dp_sm_key key;
	__u32 result; /* 0 inserted, 1 already there, 2 busy, 3 failed */
	__s32 err;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct dp_sm_key);
	__type(value, __u64);
} dp_sm_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dp_sm_lpm4);
	__type(value, __u8);
} dp_sm_local4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dp_sm_lpm6);
	__type(value, __u8);
} dp_sm_local6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DP_SM_STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} dp_sm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DP_SM_CONFIG_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} dp_sm_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dp_sm_key);
	__type(value, struct dp_sm_reason);
} dp_sm_reasons SEC(".maps");

/* Each socket's kernel address, by its tuple, for dp_sm_redirect to read
 * the peer's queues, with the socket's side of the connection in the two
 * low bits (a struct sock is aligned to more than 4): DP_SM_SIDE_*, 0 when
 * unknown (recorded by an earlier version). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct dp_sm_key);
	__type(value, __u64);
} dp_sm_addrs SEC(".maps");

#define DP_SM_SIDE_ACTIVE  1ULL /* it connected: the remote port is the server's */
#define DP_SM_SIDE_PASSIVE 2ULL /* it was accepted: the local port is the server's */
#define DP_SM_SIDE_MASK	   3ULL

/* The local ports of listening sockets one dp_sm_resync pass met (the
 * iterator walks listeners before established sockets): an established
 * socket on such a port was accepted. User space clears it before a pass. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} dp_sm_listen SEC(".maps");

static __always_inline void count(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&dp_sm_stats, &slot);

	if (v)
		*v += n;
}

static __always_inline __u64 sm_config(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&dp_sm_config, &slot);

	return v ? *v : 0;
}

static __always_inline void set_reason(struct dp_sm_key *key, __u32 reason, __u32 err)
{
	struct dp_sm_reason *old = bpf_map_lookup_elem(&dp_sm_reasons, key);
	struct dp_sm_reason r = { .reason = reason, .err = err };

	if (old && old->reason == reason && old->err == err)
		return;
	bpf_map_update_elem(&dp_sm_reasons, key, &r, BPF_ANY);
}

/* IPv4-mapped IPv6 tuples become IPv4 ones, so that a v4 socket and a
 * dual-stack v6 socket of one connection have matching keys. */
static __always_inline void normalize(struct dp_sm_key *key)
{
	if (key->family != AF_INET6)
		return;
	if (key->local_ip[0] | key->local_ip[1] | key->remote_ip[0] | key->remote_ip[1])
		return;
	if (key->local_ip[2] != bpf_htonl(0xffff) || key->remote_ip[2] != bpf_htonl(0xffff))
		return;
	key->family = AF_INET;
	key->local_ip[0] = key->local_ip[3];
	key->remote_ip[0] = key->remote_ip[3];
	key->local_ip[2] = key->local_ip[3] = 0;
	key->remote_ip[2] = key->remote_ip[3] = 0;
}

static __always_inline int is_local(__u32 family, __u32 *ip)
{
	if (family == AF_INET) {
		struct dp_sm_lpm4 k = { .prefixlen = 32, .addr = ip[0] };

		return bpf_map_lookup_elem(&dp_sm_local4, &k) != NULL;
	}
	struct dp_sm_lpm6 k = { .prefixlen = 128 };

	k.addr[0] = ip[0];
	k.addr[1] = ip[1];
	k.addr[2] = ip[2];
	k.addr[3] = ip[3];
	return bpf_map_lookup_elem(&dp_sm_local6, &k) != NULL;
}

static __always_inline int both_local(struct dp_sm_key *key)
{
	return is_local(key->family, key->local_ip) && is_local(key->family, key->remote_ip);
}

/* Records a socket's address and side in dp_sm_addrs. The verifier allows
 * no arithmetic on the socket pointer: the side is or-ed into the stored
 * value, a plain number once read back. */
static __always_inline void record_addr(struct dp_sm_key *key, __u64 *addr, __u64 side)
{
	__u64 *v;

	bpf_map_update_elem(&dp_sm_addrs, key, addr, BPF_ANY);
	v = bpf_map_lookup_elem(&dp_sm_addrs, key);
	if (v)
		*v |= side;
}

/* The tuple of the other end of a connection. */
static __always_inline void reverse(const struct dp_sm_key *in, struct dp_sm_key *out)
{
	out->family = in->family;
	out->local_port = in->remote_port;
	out->remote_port = in->local_port;
	out->local_ip[0] = in->remote_ip[0];
	out->local_ip[1] = in->remote_ip[1];
	out->local_ip[2] = in->remote_ip[2];
	out->local_ip[3] = in->remote_ip[3];
	out->remote_ip[0] = in->local_ip[0];
	out->remote_ip[1] = in->local_ip[1];
	out->remote_ip[2] = in->local_ip[2];
	out->remote_ip[3] = in->local_ip[3];
}

/* A key address as the datapath stores addresses (16 bytes, IPv4-mapped). */
static __always_inline void dp_addr(__u8 *out, __u32 family, const __u32 *ip)
{
	__u32 *w = (__u32 *)out;

	if (family == AF_INET) {
		dp_addr_set_v4(out, ip[0]);
		return;
	}
	w[0] = ip[0];
	w[1] = ip[1];
	w[2] = ip[2];
	w[3] = ip[3];
}

/* Whether the datapath's policy lets a TCP connection from `client` to
 * `server` on the server's `port` through, as it decides a new connection:
 * the client endpoint's egress towards the server's identity (from_container)
 * and the server endpoint's ingress from the client's identity
 * (to_container), identities from the ipcache. An address that is no
 * endpoint (the host, another local address) has no policy of its own; a
 * connection within one endpoint never reaches the datapath. No policy
 * counter is touched: the datapath counts the connection's first packet. */
static __always_inline int policy_allows(__u32 family, const __u32 *client, const __u32 *server,
					 __u32 port)
{
	__u8 fam = family == AF_INET ? DP_FAMILY_IPV4 : DP_FAMILY_IPV6;
	struct dp_endpoint_info *cep, *sep;
	struct dp_policy_result res;
	__u8 c[16], s[16];
	__u32 remote;

	if (client[0] == server[0] && client[1] == server[1] && client[2] == server[2] &&
	    client[3] == server[3])
		return 1;
	dp_addr(c, family, client);
	dp_addr(s, family, server);
	cep = dp_endpoint_lookup(c, fam);
	sep = dp_endpoint_lookup(s, fam);
	if (cep) {
		remote = dp_ipcache_identity(s, fam, sep ? sep->identity : 0);
		dp_policy_lookup(cep, DP_DIR_EGRESS, remote, DP_IPPROTO_TCP, bpf_htons(port), &res);
		if (res.reason)
			return 0;
	}
	if (sep) {
		remote = dp_ipcache_identity(c, fam, cep ? cep->identity : 0);
		dp_policy_lookup(sep, DP_DIR_INGRESS, remote, DP_IPPROTO_TCP, bpf_htons(port),
				 &res);
		if (res.reason)
			return 0;
	}
	return 1;
}

/* The policy re-check of a message from `self` to `peer` (their dp_sm_addrs
 * values `self_v` and `peer_v`): the connection's client and server come
 * from the sides recorded at insertion; unknown or inconsistent sides do
 * not pass. */
static __always_inline int policy_passes(const struct dp_sm_key *self, const struct dp_sm_key *peer,
					 __u64 self_v, __u64 peer_v)
{
	__u64 ss = self_v & DP_SM_SIDE_MASK, ps = peer_v & DP_SM_SIDE_MASK;

	if (ss == DP_SM_SIDE_ACTIVE && ps == DP_SM_SIDE_PASSIVE)
		return policy_allows(self->family, self->local_ip, peer->local_ip,
				     peer->local_port);
	if (ss == DP_SM_SIDE_PASSIVE && ps == DP_SM_SIDE_ACTIVE)
		return policy_allows(self->family, peer->local_ip, self->local_ip,
				     self->local_port);
	return 0;
}

SEC("sockops")
int dp_sm_sockops(struct bpf_sock_ops *skops)
{
	struct dp_sm_key key = {};
	long err;

	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && skops->op != BPF_SOCK_OPS_STATE_CB)
		return 1;
	key.family = skops->family;
	if (key.family == AF_INET) {
		key.local_ip[0] = skops->local_ip4;
		key.remote_ip[0] = skops->remote_ip4;
	} else if (key.family == AF_INET6) {
		key.local_ip[0] = skops->local_ip6[0];
		key.local_ip[1] = skops->local_ip6[1];
		key.local_ip[2] = skops->local_ip6[2];
		key.local_ip[3] = skops->local_ip6[3];
		key.remote_ip[0] = skops->remote_ip6[0];
		key.remote_ip[1] = skops->remote_ip6[1];
		key.remote_ip[2] = skops->remote_ip6[2];
		key.remote_ip[3] = skops->remote_ip6[3];
	} else {
		return 1;
	}
	key.local_port = skops->local_port;
	key.remote_port = bpf_ntohl(skops->remote_port);
	normalize(&key);
	if (skops->op == BPF_SOCK_OPS_STATE_CB) {
		/* args[1] is the new state: the socket leaves the sockhash by itself. */
		if (skops->args[1] == TCP_CLOSE)
			bpf_map_delete_elem(&dp_sm_addrs, &key);
		return 1;
	}
	if (!both_local(&key)) {
		count(DP_SM_STAT_NOT_LOCAL, 1);
		set_reason(&key, DP_SM_REASON_NOT_LOCAL, 0);
		return 1;
	}
	err = bpf_sock_hash_update(skops, &dp_sm_socks, &key, BPF_NOEXIST);
	if (err == 0) {
		__u64 addr = (__u64)skops->sk;

		record_addr(&key, &addr,
			    skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ? DP_SM_SIDE_ACTIVE
									    : DP_SM_SIDE_PASSIVE);
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_STATE_CB_FLAG);
		count(DP_SM_STAT_INSERTED, 1);
		set_reason(&key, DP_SM_REASON_INSERTED, 0);
	} else {
		count(DP_SM_STAT_INSERT_FAILED, 1);
		set_reason(&key, DP_SM_REASON_INSERT_FAILED, (__u32)-err);
	}
	return 1;
}

static __always_inline int fall_back(__u32 slot, __u64 size)
{
	count(slot, 1);
	count(DP_SM_STAT_FALLBACK_BYTES, size);
	return SK_PASS;
}

SEC("sk_msg")
int dp_sm_redirect(struct sk_msg_md *msg)
{
	struct dp_sm_key peer = {}, self;
	__u64 size = msg->size;
	struct bpf_sock *sk = msg->sk;
	__u64 *peer_addr, *self_addr;
	struct tcp_sock *tp;

	if (!sm_config(DP_SM_CONFIG_ENABLED))
		return fall_back(DP_SM_STAT_FALLBACK_DISABLED, size);
	peer.family = msg->family;
	if (peer.family == AF_INET) {
		peer.local_ip[0] = msg->remote_ip4;
		peer.remote_ip[0] = msg->local_ip4;
	} else if (peer.family == AF_INET6) {
		peer.local_ip[0] = msg->remote_ip6[0];
		peer.local_ip[1] = msg->remote_ip6[1];
		peer.local_ip[2] = msg->remote_ip6[2];
		peer.local_ip[3] = msg->remote_ip6[3];
		peer.remote_ip[0] = msg->local_ip6[0];
		peer.remote_ip[1] = msg->local_ip6[1];
		peer.remote_ip[2] = msg->local_ip6[2];
		peer.remote_ip[3] = msg->local_ip6[3];
	} else {
		return SK_PASS;
	}
	peer.local_port = bpf_ntohl(msg->remote_port);
	peer.remote_port = msg->local_port;
	normalize(&peer);
	/* Recorded under the sender's own tuple. */
	reverse(&peer, &self);
	peer_addr = bpf_map_lookup_elem(&dp_sm_addrs, &peer);
	/* The datapath's policy, per message: a change applies to the next one. */
	if (sm_config(DP_SM_CONFIG_POLICY)) {
		struct dp_sm_reason *last;

		self_addr = bpf_map_lookup_elem(&dp_sm_addrs, &self);
		if (!policy_passes(&self, &peer, self_addr ? *self_addr : 0,
				   peer_addr ? *peer_addr : 0)) {
			set_reason(&self, DP_SM_REASON_POLICY, 0);
			set_reason(&peer, DP_SM_REASON_POLICY, 0);
			return fall_back(DP_SM_STAT_FALLBACK_POLICY, size);
		}
		last = bpf_map_lookup_elem(&dp_sm_reasons, &self);
		if (last && last->reason == DP_SM_REASON_POLICY) {
			set_reason(&self, DP_SM_REASON_INSERTED, 0);
			set_reason(&peer, DP_SM_REASON_INSERTED, 0);
		}
	}
	/* Bytes this socket sent on the normal path and the peer has not
	 * acknowledged yet would be overtaken by a redirect. */
	if (sk) {
		tp = bpf_skc_to_tcp_sock(sk);
		if (tp && tp->write_seq != tp->snd_una)
			return fall_back(DP_SM_STAT_FALLBACK_DRAINING, size);
	}
	/* The peer: bytes it has not read from its normal receive queue would
	 * be overtaken too, and redirected bytes it has not read yet must stay
	 * within a bound (the larger of dp_sm_config[DP_SM_CONFIG_BACKLOG] and
	 * its receive buffer; the redirect itself has no flow control):
	 * past it, messages take the normal path, whose receive window pushes
	 * back on the sender. sk_msg programs cannot hold a reference to
	 * another socket, so its fields are read by address (recorded at
	 * insertion; a stale one only reads garbage, and the redirect below
	 * still needs the peer in the sockhash). */
	if (peer_addr && (*peer_addr & ~DP_SM_SIDE_MASK)) {
		struct tcp_sock *ptp = bpf_rdonly_cast((void *)(*peer_addr & ~DP_SM_SIDE_MASK),
						       bpf_core_type_id_kernel(struct tcp_sock));
		__u64 user = (__u64)ptp->inet_conn.icsk_inet.sk.sk_user_data & ~7ULL;
		__u32 queued = 0;
		__u64 limit;
		int rcvbuf = ptp->inet_conn.icsk_inet.sk.sk_rcvbuf;

		if (ptp->copied_seq != ptp->rcv_nxt)
			return fall_back(DP_SM_STAT_FALLBACK_DRAINING, size);
		if (user) {
			struct sk_psock *psock = bpf_rdonly_cast(
				(void *)user, bpf_core_type_id_kernel(struct sk_psock));

			queued = psock->msg_tot_len;
		}
		limit = sm_config(DP_SM_CONFIG_BACKLOG);
		if (rcvbuf > 0 && (__u64)rcvbuf > limit)
			limit = rcvbuf;
		if (queued > limit)
			return fall_back(DP_SM_STAT_FALLBACK_BACKLOG, size);
	}
	if (bpf_msg_redirect_hash(msg, &dp_sm_socks, &peer, BPF_F_INGRESS) == SK_PASS) {
		count(DP_SM_STAT_REDIRECTED, 1);
		count(DP_SM_STAT_REDIRECTED_BYTES, size);
		return SK_PASS;
	}
	set_reason(&self, DP_SM_REASON_NO_PEER, 0);
	return fall_back(DP_SM_STAT_FALLBACK_NO_PEER, size);
}

/* Whether the socket's cgroup is `id` or one of its descendants. */
static __always_inline int in_cgroup(struct sock *sk, __u64 id)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	int i;

	/* self is the first member of struct cgroup: a parent css is its cgroup. */
	for (i = 0; i < 64 && cg; i++) {
		if (BPF_CORE_READ(cg, kn, id) == id)
			return 1;
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return 0;
}

SEC("iter/tcp")
int dp_sm_resync(struct bpf_iter__tcp *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct sock_common *skc = ctx->sk_common;
	struct dp_sm_resync_rec rec = {};
	struct tcp_sock *tp;
	__u64 *known;
	__u64 cgroup_id;
	long err;

	if (!skc)
		return 0;
	if (skc->skc_state == TCP_LISTEN) {
		__u32 port = skc->skc_num;
		__u8 one = 1;

		bpf_map_update_elem(&dp_sm_listen, &port, &one, BPF_ANY);
		return 0;
	}
	if (skc->skc_state != TCP_ESTABLISHED)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	rec.key.family = skc->skc_family;
	if (rec.key.family == AF_INET) {
		rec.key.local_ip[0] = skc->skc_rcv_saddr;
		rec.key.remote_ip[0] = skc->skc_daddr;
	} else if (rec.key.family == AF_INET6) {
		rec.key.local_ip[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		rec.key.local_ip[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		rec.key.local_ip[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		rec.key.local_ip[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
		rec.key.remote_ip[0] = skc->skc_v6_daddr.in6_u.u6_addr32[0];
		rec.key.remote_ip[1] = skc->skc_v6_daddr.in6_u.u6_addr32[1];
		rec.key.remote_ip[2] = skc->skc_v6_daddr.in6_u.u6_addr32[2];
		rec.key.remote_ip[3] = skc->skc_v6_daddr.in6_u.u6_addr32[3];
	} else {
		return 0;
	}
	rec.key.local_port = skc->skc_num;
	rec.key.remote_port = bpf_ntohs(skc->skc_dport);
	normalize(&rec.key);
	cgroup_id = sm_config(DP_SM_CONFIG_CGROUP_ID);
	if (cgroup_id != 0 && !in_cgroup(&tp->inet_conn.icsk_inet.sk, cgroup_id))
		return 0;
	if (!both_local(&rec.key))
		return 0;
	known = bpf_map_lookup_elem(&dp_sm_addrs, &rec.key);
	if (known && (*known & ~DP_SM_SIDE_MASK) == (__u64)skc) {
		/* Inserted before (by sock_ops or an earlier pass); a socket
		 * already in a sockhash with an sk_msg program cannot be added
		 * again (EBUSY). */
		rec.result = 1;
	} else if (tp->copied_seq != tp->rcv_nxt || tp->write_seq != tp->snd_una) {
		rec.result = 2;
		count(DP_SM_STAT_RESYNC_BUSY, 1);
		set_reason(&rec.key, DP_SM_REASON_RESYNC_BUSY, 0);
	} else {
		err = bpf_map_update_elem(&dp_sm_socks, &rec.key, skc, BPF_NOEXIST);
		if (err == 0) {
			__u32 port = rec.key.local_port;
			__u64 addr = (__u64)skc;

			record_addr(&rec.key, &addr,
				    bpf_map_lookup_elem(&dp_sm_listen, &port) ? DP_SM_SIDE_PASSIVE
									      : DP_SM_SIDE_ACTIVE);
			count(DP_SM_STAT_RESYNCED, 1);
			set_reason(&rec.key, DP_SM_REASON_RESYNCED, 0);
		} else if (err == -17 /* EEXIST */) {
			rec.result = 1;
		} else {
			rec.result = 3;
			rec.err = (__s32)-err;
			count(DP_SM_STAT_RESYNC_FAILED, 1);
			set_reason(&rec.key, DP_SM_REASON_INSERT_FAILED, (__u32)-err);
		}
	}
	bpf_seq_write(seq, &rec, sizeof(rec));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
