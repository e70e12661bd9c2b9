/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The ipcache: prefix → security identity, for IPv4 and IPv6 in one LPM
 * trie. The key's first 32 bits after prefixlen (a reserved cluster id, a
 * pad byte and the family) always count, then the 16-byte address:
 *
 *   IPv6 prefix /n        → prefixlen = 32 + n
 *   IPv4 prefix /n        → prefixlen = 32 + 96 + n   (address IPv4-mapped)
 *
 * A prefix of a remote node's pods carries that node's id (node_id, 1-65535;
 * 0 = local or not a node's pods): with IPsec (config.h dp_enable_ipsec)
 * from_container looks the node's key up in dp_encrypt by it (encrypt.h).
 * The value also has room for the node's tunnel endpoint (its address,
 * IPv4-mapped; written by user space, not read by the programs yet) and
 * flags (0 for now).
 */
#ifndef DP_IPCACHE_H
#define DP_IPCACHE_H

#include "common.h"
#include "identity.h"

#define DP_IPCACHE_STATIC_PREFIX 32

struct dp_ipcache_key {
	__u32 prefixlen;
	__u16 cluster_id; /* reserved: 0 */
	__u8 pad;
	__u8 family;   /* DP_FAMILY_IPV4 or DP_FAMILY_IPV6 */
	__u8 addr[16]; /* IPv4-mapped for IPv4 */
};

struct dp_ipcache_info {
	__u32 identity;
	__u8 flags;		  /* reserved: 0 */
	__u8 encrypt_key;	  /* reserved: 0 (the key is per node: dp_encrypt) */
	__u16 node_id;		  /* the remote node of a pod prefix; 0 = local or none */
	__u8 tunnel_endpoint[16]; /* the remote node's address (IPv4-mapped); 0 = none */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 512 * 1024);
	__type(key, struct dp_ipcache_key);
	__type(value, struct dp_ipcache_info);
} dp_ipcache SEC(".maps");

/* The longest ipcache prefix holding an address, or NULL. */
static __always_inline struct dp_ipcache_info *dp_ipcache_lookup(const __u8 *addr, __u8 family)
{
	struct dp_ipcache_key key = {
		.prefixlen = DP_IPCACHE_STATIC_PREFIX + 128,
		.family = family,
	};

	dp_addr_copy(key.addr, addr);
	return bpf_map_lookup_elem(&dp_ipcache, &key);
}

/* The identity of an address: from the ipcache; for an address it does
 * not hold, the local endpoint's identity `local` when not 0, else world. */
static __always_inline __u32 dp_ipcache_identity(const __u8 *addr, __u8 family, __u32 local)
{
	struct dp_ipcache_info *info = dp_ipcache_lookup(addr, family);

	if (info)
		return info->identity;
	return local ? local : DP_ID_WORLD;
}

#endif /* DP_IPCACHE_H */
