/*
 * C baseline for bench/conntrack: the classic conntrack garbage collection
 * walk over a CT map dp created (struct dp_tuple -> struct dp_ct_entry,
 * bpf/include/dp/conntrack.h), with raw bpf(2) calls the way libbpf's thin
 * wrappers make them: BPF_MAP_GET_NEXT_KEY to the next key first (deleting
 * the current key would restart the walk), BPF_MAP_LOOKUP_ELEM of the
 * current key, BPF_MAP_DELETE_ELEM when its expiry is at or before NOW.
 * main.ts pins the map; this program opens the pin.
 *
 * Usage:
 *   baseline PIN NOW_NS
 *
 * Prints one JSON object on stdout ({"ms", "removed", "kept"}); errors go
 * to stderr with exit status 1.
 */
#include "bpf_baseline.h"

#include <inttypes.h>

struct dp_tuple {
	uint8_t saddr[16];
	uint8_t daddr[16];
	uint16_t sport;
	uint16_t dport;
	uint8_t nexthdr;
	uint8_t family;
	uint8_t scope;
	uint8_t pad;
} __attribute__((aligned(8)));

struct dp_ct_entry {
	uint64_t expires;
	uint64_t created;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint32_t src_identity;
	uint16_t rev_nat_index;
	uint16_t proxy_port;
	uint8_t state;
	uint8_t flags;
	uint8_t tx_flags_seen;
	uint8_t rx_flags_seen;
	uint32_t pad;
};

static int next_key(int fd, const void *key, void *next)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = key ? ptr(key) : 0;
	attr.next_key = ptr(next);
	return (int)sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr, ELEM_ATTR_SIZE);
}

static int lookup(int fd, const void *key, void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	attr.value = ptr(value);
	return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr, ELEM_ATTR_SIZE);
}

static int delete(int fd, const void *key)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	return (int)sys_bpf(BPF_MAP_DELETE_ELEM, &attr, ELEM_ATTR_SIZE);
}

int main(int argc, char **argv)
{
	struct dp_tuple keys[2];
	struct dp_ct_entry value;
	struct bpf_map_info info;
	unsigned long removed = 0, kept = 0;
	uint64_t now, start, ns;
	int fd, cur = 0, more;

	if (argc != 3) {
		fprintf(stderr, "usage: baseline PIN NOW_NS\n");
		return 2;
	}
	fd = obj_get(argv[1]);
	now = (uint64_t)parse_count(argv[2], "NOW_NS");
	info = map_info(fd);
	if (info.key_size != sizeof(struct dp_tuple) || info.value_size != sizeof(struct dp_ct_entry))
		fail("the pinned map is not a conntrack map");

	start = now_ns();
	more = next_key(fd, NULL, &keys[cur]) == 0;
	while (more) {
		more = next_key(fd, &keys[cur], &keys[cur ^ 1]) == 0;
		if (!more && errno != ENOENT)
			die("BPF_MAP_GET_NEXT_KEY");
		if (lookup(fd, &keys[cur], &value) == 0) {
			if (value.expires <= now) {
				if (delete(fd, &keys[cur]) < 0)
					die("BPF_MAP_DELETE_ELEM");
				removed++;
			} else {
				kept++;
			}
		} else if (errno != ENOENT) {
			die("BPF_MAP_LOOKUP_ELEM");
		}
		cur ^= 1;
	}
	ns = now_ns() - start;
	printf("{\"ms\":%.3f,\"removed\":%lu,\"kept\":%lu}\n", (double)ns / 1e6, removed, kept);
	return 0;
}
