/*
 * C baseline for bench/map-ops: the same map operations as dp, done with raw
 * bpf(2) system calls the way libbpf's thin wrappers do them (a zeroed
 * union bpf_attr per call, sized to the last field the command reads).
 *
 * The map is the one dp created: main.ts pins it and passes the path, and
 * this program opens it with BPF_OBJ_GET. Keys and values follow the same
 * formulas as main.ts: key i = i (u32), value i = i * 3 + 1 (u64).
 *
 * Usage:
 *   baseline lookup PIN KEYS OPS WARMUP ROUNDS
 *   baseline update PIN KEYS OPS WARMUP ROUNDS
 *   baseline dump   PIN ENTRIES WARMUP ROUNDS
 *
 * Prints one JSON object on stdout; errors go to stderr with exit status 1.
 */
#include "bpf_baseline.h"

#include <inttypes.h>

#define MAX_ROUNDS 32

/* Checks the map is a u32 -> u64 hash map and returns its kernel id. */
static uint32_t check_map(int fd)
{
	struct bpf_map_info info = map_info(fd);

	if (info.type != BPF_MAP_TYPE_HASH || info.key_size != 4 || info.value_size != 8)
		fail("the pinned map is not a hash map with u32 keys and u64 values");
	return info.id;
}

static int lookup(int fd, const uint32_t *key, uint64_t *value)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	attr.value = ptr(value);
	return (int)sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr, ELEM_ATTR_SIZE);
}

static int update(int fd, const uint32_t *key, const uint64_t *value)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	attr.value = ptr(value);
	attr.flags = BPF_ANY;
	return (int)sys_bpf(BPF_MAP_UPDATE_ELEM, &attr, ELEM_ATTR_SIZE);
}

static int next_key(int fd, const uint32_t *key, uint32_t *next)
{
	union bpf_attr attr;

	memset(&attr, 0, ELEM_ATTR_SIZE);
	attr.map_fd = (uint32_t)fd;
	attr.key = ptr(key);
	attr.next_key = ptr(next);
	return (int)sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr, ELEM_ATTR_SIZE);
}

/* ops operations over keys[i % nkeys]; nkeys is a power of two. Returns elapsed ns. */
static uint64_t run_ops(int fd, int is_update, const uint32_t *keys, const uint64_t *values,
			unsigned long nkeys, unsigned long ops)
{
	unsigned long mask = nkeys - 1;
	uint64_t out = 0;
	uint64_t start = now_ns();

	for (unsigned long i = 0; i < ops; i++) {
		unsigned long k = i & mask;
		int ret = is_update ? update(fd, &keys[k], &values[k]) : lookup(fd, &keys[k], &out);

		if (ret < 0)
			die(is_update ? "BPF_MAP_UPDATE_ELEM" : "BPF_MAP_LOOKUP_ELEM");
	}
	return now_ns() - start;
}

static int bench_ops(int is_update, int argc, char **argv)
{
	unsigned long nkeys, ops, warmup, rounds;
	uint32_t *keys;
	uint64_t *values;
	uint32_t id;
	int fd;

	if (argc != 7)
		fail("usage: baseline lookup|update PIN KEYS OPS WARMUP ROUNDS");
	nkeys = parse_count(argv[3], "KEYS");
	ops = parse_count(argv[4], "OPS");
	warmup = parse_count(argv[5], "WARMUP");
	rounds = parse_count(argv[6], "ROUNDS");
	if (nkeys == 0 || (nkeys & (nkeys - 1)) != 0)
		fail("KEYS must be a power of two");
	if (ops == 0 || rounds == 0 || rounds > MAX_ROUNDS)
		fail("OPS must be positive and ROUNDS between 1 and 32");

	fd = obj_get(argv[2]);
	id = check_map(fd);
	keys = malloc(nkeys * sizeof(*keys));
	values = malloc(nkeys * sizeof(*values));
	if (keys == NULL || values == NULL)
		die("malloc");
	for (unsigned long i = 0; i < nkeys; i++) {
		keys[i] = (uint32_t)i;
		values[i] = (uint64_t)i * 3 + 1;
	}

	/* Same keys, same values: every key must be there with dp's value. */
	for (unsigned long i = 0; i < nkeys; i++) {
		uint64_t value;

		if (lookup(fd, &keys[i], &value) < 0)
			die("BPF_MAP_LOOKUP_ELEM (check)");
		if (value != values[i])
			fail("the pinned map holds unexpected values");
	}

	if (warmup > 0)
		run_ops(fd, is_update, keys, values, nkeys, warmup);
	printf("{\"op\":\"%s\",\"mapId\":%" PRIu32 ",\"ops\":%lu,\"nsPerOp\":[",
	       is_update ? "update" : "lookup", id, ops);
	for (unsigned long r = 0; r < rounds; r++) {
		uint64_t ns = run_ops(fd, is_update, keys, values, nkeys, ops);

		printf("%s%.3f", r == 0 ? "" : ",", (double)ns / (double)ops);
	}
	printf("]}\n");

	free(keys);
	free(values);
	close(fd);
	return 0;
}

/* The classic dump: BPF_MAP_GET_NEXT_KEY then BPF_MAP_LOOKUP_ELEM per key. */
static uint64_t walk(int fd, unsigned long *count, uint64_t *key_sum)
{
	uint32_t key = 0, next;
	uint64_t value;
	const uint32_t *prev = NULL; /* NULL: start at the first key */
	uint64_t start = now_ns();

	*count = 0;
	*key_sum = 0;
	for (;;) {
		if (next_key(fd, prev, &next) < 0) {
			if (errno == ENOENT)
				break;
			die("BPF_MAP_GET_NEXT_KEY");
		}
		if (lookup(fd, &next, &value) < 0)
			die("BPF_MAP_LOOKUP_ELEM");
		(*count)++;
		*key_sum += next;
		key = next;
		prev = &key;
	}
	return now_ns() - start;
}

static int bench_dump(int argc, char **argv)
{
	unsigned long entries, warmup, rounds, count;
	uint64_t key_sum;
	uint32_t id;
	int fd;

	if (argc != 6)
		fail("usage: baseline dump PIN ENTRIES WARMUP ROUNDS");
	entries = parse_count(argv[3], "ENTRIES");
	warmup = parse_count(argv[4], "WARMUP");
	rounds = parse_count(argv[5], "ROUNDS");
	if (rounds == 0 || rounds > MAX_ROUNDS)
		fail("ROUNDS must be between 1 and 32");

	fd = obj_get(argv[2]);
	id = check_map(fd);
	for (unsigned long r = 0; r < warmup; r++)
		walk(fd, &count, &key_sum);
	printf("{\"op\":\"dump\",\"mapId\":%" PRIu32 ",\"ms\":[", id);
	for (unsigned long r = 0; r < rounds; r++) {
		uint64_t ns = walk(fd, &count, &key_sum);

		if (count != entries) {
			fprintf(stderr, "baseline: dump saw %lu entries, expected %lu\n", count, entries);
			return 1;
		}
		printf("%s%.3f", r == 0 ? "" : ",", (double)ns / 1e6);
	}
	printf("],\"entries\":%lu,\"keySum\":%" PRIu64 "}\n", count, key_sum);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "lookup") == 0)
		return bench_ops(0, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "update") == 0)
		return bench_ops(1, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "dump") == 0)
		return bench_dump(argc, argv);
	fail("usage: baseline lookup|update|dump PIN ...");
	return 2;
}
