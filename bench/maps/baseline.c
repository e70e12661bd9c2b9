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
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ELEM_ATTR_SIZE (offsetof(union bpf_attr, flags) + sizeof(((union bpf_attr *)0)->flags))

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

static void die(const char *what)
{
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long sys_bpf(enum bpf_cmd cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(__NR_bpf, cmd, attr, size);
}

static uint64_t ptr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned long parse_count(const char *text)
{
	char *end;
	unsigned long n = strtoul(text, &end, 10);

	if (*end != '\0' || end == text) {
		fprintf(stderr, "baseline: invalid count \"%s\"\n", text);
		exit(2);
	}
	return n;
}

static int obj_get(const char *path)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = ptr(path);
	fd = sys_bpf(BPF_OBJ_GET, &attr, sizeof(attr));
	if (fd < 0)
		die(path);
	return (int)fd;
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info;
	union bpf_attr attr;

	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = (uint32_t)fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = ptr(&info);
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0)
		die("BPF_OBJ_GET_INFO_BY_FD");
	if (info.key_size != sizeof(struct policy_key) || info.value_size != sizeof(struct policy_entry)) {
		fprintf(stderr, "baseline: the pinned map is not a policy map\n");
		exit(1);
	}
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
	nkeys = parse_count(argv[3]);
	ops = parse_count(argv[4]);
	warmup = parse_count(argv[5]);
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
