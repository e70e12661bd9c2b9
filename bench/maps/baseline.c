/*
 * C baseline for bench/maps: element lookups and updates on the policy map
 * dp created (struct policy_key -> struct policy_entry, as in
 * bpf/testdata/typed_maps.c), with raw bpf(2) calls the way libbpf's thin
 * wrappers make them. main.ts pins the map; this program opens the pin.
 *
 * Key i = { .identity = i, .dport = htons(80), .proto = 6 }; an update
 * writes { .packets = i, .bytes = 2 * i, .action = 1, .flags = {1, 2, 3},
 * .proxy_port = htons(15001) }, the values main.ts writes.
 *
 * Usage:
 *   baseline lookup PIN KEYS OPS WARMUP
 *   baseline update PIN KEYS OPS WARMUP
 *
 * Prints one JSON object on stdout; errors go to stderr with exit status 1.
 */
#include "bpf_baseline.h"

#include <arpa/inet.h>
#include <inttypes.h>

struct policy_key {
	uint32_t identity;
	uint16_t dport;
	uint8_t proto;
	uint8_t pad;
};

struct policy_entry {
	uint64_t packets;
	uint64_t bytes;
	uint8_t action;
	uint8_t flags[3];
	uint16_t proxy_port;
};

static uint32_t map_id(int fd)
{
	struct bpf_map_info info = map_info(fd);

	if (info.key_size != sizeof(struct policy_key) || info.value_size != sizeof(struct policy_entry))
		fail("the pinned map is not a policy map");
	return info.id;
}

static int elem(int fd, enum bpf_cmd cmd, const void *key, void *value)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	attr.value = ptr(value);
	attr.flags = BPF_ANY;
	return (int)sys_bpf(cmd, &attr, ELEM_ATTR_SIZE);
}

int main(int argc, char **argv)
{
	struct policy_key *keys;
	struct policy_entry *values, out;
	unsigned long nkeys, ops, warmup, mask;
	uint64_t start, ns;
	int fd, is_update;
	enum bpf_cmd cmd;

	if (argc != 6) {
		fprintf(stderr, "usage: baseline lookup|update PIN KEYS OPS WARMUP\n");
		return 2;
	}
	is_update = strcmp(argv[1], "update") == 0;
	cmd = is_update ? BPF_MAP_UPDATE_ELEM : BPF_MAP_LOOKUP_ELEM;
	fd = obj_get(argv[2]);
	nkeys = parse_count(argv[3], "KEYS");
	ops = parse_count(argv[4], "OPS");
	warmup = parse_count(argv[5], "WARMUP");
	mask = nkeys - 1;
	keys = calloc(nkeys, sizeof(*keys));
	values = calloc(nkeys, sizeof(*values));
	if (!keys || !values)
		die("calloc");
	for (unsigned long i = 0; i < nkeys; i++) {
		keys[i].identity = (uint32_t)i;
		keys[i].dport = htons(80);
		keys[i].proto = 6;
		values[i].packets = i;
		values[i].bytes = 2 * i;
		values[i].action = 1;
		values[i].flags[0] = 1;
		values[i].flags[1] = 2;
		values[i].flags[2] = 3;
		values[i].proxy_port = htons(15001);
	}
	for (unsigned long i = 0; i < warmup; i++)
		if (elem(fd, cmd, &keys[i & mask], is_update ? &values[i & mask] : &out) < 0)
			die(argv[1]);
	start = now_ns();
	for (unsigned long i = 0; i < ops; i++)
		if (elem(fd, cmd, &keys[i & mask], is_update ? &values[i & mask] : &out) < 0)
			die(argv[1]);
	ns = now_ns() - start;
	printf("{\"op\":\"%s\",\"mapId\":%" PRIu32 ",\"nsPerOp\":%.3f}\n", argv[1], map_id(fd), (double)ns / (double)ops);
	return 0;
}
