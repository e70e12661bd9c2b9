/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* IPsec (dp_enable_ipsec, config.h): pod traffic towards a remote node's
 * pods is marked for the xfrm layer of the host stack, which encrypts it.
 *
 * dp_encrypt holds the key chosen per destination node: node id (the
 * ipcache's node_id of the destination prefix) → SPI, the key id 1-15 of
 * Cilium's key scheme. from_container sets Cilium's encrypt mark
 *
 *   31              16 15  12 11   8 7      0
 *  +------------------+------+------+--------+
 *  |  remote node id  | SPI  | 0xE  |   0    |
 *  +------------------+------+------+--------+
 *
 * and hands the packet to the stack, where the out policy of that node id
 * and key (mark/mask 0xFFFFFF00, @dp/ipsec's encryptMark()) selects the
 * state that encrypts it. A remote node without an entry gets nothing in
 * clear text: the packet is dropped (DP_DROP_ENCRYPT_KEY_MISSING).
 *
 * Decrypted packets come back from the xfrm layer with the decrypt magic
 * 0xD in bits 8-11 (the in state's output mark); the programs do not look
 * at it: they police them like any packet, with the identity of the inner
 * source address.
 */
#ifndef DP_ENCRYPT_H
#define DP_ENCRYPT_H

#include "common.h"
#include "config.h"
#include "notify.h"

#define DP_MARK_MAGIC_MASK    0x0F00
#define DP_MARK_MAGIC_ENCRYPT 0x0E00
#define DP_MARK_MAGIC_DECRYPT 0x0D00
#define DP_MARK_SPI_SHIFT     12
#define DP_MARK_NODE_ID_SHIFT 16

struct dp_encrypt_info {
	__u8 spi; /* the key id, 1-15 */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65535); /* one entry per node id at most */
	__type(key, __u32);	    /* the remote node id, 1-65535 */
	__type(value, struct dp_encrypt_info);
} dp_encrypt SEC(".maps");

/* Marks a packet towards node `node_id` for encryption with the node's key
 * and hands it to the stack, or drops it when the node has no key (no
 * entry, or SPI 0). */
static __always_inline int dp_encrypt_to_stack(struct __sk_buff *skb, const struct dp_pkt *p,
					       const struct dp_notify *n, __u16 node_id)
{
	__u32 key = node_id;
	struct dp_encrypt_info *info = bpf_map_lookup_elem(&dp_encrypt, &key);
	__u32 spi = info ? info->spi & 0xF : 0;

	/* SPI 0 is no key: no out policy would match, the packet would leave in clear text. */
	if (!spi)
		return dp_drop(p, n, DP_DROP_ENCRYPT_KEY_MISSING);
	skb->mark =
		(key << DP_MARK_NODE_ID_SHIFT) | (spi << DP_MARK_SPI_SHIFT) | DP_MARK_MAGIC_ENCRYPT;
	return dp_forward(p, n, DP_TRACE_TO_STACK, n->ifindex, TC_ACT_OK);
}

#endif /* DP_ENCRYPT_H */
